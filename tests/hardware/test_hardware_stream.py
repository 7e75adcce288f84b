"""Streaming through the real pyserial path to emulated controllers on pseudo-terminals: clean
runs, lock-step, the approach ramp, heartbeats and the watchdog, and hypothesis-generated
trajectories checked on the bytes that reached the devices."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from hardware_support import hang_guard, journal_acked  # noqa: F401 (autouse fixture)
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import assemblers
from hardware import protocol as P
from hardware.emulator import DeviceEmulator, EmulatorGroup, emulators_for
from hardware.plan import calibrations, home_legs
from hardware.safety import LimitViolation, window_ticks
from hardware.streamer import (
    Streamer,
    read_journal,
    stream_target,
    stream_trajectory,
)

DUO = assemblers.load_config("duo")
TRIO = assemblers.load_config("trio")


SUPPRESS = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


def smooth(asm, duration=0.3, amplitude=0.001, knots=16):
    """(t (T,), legs (T, N, 6)): each leg out and back by up to ``amplitude`` m, at rest at
    both ends, starting at the home pose."""
    H = home_legs(asm)
    t = np.linspace(0.0, duration, knots)
    s = 0.5 * (1 - np.cos(2 * np.pi * t / duration))
    w = np.linspace(0.5, 1.0, 6 * asm.n_platforms).reshape(asm.n_platforms, 6)
    return t, H[None] + amplitude * s[:, None, None] * w[None]


def received_setpoints(emu: DeviceEmulator):
    """Distinct set-points decoded from the raw bytes the device received (a retransmission
    repeats its sequence number and is counted once)."""
    frames = P.decode(bytes(emu.rx_log)).frames
    out, seen = [], set()
    for f in frames:
        if f.type == P.MsgType.SETPOINT and (f.seq, f.payload) not in seen:
            seen.add((f.seq, f.payload))
            out.append(P.parse_setpoint(f.payload))
    return out


def assert_within_limits(setpoints, start_counts, cal, dt):
    """The documented rule (docs/hardware.md), checked on what reached the device, in metres
    after converting the counts back: exact soft stroke; for lags m = 1..M, velocity within
    v_max m dt + 1 count and acceleration within a_max (m dt)^2 + 2 counts."""
    q = 1.0 / np.asarray(cal.scale)
    M = window_ticks(dt)
    L = np.array([cal.to_length(np.asarray(start_counts))] * (2 * M)
                 + [cal.to_length(np.asarray(s.counts)) for s in setpoints])
    for k in range(2 * M, len(L)):
        assert np.all(L[k] >= cal.soft_min - 1e-12) and np.all(L[k] <= cal.soft_max + 1e-12)
        for m in range(1, M + 1):
            v = np.abs(L[k] - L[k - m])
            a = np.abs(L[k] - 2 * L[k - m] + L[k - 2 * m])
            assert np.all(v <= cal.max_velocity * m * dt + q + 1e-12), (k, m)
            assert np.all(a <= cal.max_acceleration * (m * dt) ** 2 + 2 * q + 1e-12), (k, m)


def test_clean_run_delivers_every_frame_acknowledged_in_order(tmp_path):
    t, legs = smooth(DUO, 0.3)
    with EmulatorGroup(emulators_for(DUO)) as g:
        s = stream_trajectory(DUO, t, legs, g.ports, rate_hz=200, journal=tmp_path / "j.jsonl")
    assert s.status == "completed" and s.ok
    K = s.ticks_planned
    assert K == 61 and s.ticks_ramp == 0 and s.ticks_completed == K
    assert s.frames_sent == s.frames_acked == 2 * K
    assert s.faults == () and s.timeouts == s.retries  # (a retry only if the machine stalls)
    rec = read_journal(tmp_path / "j.jsonl")
    assert rec[0]["ev"] == "session" and rec[-1]["ev"] == "summary"
    for i, e in enumerate(g.emulators):
        assert e.executed_ticks() == list(range(K))  # every tick, once, in order
        assert journal_acked(rec, i) == list(range(K))
        assert s.platforms[i].last_acked_tick == K - 1 == s.platforms[i].device_last_tick
        assert s.platforms[i].stop == "not needed"
        # the counts executed are the plan's, i.e. the trajectory's rounded legs
        cal = DUO.hardware.links[i].calibration
        got = np.array([x.counts for x in e.executed])
        assert np.abs(cal.to_length(got[-1]) - legs[-1, i]).max() < 1e-5
    assert s.latency_p50_ms is not None and s.latency_p99_ms >= s.latency_p50_ms


def test_three_platforms_stay_in_lock_step():
    t, legs = smooth(TRIO, 0.4, 0.0015)
    with EmulatorGroup(emulators_for(TRIO)) as g:
        s = stream_trajectory(TRIO, t, legs, g.ports, rate_hz=100)
    assert s.ok
    K = s.ticks_planned
    times = np.array([[x.t for x in e.executed] for e in g.emulators])  # (3, K)
    for e in g.emulators:
        assert e.executed_ticks() == list(range(K))
    spread = times.max(axis=0) - times.min(axis=0)
    assert np.median(spread) < 0.005  # the same tick reaches all three within a few ms
    # lock-step: no platform gets tick k before every platform has executed tick k-1
    assert np.all(times.min(axis=0)[1:] > times.max(axis=0)[:-1])
    # paced at the stream rate on absolute deadlines: never ahead of schedule, and with no
    # overrun (a stall shifts the schedule instead of catching up) no drift either
    t0 = times.min(axis=0)[0]
    assert np.all(times.max(axis=0) - t0 >= np.arange(K) / 100 - 0.002)
    if s.overruns == 0:
        assert abs(times.mean(axis=0)[-1] - times.mean(axis=0)[0] - (K - 1) / 100) < 0.01


def test_ramp_from_where_the_device_is():
    H = home_legs(DUO)
    cals = calibrations(DUO)
    offset = np.array([0.004, -0.003, 0.0, 0.002, 0.0, -0.001])
    init = H + offset[None]
    t, legs = smooth(DUO, 0.4, 0.001)
    with EmulatorGroup(emulators_for(DUO, initial_legs=init)) as g:
        s = stream_trajectory(DUO, t, legs, g.ports, rate_hz=100)
    assert s.ok and s.ticks_ramp > 5
    for i, e in enumerate(g.emulators):
        start = cals[i].to_counts(init[i])
        assert_within_limits(received_setpoints(e), start, cals[i], 0.01)
        first = np.array(e.executed[0].counts)
        assert np.abs(first - start).max() <= 2  # the first set-point is next to the device
        assert e.executed_ticks() == list(range(s.ticks_planned))


def test_target_move_and_heartbeat_keep_the_watchdog_fed():
    asm = dataclasses.replace(DUO, hardware=dataclasses.replace(
        DUO.hardware, watchdog_s=0.4, heartbeat_s=0.05))
    target = home_legs(asm) + 0.001
    with EmulatorGroup(emulators_for(asm)) as g:
        s = stream_target(asm, target, g.ports, rate_hz=100, start_delay_s=0.3, hold_s=0.3)
        assert s.ok, s.faults
        assert all("watchdog" not in e.event_kinds() for e in g.emulators)
        hb = [f for _, f in g.emulators[0].received if f.type == P.MsgType.HEARTBEAT]
        assert len(hb) >= 8
        # without heartbeats the watchdog trips: HOLD + WATCHDOG bit ...
        time.sleep(0.7)
        e = g.emulators[0]
        assert "watchdog" in e.event_kinds()
        assert e.state == P.State.HOLD and e.fault_bits & P.Fault.WATCHDOG
        # ... which the next session clears (the device held still) and streams again
        s2 = stream_target(asm, home_legs(asm), g.ports, rate_hz=100)
        assert s2.ok and "clear" in e.event_kinds()


def test_duplicate_sequence_is_idempotent_on_the_device():
    cal = DUO.hardware.links[0].calibration
    c0 = cal.to_counts(home_legs(DUO)[0])
    import serial

    with DeviceEmulator(cal, address=1, initial_counts=c0) as e:
        port = serial.serial_for_url(e.port, timeout=0.5)
        frame = P.encode_frame(P.MsgType.SETPOINT, 1, 42, P.pack_setpoint(0, c0 + 1))
        dec = P.Decoder()
        replies = []
        for _ in range(3):
            port.write(frame)
            deadline = time.monotonic() + 1
            n = len(replies)
            while len(replies) == n and time.monotonic() < deadline:
                replies += dec.feed(port.read(port.in_waiting or 1))
        port.close()
    assert [r.seq for r in replies] == [42, 42, 42]
    assert all(r.type == P.MsgType.ACK for r in replies)
    assert len(e.executed) == 1 and e.event_kinds().count("duplicate") == 2


def test_device_refuses_setpoints_outside_its_limits():
    cal = DUO.hardware.links[0].calibration
    c0 = cal.to_counts(home_legs(DUO)[0])
    import serial

    with DeviceEmulator(cal, address=1, initial_counts=c0) as e:
        port = serial.serial_for_url(e.port, timeout=0.5)
        bad = c0.copy()
        bad[3] = cal.to_counts(np.full(6, cal.soft_max[3] + 0.01))[3]
        port.write(P.encode_frame(P.MsgType.SETPOINT, 1, 1, P.pack_setpoint(0, bad)))
        dec = P.Decoder()
        out = []
        deadline = time.monotonic() + 1
        while not out and time.monotonic() < deadline:
            out += dec.feed(port.read(port.in_waiting or 1))
        port.close()
    nak = P.parse_nak(out[0].payload)
    assert out[0].type == P.MsgType.NAK and nak.code == P.NakCode.LIMIT
    assert nak.faults & P.Fault.LIMIT and e.executed == []


_H = home_legs(DUO)


@settings(max_examples=25, deadline=None, suppress_health_check=SUPPRESS,
          derandomize=True)
@given(knots=st.integers(2, 6), spacing=st.floats(0.02, 0.15),
       amp=st.floats(1e-5, 0.08), seed=st.integers(0, 2**32 - 1),
       start_off=st.floats(-0.002, 0.002))
def test_random_trajectories_never_put_a_frame_past_a_limit(knots, spacing, amp, seed,
                                                           start_off):
    """Either the plan is refused before any set-point is sent, or every set-point that
    reached the devices (decoded from their raw received bytes) is within the limits."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(np.r_[0.0, rng.uniform(0.5, 1.0, knots - 1) * spacing])
    legs = _H[None] + amp * rng.uniform(-1, 1, (knots, 2, 6))
    init = _H + start_off
    cals = calibrations(DUO)
    with EmulatorGroup(emulators_for(DUO, initial_legs=init)) as g:
        try:
            s = stream_trajectory(DUO, t, legs, g.ports, rate_hz=200)
        except LimitViolation:
            s = None
    event("refused before sending" if s is None else "streamed")
    for i, e in enumerate(g.emulators):
        sps = received_setpoints(e)
        if s is None:
            assert sps == []  # refused before sending: no set-point reached the device
            continue
        assert s.ok
        assert len(sps) == s.ticks_planned
        assert_within_limits(sps, cals[i].to_counts(init[i]), cals[i], 1 / 200)


