"""Hardware in the loop, simulated: the AVR firmware (the binary a lab flashes) on simavr, one
simulated ATmega2560 per platform of the duo config, streamed to through the real host code
(hardware.streamer over pyserial on the boards' pseudo-terminals).  Positions are checked both
as the firmware reports them (STATUS) and as its STEP pulses moved the drives (counted by the
harness, outside the firmware).

Needs Debian's gcc-avr, avr-libc, arduino-core-avr, simavr, libsimavr-dev, libsimavrparts1:
skipped with the install line where they are missing, a failure under CI=true."""

from __future__ import annotations

import os
import select
import threading
import time
import tty

import numpy as np
import pytest
from firmware_support import firmware_fixture  # noqa: F401 (the firmware fixture)
from hardware_support import hang_guard, journal_acked  # noqa: F401 (autouse fixture)

import assemblers
from hardware import protocol as P
from hardware.crc import crc8, crc16
from hardware.plan import home_legs
from hardware.safety import LimitViolation, SafetyGate, count_range
from hardware.simboard import start_boards
from hardware.streamer import read_journal, stream_trajectory

DUO = assemblers.load_config("duo")
CAL = [lk.calibration for lk in DUO.hardware.links]


def frame(mtype: int, address: int, seq: int, payload: bytes = b"") -> bytes:
    """A frame from the documented layout (any type, also those the host does not send)."""
    head = bytes([mtype, address, seq & 0xFF, seq >> 8, len(payload)])
    body = head + bytes([crc8(head)]) + payload
    return b"\xa5\x5a" + body + crc16(body).to_bytes(2, "little")


class Raw:
    """A board's pty opened directly, below the host's gate: raw frames in, frames out."""

    def __init__(self, port: str):
        self.fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        self.dec = P.Decoder()

    def ask(self, data: bytes, timeout_s: float = 2.0) -> P.Frame:
        """Write ``data``, return the first reply (its round trip in ``self.last_s``)."""
        t0 = time.perf_counter()
        os.write(self.fd, data)
        end = t0 + timeout_s
        while True:
            left = end - time.perf_counter()
            if left <= 0:
                raise AssertionError(f"no reply to {data.hex()}")
            if select.select([self.fd], [], [], left)[0]:
                got = self.dec.feed(os.read(self.fd, 4096))
                if got:
                    self.last_s = time.perf_counter() - t0
                    assert len(got) == 1, got
                    return got[0]

    def status(self, seq: int, address: int) -> P.Status:
        f = self.ask(frame(P.MsgType.STATUS_QUERY, address, seq))
        assert f.type == P.MsgType.STATUS and f.seq == seq
        return P.parse_status(f.payload)

    def close(self):
        os.close(self.fd)


def smooth(duration: float = 1.0, amplitude: float = 0.003, knots: int = 21):
    """(t (T,), legs (T, 2, 6)): every leg of the duo out by up to ``amplitude`` m from the home
    pose, at rest at both ends (a raised cosine: peak 4.7 mm/s and 0.03 m/s^2, far inside the
    actuators' 0.05 m/s and 0.5 m/s^2)."""
    H = home_legs(DUO)
    t = np.linspace(0.0, duration, knots)
    s = 0.5 * (1 - np.cos(np.pi * t / duration))
    w = np.linspace(0.4, 1.0, 12).reshape(2, 6)
    return t, H[None] + amplitude * s[:, None, None] * w[None]


def settle(raw: Raw, address: int, seq: int, timeout_s: float = 3.0) -> P.Status:
    """STATUS until the measured position equals the target."""
    end = time.monotonic() + timeout_s
    while True:
        s = raw.status(seq, address)
        if s.measured == s.target or time.monotonic() > end:
            return s
        time.sleep(0.02)


