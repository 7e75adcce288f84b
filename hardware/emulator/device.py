"""The emulated controller's state machine, without any transport: bytes in, bytes out.

:class:`Device` is driven with :meth:`Device.process` (bytes received at a time ``now``),
:meth:`Device.on_timer` (the watchdog and delayed replies) and :meth:`Device.read_output` (the
reply bytes due); a transport (the pty of :class:`~hardware.emulator.pty.DeviceEmulator`, or a
test) moves the bytes.  Six actuators with first-order dynamics (time constant ``tau_s``), its
own limits (set-points outside the calibration's soft stroke, or further than ``max_step``
counts from the current target, are NAKed LIMIT), a watchdog (no valid frame for
``watchdog_s`` -> HOLD and the WATCHDOG bit), STATUS with measured positions, IDENT, idempotent
handling of a repeated command, and fault injection (:class:`~hardware.emulator.faults.FaultPlan`).

Everything is recorded: the raw bytes received (:attr:`rx_log`), every valid frame
(:attr:`received`), every executed set-point (:attr:`executed`), every event (:attr:`events`),
how many STOP and ESTOP frames arrived, and what put the device in its current state
(:attr:`cause`: "power-up", "set-point", "STOP", "ESTOP", "ESTOP (device)", "watchdog",
"device fault", "CLEAR_FAULTS").  All randomness comes from ``random.Random(seed)``.
"""

from __future__ import annotations

import heapq
import math
import random
import time
import zlib
from typing import NamedTuple

import numpy as np

from .. import protocol as P
from ..protocol import Fault, MsgType, NakCode, State
from .faults import NO_FAULTS, FaultPlan

_COMMANDS = (MsgType.SETPOINT, MsgType.STOP, MsgType.ESTOP, MsgType.CLEAR_FAULTS)
_STOPPED = (State.HOLD, State.ESTOP, State.FAULT)


class Executed(NamedTuple):
    """A set-point the device executed: ``t`` (perf_counter s), ``seq``, ``tick``, ``counts``
    (6,)."""

    t: float
    seq: int
    tick: int
    counts: tuple[int, ...]


class Event(NamedTuple):
    t: float
    kind: str
    detail: str


def emulated_device_id(seed: int, address: int) -> int:
    """The per-board id an emulator reports in IDENT: derived from its seed and address, never
    0 (0 means "unknown")."""
    return zlib.crc32(f"assemblers-emulator:{seed}:{address}".encode()) or 1


