"""Requests and replies over N links: the host's half of the protocol's exchange rules.

Every command gets exactly one reply carrying its sequence number.  :class:`Exchange` writes
requests, waits for their replies (``select`` over the ports and, when a
:class:`~hardware.signals.SignalGuard` is given, its wake-up pipe), retransmits the same bytes
after ``ack_timeout_s`` or a NAK BAD_CRC, up to ``max_retries`` times, and checks each reply in
full: address, sequence number, the request's type (``of_type``), and the state and fault bits
it reports (an ACK of a SETPOINT from a device in ESTOP is a fault, not a success).  Every
frame written and read is a journal line.

:class:`Ledger` records per platform which set-points were sent and acknowledged, updated as
frames go out and replies come in, so the summary is right whatever ends the stream.  Requests
given up on when a stream stops (:attr:`Exchange.abandoned`) still have their late replies
matched while the stop and the final STATUS are exchanged: a set-point acknowledged late counts
as acknowledged, a late NAK is recorded as a second fault.
"""

from __future__ import annotations

import select
import time
from dataclasses import asdict, dataclass, field

from . import protocol as P
from .journal import Journal
from .link import DeviceLink, LinkError
from .protocol import Fault, MsgType, State
from .summary import FaultRecord

_POLL_S = 0.0002  # polling step for ports without a file descriptor (loop://)
_SETPOINT_BAD = int(Fault.ESTOP | Fault.DEVICE | Fault.WATCHDOG | Fault.LIMIT)
_HELD_BAD = int(Fault.ESTOP | Fault.DEVICE | Fault.WATCHDOG)


def state_name(v: int) -> str:
    try:
        return State(v).name
    except ValueError:
        return str(v)


def nak_name(v: int) -> str:
    try:
        return P.NakCode(v).name
    except ValueError:
        return str(v)


class Request:
    """One command in flight: platform ``i``, its ``link``, ``mtype``, ``seq``, ``tick`` (set-points),
    first and last write times, ``attempts``, the ``reply`` frame once it came and ``problem``
    (why a reply that came is not a success, or None)."""

    __slots__ = ("i", "link", "mtype", "seq", "tick", "t_first", "t_last", "attempts", "reply",
                 "problem")

    def __init__(self, i, link, mtype, seq, tick, now):
        self.i, self.link, self.mtype, self.seq, self.tick = i, link, mtype, seq, tick
        self.t_first = self.t_last = now
        self.attempts = 1
        self.reply: P.Frame | None = None
        self.problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.reply is not None and self.problem is None

    def what(self) -> str:
        return (f"{P.type_name(self.mtype)} seq {self.seq}"
                + (f" (tick {self.tick})" if self.tick is not None else ""))


@dataclass
class Stats:
    frames_sent: int = 0
    frames_acked: int = 0
    transmissions: int = 0
    retries: int = 0
    setpoint_retries: int = 0
    timeouts: int = 0
    naks: int = 0
    stale: int = 0
    overruns: int = 0
    latencies: list = field(default_factory=list)
    starts: list = field(default_factory=list)
    lateness: list = field(default_factory=list)


class Ledger:
    """Per platform: set-points sent and not (yet) acknowledged, the last acknowledged tick and
    how many were acknowledged."""

    def __init__(self, n: int):
        self.unconfirmed: list[dict[int, None]] = [{} for _ in range(n)]  # ordered sets
        self.last_acked: list[int | None] = [None] * n
        self.acked = [0] * n

    def sent(self, i: int, tick: int) -> None:
        self.unconfirmed[i][tick] = None

    def ack(self, i: int, tick: int) -> None:
        self.unconfirmed[i].pop(tick, None)
        self.acked[i] += 1
        if self.last_acked[i] is None or tick > self.last_acked[i]:
            self.last_acked[i] = tick

    def ticks_completed(self) -> int:
        """Ticks acknowledged by every platform (lock-step: ticks 0 .. this - 1)."""
        return min(self.acked) if self.acked else 0