def test_stream_to_simulated_boards(firmware, tmp_path):
    # the boards power up 2 mm away from the trajectory's start: the host plans its approach
    # ramp from where their STATUS says they are
    t, legs = smooth()
    start = home_legs(DUO) - 0.002
    with start_boards(DUO, firmware=firmware, initial_legs=start) as g:
        s = stream_trajectory(DUO, t, legs, g.ports, rate_hz=50, journal=tmp_path / "j.jsonl")
        assert s.status == "completed" and s.ok, s.table()
        K = s.ticks_planned
        assert s.ticks_ramp > 0 and s.ticks_completed == K
        assert s.frames_sent == s.frames_acked == 2 * K  # every set-point acknowledged
        assert s.naks == 0 and s.faults == ()
        rec = read_journal(tmp_path / "j.jsonl")
        for i, b in enumerate(g.boards):
            assert journal_acked(rec, i) == list(range(K))  # each tick once, in order
            assert s.platforms[i].device_last_tick == K - 1
            want = tuple(int(x) for x in CAL[i].to_counts(legs[-1, i]))
            raw = Raw(b.port)
            try:
                st = settle(raw, b.config.address, 1000)
            finally:
                raw.close()
            assert st.state == P.State.RUNNING and st.faults == 0
            assert st.target == want and st.measured == want  # the firmware's own account
            pulses = b.pulses()
            assert pulses.counts == want and pulses.ignored == 0  # what the drives did
            # simulated time keeps up with real time (it never runs ahead of it)
            assert 0.5 * pulses.wall_ms < pulses.sim_ms <= pulses.wall_ms * 1.01 + 5


def test_watchdog_stops_a_board_when_the_host_goes_silent(firmware):
    with start_boards(DUO, n=1, firmware=firmware, watchdog_s=0.2, max_step=0) as g:
        b = g.boards[0]
        park = np.array(b.config.park)
        raw = Raw(b.port)
        try:
            far = park + 4000  # 0.4 s of stepping at 10 kHz: longer than the watchdog
            t0 = time.perf_counter()
            f = raw.ask(frame(P.MsgType.SETPOINT, 1, 1, P.pack_setpoint(0, far)))
            assert f.type == P.MsgType.ACK
            # the host is silent now; watch the STEP pulses (the harness, not the link)
            samples = []
            while time.perf_counter() - t0 < 1.0:
                samples.append((time.perf_counter() - t0, b.pulses()))
                time.sleep(0.01)
            moving = [tw for (tw, p), (_, q) in zip(samples, samples[1:]) if p.counts != q.counts]
            stopped_at = np.array(samples[-1][1].counts)
            assert np.all(stopped_at > park + 500) and np.all(stopped_at < far - 500)
            # it stopped about 0.2 s (simulated, and so real) after the last frame
            assert 0.1 < moving[-1] < 0.5, moving[-1]
            st = raw.status(2, 1)
            assert st.state == P.State.HOLD and st.faults == P.Fault.WATCHDOG
            assert st.measured == st.target == tuple(stopped_at.tolist())
            # refuses set-points until CLEAR_FAULTS
            f = raw.ask(frame(P.MsgType.SETPOINT, 1, 3, P.pack_setpoint(1, stopped_at)))
            assert f.type == P.MsgType.NAK and P.parse_nak(f.payload).code == P.NakCode.WATCHDOG
            f = raw.ask(frame(P.MsgType.CLEAR_FAULTS, 1, 4))
            assert f.type == P.MsgType.ACK and P.parse_ack(f.payload) == (6, P.State.HOLD, 0)
            f = raw.ask(frame(P.MsgType.SETPOINT, 1, 5, P.pack_setpoint(2, stopped_at)))
            assert f.type == P.MsgType.ACK
        finally:
            raw.close()


class CorruptingProxy:
    """A pseudo-terminal between the host and a board that flips one payload bit of the
    SETPOINT for ``tick`` the first time it passes (a line error on the way in)."""

    def __init__(self, board_port: str, tick: int):
        self.m, self.s = os.openpty()
        tty.setraw(self.m)
        tty.setraw(self.s)
        self.port = os.ttyname(self.s)
        self.b = os.open(board_port, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.b)
        self.tick = tick
        self.corrupted: list[int] = []  # seq of the frames damaged
        self.dec = P.Decoder()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            r, _, _ = select.select([self.m, self.b], [], [], 0.05)
            if self.m in r:
                for f in self.dec.feed(os.read(self.m, 4096)):
                    data = bytearray(f.encode())
                    if (f.type == P.MsgType.SETPOINT and not self.corrupted
                            and P.parse_setpoint(f.payload).tick == self.tick):
                        data[20] ^= 0x08
                        self.corrupted.append(f.seq)
                    os.write(self.b, bytes(data))
            if self.b in r:
                os.write(self.m, os.read(self.b, 4096))

    def close(self):
        self._stop.set()
        self._thread.join(2)
        for fd in (self.m, self.s, self.b):
            os.close(fd)