class Device:
    """One emulated controller (see the module docstring).

    ``calibration``: the platform's :class:`~assemblers.model.ActuatorCalibration` (its soft
    stroke becomes the device's limits, in counts); ``address``; ``initial_counts``: (6,) where
    the actuators are at power-up (default mid-range); ``tau_s``: actuator time constant (s);
    ``watchdog_s``: s; ``faults``: :class:`FaultPlan`; ``seed``: for the fault injection's
    ``random.Random`` and the device id; ``max_step``: optional limit on |set-point - current
    target| per frame (counts); ``name``: for messages; ``device_id`` (default derived from
    ``seed`` and ``address``) and ``fw_version``: reported in IDENT.
    """

    def __init__(self, calibration=None, *, address: int = 1, initial_counts=None,
                 tau_s: float = 0.02, watchdog_s: float = 0.5, faults: FaultPlan | None = None,
                 seed: int = 0, max_step: int | None = None, name: str = "",
                 device_id: int | None = None, fw_version: int = 0):
        if calibration is not None:
            from ..safety import count_range

            self.cmin, self.cmax = count_range(calibration)
        else:
            self.cmin = np.full(6, P.INT32_MIN, dtype=np.int64)
            self.cmax = np.full(6, P.INT32_MAX, dtype=np.int64)
        if initial_counts is None:
            initial_counts = (self.cmin + self.cmax) // 2 if calibration is not None else [0] * 6
        self.address = address
        self.device_id = emulated_device_id(seed, address) if device_id is None else device_id
        self.fw_version = fw_version
        self.tau_s = float(tau_s)
        self.watchdog_s = float(watchdog_s)
        self.faults = faults or FaultPlan()
        self.max_step = max_step
        self._lo, self._hi = self.cmin.tolist(), self.cmax.tolist()
        self.name = name or f"device@{address}"
        self._rng = random.Random(seed)
        self.measured = np.asarray(initial_counts, dtype=np.float64).copy()
        self.target = np.rint(self.measured).astype(np.int64)
        self.state = State.IDLE
        self.cause = "power-up"
        self.fault_bits = 0
        self.last_tick: int | None = None
        self.last_seq = 0
        self.n_executed = 0
        self._t_dyn: float | None = None
        self._armed = False
        self._last_rx = 0.0
        self._cache: tuple[int, int, bytes, bytes] | None = None  # (type, seq, payload, reply)
        self._hits: dict[tuple[str, int], int] = {}
        self._device_fault_fired = False
        self._estop_fired = False
        self._decoder = P.Decoder()
        self._outq: list[tuple[float, int, bytes]] = []  # (due, order, bytes) heap
        self._order = 0
        self._pending_out = bytearray()
        self.disconnected = False
        self.frames_in = 0
        self.stop_frames = 0
        self.estop_frames = 0
        self.stop_times: list[float] = []
        self.rx_log = bytearray()
        self.received: list[tuple[float, P.Frame]] = []
        self.executed: list[Executed] = []
        self.events: list[Event] = []
        self.replies_sent = 0

    # ------------------------------------------------------------------ records
    def executed_ticks(self) -> list[int]:
        return [e.tick for e in self.executed]

    def event_kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def received_setpoints(self) -> list[P.Setpoint]:
        """Every SETPOINT decoded from the raw bytes received (:attr:`rx_log`), in order,
        retransmissions included."""
        frames = P.decode(bytes(self.rx_log)).frames
        return [P.parse_setpoint(f.payload) for f in frames if f.type == MsgType.SETPOINT]

    def summary(self) -> dict:
        """What the device did, for its exit summary (``assemblers emulate``)."""
        return {"name": self.name, "port": getattr(self, "port", None), "address": self.address,
                "device_id": self.device_id, "frames_in": self.frames_in,
                "setpoints_executed": len(self.executed), "last_tick": self.last_tick,
                "replies": self.replies_sent, "stop_frames": self.stop_frames,
                "estop_frames": self.estop_frames, "state": State(self.state).name,
                "cause": self.cause, "faults": P.fault_names(self.fault_bits),
                "first_stop_t": self.stop_times[0] if self.stop_times else None,
                "watchdog_trips": self.event_kinds().count("watchdog")}

    def _event(self, now: float, kind: str, detail: str = "") -> None:
        self.events.append(Event(now, kind, detail))

    def _measured_counts(self) -> np.ndarray:
        """The measured position rounded to whole counts (int64): where a hold holds."""
        return np.rint(self.measured).astype(np.int64)

    def _stop_on_fault(self, now: float, bit: int, state: int, cause: str, kind: str,
                       detail: str) -> None:
        """A fault of the plan fires: ``bit`` set, ``state`` entered, hold where it is."""
        self.fault_bits |= bit
        self._enter(state, cause)
        self.target = self._measured_counts()
        self._event(now, kind, detail)

    def _enter(self, state: int, cause: str) -> None:
        """Change state; a stop that finds the device already stopped keeps the first cause."""
        if state in _STOPPED and self.state in _STOPPED and state == self.state:
            return
        self.state = state
        self.cause = cause

    # ------------------------------------------------------------------ time
    def next_deadline(self) -> float | None:
        """perf_counter time at which :meth:`on_timer` has something to do."""
        ds = []
        if self._outq:
            ds.append(self._outq[0][0])
        if self._armed and not self.disconnected:
            ds.append(self._last_rx + self.watchdog_s)
        return min(ds) if ds else None

    def _advance(self, now: float) -> None:
        if self._t_dyn is None:
            self._t_dyn = now
        dt = now - self._t_dyn
        self._t_dyn = now
        if dt > 0 and self.state != State.ESTOP:
            self.measured += (self.target - self.measured) * (1.0 - math.exp(-dt / self.tau_s))

    def on_timer(self, now: float) -> None:
        if self.disconnected:
            return
        if self._armed and now - self._last_rx > self.watchdog_s:
            self._advance(now)
            self._armed = False
            self._cache = None
            self.fault_bits |= Fault.WATCHDOG
            if self.state in (State.IDLE, State.RUNNING):
                self._enter(State.HOLD, "watchdog")
            self.target = self._measured_counts()
            self._event(now, "watchdog", f"no frame for {now - self._last_rx:.3f} s: hold")
        self._flush_out(now)

    # ------------------------------------------------------------------ input
    def process(self, data: bytes, now: float | None = None) -> None:
        """Handle ``data`` as if it had just been received (replies are queued; see
        :meth:`read_output`)."""
        now = time.perf_counter() if now is None else now
        self.rx_log += data
        for f in self._decoder.feed(data):
            self._handle(f, now)
            if self.disconnected:
                return
        for rej in self._decoder.take_rejected():
            self.fault_bits |= Fault.COMM
            if rej.address == self.address:
                self._event(now, "bad_crc", f"seq {rej.seq}")
                self._send(now, rej.seq, MsgType.NAK,
                           P.pack_nak(rej.type, self.state, self.fault_bits, NakCode.BAD_CRC),
                           None)
        self._flush_out(now)

    def _hit(self, kind: str, f: P.Frame) -> bool:
        fp = self.faults
        if fp is NO_FAULTS or fp == NO_FAULTS:
            return False
        chosen = getattr(fp, kind + "_at")
        if chosen:
            key = None
            if not fp.at_ticks:
                key = f.seq
            elif f.type == MsgType.SETPOINT:
                key = P.parse_setpoint(f.payload).tick
            if key is not None and key in chosen:
                n = self._hits.get((kind, key), 0)
                if fp.times is None or n < fp.times:
                    self._hits[(kind, key)] = n + 1
                    return True
        p = getattr(fp, kind, 0.0)
        return bool(p) and self._rng.random() < p

    def _disconnect(self, now: float) -> None:
        self._event(now, "disconnect", f"after {self.frames_in - 1} frames")
        self.disconnected = True
        self._outq.clear()
        self._pending_out.clear()
        self._on_disconnect()

    def _on_disconnect(self) -> None:
        """Transport hook: the link is cut (a pty closes its descriptors)."""

    def _handle(self, f: P.Frame, now: float) -> None:
        self.frames_in += 1
        fp = self.faults
        if fp.disconnect_after is not None and self.frames_in > fp.disconnect_after:
            self._disconnect(now)
            return
        self.received.append((now, f))
        # IDENTIFY is answered whatever its address says (one controller per link)
        if f.address != self.address and f.type != MsgType.IDENTIFY:
            self._event(now, "foreign", f"frame for address {f.address}")
            return
        if self._hit("drop_rx", f):
            self._event(now, "dropped_rx", f"{P.type_name(f.type)} seq {f.seq}")
            return
        self._last_rx = now
        self._armed = True
        self._advance(now)
        if f.type == MsgType.STOP:
            self.stop_frames += 1
            self.stop_times.append(now)
        elif f.type == MsgType.ESTOP:
            self.estop_frames += 1
        if self._hit("corrupt_rx", f):
            self.fault_bits |= Fault.COMM
            self._event(now, "bad_crc", f"seq {f.seq} (injected)")
            self._send(now, f.seq, MsgType.NAK,
                       P.pack_nak(f.type, self.state, self.fault_bits, NakCode.BAD_CRC), f)
            return
        c = self._cache
        if c is not None and f.type == c[0] and f.seq == c[1] and f.payload == c[2]:
            self._event(now, "duplicate", f"{P.type_name(f.type)} seq {f.seq}: re-acknowledged")
            self._queue(now, c[3], f)
            return
        handler = {
            MsgType.SETPOINT: self._on_setpoint,
            MsgType.STATUS_QUERY: self._on_status,
            MsgType.HEARTBEAT: self._on_heartbeat,
            MsgType.STOP: self._on_stop,
            MsgType.ESTOP: self._on_estop,
            MsgType.CLEAR_FAULTS: self._on_clear,
            MsgType.IDENTIFY: self._on_identify,
        }.get(f.type)
        if handler is None:  # a reply type sent to us: ignore
            self._event(now, "ignored", P.type_name(f.type))
            return
        reply = handler(f, now)
        if f.type in _COMMANDS:
            self._cache = (f.type, f.seq, f.payload, reply)

    # ------------------------------------------------------------------ handlers
    def _ack(self, f: P.Frame) -> tuple[int, bytes]:
        return MsgType.ACK, P.pack_ack(f.type, self.state, self.fault_bits)

    def _nak(self, f: P.Frame, code: int, now: float, why: str) -> bytes:
        self._event(now, "nak", f"{P.type_name(f.type)} seq {f.seq}: {NakCode(code).name} {why}")
        return self._send(now, f.seq, MsgType.NAK,
                          P.pack_nak(f.type, self.state, self.fault_bits, code), f)

    def _on_setpoint(self, f: P.Frame, now: float) -> bytes:
        sp = P.parse_setpoint(f.payload)
        c = np.asarray(sp.counts, dtype=np.int64)
        if self.faults.ack_when_faulted and self.state in (State.ESTOP, State.FAULT):
            self._event(now, "acked_not_executed", f"tick {sp.tick} in {State(self.state).name}")
            return self._send(now, f.seq, *self._ack(f), f)
        if self.state == State.ESTOP:
            return self._nak(f, NakCode.ESTOPPED, now, "")
        if self.fault_bits & Fault.DEVICE:
            return self._nak(f, NakCode.DEVICE_FAULT, now, "")
        if self.fault_bits & Fault.WATCHDOG:
            return self._nak(f, NakCode.WATCHDOG, now, "")
        lo, hi = self._lo, self._hi
        out = [x < lo[j] or x > hi[j] for j, x in enumerate(sp.counts)]
        if any(out):
            j = out.index(True)
            self.fault_bits |= Fault.LIMIT
            return self._nak(f, NakCode.LIMIT, now, f"actuator {j} counts {int(c[j])} outside "
                             f"[{int(self.cmin[j])}, {int(self.cmax[j])}]")
        if self.max_step is not None and np.any(np.abs(c - self.target) > self.max_step):
            self.fault_bits |= Fault.LIMIT
            return self._nak(f, NakCode.LIMIT, now, f"step larger than {self.max_step} counts")
        self.target = c
        self._enter(State.RUNNING, "set-point")
        self.last_tick, self.last_seq = sp.tick, f.seq
        self.n_executed += 1
        self.executed.append(Executed(now, f.seq, sp.tick, sp.counts))
        fp = self.faults
        if (fp.device_fault_after is not None and not self._device_fault_fired
                and self.n_executed >= fp.device_fault_after):
            self._device_fault_fired = True
            self._stop_on_fault(now, Fault.DEVICE, State.FAULT, "device fault", "device_fault",
                                f"after {self.n_executed} set-points: hold")
        if (fp.estop_after is not None and not self._estop_fired
                and self.n_executed >= fp.estop_after):
            self._estop_fired = True
            self._stop_on_fault(now, Fault.ESTOP, State.ESTOP, "ESTOP (device)", "estop",
                                f"the device's own emergency stop, after {self.n_executed} "
                                "set-points")
        return self._send(now, f.seq, *self._ack(f), f)

    def _on_status(self, f: P.Frame, now: float) -> bytes:
        payload = P.pack_status(self.state, self.fault_bits, self.last_tick, self.last_seq,
                                self._measured_counts(), self.target)
        return self._send(now, f.seq, MsgType.STATUS, payload, f)

    def _on_heartbeat(self, f: P.Frame, now: float) -> bytes:
        return self._send(now, f.seq, *self._ack(f), f)

    def _on_identify(self, f: P.Frame, now: float) -> bytes:
        payload = P.pack_ident(self.address, P.PROTOCOL_VERSION, self.fw_version,
                               self.device_id)
        return self._send(now, f.seq, MsgType.IDENT, payload, f)

    def _on_stop(self, f: P.Frame, now: float) -> bytes:
        self.target = self._measured_counts()
        if self.state not in (State.ESTOP, State.FAULT):
            self._enter(State.HOLD, "STOP")
        self._event(now, "stop", f"seq {f.seq}: hold at {self.target.tolist()}")
        return self._send(now, f.seq, *self._ack(f), f)

    def _on_estop(self, f: P.Frame, now: float) -> bytes:
        self.target = self._measured_counts()
        self._enter(State.ESTOP, "ESTOP")
        self.fault_bits |= Fault.ESTOP
        self._event(now, "estop", f"seq {f.seq}")
        return self._send(now, f.seq, *self._ack(f), f)

    def _on_clear(self, f: P.Frame, now: float) -> bytes:
        self._event(now, "clear", f"faults {P.fault_names(self.fault_bits)} cleared")
        self.fault_bits = 0
        if self.state in (State.ESTOP, State.FAULT):
            self._enter(State.HOLD, "CLEAR_FAULTS")
            self.target = self._measured_counts()
        return self._send(now, f.seq, *self._ack(f), f)

    # ------------------------------------------------------------------ output
    def _send(self, now: float, seq: int, mtype: int, payload: bytes, req: P.Frame | None
              ) -> bytes:
        """Encode a reply, apply the reply faults, queue it; returns the clean bytes."""
        data = P.encode_frame(mtype, self.address, seq, payload)
        self._queue(now, data, req)
        return data

    def _queue(self, now: float, data: bytes, req: P.Frame | None) -> None:
        fp = self.faults
        if req is not None and self._hit("drop_reply", req):
            self._event(now, "dropped_reply", f"reply to seq {req.seq}")
            return
        if req is not None and self._hit("corrupt_reply", req):
            b = bytearray(data)
            pos = self._rng.randrange(P.HEADER_LEN, len(b))  # header intact: CRC-16 fails
            b[pos] ^= 1 << self._rng.randrange(8)
            data = bytes(b)
            self._event(now, "corrupted_reply", f"reply to seq {req.seq}, byte {pos}")
        if fp.garbage and self._rng.random() < fp.garbage:
            junk = bytes(self._rng.randrange(256) for _ in range(self._rng.randrange(1, 16)))
            data = junk + data
        delay = fp.delay_s
        if req is not None and fp.delay_at and self._hit("delay", req):
            delay += fp.delay_at_s
            self._event(now, "delayed_reply", f"reply to seq {req.seq} by {delay:.3f} s")
        self._order += 1
        heapq.heappush(self._outq, (now + delay, self._order, data))

    def _flush_out(self, now: float) -> None:
        while self._outq and self._outq[0][0] <= now:
            self._pending_out += heapq.heappop(self._outq)[2]
            self.replies_sent += 1
        if self._pending_out:
            self._emit()

    def _emit(self) -> None:
        """Transport hook: write what it can of :attr:`_pending_out` and drop what was
        written.  The base class keeps the bytes for :meth:`read_output`."""

    def read_output(self) -> bytes:
        """The reply bytes that are due and not yet taken (a transport without a pty)."""
        out = bytes(self._pending_out)
        self._pending_out.clear()
        return out


def summary_line(e: Device) -> str:
    """One line for people: what the device did and what put it in its final state."""
    return (f"{e.name} ({getattr(e, 'port', None)}): {e.frames_in} frames in, "
            f"{len(e.executed)} set-points executed, {e.replies_sent} replies, "
            f"{e.stop_frames} STOP and {e.estop_frames} ESTOP frame(s) received, state "
            f"{State(e.state).name} (by {e.cause}), faults "
            f"{P.fault_names(e.fault_bits) or 'none'}")
