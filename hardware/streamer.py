"""Stream set-points to N platforms in lock-step, safely (``docs/hardware.md``).

The session, in order:

1. **Plan check without I/O**: the trajectory is resampled onto the stream grid and checked
   against every limit (:func:`hardware.plan.check_trajectory`); a violation raises
   :class:`~hardware.safety.LimitViolation` before any port is opened.
2. **Open and query**: every port is opened and each device's STATUS is read.  A latched
   WATCHDOG bit (the normal trace of the previous session ending) is cleared; any other fault
   (ESTOP, DEVICE, LIMIT) stops the session (:class:`DeviceNotReady`) unless ``clear_faults``.
3. **Full plan**: an approach ramp from the measured positions is prepended and the whole plan
   is checked again; a violation raises before any set-point is sent (only STATUS queries and
   CLEAR_FAULTS were exchanged).
4. **Stream**: tick k is due at ``t0 + k/rate`` (``time.perf_counter``, absolute deadlines;
   sleep until :data:`SPIN_S` before the deadline with a 1 us timer slack, then poll the clock;
   the cyclic garbage collector is paused);
   its set-point goes to every platform, each through that platform's
   :class:`~hardware.safety.SafetyGate`, and every one must be acknowledged before tick k+1.  A
   missing or corrupted reply is retransmitted (same bytes, same sequence number) after
   ``ack_timeout_s``, at most ``max_retries`` times; a NAK BAD_CRC is retransmitted at once.  A
   tick that starts more than half a period late shifts the later deadlines (the schedule never
   catches up by sending set-points closer together than one period).
5. **Fault**: no reply after the retries, a NAK other than BAD_CRC, a port error or a gate
   refusal: STOP is sent to every platform whose port still works (ESTOP if STOP is not
   acknowledged), each device's STATUS is read to learn the last tick it executed, and the
   summary says per platform what was acknowledged, what was sent without acknowledgement and
   what the device reports.
6. **Idle**: while waiting before the start (``start_delay_s``) or holding after the end
   (``hold_s``), HEARTBEAT frames every ``heartbeat_s`` keep the devices' watchdogs fed.

Every frame written and every reply read is a line of the journal (JSON lines).
"""

from __future__ import annotations

import gc
import json
import os
import select
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from assemblers.model import Assembler

from . import protocol as P
from .link import DeviceLink, LinkError, NullPort
from .plan import Plan, build_plan, calibrations, check_trajectory, finite_legs, plan_target
from .protocol import Fault, MsgType, NakCode, State
from .safety import LimitViolation
from .signals import interrupt_on_signals

MAX_RATE_HZ = 1000.0
_POLL_S = 0.0002  # polling step for ports without a file descriptor (loop://)
# the last SPIN_S before a tick's deadline are spent polling the clock instead of sleeping: a
# sleep wakes up tens of microseconds late (timer slack, scheduler wake-up), a spin does not
SPIN_S = 0.0002
_TIMER_SLACK_NS = 1000  # this thread's timer slack while streaming (Linux default 50 us)


def wait_until(deadline: float, clock=time.perf_counter, sleep=time.sleep) -> float:
    """Sleep until :data:`SPIN_S` before ``deadline`` (``clock`` seconds), then poll the clock
    up to it; returns the clock reading, never earlier than ``deadline``."""
    now = clock()
    if deadline - now > SPIN_S:
        sleep(deadline - now - SPIN_S)
    ts = clock()
    while ts < deadline:
        ts = clock()
    return ts


def _set_timer_slack(ns: int | None) -> int | None:
    """Set the calling thread's timer slack (Linux ``prctl(PR_SET_TIMERSLACK)``), so that
    ``time.sleep`` wakes up within about ``ns`` of its deadline; returns the previous value, or
    None where this is not available (other systems: nothing changes)."""
    if ns is None or not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        old = libc.prctl(30, 0, 0, 0, 0)  # PR_GET_TIMERSLACK
        if old < 0 or libc.prctl(29, ctypes.c_ulong(max(1, int(ns))), 0, 0, 0) != 0:
            return None
        return int(old)
    except (OSError, AttributeError):
        return None


class DeviceNotReady(Exception):
    """A device reports a fault (ESTOP, DEVICE, LIMIT) at the start; nothing was streamed."""


class StreamError(Exception):
    """A session could not start: a port could not be opened or a device did not answer."""


@dataclass(frozen=True)
class FaultRecord:
    """One fault: ``kind`` is "timeout" (no valid reply after the retries), "nak" (the device
    refused), "link" (port error: unplugged, I/O error), "limit" (the safety gate refused) or
    "interrupted" (Ctrl-C); ``tick``/``seq`` of the frame concerned (None if none)."""

    platform: int
    port: str | None
    kind: str
    tick: int | None
    seq: int | None
    message: str