def test_corrupted_frame_is_naked_and_retransmitted(firmware, tmp_path):
    t, legs = smooth(0.6)
    with start_boards(DUO, firmware=firmware) as g:
        proxy = CorruptingProxy(g.ports[0], tick=5)
        try:
            s = stream_trajectory(DUO, t, legs, [proxy.port, g.ports[1]], rate_hz=50,
                                  journal=tmp_path / "j.jsonl")
        finally:
            proxy.close()
        assert s.status == "completed" and s.ok, s.table()
        assert len(proxy.corrupted) == 1 and s.naks >= 1 and s.retries >= 1
        seq = proxy.corrupted[0]
        rec = [r for r in read_journal(tmp_path / "j.jsonl")
               if r.get("platform") == 0 and r.get("seq") == seq and r["ev"] in ("tx", "rx")]
        # first transmission, NAK BAD_CRC from the firmware, the same frame again, its ACK
        assert [(r["ev"], r["type"], r.get("code"), r.get("attempt")) for r in rec] == [
            ("tx", "SETPOINT", None, 0), ("rx", "NAK", "BAD_CRC", None),
            ("tx", "SETPOINT", None, 1), ("rx", "ACK", None, None)]
        K = s.ticks_planned
        assert journal_acked(read_journal(tmp_path / "j.jsonl"), 0) == list(range(K))
        assert s.platforms[0].device_last_tick == K - 1
        assert "COMM" in s.platforms[0].final_faults  # the firmware saw the bad CRC
        time.sleep(0.3)
        want = tuple(int(x) for x in CAL[0].to_counts(legs[-1, 0]))
        assert g.boards[0].pulses().counts == want


def test_setpoints_past_the_device_limits_are_refused_by_the_firmware(firmware):
    # the actuators power up 20 counts below the top of their soft stroke, so one count past it
    # is a small step: only the stroke limit can refuse it
    cal = CAL[0]
    top = count_range(cal)[1]
    near_top = np.array([cal.to_length(top - 20), CAL[1].to_length(count_range(CAL[1])[1] - 20)])
    with start_boards(DUO, n=1, firmware=firmware, initial_legs=near_top) as g:
        b = g.boards[0]
        cfg = b.config
        park = np.array(cfg.park)
        assert np.array_equal(park, top - 20) and cfg.max_step > 21
        past = park.copy()
        past[3] = cfg.cmax[3] + 1  # one count past the soft stroke
        # the host's gate would never send it ...
        gate = SafetyGate(cal, 1 / DUO.hardware.rate_hz)
        gate.reset(park)
        with pytest.raises(LimitViolation):
            gate.check(past)
        # ... so it is written below the gate, straight to the board's pty
        raw = Raw(b.port)
        try:
            f = raw.ask(frame(P.MsgType.SETPOINT, cfg.address, 1, P.pack_setpoint(0, past)))
            assert f.type == P.MsgType.NAK
            assert P.parse_nak(f.payload) == (P.MsgType.SETPOINT, P.State.IDLE, P.Fault.LIMIT,
                                              P.NakCode.LIMIT)
            # the per-set-point step limit: inside the stroke, but too far in one frame
            jump = park.copy()
            jump[5] -= cfg.max_step + 1
            f = raw.ask(frame(P.MsgType.SETPOINT, cfg.address, 2, P.pack_setpoint(1, jump)))
            assert P.parse_nak(f.payload).code == P.NakCode.LIMIT
            time.sleep(0.1)
            st = raw.status(3, cfg.address)
            assert st.target == st.measured == tuple(park.tolist()) and st.last_tick is None
            assert b.pulses().counts == tuple(park.tolist())  # nothing moved
            edge = park.copy()
            edge[3] = cfg.cmax[3]  # exactly at the stroke limit: accepted
            edge[5] -= cfg.max_step  # exactly the step limit: accepted
            f = raw.ask(frame(P.MsgType.SETPOINT, cfg.address, 4, P.pack_setpoint(2, edge)))
            assert f.type == P.MsgType.ACK
        finally:
            raw.close()