class Exchange:
    """Send, wait, retransmit and check over ``links`` (one per platform); see the module
    docstring.  ``ports``: names for messages; ``journal``; ``t0``: perf_counter time journal
    times count from; ``guard``: a SignalGuard whose signals interrupt the waits (raising
    :class:`~hardware.signals.Interrupted` from :meth:`wait`) while :attr:`interruptible`."""

    def __init__(self, links: list[DeviceLink], ports: list[str | None], journal: Journal, *,
                 t0: float, ack_timeout_s: float, max_retries: int, guard=None):
        self.links = links
        self.ports = ports
        self._port_json = [_json_str(p) for p in ports]
        self.journal = journal
        self.t0 = t0
        self.ack_timeout_s = ack_timeout_s
        self.max_retries = max_retries
        self.guard = guard
        self.interruptible = True
        self.phase = "connect"
        self.stats = Stats()
        self.ledger = Ledger(len(links))
        self.abandoned: dict[int, Request] = {}

    def now(self) -> float:
        return time.perf_counter() - self.t0

    # ------------------------------------------------------------------ records
    def fault(self, faults: list[FaultRecord], i: int, kind: str, message: str, tick=None,
              seq=None, phase: str | None = None) -> FaultRecord:
        port = self.ports[i] if 0 <= i < len(self.ports) else None  # -1: the host itself
        f = FaultRecord(i, port, kind, tick, seq, message, phase or self.phase)
        faults.append(f)
        self.journal.write({"ev": "fault", "t": round(self.now(), 7), **asdict(f)})
        return f

    def _log_tx(self, r: Request, counts=None) -> None:
        if not self.journal.enabled:
            return
        # the same object json.dumps would write, formatted directly (1 kHz x N platforms)
        line = (f'{{"ev":"tx","t":{self.now():.7f},"platform":{r.i},'
                f'"port":{self._port_json[r.i]},"seq":{r.seq},"type":"{P.type_name(r.mtype)}",'
                f'"attempt":{r.attempts - 1}')
        if r.tick is not None:
            line += f',"tick":{r.tick}'
            if counts is not None:
                line += ',"counts":[' + ",".join(str(int(x)) for x in counts) + "]"
        self.journal.write_line(line + "}")

    def _log_rx(self, link: DeviceLink, f: P.Frame, latency=None, note=None) -> None:
        if not self.journal.enabled:
            return
        rec = {"ev": "rx", "t": round(self.now(), 7), "platform": link.platform,
               "port": link.url, "seq": f.seq, "type": P.type_name(f.type)}
        try:
            if f.type == MsgType.ACK:
                a = P.parse_ack(f.payload)
                rec.update(of=P.type_name(a.of_type), state=state_name(a.state),
                           faults=P.fault_names(a.faults))
            elif f.type == MsgType.NAK:
                nk = P.parse_nak(f.payload)
                rec.update(of=P.type_name(nk.of_type), code=nak_name(nk.code),
                           state=state_name(nk.state), faults=P.fault_names(nk.faults))
            elif f.type == MsgType.STATUS:
                s = P.parse_status(f.payload)
                rec.update(state=state_name(s.state), faults=P.fault_names(s.faults),
                           last_tick=s.last_tick, measured=list(s.measured))
            elif f.type == MsgType.IDENT:
                d = P.parse_ident(f.payload)
                rec.update(address=d.address, protocol=d.protocol, fw_version=d.fw_version,
                           device_id=d.device_id)
        except Exception:  # noqa: BLE001 - a journal line must never stop the stream
            rec["payload"] = f.payload.hex()
        if latency is not None:
            rec["latency_ms"] = round(latency * 1e3, 4)
        if note:
            rec["note"] = note
        self.journal.write(rec)

    # ------------------------------------------------------------------ sending
    def send(self, i: int, mtype: int, *, tick=None, counts=None) -> Request:
        """Write one request (set-points through the link's gate); raises LimitViolation (gate)
        or LinkError (port) with nothing recorded as sent."""
        link = self.links[i]
        if mtype == MsgType.SETPOINT:
            seq = link.send_setpoint(tick, counts)
            self.ledger.sent(i, tick)
            self.stats.frames_sent += 1
        else:
            seq = link.send(mtype)
        self.stats.transmissions += 1
        r = Request(i, link, mtype, seq, tick, time.perf_counter())
        self._log_tx(r, counts)
        return r

    def _retransmit(self, r: Request, faults: list[FaultRecord]) -> None:
        try:
            r.link.resend()
        except LinkError as exc:
            self.fault(faults, r.i, "link", str(exc), r.tick, r.seq)
            return
        r.attempts += 1
        r.t_last = time.perf_counter()
        st = self.stats
        st.retries += 1
        st.transmissions += 1
        if r.mtype == MsgType.SETPOINT:
            st.setpoint_retries += 1
        self._log_tx(r)

    def round(self, mtype: int, platforms=None, *, retries=None) -> tuple[list[Request], list]:
        """Send ``mtype`` to the platforms (default all live ones) and wait for the replies;
        returns the requests and the faults."""
        faults: list[FaultRecord] = []
        reqs = []
        for i in (range(len(self.links)) if platforms is None else platforms):
            if not self.links[i].alive:
                continue
            try:
                reqs.append(self.send(i, mtype))
            except LinkError as exc:
                self.fault(faults, i, "link", str(exc))
        if reqs:
            self.wait(reqs, faults, retries=retries, stop_on_fault=False)
        return reqs, faults

    # ------------------------------------------------------------------ waiting
    def wait(self, reqs: list[Request], faults: list[FaultRecord], *, retries=None,
             timeout=None, stop_on_fault: bool = True) -> None:
        """Wait for the reply to every request in ``reqs`` (already written), retransmitting as
        needed; faults are appended to ``faults``.  With ``stop_on_fault`` the wait ends at the
        first fault (the other requests are abandoned, their late replies still matched)."""
        retries = self.max_retries if retries is None else retries
        timeout = self.ack_timeout_s if timeout is None else timeout
        pending = {r.i: r for r in reqs if r.reply is None}
        n0 = len(faults)
        try:
            while pending:
                now = time.perf_counter()
                for r in list(pending.values()):  # timeouts
                    if now - r.t_last < timeout:
                        continue
                    for f in r.link.decoder.flush():
                        self._on_frame(r.link, f, pending, faults, retries)
                    if r.i not in pending:
                        continue
                    self.stats.timeouts += 1
                    if r.attempts > retries:
                        del pending[r.i]
                        self.abandoned[r.i] = r
                        self.fault(faults, r.i, "timeout",
                                   f"no valid reply to {r.what()} after {r.attempts} "
                                   f"transmission(s), {timeout * 1e3:.0f} ms each", r.tick, r.seq)
                    else:
                        self._retransmit(r, faults)
                        if not r.link.alive:
                            del pending[r.i]
                            self.abandoned[r.i] = r
                if not pending or (stop_on_fault and len(faults) > n0):
                    break
                wait = min(r.t_last for r in pending.values()) + timeout - time.perf_counter()
                ready = self._select([r.link for r in pending.values()], max(0.0, wait))
                for r in list(pending.values()):
                    if r.i not in pending:
                        continue
                    try:
                        frames = r.link.read_frames(r.link in ready)
                    except LinkError as exc:
                        del pending[r.i]
                        self.abandoned[r.i] = r
                        self.fault(faults, r.i, "link", str(exc), r.tick, r.seq)
                        continue
                    for f in frames:
                        self._on_frame(r.link, f, pending, faults, retries)
                if stop_on_fault and len(faults) > n0:
                    break
            if pending:  # stopped early: collect replies that have already arrived, no waiting
                for r in list(pending.values()):
                    if r.link.alive and r.i in pending:
                        try:
                            for f in r.link.read_frames(False):
                                self._on_frame(r.link, f, pending, faults, 0)
                        except LinkError:
                            pass
        finally:
            for r in pending.values():  # given up on (a fault, an interruption, an exception)
                self.abandoned[r.i] = r

    def _select(self, links: list[DeviceLink], timeout: float) -> set:
        g = self.guard if self.interruptible else None
        fds = {}
        for lk in links:
            fd = lk.fileno() if lk.alive else None
            if fd is None:
                time.sleep(min(timeout, _POLL_S))
                if g is not None:
                    g.check()
                return set(links)
            fds[fd] = lk
        wake = g.wake_fd if g is not None else None
        try:
            r, _, _ = select.select(list(fds) + ([wake] if wake is not None else []), [], [],
                                    timeout)
        except (OSError, ValueError):  # a descriptor went bad: let read_frames report it
            return set(links)
        if g is not None:
            if wake is not None and wake in r:
                g.drain()
            g.check()  # raises Interrupted if a signal came
        return {fds[fd] for fd in r if fd in fds}

    # ------------------------------------------------------------------ replies
    def _on_frame(self, link: DeviceLink, f: P.Frame, pending: dict, faults: list, retries: int
                  ) -> None:
        i = link.platform
        r = pending.get(i)
        st = self.stats
        ident = r is not None and r.mtype == MsgType.IDENTIFY and f.type == MsgType.IDENT
        if r is None or f.seq != r.seq or (f.address != link.address and not ident):
            a = self.abandoned.get(i)
            if a is not None and f.seq == a.seq and f.address == link.address:
                self._late_reply(a, f, faults)
                return
            st.stale += 1
            self._log_rx(link, f, note="stale" if f.address == link.address else "wrong address")
            return
        if f.type == MsgType.NAK:
            nk = P.parse_nak(f.payload)
            if nk.of_type != r.mtype:
                st.stale += 1
                self._log_rx(link, f, note="unexpected reply")
                return
            st.naks += 1
            self._log_rx(link, f)
            if nk.code in P.RETRYABLE_NAKS and r.attempts <= retries:
                self._retransmit(r, faults)
                return
            del pending[i]
            r.reply, r.problem = f, f"NAK {nak_name(nk.code)}"
            self.fault(faults, i, "nak",
                       f"device refused {r.what()}: {nak_name(nk.code)}, state "
                       f"{state_name(nk.state)}, faults {P.fault_names(nk.faults) or 'none'}",
                       r.tick, r.seq)
            return
        expect = {MsgType.STATUS_QUERY: MsgType.STATUS,
                  MsgType.IDENTIFY: MsgType.IDENT}.get(r.mtype, MsgType.ACK)
        if f.type != expect or (f.type == MsgType.ACK
                                and P.parse_ack(f.payload).of_type != r.mtype):
            st.stale += 1
            self._log_rx(link, f, note="unexpected reply")
            return
        lat = time.perf_counter() - r.t_first
        r.reply = f
        del pending[i]
        r.problem = reply_problem(r.mtype, f)
        self._log_rx(link, f, latency=lat, note=r.problem)
        if r.problem is not None:
            self.fault(faults, i, "state", f"{r.what()}: {r.problem}", r.tick, r.seq)
            return
        if r.mtype == MsgType.SETPOINT:
            st.frames_acked += 1
            st.latencies.append(lat)
            self.ledger.ack(i, r.tick)

    def _late_reply(self, r: Request, f: P.Frame, faults: list) -> None:
        """A reply to a request given up on: account for it (see the module docstring)."""
        del self.abandoned[r.i]
        r.reply = f
        phase = "stream" if r.mtype == MsgType.SETPOINT else None  # the tick's fault
        if f.type == MsgType.NAK:
            nk = P.parse_nak(f.payload)
            self.stats.naks += 1
            r.problem = f"NAK {nak_name(nk.code)}"
            self._log_rx(r.link, f, note="late")
            self.fault(faults, r.i, "nak", f"device refused {r.what()} (reply after the stop "
                       f"began): {nak_name(nk.code)}, state {state_name(nk.state)}",
                       r.tick, r.seq, phase)
            return
        r.problem = reply_problem(r.mtype, f) if f.type != MsgType.STATUS else None
        self._log_rx(r.link, f, note="late" if r.problem is None else f"late; {r.problem}")
        if r.problem is not None:
            self.fault(faults, r.i, "state", f"{r.what()} (reply after the stop began): "
                       f"{r.problem}", r.tick, r.seq, phase)
        elif r.mtype == MsgType.SETPOINT and f.type == MsgType.ACK:
            self.stats.frames_acked += 1
            self.ledger.ack(r.i, r.tick)