@dataclass(frozen=True)
class PlatformReport:
    """What one platform executed.  ``last_acked_tick``: last set-point acknowledged (None:
    none); ``unconfirmed_ticks``: sent but never acknowledged (the device may or may not have
    executed them); ``device_last_tick``: the last tick the device itself reports executing
    (STATUS after the run; None if it could not be asked or executed none); ``stop``: "acked",
    "sent" (no acknowledgement), "estop" (ESTOP after an unacknowledged STOP), "unreachable"
    or "not needed"; ``final_state``/``final_faults``: from the last STATUS ("unknown" if
    none)."""

    platform: int
    port: str | None
    address: int
    last_acked_tick: int | None
    unconfirmed_ticks: tuple[int, ...]
    device_last_tick: int | None
    stop: str
    final_state: str
    final_faults: tuple[str, ...]


@dataclass(frozen=True)
class StreamSummary:
    """Result of a stream.  ``status``: "completed", "fault" or "interrupted".  Counts are over
    all platforms: ``frames_sent`` distinct set-point frames, ``frames_acked`` acknowledged
    ones, ``transmissions`` every frame written (all types, retransmissions included),
    ``retries`` retransmissions, ``timeouts``, ``naks``, ``bad_replies`` (CRC/header failures
    in received bytes), ``stale_replies`` (late or duplicate replies ignored),
    ``discarded_bytes`` (received bytes that were not part of a valid frame).  Latency (ms):
    set-point write -> acknowledgement (first write, so retries count).  Jitter (ms): |period -
    1/rate| between tick starts.  ``lateness_p99_ms``: tick start after its deadline.
    ``overruns``: ticks started more than half a period late (the schedule was shifted).
    """

    status: str
    rate_hz: float
    n_platforms: int
    ticks_planned: int
    ticks_ramp: int
    ticks_completed: int
    frames_sent: int
    frames_acked: int
    transmissions: int
    retries: int
    timeouts: int
    naks: int
    bad_replies: int
    stale_replies: int
    discarded_bytes: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    latency_max_ms: float | None
    jitter_p99_ms: float | None
    jitter_max_ms: float | None
    lateness_p99_ms: float | None
    overruns: int
    duration_s: float
    faults: tuple[FaultRecord, ...] = ()
    platforms: tuple[PlatformReport, ...] = ()
    journal: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["faults"] = [asdict(f) for f in self.faults]
        d["platforms"] = [asdict(p) for p in self.platforms]
        return d

    def table(self) -> str:
        """A table for people."""

        def ms(v):
            return "-" if v is None else f"{v:.3f} ms"

        rows = [
            ("status", self.status),
            ("rate", f"{self.rate_hz:g} Hz, {self.n_platforms} platform(s)"),
            ("ticks", f"{self.ticks_completed} of {self.ticks_planned} completed "
                      f"({self.ticks_ramp} approach ramp)"),
            ("set-point frames", f"{self.frames_sent} sent, {self.frames_acked} acknowledged"),
            ("retries", f"{self.retries} ({self.timeouts} timeouts, {self.naks} NAKs, "
                        f"{self.bad_replies} bad replies, {self.stale_replies} stale, "
                        f"{self.discarded_bytes} bytes discarded)"),
            ("ack latency", f"p50 {ms(self.latency_p50_ms)}, p99 {ms(self.latency_p99_ms)}, "
                            f"max {ms(self.latency_max_ms)}"),
            ("period jitter", f"p99 {ms(self.jitter_p99_ms)}, max {ms(self.jitter_max_ms)}, "
                              f"{self.overruns} overruns"),
            ("duration", f"{self.duration_s:.3f} s"),
        ]
        if self.journal:
            rows.append(("journal", self.journal))
        w = max(len(r[0]) for r in rows)
        lines = [f"{a.ljust(w)}  {b}" for a, b in rows]
        for f in self.faults:
            lines.append(f"FAULT platform {f.platform} ({f.port}): {f.kind}: {f.message}")
        if self.platforms:
            lines.append("platform  port                last acked  unconfirmed  device last  "
                         "stop          state")
            for p in self.platforms:
                unc = ",".join(map(str, p.unconfirmed_ticks)) or "-"
                lines.append(f"{p.platform:<8}  {str(p.port)[:18]:<18}  "
                             f"{_tick(p.last_acked_tick):>10}  {unc:>11}  "
                             f"{_tick(p.device_last_tick):>11}  {p.stop:<12}  {p.final_state}"
                             + (f" {list(p.final_faults)}" if p.final_faults else ""))
        return "\n".join(lines)


def _tick(t: int | None) -> str:
    return "-" if t is None else str(t)