@settings(max_examples=15, deadline=None, suppress_health_check=SUPPRESS,
          derandomize=True)
@given(steps=st.lists(st.integers(-40, 40), min_size=5, max_size=40),
       seed=st.integers(0, 2**16))
def test_gate_holds_even_when_the_plan_check_is_bypassed(steps, seed):
    """A caller that skips the planner (a plan with arbitrary counts) still cannot get a
    frame past a limit: the gate refuses it, the stream stops and what reached the devices is
    within limits."""
    rng = np.random.default_rng(seed)
    cals = calibrations(DUO)
    c0 = np.stack([cals[i].to_counts(_H[i]) for i in range(2)])
    deltas = np.asarray(steps)[:, None, None] * rng.integers(0, 2, (len(steps), 2, 6))
    counts = c0[None] + np.cumsum(deltas, axis=0)
    from hardware.plan import Plan

    plan = Plan(100.0, cals[0].to_length(counts), counts.astype(np.int64),
                np.arange(len(steps)) / 100.0, 0, c0, "unchecked")
    with EmulatorGroup(emulators_for(DUO)) as g:
        with Streamer(DUO, g.ports, rate_hz=100) as s:
            s.prepare()
            summ = s.run(plan)
    if summ.status == "fault":
        assert all(f.kind == "limit" for f in summ.faults)
        assert all(p.stop == "acked" for p in summ.platforms)
    for i, e in enumerate(g.emulators):
        assert_within_limits(received_setpoints(e), c0[i], cals[i], 0.01)