def test_a_repeated_command_gets_its_first_reply(firmware):
    """A retransmission (same seq, type and payload) is answered from memory, not executed."""
    with start_boards(DUO, n=1, firmware=firmware) as g:
        b = g.boards[0]
        sp = frame(P.MsgType.SETPOINT, 1, 9, P.pack_setpoint(0, b.config.park))
        raw = Raw(b.port)
        try:
            first = raw.ask(sp)
            assert P.parse_ack(first.payload) == (1, P.State.RUNNING, 0)
            b.set_inputs(1)  # an end stop opens: set-points are refused from now on
            time.sleep(0.05)
            assert raw.ask(sp) == first  # the same ACK again: the first execution's reply
            f = raw.ask(frame(P.MsgType.SETPOINT, 1, 10, P.pack_setpoint(1, b.config.park)))
            assert P.parse_nak(f.payload).code == P.NakCode.DEVICE_FAULT  # a new command
        finally:
            raw.close()


def test_identify_reports_each_board(firmware):
    with start_boards(DUO, firmware=firmware) as g:
        ids = set()
        for b in g.boards:
            raw = Raw(b.port)
            try:
                f = raw.ask(frame(P.MsgType.IDENTIFY, 0xEE, 77))  # whatever the address says
            finally:
                raw.close()
            assert f.type == P.MsgType.IDENT and f.seq == 77 and f.address == b.config.address
            ident = P.parse_ident(f.payload)
            assert ident.address == b.config.address
            assert ident.protocol == P.PROTOCOL_VERSION == 1
            assert ident.fw_version >= 1  # firmware build
            assert ident.device_id == b.config.device_id != 0
            ids.add(b.config.device_id)
        assert len(ids) == 2


def test_end_stop_and_emergency_stop_inputs(firmware):
    with start_boards(DUO, n=1, firmware=firmware) as g:
        b = g.boards[0]
        park = b.config.park
        raw = Raw(b.port)
        try:
            b.set_inputs(0b000100)  # actuator 2's end-stop loop opens
            time.sleep(0.05)
            st = raw.status(1, 1)
            assert st.state == P.State.FAULT and st.faults == P.Fault.DEVICE
            f = raw.ask(frame(P.MsgType.SETPOINT, 1, 2, P.pack_setpoint(0, park)))
            assert P.parse_nak(f.payload).code == P.NakCode.DEVICE_FAULT
            b.set_inputs(0)
            f = raw.ask(frame(P.MsgType.CLEAR_FAULTS, 1, 3))
            assert P.parse_ack(f.payload) == (6, P.State.HOLD, 0)
            b.set_inputs(0b1000000)  # the e-stop button
            time.sleep(0.05)
            st = raw.status(4, 1)
            assert st.state == P.State.ESTOP and st.faults & P.Fault.ESTOP
            f = raw.ask(frame(P.MsgType.SETPOINT, 1, 5, P.pack_setpoint(1, park)))
            assert P.parse_nak(f.payload).code == P.NakCode.ESTOPPED
        finally:
            raw.close()


def test_the_baud_rate_is_simulated(firmware):
    """A STATUS round trip is 80 bytes on the wire (10 + 70): 83 ms at 9600 baud, 6.9 ms at
    115200, 0.8 ms at 1 Mbaud."""
    lat = {}
    for baud in (9600, 115200, 1_000_000):
        with start_boards(DUO, n=1, firmware=firmware, baud=baud) as g:
            raw = Raw(g.ports[0])
            try:
                raw.status(0, 1)
                best = min((raw.status(k, 1), raw.last_s)[1] for k in range(1, 4))
            finally:
                raw.close()
        lat[baud] = best
    wire = {b: 80 * 10 / b for b in lat}
    assert lat[9600] >= wire[9600] * 0.95 and lat[115200] >= wire[115200] * 0.95, lat
    assert lat[9600] > lat[115200] > lat[1_000_000], lat