class Journal:
    """JSON-lines journal: one object per line, flushed after every tick and every event.

    Records: ``{"ev": "session", ...}`` first (wall-clock start, config, ports, rate), then
    ``"tx"`` (every frame written: ``t`` s since the session start, ``platform``, ``port``,
    ``seq``, ``type``, ``tick``/``counts`` for set-points, ``attempt`` 0 for the first write),
    ``"rx"`` (every reply decoded: type, seq, ``of``, ``state``, ``faults``, ``code``,
    ``latency_ms`` for the reply that completes a request), ``"plan"``, ``"fault"``, ``"stop"``,
    ``"status"`` and a final ``"summary"``.
    """

    def __init__(self, path: str | os.PathLike | None):
        self.path = None if path is None else str(path)
        self._fh = None
        self._lines: list[str] = []
        if self.path is not None:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "w")

    @property
    def enabled(self) -> bool:
        return self._fh is not None

    def write(self, rec: dict) -> None:
        if self._fh is not None:
            self._lines.append(json.dumps(rec, separators=(",", ":")))

    def write_line(self, line: str) -> None:
        """Append one already-encoded JSON object (the streaming hot path)."""
        if self._fh is not None:
            self._lines.append(line)

    def flush(self) -> None:
        if self._fh is not None and self._lines:
            self._fh.write("\n".join(self._lines) + "\n")
            self._fh.flush()
            self._lines.clear()

    def close(self) -> None:
        if self._fh is not None:
            self.flush()
            self._fh.close()
            self._fh = None


def read_journal(path: str | os.PathLike) -> list[dict]:
    """The journal's records, in order."""
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


class _Req:
    __slots__ = ("i", "link", "mtype", "seq", "tick", "t_first", "t_last", "attempts", "reply")

    def __init__(self, i, link, mtype, seq, tick, now):
        self.i, self.link, self.mtype, self.seq, self.tick = i, link, mtype, seq, tick
        self.t_first = self.t_last = now
        self.attempts = 1
        self.reply: P.Frame | None = None


@dataclass
class _Stats:
    frames_sent: int = 0
    frames_acked: int = 0
    transmissions: int = 0
    retries: int = 0
    timeouts: int = 0
    naks: int = 0
    stale: int = 0
    overruns: int = 0
    latencies: list = field(default_factory=list)
    starts: list = field(default_factory=list)
    lateness: list = field(default_factory=list)


