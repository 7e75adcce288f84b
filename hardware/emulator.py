"""A platform controller emulated on a pseudo-terminal, speaking the wire protocol.

:class:`DeviceEmulator` opens a pty (``os.openpty``, raw mode); the host opens the slave's path
(:attr:`DeviceEmulator.port`) with pyserial exactly as it would a USB-serial adapter.  The
emulated controller has six actuators with first-order dynamics (time constant ``tau_s``), its
own limits (set-points outside the calibration's soft stroke, or further than ``max_step`` counts
from the current target, are refused with a NAK), a watchdog (no valid frame for ``watchdog_s``
-> HOLD and the WATCHDOG fault bit), STATUS replies with measured positions, idempotent handling
of a repeated sequence number (re-acknowledged, not executed twice), and fault injection
(:class:`FaultPlan`).  Everything is recorded: the raw bytes received (:attr:`rx_log`), every
valid frame, every executed set-point (:attr:`executed`) and every event (:attr:`events`).

All randomness comes from ``random.Random(seed)``.  One thread serves any number of emulators
(:class:`EmulatorGroup`); ``python -m hardware.emulator`` (or ``assemblers emulate``) runs them in
a process of their own.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import math
import os
import random
import select
import sys
import threading
import time
import tty
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np

from . import protocol as P
from .protocol import Fault, MsgType, NakCode, State
from .signals import interrupt_on_signals

_COMMANDS = (MsgType.SETPOINT, MsgType.STOP, MsgType.ESTOP, MsgType.CLEAR_FAULTS)


@dataclass(frozen=True)
class FaultPlan:
    """Faults to inject.  Probabilities are per frame; the ``*_at`` sets select frames by
    sequence number, or by set-point tick when ``at_ticks`` is true; ``times`` limits how often
    each selected frame is hit (None: every time it arrives, i.e. also every retransmission).

    ``drop_rx``: host frames lost on the way in (not seen, no reply, watchdog not fed);
    ``drop_reply``: replies lost on the way out; ``corrupt_reply``: a byte of the reply flipped
    (its CRC fails on the host); ``corrupt_rx``: a host frame arrives with a bad CRC (NAK
    BAD_CRC); ``delay_s``: every reply is late by this much; ``delay_at``/``delay_at_s``: the
    replies to the selected frames are late by ``delay_at_s``; ``garbage``: probability of
    random bytes before a reply; ``disconnect_after``: close the pty when frame number
    ``disconnect_after + 1`` arrives (it is never seen); ``device_fault_after``: after this many
    set-points executed, a device fault (state FAULT, further set-points NAKed DEVICE_FAULT).
    """

    drop_rx: float = 0.0
    drop_reply: float = 0.0
    corrupt_reply: float = 0.0
    corrupt_rx: float = 0.0
    garbage: float = 0.0
    drop_rx_at: frozenset[int] = frozenset()
    drop_reply_at: frozenset[int] = frozenset()
    corrupt_reply_at: frozenset[int] = frozenset()
    corrupt_rx_at: frozenset[int] = frozenset()
    delay_at: frozenset[int] = frozenset()
    at_ticks: bool = False
    times: int | None = None
    delay_s: float = 0.0
    delay_at_s: float = 0.0
    disconnect_after: int | None = None
    device_fault_after: int | None = None

    @classmethod
    def parse(cls, specs: list[str] | tuple[str, ...]) -> FaultPlan:
        """Build from ``key=value`` strings (the CLI's ``--fault``); keys use ``-`` or ``_``,
        sets are comma-separated integers, ``at-ticks`` takes true/false.  Raises ValueError
        naming the bad item."""
        kinds = {f.name: f for f in fields(cls)}
        kw: dict = {}
        for spec in specs:
            key, sep, val = spec.partition("=")
            name = key.strip().replace("-", "_")
            if not sep or name not in kinds:
                raise ValueError(f"bad fault {spec!r}: expected KEY=VALUE with KEY one of "
                                 + ", ".join(k.replace("_", "-") for k in kinds))
            val = val.strip()
            try:
                if name.endswith("_at"):
                    v = frozenset(int(x) for x in val.split(",") if x.strip())
                    if any(x < 0 for x in v):
                        raise ValueError("negative")
                elif name == "at_ticks":
                    if val.lower() not in ("1", "0", "true", "false", "yes", "no"):
                        raise ValueError("not a boolean")
                    v = val.lower() in ("1", "true", "yes")
                elif name in ("times", "disconnect_after", "device_fault_after"):
                    v = int(val)
                    if v < 0:
                        raise ValueError("negative")
                else:
                    v = float(val)
                    if not math.isfinite(v) or v < 0 or (v > 1 and not name.endswith("_s")):
                        raise ValueError("out of range")
            except ValueError as exc:
                raise ValueError(f"bad fault {spec!r}: {exc}") from None
            kw[name] = v
        return cls(**kw)


_NO_FAULTS = FaultPlan()


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


class DeviceEmulator:
    """One emulated controller (see the module docstring).

    ``calibration``: the platform's :class:`~assemblers.model.ActuatorCalibration` (its soft
    stroke becomes the device's limits, in counts); ``address``: the device's address;
    ``initial_counts``: (6,) where the actuators are at power-up (default mid-range);
    ``tau_s``: actuator time constant (s); ``watchdog_s``: s; ``faults``: :class:`FaultPlan`;
    ``seed``: for the fault injection's ``random.Random``; ``max_step``: optional limit on
    |set-point - current target| per frame (counts); ``name``: for messages.
    """

    def __init__(self, calibration=None, *, address: int = 1, initial_counts=None,
                 tau_s: float = 0.02, watchdog_s: float = 0.5, faults: FaultPlan | None = None,
                 seed: int = 0, max_step: int | None = None, name: str = ""):
        if calibration is not None:
            from .safety import count_range

            self.cmin, self.cmax = count_range(calibration)
        else:
            self.cmin = np.full(6, P.INT32_MIN, dtype=np.int64)
            self.cmax = np.full(6, P.INT32_MAX, dtype=np.int64)
        if initial_counts is None:
            initial_counts = (self.cmin + self.cmax) // 2 if calibration is not None else [0] * 6
        self.address = address
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
        self._decoder = P.Decoder()
        self._outq: list[tuple[float, int, bytes]] = []  # (due, order, bytes) heap
        self._order = 0
        self._pending_out = b""
        self.master: int | None = None
        self.slave: int | None = None
        self.port: str | None = None
        self.disconnected = False
        self.frames_in = 0
        self.rx_log = bytearray()
        self.received: list[tuple[float, P.Frame]] = []
        self.executed: list[Executed] = []
        self.events: list[Event] = []
        self.replies_sent = 0
        self._group: EmulatorGroup | None = None

    # ------------------------------------------------------------------ pty
    def open(self) -> str:
        """Create the pty (raw mode) and return the path the host opens."""
        if self.master is None:
            self.master, self.slave = os.openpty()
            tty.setraw(self.slave)
            tty.setraw(self.master)
            os.set_blocking(self.master, False)
            self.port = os.ttyname(self.slave)
            self._t_dyn = time.perf_counter()
        return self.port

    @property
    def is_open(self) -> bool:
        return self.master is not None

    def fileno(self) -> int:
        return self.master

    def close(self) -> None:
        for fd in (self.master, self.slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.master = self.slave = None

    def start(self) -> str:
        """Open the pty and serve it from a thread of its own; returns the port path."""
        self._group = EmulatorGroup([self])
        self._group.start()
        return self.port

    def stop(self) -> None:
        if self._group is not None:
            self._group.stop()
            self._group = None
        else:
            self.close()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

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

    def _event(self, now: float, kind: str, detail: str = "") -> None:
        self.events.append(Event(now, kind, detail))

    # ------------------------------------------------------------------ servicing
    def next_deadline(self) -> float | None:
        """perf_counter time at which :meth:`on_timer` has something to do."""
        ds = []
        if self._outq:
            ds.append(self._outq[0][0])
        if self._armed and self.master is not None:
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
        if self.master is None:
            return
        if self._armed and now - self._last_rx > self.watchdog_s:
            self._advance(now)
            self._armed = False
            self._cache = None
            self.fault_bits |= Fault.WATCHDOG
            if self.state not in (State.ESTOP, State.FAULT):
                self.state = State.HOLD
            self.target = np.rint(self.measured).astype(np.int64)
            self._event(now, "watchdog", f"no frame for {now - self._last_rx:.3f} s: hold")
        self._flush_out(now)

    def on_readable(self, now: float) -> None:
        if self.master is None:
            return
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError as exc:
            self._event(now, "io_error", str(exc))
            return
        if not data:
            return
        self.process(data, now)

    def process(self, data: bytes, now: float | None = None) -> None:
        """Handle ``data`` as if it had just been read from the port (replies are queued and
        written to the pty if it is open)."""
        now = time.perf_counter() if now is None else now
        self.rx_log += data
        for f in self._decoder.feed(data):
            self._handle(f, now)
            if self.master is None:
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
        if fp is _NO_FAULTS or fp == _NO_FAULTS:
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
        self.close()

    def _handle(self, f: P.Frame, now: float) -> None:
        self.frames_in += 1
        fp = self.faults
        if fp.disconnect_after is not None and self.frames_in > fp.disconnect_after:
            self._disconnect(now)
            return
        self.received.append((now, f))
        if f.address != self.address:
            self._event(now, "foreign", f"frame for address {f.address}")
            return
        if self._hit("drop_rx", f):
            self._event(now, "dropped_rx", f"{P.type_name(f.type)} seq {f.seq}")
            return
        self._last_rx = now
        self._armed = True
        self._advance(now)
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
        }.get(f.type)
        if handler is None:  # a reply type sent to us: ignore
            self._event(now, "ignored", P.type_name(f.type))
            return
        reply = handler(f, now)
        if f.type in _COMMANDS:
            self._cache = (f.type, f.seq, f.payload, reply)

    def _ack(self, f: P.Frame) -> tuple[int, bytes]:
        return MsgType.ACK, P.pack_ack(f.type, self.state, self.fault_bits)

    def _nak(self, f: P.Frame, code: int, now: float, why: str) -> bytes:
        self._event(now, "nak", f"{P.type_name(f.type)} seq {f.seq}: {NakCode(code).name} {why}")
        return self._send(now, f.seq, MsgType.NAK,
                          P.pack_nak(f.type, self.state, self.fault_bits, code), f)

    def _on_setpoint(self, f: P.Frame, now: float) -> bytes:
        sp = P.parse_setpoint(f.payload)
        c = np.asarray(sp.counts, dtype=np.int64)
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
        self.state = State.RUNNING
        self.last_tick, self.last_seq = sp.tick, f.seq
        self.n_executed += 1
        self.executed.append(Executed(now, f.seq, sp.tick, sp.counts))
        fa = self.faults.device_fault_after
        if fa is not None and not self._device_fault_fired and self.n_executed >= fa:
            self._device_fault_fired = True
            self.fault_bits |= Fault.DEVICE
            self.state = State.FAULT
            self.target = np.rint(self.measured).astype(np.int64)
            self._event(now, "device_fault", f"after {self.n_executed} set-points: hold")
        return self._send(now, f.seq, *self._ack(f), f)

    def _on_status(self, f: P.Frame, now: float) -> bytes:
        payload = P.pack_status(self.state, self.fault_bits, self.last_tick, self.last_seq,
                                np.rint(self.measured).astype(np.int64), self.target)
        return self._send(now, f.seq, MsgType.STATUS, payload, f)

    def _on_heartbeat(self, f: P.Frame, now: float) -> bytes:
        return self._send(now, f.seq, *self._ack(f), f)

    def _on_stop(self, f: P.Frame, now: float) -> bytes:
        self.target = np.rint(self.measured).astype(np.int64)
        if self.state not in (State.ESTOP, State.FAULT):
            self.state = State.HOLD
        self._event(now, "stop", f"seq {f.seq}: hold at {self.target.tolist()}")
        return self._send(now, f.seq, *self._ack(f), f)

    def _on_estop(self, f: P.Frame, now: float) -> bytes:
        self.target = np.rint(self.measured).astype(np.int64)
        self.state = State.ESTOP
        self.fault_bits |= Fault.ESTOP
        self._event(now, "estop", f"seq {f.seq}")
        return self._send(now, f.seq, *self._ack(f), f)

    def _on_clear(self, f: P.Frame, now: float) -> bytes:
        self._event(now, "clear", f"faults {P.fault_names(self.fault_bits)} cleared")
        self.fault_bits = 0
        if self.state in (State.ESTOP, State.FAULT):
            self.state = State.HOLD
            self.target = np.rint(self.measured).astype(np.int64)
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
        out = bytearray(self._pending_out)
        while self._outq and self._outq[0][0] <= now:
            out += heapq.heappop(self._outq)[2]
            self.replies_sent += 1
        if not out or self.master is None:
            self._pending_out = bytes(out)
            return
        try:
            n = os.write(self.master, out)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            self._event(now, "io_error", str(exc))
            n = len(out)
        self._pending_out = bytes(out[n:])


class EmulatorGroup:
    """Serve several emulators from one thread (``select`` over their ptys)."""

    def __init__(self, emulators: list[DeviceEmulator], poll_s: float = 0.005):
        self.emulators = list(emulators)
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @property
    def ports(self) -> list[str]:
        return [e.port for e in self.emulators]

    def start(self) -> list[str]:
        for e in self.emulators:
            e.open()
        self._thread = threading.Thread(target=self._run, name="device-emulator", daemon=True)
        self._thread.start()
        return self.ports

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` (e.g. from a signal handler)."""
        for e in self.emulators:
            e.open()
        self._run()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.step(self.poll_s)
        except BaseException as exc:  # noqa: BLE001 - kept for the owner to inspect
            self.error = exc
            raise

    def step(self, max_wait: float) -> None:
        now = time.perf_counter()
        wake = now + max_wait
        for e in self.emulators:
            d = e.next_deadline()
            if d is not None and d < wake:
                wake = d
        fds = {e.master: e for e in self.emulators if e.master is not None}
        timeout = max(0.0, wake - now)
        if fds:
            try:
                readable, _, _ = select.select(list(fds), [], [], timeout)
            except (OSError, ValueError):  # an fd closed under us (disconnect): next round
                readable = []
        else:
            time.sleep(timeout)
            readable = []
        now = time.perf_counter()
        for fd in readable:
            fds[fd].on_readable(now)
        for e in self.emulators:
            e.on_timer(now)

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for e in self.emulators:
            e.close()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


def emulators_for(asm, *, n: int | None = None, faults: FaultPlan | None = None, seed: int = 0,
                  tau_s: float = 0.02, initial_legs=None) -> list[DeviceEmulator]:
    """One emulator per platform of ``asm`` (or the first ``n``), with its calibration, address
    and watchdog; the actuators start at ``initial_legs`` (N, 6) m (default: the home pose)."""
    from .plan import home_legs

    hw = asm.hardware
    n = asm.n_platforms if n is None else n
    if initial_legs is None:
        initial_legs = home_legs(asm)
    out = []
    for i in range(n):
        link = hw.links[i % len(hw.links)]
        cal = link.calibration
        init = cal.to_counts(np.asarray(initial_legs)[i % len(initial_legs)])
        out.append(DeviceEmulator(cal, address=link.address, initial_counts=init, tau_s=tau_s,
                                  watchdog_s=hw.watchdog_s, faults=faults, seed=seed + i,
                                  name=f"platform {i}"))
    return out


def summary_line(e: DeviceEmulator) -> str:
    return (f"{e.name} ({e.port}): {e.frames_in} frames in, {len(e.executed)} set-points "
            f"executed, {e.replies_sent} replies, state {State(e.state).name}, faults "
            f"{P.fault_names(e.fault_bits) or 'none'}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--platforms", "-n", type=int, default=None,
                   help="number of emulated controllers (default: one per platform of the config)")
    p.add_argument("--fault", action="append", default=[], metavar="KEY=VALUE",
                   help="inject a fault, e.g. drop-reply=0.01, drop-reply-at=120, at-ticks=true, "
                        "corrupt-reply=0.001, delay-s=0.2, disconnect-after=500, "
                        "device-fault-after=300, times=1 (repeatable; see docs/hardware.md)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fault injection (default 0)")
    p.add_argument("--tau", type=float, default=0.02,
                   help="actuator time constant in s (default 0.02)")
    p.add_argument("--realtime", action="store_true",
                   help="run with real-time scheduling (Linux SCHED_FIFO; needs CAP_SYS_NICE)")


def make_group(asm, args) -> EmulatorGroup:
    """Emulators from parsed :func:`add_arguments` options; raises ValueError on bad ones."""
    n = asm.n_platforms if args.platforms is None else args.platforms
    if not 1 <= n <= 64:
        raise ValueError(f"--platforms must be between 1 and 64, got {n}")
    if not (args.tau > 0 and math.isfinite(args.tau)):
        raise ValueError(f"--tau must be a positive number of seconds, got {args.tau}")
    faults = FaultPlan.parse(args.fault)
    return EmulatorGroup(emulators_for(asm, n=n, faults=faults, seed=args.seed, tau_s=args.tau))


def serve(group: EmulatorGroup, out=sys.stdout, err=sys.stderr) -> int:
    """Open the ptys, print one port per line, serve until SIGINT/SIGTERM; summary on ``err``."""
    restore = interrupt_on_signals()
    # The serving loop makes no reference cycles; a cyclic collection over everything the
    # process imported (JAX...) would stall the replies for tens of milliseconds.
    gc_was = gc.isenabled()
    try:
        gc.collect()
        gc.freeze()
        gc.disable()
        for e in group.emulators:
            e.open()
        for e in group.emulators:
            print(e.port, file=out, flush=True)
        while True:
            group.step(group.poll_s)
    except KeyboardInterrupt:
        pass
    finally:
        if gc_was:
            gc.enable()
        gc.unfreeze()
        for e in group.emulators:
            print(summary_line(e), file=err, flush=True)
        group.stop()
        restore()
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m hardware.emulator [--config C] [--platforms N] [--fault K=V ...]``."""
    p = argparse.ArgumentParser(prog="python -m hardware.emulator",
                                description="emulated platform controllers on pseudo-terminals")
    p.add_argument("--config", "-c", default=None, help="config file or shipped name")
    add_arguments(p)
    args = p.parse_args(argv)
    import assemblers
    from assemblers.errors import InputError

    try:
        asm = assemblers.load_config(args.config)
        group = make_group(asm, args)
    except (InputError, ValueError) as exc:
        print(f"emulator: error: {exc}", file=sys.stderr)
        return 2
    if args.realtime:
        print(f"emulator: {set_realtime()}", file=sys.stderr)
    return serve(group)


def set_realtime(priority: int = 50) -> str:
    """Switch this process to real-time scheduling (Linux ``SCHED_FIFO`` at ``priority``), so
    that other busy processes cannot delay it; returns what happened, in words (it never
    raises: without the permission it says so and nothing changes).  Child processes inherit
    the policy."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (AttributeError, OSError) as exc:
        return f"real-time scheduling not available ({exc}); running with normal priority"
    return f"real-time scheduling: SCHED_FIFO priority {priority}"


if __name__ == "__main__":
    sys.exit(main())