def reply_problem(mtype: int, f: P.Frame) -> str | None:
    """Why the reply ``f`` to a request of type ``mtype`` contradicts it, or None: a set-point's
    ACK must come from a RUNNING device without ESTOP/DEVICE/WATCHDOG/LIMIT bits; a HEARTBEAT's
    from one not in ESTOP/FAULT; a STOP's from one no longer RUNNING; an ESTOP's from one in
    ESTOP; a CLEAR_FAULTS' from one with no fault left; an IDENT must repeat its header's
    address and speak :data:`~hardware.protocol.PROTOCOL_VERSION`."""
    if f.type == MsgType.IDENT:
        d = P.parse_ident(f.payload)
        if d.address != f.address:
            return f"IDENT says address {d.address} in its payload, {f.address} in its header"
        if d.protocol != P.PROTOCOL_VERSION:
            return (f"the device speaks protocol version {d.protocol}, this host "
                    f"{P.PROTOCOL_VERSION}")
        return None
    if f.type != MsgType.ACK:
        return None
    a = P.parse_ack(f.payload)
    names = P.fault_names(a.faults) or "none"
    said = f"the device reports state {state_name(a.state)}, faults {names}"
    if mtype == MsgType.SETPOINT:
        if a.state != State.RUNNING or a.faults & _SETPOINT_BAD:
            return f"acknowledged, but {said}"
    elif mtype == MsgType.HEARTBEAT:
        if a.state in (State.ESTOP, State.FAULT) or a.faults & _HELD_BAD:
            return f"acknowledged, but {said}"
    elif mtype == MsgType.STOP:
        if a.state == State.RUNNING:
            return f"acknowledged, but {said}"
    elif mtype == MsgType.ESTOP:
        if a.state != State.ESTOP:
            return f"acknowledged, but {said}"
    elif mtype == MsgType.CLEAR_FAULTS:
        if a.state in (State.ESTOP, State.FAULT) or a.faults & ~int(Fault.COMM):
            return f"acknowledged, but {said}"
    return None


def _json_str(s) -> str:
    import json

    return json.dumps(s)