class Streamer:
    """Streams plans to the platforms of ``asm`` over their serial links.

    ``ports``: one pyserial URL per platform (default: the config's ``hardware.platform[i].port``);
    ``rate_hz``: stream rate (default the config's, 1..1000 Hz); ``journal``: path of the JSON
    lines journal (None: none); ``clear_faults``: clear latched ESTOP/DEVICE/LIMIT faults at the
    start instead of refusing to run; ``interp``: trajectory interpolation ("pchip", "linear");
    ``serials``: already-open pyserial-like objects instead of ``ports`` (tests, dry runs);
    ``progress``: called as ``progress(ticks_done, ticks_total)`` after every tick.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, asm: Assembler, ports: Sequence[str | None] | None = None, *,
                 rate_hz: float | None = None, journal: str | os.PathLike | None = None,
                 clear_faults: bool = False, interp: str = "pchip", serials=None,
                 progress: Callable[[int, int], None] | None = None):
        hw = asm.hardware
        self.asm = asm
        self.n = asm.n_platforms
        self.rate_hz = float(hw.rate_hz if rate_hz is None else rate_hz)
        if not (1.0 <= self.rate_hz <= MAX_RATE_HZ):
            raise ValueError(f"rate must be between 1 and {MAX_RATE_HZ:g} Hz, got {self.rate_hz:g}")
        self.period_s = 1.0 / self.rate_hz
        self.ack_timeout_s = hw.ack_timeout_s
        self.max_retries = hw.max_retries
        self.heartbeat_s = hw.heartbeat_s
        self.cals = calibrations(asm)
        if serials is None:
            ports = [lk.port for lk in hw.links] if ports is None else list(ports)
            if len(ports) != self.n:
                raise ValueError(f"{len(ports)} port(s) given for {self.n} platforms: give one "
                                 "per platform, bottom to top")
            missing = [i for i, p in enumerate(ports) if not p]
            if missing:
                raise ValueError(f"no serial port for platform {missing[0]}: give --port (one per "
                                 f"platform) or set hardware.platform[{missing[0]}].port in the "
                                 "config")
        elif len(serials) != self.n:
            raise ValueError(f"{len(serials)} serial port(s) for {self.n} platforms")
        self.ports = list(ports) if serials is None else [
            getattr(s, "port", None) or getattr(s, "name", None) or f"serial{i}"
            for i, s in enumerate(serials)]
        self._serials = serials
        self.warnings = [] if serials is not None else [
            w for i, lk in enumerate(hw.links)
            if (w := bandwidth_warning(self.ports[i], lk.baudrate, self.rate_hz, i))]
        self.clear_faults = clear_faults
        self.interp = interp
        self.progress = progress
        self.journal = Journal(journal)
        self._port_json = [json.dumps(p) for p in self.ports]
        self.links: list[DeviceLink] = []
        self._t0 = time.perf_counter()
        self._stats = _Stats()
        self.status: list[P.Status | None] = [None] * self.n
        self._opened = False

    # ------------------------------------------------------------------ session
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _now(self) -> float:
        return time.perf_counter() - self._t0

    def open(self) -> None:
        """Open every port (raises :class:`LinkError` naming the first that fails)."""
        if self._opened:
            return
        gc.collect()  # now, before any device's watchdog is armed (it can take 0.1 s)
        self._t0 = time.perf_counter()  # journal times count from here
        hw = self.asm.hardware
        self.journal.write({
            "ev": "session", "t": 0.0, "wall_time": datetime.now(UTC).isoformat(),
            "config": self.asm.source, "ports": self.ports, "rate_hz": self.rate_hz,
            "addresses": [lk.address for lk in hw.links],
            "ack_timeout_s": self.ack_timeout_s, "max_retries": self.max_retries})
        try:
            for i in range(self.n):
                lk = hw.links[i]
                kw = dict(platform=i, address=lk.address, calibration=lk.calibration,
                          period_s=self.period_s)
                if self._serials is not None:
                    self.links.append(DeviceLink(self._serials[i], url=self.ports[i], **kw))
                else:
                    self.links.append(DeviceLink.open(self.ports[i], baudrate=lk.baudrate, **kw))
        except LinkError:
            self.close()
            raise
        self._opened = True
        self.journal.flush()

    def close(self) -> None:
        for lk in self.links:
            lk.close()
        self.journal.close()

    # ------------------------------------------------------------------ journal helpers
    def _log_tx(self, r: _Req, counts=None) -> None:
        if not self.journal.enabled:
            return
        # the same object json.dumps would write, formatted directly (1 kHz x N platforms)
        line = (f'{{"ev":"tx","t":{self._now():.7f},"platform":{r.i},'
                f'"port":{self._port_json[r.i]},"seq":{r.seq},"type":"{P.type_name(r.mtype)}",'
                f'"attempt":{r.attempts - 1}')
        if r.tick is not None:
            line += f',"tick":{r.tick}'
            if counts is not None:
                line += ',"counts":[' + ",".join(str(int(x)) for x in counts) + "]"
        self.journal.write_line(line + "}")

    def _log_rx(self, i: int, link: DeviceLink, f: P.Frame, latency=None, note=None) -> None:
        if not self.journal.enabled:
            return
        rec = {"ev": "rx", "t": round(self._now(), 7), "platform": i, "port": link.url,
               "seq": f.seq, "type": P.type_name(f.type)}
        try:
            if f.type == MsgType.ACK:
                a = P.parse_ack(f.payload)
                rec.update(of=P.type_name(a.of_type), state=_state(a.state),
                           faults=P.fault_names(a.faults))
            elif f.type == MsgType.NAK:
                nk = P.parse_nak(f.payload)
                rec.update(of=P.type_name(nk.of_type), code=_code(nk.code), state=_state(nk.state),
                           faults=P.fault_names(nk.faults))
            elif f.type == MsgType.STATUS:
                s = P.parse_status(f.payload)
                rec.update(state=_state(s.state), faults=P.fault_names(s.faults),
                           last_tick=s.last_tick,
                           measured=list(s.measured))
        except Exception:  # noqa: BLE001 - a journal line must never stop the stream
            rec["payload"] = f.payload.hex()
        if latency is not None:
            rec["latency_ms"] = round(latency * 1e3, 4)
        if note:
            rec["note"] = note
        self.journal.write(rec)

    def _fault(self, faults: list[FaultRecord], i: int, kind: str, message: str, tick=None,
               seq=None) -> None:
        f = FaultRecord(i, self.ports[i], kind, tick, seq, message)
        faults.append(f)
        self.journal.write({"ev": "fault", "t": round(self._now(), 7), **asdict(f)})

    # ------------------------------------------------------------------ exchange engine
    def _send(self, i: int, mtype: int, *, tick=None, counts=None) -> _Req:
        link = self.links[i]
        if mtype == MsgType.SETPOINT:
            seq = link.send_setpoint(tick, counts)
            self._stats.frames_sent += 1
        else:
            seq = link.send(mtype)
        self._stats.transmissions += 1
        r = _Req(i, link, mtype, seq, tick, time.perf_counter())
        self._log_tx(r, counts)
        return r

    def _exchange(self, reqs: list[_Req], faults: list[FaultRecord], *, retries=None,
                  timeout=None) -> None:
        """Wait for the reply to every request in ``reqs`` (already written), retransmitting
        as needed; stop at the first fault (appended to ``faults``)."""
        retries = self.max_retries if retries is None else retries
        timeout = self.ack_timeout_s if timeout is None else timeout
        pending = {r.i: r for r in reqs if r.reply is None}
        st = self._stats
        while pending:
            now = time.perf_counter()
            for r in list(pending.values()):  # timeouts
                if now - r.t_last < timeout:
                    continue
                for f in r.link.decoder.flush():
                    self._on_frame(r.link, f, pending, faults, retries)
                if r.i not in pending or faults:
                    continue
                st.timeouts += 1
                if r.attempts > retries:
                    self._fault(faults, r.i, "timeout",
                                f"no valid reply to {P.type_name(r.mtype)} seq {r.seq}"
                                + (f" (tick {r.tick})" if r.tick is not None else "")
                                + f" after {r.attempts} transmission(s), "
                                f"{timeout * 1e3:.0f} ms each", r.tick, r.seq)
                else:
                    self._retransmit(r, faults)
            if faults:
                break
            if not pending:
                break
            wait = min(r.t_last for r in pending.values()) + timeout - time.perf_counter()
            ready = self._wait([r.link for r in pending.values()], max(0.0, wait))
            for r in list(pending.values()):
                if r.i not in pending:
                    continue
                try:
                    frames = r.link.read_frames(r.link in ready)
                except LinkError as exc:
                    self._fault(faults, r.i, "link", str(exc), r.tick, r.seq)
                    break
                for f in frames:
                    self._on_frame(r.link, f, pending, faults, retries)
            if faults:
                break
        if faults:  # collect replies that have already arrived, without waiting
            for r in list(pending.values()):
                if r.link.alive:
                    try:
                        for f in r.link.read_frames(False):
                            self._on_frame(r.link, f, pending, [], 0)
                    except LinkError:
                        pass

    def _retransmit(self, r: _Req, faults: list[FaultRecord]) -> None:
        try:
            r.link.resend()
        except LinkError as exc:
            self._fault(faults, r.i, "link", str(exc), r.tick, r.seq)
            return
        r.attempts += 1
        r.t_last = time.perf_counter()
        self._stats.retries += 1
        self._stats.transmissions += 1
        self._log_tx(r)

    def _wait(self, links: list[DeviceLink], timeout: float) -> set:
        fds = {}
        for lk in links:
            fd = lk.fileno() if lk.alive else None
            if fd is None:
                time.sleep(min(timeout, _POLL_S))
                return set(links)
            fds[fd] = lk
        try:
            r, _, _ = select.select(list(fds), [], [], timeout)
        except (OSError, ValueError):  # a descriptor went bad: let read_frames report it
            return set(links)
        return {fds[fd] for fd in r}

    def _on_frame(self, link: DeviceLink, f: P.Frame, pending: dict, faults: list, retries: int
                  ) -> None:
        i = link.platform
        r = pending.get(i)
        st = self._stats
        if f.address != link.address or r is None or f.seq != r.seq:
            st.stale += 1
            self._log_rx(i, link, f, note="stale" if f.address == link.address
                         else "wrong address")
            return
        if f.type == MsgType.NAK:
            nk = P.parse_nak(f.payload)
            st.naks += 1
            self._log_rx(i, link, f)
            if nk.code in P.RETRYABLE_NAKS and r.attempts <= retries:
                self._retransmit(r, faults)
                return
            del pending[i]
            self._fault(faults, i, "nak",
                        f"device refused {P.type_name(r.mtype)} seq {r.seq}"
                        + (f" (tick {r.tick})" if r.tick is not None else "")
                        + f": {_code(nk.code)}, state {_state(nk.state)}, faults "
                        f"{P.fault_names(nk.faults) or 'none'}", r.tick, r.seq)
            return
        expect = MsgType.STATUS if r.mtype == MsgType.STATUS_QUERY else MsgType.ACK
        if f.type != expect or (f.type == MsgType.ACK
                                and P.parse_ack(f.payload).of_type != r.mtype):
            st.stale += 1
            self._log_rx(i, link, f, note="unexpected reply")
            return
        now = time.perf_counter()
        r.reply = f
        del pending[i]
        lat = now - r.t_first
        if r.mtype == MsgType.SETPOINT:
            st.frames_acked += 1
            st.latencies.append(lat)
        self._log_rx(i, link, f, latency=lat)

    def _round(self, mtype: int, platforms=None, *, retries=None) -> tuple[list[_Req], list]:
        """Send ``mtype`` to the platforms (default all live ones), wait for the replies."""
        faults: list[FaultRecord] = []
        reqs = []
        for i in (range(self.n) if platforms is None else platforms):
            if not self.links[i].alive:
                continue
            try:
                reqs.append(self._send(i, mtype))
            except LinkError as exc:
                self._fault(faults, i, "link", str(exc))
        if reqs:
            more: list[FaultRecord] = []
            self._exchange(reqs, more, retries=retries)
            faults += more
        return reqs, faults

    # ------------------------------------------------------------------ public steps
    def query_status(self) -> list[P.Status]:
        """Read every device's STATUS; raises :class:`StreamError` if one does not answer."""
        reqs, faults = self._round(MsgType.STATUS_QUERY)
        self.journal.flush()
        if faults:
            raise StreamError("; ".join(f.message for f in faults))
        out = []
        for r in reqs:
            s = P.parse_status(r.reply.payload)
            self.status[r.i] = s
            self._log_status(r.i, s)
            out.append(s)
        self.journal.flush()
        return out

    def _log_status(self, i: int, s: P.Status) -> None:
        self.journal.write({"ev": "status", "t": round(self._now(), 7), "platform": i,
                            "state": _state(s.state), "faults": P.fault_names(s.faults),
                            "last_tick": s.last_tick, "measured": list(s.measured),
                            "target": list(s.target)})

    def prepare(self) -> np.ndarray:
        """Open the ports, read every STATUS, clear faults as allowed; return (N, 6) int64, the
        measured counts (where the actuators are).

        A latched WATCHDOG or COMM bit (the device held its position because no frame came
        for a while, e.g. since the last session or while the plan was being made) is cleared;
        ESTOP, DEVICE and LIMIT are cleared only with ``clear_faults``, else
        :class:`DeviceNotReady` is raised."""
        self.open()
        status = self.query_status()
        to_clear = []
        for i, s in enumerate(status):
            bad = s.faults & ~int(Fault.WATCHDOG | Fault.COMM)
            if s.state in (State.ESTOP, State.FAULT) or bad:
                if not self.clear_faults:
                    raise DeviceNotReady(
                        f"platform {i} ({self.ports[i]}) reports state {_state(s.state)}, faults "
                        f"{P.fault_names(s.faults)}: nothing was sent; check the device and run "
                        "again with --clear-faults to clear them")
                to_clear.append(i)
            elif s.faults:
                to_clear.append(i)  # a latched watchdog/comm warning from an earlier session
        if to_clear:
            _, faults = self._round(MsgType.CLEAR_FAULTS, to_clear)
            if faults:
                raise StreamError("; ".join(f.message for f in faults))
            status = self.query_status()
        return np.array([s.measured for s in status], dtype=np.int64)

    def plan(self, t: np.ndarray, legs: np.ndarray, start_counts=None, source="") -> Plan:
        """Check a trajectory (``t`` (T,) s, ``legs`` (T, N, 6) m) and build the plan from
        ``start_counts`` (N, 6) (None: at rest at its first point)."""
        try:
            tg, Lg = check_trajectory(t, legs, self.cals, self.rate_hz, self.interp)
            return build_plan(tg, Lg, self.cals, self.rate_hz, start_counts, source)
        except LimitViolation as exc:
            self.journal.write({"ev": "refused", "t": round(self._now(), 7),
                                "message": str(exc), "sent": "no set-point"})
            self.journal.flush()
            raise

    def idle(self, seconds: float) -> list[FaultRecord]:
        """Wait ``seconds`` while sending HEARTBEATs every ``heartbeat_s``; returns faults."""
        end = time.perf_counter() + seconds
        while True:
            _, faults = self._round(MsgType.HEARTBEAT)
            self.journal.flush()
            if faults:
                return faults
            left = end - time.perf_counter()
            if left <= 0:
                return []
            time.sleep(min(self.heartbeat_s, left))

    def run(self, plan: Plan, *, start_delay_s: float = 0.0, hold_s: float = 0.0
            ) -> StreamSummary:
        """Stream ``plan`` (its ``start_counts`` must be where the actuators are: the devices
        are asked again, and a difference of more than one count refuses the run)."""
        if plan.n_platforms != self.n:
            raise ValueError(f"the plan has {plan.n_platforms} platforms, the stack {self.n}")
        if abs(plan.rate_hz - self.rate_hz) > 1e-9:
            raise ValueError(f"the plan is for {plan.rate_hz:g} Hz, the streamer runs at "
                             f"{self.rate_hz:g} Hz")
        self._stats = _Stats()  # the summary counts this run only
        measured = self.prepare()
        moved = np.abs(measured - plan.start_counts) > 1
        if moved.any():
            i, j = (int(x) for x in np.argwhere(moved)[0])
            raise LimitViolation(
                f"platform {i} actuator {j} is at {measured[i, j]} counts, not at the plan's "
                f"start {plan.start_counts[i, j]}: plan again from where the actuators are",
                platform=i, actuator=j, limit="start", value=float(measured[i, j]),
                bound=float(plan.start_counts[i, j]))
        for i, lk in enumerate(self.links):
            lk.gate.reset(plan.start_counts[i])
        self.journal.write({"ev": "plan", "t": round(self._now(), 7), "source": plan.source,
                            "ticks": plan.n_ticks, "ramp_ticks": plan.n_ramp,
                            "rate_hz": plan.rate_hz,
                            "start_counts": plan.start_counts.tolist()})
        faults: list[FaultRecord] = []
        last_acked: list[int | None] = [None] * self.n
        unconfirmed: list[list[int]] = [[] for _ in range(self.n)]
        completed = 0
        status = "completed"
        t_start = time.perf_counter()
        restore = interrupt_on_signals()
        try:
            try:
                if start_delay_s > 0:
                    faults += self.idle(start_delay_s)
                if not faults:
                    completed = self._stream_nogc(plan, faults, last_acked, unconfirmed)
                if not faults and hold_s > 0:
                    faults += self.idle(hold_s)
            except KeyboardInterrupt:
                status = "interrupted"
                self._fault(faults, 0, "interrupted",
                            "interrupted by the user (Ctrl-C) or a termination signal")
            if faults and status == "completed":
                status = "fault"
            stops = self._stop_all() if faults else ["not needed"] * self.n
            final = self._final_status()
            duration = time.perf_counter() - t_start
            summary = self._summary(plan, status, completed, faults, last_acked, unconfirmed,
                                    stops, final, duration)
            self.journal.write({"ev": "summary", "t": round(self._now(), 7),
                                **summary.to_dict()})
            self.journal.flush()
            return summary
        finally:
            restore()

    def _stream_nogc(self, plan: Plan, faults, last_acked, unconfirmed) -> int:
        """:meth:`_stream` with the cyclic garbage collector paused: the loop makes no
        reference cycles (its garbage is freed by reference counting), and a full collection
        over the interpreter's objects (JAX, SciPy) costs tens of milliseconds."""
        was = gc.isenabled()
        gc.freeze()  # (open() collected before the session's first frame)
        gc.disable()
        slack = _set_timer_slack(_TIMER_SLACK_NS)
        try:
            return self._stream(plan, faults, last_acked, unconfirmed)
        finally:
            _set_timer_slack(slack)
            gc.unfreeze()
            if was:
                gc.enable()

    def _stream(self, plan: Plan, faults, last_acked, unconfirmed) -> int:
        st = self._stats
        dt = self.period_s
        counts = plan.counts
        K = plan.n_ticks
        progress = self.progress
        t0 = time.perf_counter() + 0.001
        slip = 0.0
        sleep = time.sleep
        clock = time.perf_counter
        for k in range(K):
            deadline = t0 + k * dt + slip
            ts = wait_until(deadline, clock, sleep)
            late = ts - deadline
            if late > 0.5 * dt:
                slip += late
                st.overruns += 1
            st.starts.append(ts)
            st.lateness.append(late)
            reqs = []
            for i in range(self.n):
                try:
                    reqs.append(self._send(i, MsgType.SETPOINT, tick=k, counts=counts[k, i]))
                except LimitViolation as exc:
                    self._fault(faults, i, "limit", f"safety gate refused the set-point: {exc}",
                                k)
                    break
                except LinkError as exc:
                    self._fault(faults, i, "link", str(exc), k)
                    break
            if faults:  # a send failed: collect the replies of the frames already sent
                more: list[FaultRecord] = []
                self._exchange(reqs, more, retries=0)
                faults += more
            else:
                self._exchange(reqs, faults)
            for r in reqs:
                if r.reply is not None:
                    last_acked[r.i] = k
                else:
                    unconfirmed[r.i].append(k)
            self.journal.flush()
            if faults:
                return k
            if progress is not None:
                progress(k + 1, K)
        return K

    def _stop_all(self) -> list[str]:
        """STOP every platform whose port works; ESTOP where STOP is not acknowledged."""
        result = ["unreachable"] * self.n
        live = [i for i in range(self.n) if self.links[i].alive]
        reqs, _ = self._round(MsgType.STOP, live, retries=1)
        acked = {r.i for r in reqs if r.reply is not None}
        for r in reqs:
            result[r.i] = "acked" if r.i in acked else "sent"
        again = [r.i for r in reqs if r.reply is None and self.links[r.i].alive]
        if again:
            ereqs, _ = self._round(MsgType.ESTOP, again, retries=1)
            for r in ereqs:
                result[r.i] = "estop" if r.reply is not None else "sent"
        for i in range(self.n):
            self.journal.write({"ev": "stop", "t": round(self._now(), 7), "platform": i,
                                "port": self.ports[i], "result": result[i]})
        self.journal.flush()
        return result

    def _final_status(self) -> list[P.Status | None]:
        live = [i for i in range(self.n) if self.links[i].alive]
        reqs, _ = self._round(MsgType.STATUS_QUERY, live, retries=1)
        out: list[P.Status | None] = [None] * self.n
        for r in reqs:
            if r.reply is not None:
                s = P.parse_status(r.reply.payload)
                out[r.i] = s
                self._log_status(r.i, s)
        self.journal.flush()
        return out

    def _summary(self, plan, status, completed, faults, last_acked, unconfirmed, stops, final,
                 duration) -> StreamSummary:
        st = self._stats
        lat = np.asarray(st.latencies) * 1e3
        starts = np.asarray(st.starts)
        jit = np.abs(np.diff(starts) - self.period_s) * 1e3 if starts.size > 1 else np.zeros(0)
        late = np.asarray(st.lateness) * 1e3

        def pct(a, q):
            return None if a.size == 0 else float(np.percentile(a, q))

        reports = []
        for i in range(self.n):
            s = final[i]
            reports.append(PlatformReport(
                platform=i, port=self.ports[i], address=self.links[i].address,
                last_acked_tick=last_acked[i], unconfirmed_ticks=tuple(unconfirmed[i]),
                device_last_tick=None if s is None else s.last_tick, stop=stops[i],
                final_state="unknown" if s is None else _state(s.state),
                final_faults=() if s is None else tuple(P.fault_names(s.faults))))
        bad = sum(lk.decoder.bad_crc + lk.decoder.bad_header for lk in self.links)
        return StreamSummary(
            status=status, rate_hz=self.rate_hz, n_platforms=self.n,
            ticks_planned=plan.n_ticks, ticks_ramp=plan.n_ramp, ticks_completed=completed,
            frames_sent=st.frames_sent, frames_acked=st.frames_acked,
            transmissions=st.transmissions, retries=st.retries, timeouts=st.timeouts,
            naks=st.naks, bad_replies=bad, stale_replies=st.stale,
            discarded_bytes=sum(lk.decoder.discarded for lk in self.links),
            latency_p50_ms=pct(lat, 50), latency_p99_ms=pct(lat, 99),
            latency_max_ms=None if lat.size == 0 else float(lat.max()),
            jitter_p99_ms=pct(jit, 99), jitter_max_ms=None if jit.size == 0 else float(jit.max()),
            lateness_p99_ms=pct(late, 99), overruns=st.overruns, duration_s=duration,
            faults=tuple(faults), platforms=tuple(reports), journal=self.journal.path)


