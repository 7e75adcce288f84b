"""A session with the platforms' controllers, before and between streams: open the ports,
IDENTIFY the controllers, read STATUS, clear faults, plan, idle with heartbeats.

:class:`Session` holds the links, the journal, the :class:`~hardware.signals.SignalGuard`
(installed from :meth:`Session.open` to :meth:`Session.close`) and the
:class:`~hardware.exchange.Exchange`; :class:`~hardware.streamer.Streamer` adds the stream.
"""

from __future__ import annotations

import gc
import select
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import numpy as np

from assemblers.errors import InputError
from assemblers.model import Assembler

from . import protocol as P
from .exchange import Exchange, Stats, state_name
from .journal import Journal, JournalError
from .link import DeviceLink
from .plan import Plan, build_plan, calibrations, check_trajectory
from .protocol import Fault, MsgType, State
from .safety import LimitViolation
from .signals import SignalGuard
from .summary import FaultRecord

MAX_RATE_HZ = 1000.0


class DeviceNotReady(Exception):
    """A device reports a fault (ESTOP, DEVICE, LIMIT) at the start; nothing was streamed."""


class StreamError(Exception):
    """A session could not start: a port could not be opened or a device did not answer."""


class WiringError(InputError):
    """The controllers on the ports are not the configured ones (a device answering IDENTIFY
    with another platform's address, or the same controller on two ports); nothing but
    IDENTIFY was sent."""