class _NoFileno:
    """A pyserial port seen without a file descriptor: the streamer must poll it."""

    def __init__(self, url):
        import serial

        self._s = serial.serial_for_url(url, timeout=0)
        self.port = url

    def write(self, data):
        return self._s.write(data)

    def read(self, n=1):
        return self._s.read(n)

    @property
    def in_waiting(self):
        return self._s.in_waiting

    def close(self):
        self._s.close()


def test_ports_without_file_descriptor_are_polled(tmp_path):
    t, legs = smooth(DUO, 0.2, 0.0005)
    with EmulatorGroup(emulators_for(DUO)) as g:
        serials = [_NoFileno(p) for p in g.ports]
        s = stream_trajectory(DUO, t, legs, serials=serials, rate_hz=100)
    assert s.ok and all(e.executed_ticks() == list(range(s.ticks_planned)) for e in g.emulators)


def test_refused_plan_is_journaled_and_sends_no_setpoint(tmp_path):
    t, legs = smooth(DUO, 0.2, 0.02)  # far too fast
    with EmulatorGroup(emulators_for(DUO)) as g:
        with Streamer(DUO, g.ports, rate_hz=100, journal=tmp_path / "j.jsonl") as s:
            start = s.prepare()
            with pytest.raises(LimitViolation):
                s.plan(t, legs, start)
    rec = read_journal(tmp_path / "j.jsonl")
    assert rec[-1]["ev"] == "refused" and "actuator" in rec[-1]["message"]
    assert not any(r.get("type") == "SETPOINT" for r in rec)
    assert all(received_setpoints(e) == [] for e in g.emulators)