def bandwidth_warning(port: str, baudrate: int, rate_hz: float, platform: int = 0) -> str:
    """A warning (or "") when ``baudrate`` cannot carry a SETPOINT out and its ACK back every
    tick at ``rate_hz`` (8N1, 10 bits a byte).  Pseudo-terminals (/dev/pts/...) and network
    URLs have no baud rate and are not checked."""
    if "://" in port or port.startswith("/dev/pts/"):
        return ""
    frame_s = (P.HEADER_LEN + P.PAYLOAD_LEN[MsgType.SETPOINT] + P.CRC_LEN) * 10 / baudrate
    ack_s = (P.HEADER_LEN + P.PAYLOAD_LEN[MsgType.ACK] + P.CRC_LEN) * 10 / baudrate
    need = frame_s + ack_s
    if need <= 0.8 / rate_hz:
        return ""
    return (f"platform {platform} ({port}): at {baudrate} baud a set-point and its "
            f"acknowledgement take {need * 1e3:.2f} ms on the wire, more than 80% of the "
            f"{1e3 / rate_hz:.2f} ms period at {rate_hz:g} Hz: expect overruns (raise the "
            "baud rate or lower --rate)")


def _state(v: int) -> str:
    try:
        return State(v).name
    except ValueError:
        return str(v)