class Session:
    """A session with the platforms of ``asm`` over their serial links.

    ``ports``: one pyserial URL per platform (default: the config's ``hardware.platform[i].port``);
    ``rate_hz``: stream rate (default the config's, 1..1000 Hz, a period shorter than the
    devices' watchdog); ``journal``: path of the JSON-lines journal (appended to), a writable
    file object, or None; ``clear_faults``: clear latched ESTOP/DEVICE/LIMIT faults at the start
    instead of refusing to run; ``interp``: trajectory interpolation ("pchip", "linear");
    ``serials``: already-open pyserial-like objects instead of ``ports`` (tests); ``progress``:
    called as ``progress(ticks_done, ticks_total)`` after every tick (an exception it raises
    ends the stream through the stop path).

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, asm: Assembler, ports: Sequence[str | None] | None = None, *,
                 rate_hz: float | None = None, journal=None, clear_faults: bool = False,
                 interp: str = "pchip", serials=None,
                 progress: Callable[[int, int], None] | None = None):
        hw = asm.hardware
        self.asm = asm
        self.n = asm.n_platforms
        self.rate_hz = float(hw.rate_hz if rate_hz is None else rate_hz)
        if not (1.0 <= self.rate_hz <= MAX_RATE_HZ):
            raise ValueError(f"rate must be between 1 and {MAX_RATE_HZ:g} Hz, got {self.rate_hz:g}")
        self.period_s = 1.0 / self.rate_hz
        if self.period_s >= hw.watchdog_s:
            raise ValueError(f"at {self.rate_hz:g} Hz set-points come every {self.period_s:g} s, "
                             f"not within the devices' watchdog ({hw.watchdog_s:g} s): raise "
                             "the rate")
        self.ack_timeout_s = hw.ack_timeout_s
        self.max_retries = hw.max_retries
        self.heartbeat_s = hw.heartbeat_s
        self.max_gap_s = hw.max_gap_s
        self.max_lag_s = hw.max_lag_s
        self.max_retry_rate = hw.max_retry_rate
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
            dup = [p for i, p in enumerate(ports) if p in ports[:i]]
            if dup:
                raise ValueError(f"port {dup[0]!r} is given for two platforms")
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
        self.journal = Journal(journal)  # JournalError (exit 2) before anything is opened
        self.guard = SignalGuard()
        self.links: list[DeviceLink] = []
        self._t0 = time.perf_counter()
        self.ex = Exchange([], self.ports, self.journal, t0=self._t0,
                           ack_timeout_s=self.ack_timeout_s, max_retries=self.max_retries)
        self.status: list[P.Status | None] = [None] * self.n
        self.identities: list[P.Ident] = []
        self._opened = False
        self._lag_s = 0.0
        self._gap_max_s = 0.0

    @property
    def stats(self) -> Stats:
        """Counters of the current (or last) run."""
        return self.ex.stats

    _stats = stats  # old name

    # ------------------------------------------------------------------ session
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _now(self) -> float:
        return time.perf_counter() - self._t0

    def _jot(self, rec: dict) -> None:
        self.journal.write({"t": round(self._now(), 7), **rec})

    def open(self) -> None:
        """Open every port and IDENTIFY the controllers (raises :class:`LinkError`,
        :class:`WiringError`, :class:`StreamError`, :class:`~hardware.journal.JournalError`)."""
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
        if not self.journal.sync():
            raise JournalError(f"journal {self.journal.path!r}: cannot write: "
                               f"{self.journal.error} (nothing was sent)")
        self.guard.install()
        try:
            for i in range(self.n):
                lk = hw.links[i]
                kw = dict(platform=i, address=lk.address, calibration=lk.calibration,
                          period_s=self.period_s)
                if self._serials is not None:
                    self.links.append(DeviceLink(self._serials[i], url=self.ports[i], **kw))
                else:
                    self.links.append(DeviceLink.open(self.ports[i], baudrate=lk.baudrate, **kw))
            self.ex = Exchange(self.links, self.ports, self.journal, t0=self._t0,
                               ack_timeout_s=self.ack_timeout_s, max_retries=self.max_retries,
                               guard=self.guard)
            self._opened = True
            self.identify()
        except BaseException:
            self.close()
            raise
        self.journal.flush()

    def close(self) -> None:
        for lk in self.links:
            lk.close()
        self.journal.close()
        self.guard.uninstall()

    # ------------------------------------------------------------------ connect steps
    def identify(self) -> list[P.Ident]:
        """IDENTIFY every port; refuse (:class:`WiringError`) a device answering with another
        address than its platform's, or two ports reporting the same controller."""
        self.ex.phase = "connect"
        reqs, faults = self.ex.round(MsgType.IDENTIFY)
        self.journal.flush()
        if faults:
            raise StreamError("; ".join(f.message for f in faults)
                              + " (nothing but IDENTIFY was sent)")
        idents = [P.parse_ident(r.reply.payload) for r in reqs]
        for i, d in enumerate(idents):
            self._jot({"ev": "identify", "platform": i, "port": self.ports[i],
                       "address": d.address, "protocol": d.protocol,
                       "fw_version": d.fw_version, "device_id": d.device_id})
        self.journal.flush()
        seen: dict[tuple[int, int], int] = {}
        for i, d in enumerate(idents):
            want = self.links[i].address
            if d.address != want:
                raise WiringError(
                    f"platform {i} ({self.ports[i]}) answers IDENTIFY as address {d.address}, "
                    f"but its configured address is {want}: cables swapped, or the ports given "
                    "in the wrong order? (nothing but IDENTIFY was sent)")
            key = (d.address, d.device_id)
            if d.device_id and key in seen:
                j = seen[key]
                raise WiringError(
                    f"platforms {j} ({self.ports[j]}) and {i} ({self.ports[i]}) report the same "
                    f"controller (address {d.address}, device id 0x{d.device_id:08x}): one "
                    "board on two ports? (nothing but IDENTIFY was sent)")
            seen[key] = i
        self.identities = idents
        return idents

    def query_status(self) -> list[P.Status]:
        """Read every device's STATUS; raises :class:`StreamError` if one does not answer."""
        self.open()
        reqs, faults = self.ex.round(MsgType.STATUS_QUERY)
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
        self._jot({"ev": "status", "platform": i, "state": state_name(s.state),
                   "faults": P.fault_names(s.faults), "last_tick": s.last_tick,
                   "measured": list(s.measured), "target": list(s.target)})

    def prepare(self) -> np.ndarray:
        """Open the ports, read every STATUS, clear faults as allowed; return (N, 6) int64, the
        measured counts (where the actuators are).

        A platform that streamed before on this streamer is sent STOP first (a gate is reset
        only from a stopped state).  A latched WATCHDOG or COMM bit (the device held its
        position because no frame came for a while) is cleared; ESTOP, DEVICE and LIMIT are
        cleared only with ``clear_faults``, else :class:`DeviceNotReady` is raised."""
        self.open()
        self.ex.phase = "connect"
        moving = [i for i, lk in enumerate(self.links) if lk.gate.state == "moving"]
        if moving:
            reqs, faults = self.ex.round(MsgType.STOP, moving)
            if faults:
                raise StreamError("; ".join(f.message for f in faults))
        status = self.query_status()
        to_clear = []
        for i, s in enumerate(status):
            bad = s.faults & ~int(Fault.WATCHDOG | Fault.COMM)
            if s.state in (State.ESTOP, State.FAULT) or bad:
                if not self.clear_faults:
                    raise DeviceNotReady(
                        f"platform {i} ({self.ports[i]}) reports state {state_name(s.state)}, "
                        f"faults {P.fault_names(s.faults)}: nothing was sent; check the device "
                        "and run again with --clear-faults to clear them")
                to_clear.append(i)
            elif s.faults:
                to_clear.append(i)  # a latched watchdog/comm warning from an earlier session
        if to_clear:
            _, faults = self.ex.round(MsgType.CLEAR_FAULTS, to_clear)
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
            self._jot({"ev": "refused", "message": str(exc), "sent": "no set-point"})
            self.journal.flush()
            raise

    def idle(self, seconds: float) -> list[FaultRecord]:
        """Wait ``seconds`` while sending HEARTBEATs every ``heartbeat_s``; returns faults."""
        faults: list[FaultRecord] = []
        self._idle(seconds, faults)
        return faults

    def _idle(self, seconds: float, faults: list[FaultRecord]) -> None:
        self.ex.phase = "idle"
        end = time.perf_counter() + seconds
        while True:
            _, f = self.ex.round(MsgType.HEARTBEAT)
            faults += f
            if not self.journal.flush():
                self._journal_fault(faults)
            if faults:
                return
            left = end - time.perf_counter()
            if left <= 0:
                return
            self._sleep(min(self.heartbeat_s, left))
            self.guard.check()

    def _sleep(self, seconds: float) -> None:
        """Sleep, woken early by a signal (the guard's wake-up pipe)."""
        fd = self.guard.wake_fd if self.ex.interruptible else None
        if fd is None:
            time.sleep(seconds)
            return
        r, _, _ = select.select([fd], [], [], seconds)
        if r:
            self.guard.drain()

    def _journal_fault(self, faults: list[FaultRecord]) -> None:
        if not any(f.kind == "journal" for f in faults):
            self.ex.fault(faults, -1, "journal", f"the journal {self.journal.path} could not be "
                          f"written ({self.journal.error}): stopping, the record is incomplete")


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