def test_ticks_start_on_their_deadlines_never_early():
    """The pacing loop (sleep, then poll the clock for the last SPIN_S) never starts a tick
    before its absolute deadline, and puts the thread's timer slack back afterwards."""
    import sys

    from hardware import timing as S

    t, legs = smooth(DUO, 0.3, 0.0008)
    slack = S.set_timer_slack(40_000)
    try:
        with EmulatorGroup(emulators_for(DUO)) as g:
            st = Streamer(DUO, g.ports, rate_hz=200)
            with st:
                summary = st.run(st.plan(t, legs, st.prepare(), source="test"))
        assert summary.ok
        late = np.asarray(st.stats.lateness)
        assert late.size == summary.ticks_planned and late.min() >= 0.0
        if sys.platform.startswith("linux"):
            assert S.set_timer_slack(50_000) == 40_000  # restored after the stream
    finally:
        S.set_timer_slack(slack)


def test_wait_until_sleeps_then_polls_to_the_deadline():
    """wait_until: one sleep of (deadline - now - SPIN_S), then clock polls until the deadline
    (fake clock: deterministic)."""
    from hardware.timing import SPIN_S, wait_until

    t = [0.0]
    slept = []

    def clock():
        t[0] += 1e-5  # every reading advances 10 us
        return t[0]

    def sleep(d):
        slept.append(d)
        t[0] += d

    assert wait_until(0.01, clock, sleep) >= 0.01
    assert len(slept) == 1 and abs(slept[0] - (0.01 - 1e-5 - SPIN_S)) < 1e-12
    slept.clear()
    assert wait_until(t[0] + SPIN_S / 2, clock, sleep) > 0 and slept == []  # too close: poll only