def _code(v: int) -> str:
    try:
        return NakCode(v).name
    except ValueError:
        return str(v)


def stream_trajectory(asm: Assembler, t: np.ndarray, legs: np.ndarray,
                      ports: Sequence[str] | None = None, *, rate_hz: float | None = None,
                      journal=None, start_delay_s: float = 0.0, hold_s: float = 0.0,
                      interp: str = "pchip", clear_faults: bool = False, serials=None,
                      progress=None, source: str = "") -> StreamSummary:
    """Check, plan and stream a trajectory (``t`` (T,) s, ``legs`` (T, N, 6) m) to the
    platforms of ``asm``; see the module docstring for the steps.

    Raises :class:`~hardware.safety.LimitViolation` (nothing but STATUS queries sent) if the
    plan breaks a limit, :class:`DeviceNotReady`, :class:`StreamError` or
    :class:`~hardware.link.LinkError` if the session cannot start; a fault while streaming is
    reported in the returned :class:`StreamSummary` (status "fault") after every platform was
    stopped.
    """
    s = Streamer(asm, ports, rate_hz=rate_hz, journal=journal, clear_faults=clear_faults,
                 interp=interp, serials=serials, progress=progress)
    with s:
        check_trajectory(t, legs, s.cals, s.rate_hz, interp)  # before any port is opened
        start = s.prepare()
        plan = s.plan(t, legs, start, source)
        return s.run(plan, start_delay_s=start_delay_s, hold_s=hold_s)


def stream_target(asm: Assembler, legs: np.ndarray, ports=None, **kw) -> StreamSummary:
    """Move to one set of leg lengths ``legs`` (N, 6) m from where the actuators are."""
    legs = finite_legs(legs, "target legs")  # before any port is opened
    if legs.shape != (asm.n_platforms, 6):
        raise ValueError(f"target legs must have shape ({asm.n_platforms}, 6), got {legs.shape}")
    rate = kw.pop("rate_hz", None)
    journal = kw.pop("journal", None)
    s = Streamer(asm, ports, rate_hz=rate, journal=journal,
                 clear_faults=kw.pop("clear_faults", False), serials=kw.pop("serials", None),
                 progress=kw.pop("progress", None))
    with s:
        start = s.prepare()
        plan = plan_target(legs, s.cals, s.rate_hz, start)
        return s.run(plan, **kw)


def dry_run_frames(asm: Assembler, plan: Plan) -> list[list[bytes]]:
    """The frames a plan would send, (K lists of N frames' bytes), produced by the same
    gates and links as a real run but written to :class:`~hardware.link.NullPort` objects."""
    hw = asm.hardware
    links = [DeviceLink(NullPort(), url="(dry run)", platform=i, address=hw.links[i].address,
                        calibration=hw.links[i].calibration, period_s=plan.period_s)
             for i in range(plan.n_platforms)]
    for i, lk in enumerate(links):
        lk.gate.reset(plan.start_counts[i])
    out = []
    for k in range(plan.n_ticks):
        row = []
        for i, lk in enumerate(links):
            lk.send_setpoint(k, plan.counts[k, i])
            row.append(lk.last_frame)
        out.append(row)
    return out
