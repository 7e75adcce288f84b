"""Injected faults (drop, corrupt, delay beyond the timeout, disconnect, device fault): each is
detected, ends with STOP on every platform whose port still works, and the journal says exactly
which set-points were executed, checked against the emulators' own logs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hardware_support import hang_guard, journal_acked  # noqa: F401 (autouse fixture)

import assemblers
from hardware.emulator import EmulatorGroup, FaultPlan, emulators_for
from hardware.plan import home_legs
from hardware.streamer import read_journal, stream_trajectory

DUO = dataclasses.replace(
    assemblers.load_config("duo"),
    hardware=dataclasses.replace(assemblers.load_config("duo").hardware, ack_timeout_s=0.04,
                                 max_retries=2))
FAULT_TICK = 10


def _trajectory(duration=0.4):
    H = home_legs(DUO)
    t = np.linspace(0.0, duration, 21)
    s = 0.5 * (1 - np.cos(2 * np.pi * t / duration))
    return t, H[None] + 0.0008 * s[:, None, None]


def run(tmp_path, fault: FaultPlan, platform=1):
    t, legs = _trajectory()
    emus = emulators_for(DUO)
    emus[platform].faults = fault
    path = tmp_path / "journal.jsonl"
    with EmulatorGroup(emus) as g:
        s = stream_trajectory(DUO, t, legs, g.ports, rate_hz=100, journal=path)
    return s, g.emulators, read_journal(path)


def assert_stopped_and_accounted(s, emus, rec, *, kind, faulty=1):
    assert s.status == "fault"
    assert [f.kind for f in s.faults] == [kind] and s.faults[0].platform == faulty
    for i, e in enumerate(emus):
        p = s.platforms[i]
        executed = e.executed_ticks()
        acked = journal_acked(rec, i)
        # the journal's acknowledged set-points are exactly what the device executed, except
        # possibly the set-points the summary lists as sent but unconfirmed
        assert executed[:len(acked)] == acked
        assert set(executed[len(acked):]) <= set(p.unconfirmed_ticks)
        assert p.last_acked_tick == (acked[-1] if acked else None)
        # lock-step: nobody got a tick past the one that failed
        assert max(executed, default=-1) <= FAULT_TICK
        if e.disconnected:
            assert p.stop == "unreachable" and p.device_last_tick is None
            continue
        # stopped: the device saw STOP, executed nothing after it, and says what it executed
        assert p.stop in ("acked", "estop")
        stop_t = [ev.t for ev in e.events if ev.kind == "stop"]
        assert stop_t, f"platform {i} was not stopped"
        assert all(x.t < stop_t[0] for x in e.executed)
        assert p.device_last_tick == (executed[-1] if executed else None)
    stops = [r for r in rec if r["ev"] == "stop"]
    assert len(stops) == len(emus)


def test_persistent_lost_acknowledgement(tmp_path):
    fp = FaultPlan(drop_reply_at=frozenset({FAULT_TICK}), at_ticks=True)
    s, emus, rec = run(tmp_path, fp)
    assert_stopped_and_accounted(s, emus, rec, kind="timeout")
    p = s.platforms[1]
    # the device executed tick 10 (only its acknowledgements were lost): the journal cannot
    # know, the device's STATUS tells
    assert p.unconfirmed_ticks == (FAULT_TICK,) and p.device_last_tick == FAULT_TICK
    assert emus[1].executed_ticks().count(FAULT_TICK) == 1  # retransmissions not re-executed
    # every retransmission of tick 10 was re-acknowledged, not re-executed (on a loaded
    # machine a slow reply elsewhere may add retries: hence >=)
    assert emus[1].event_kinds().count("duplicate") >= DUO.hardware.max_retries
    assert s.retries >= DUO.hardware.max_retries
    assert s.platforms[0].last_acked_tick == FAULT_TICK  # the healthy platform got tick 10


def test_persistent_lost_setpoint(tmp_path):
    fp = FaultPlan(drop_rx_at=frozenset({FAULT_TICK}), at_ticks=True)
    s, emus, rec = run(tmp_path, fp)
    assert_stopped_and_accounted(s, emus, rec, kind="timeout")
    assert s.platforms[1].device_last_tick == FAULT_TICK - 1  # never arrived
    assert s.platforms[1].unconfirmed_ticks == (FAULT_TICK,)


def test_persistent_corrupted_replies(tmp_path):
    fp = FaultPlan(corrupt_reply_at=frozenset({FAULT_TICK}), at_ticks=True)
    s, emus, rec = run(tmp_path, fp)
    assert_stopped_and_accounted(s, emus, rec, kind="timeout")
    assert s.bad_replies >= DUO.hardware.max_retries + 1
    assert "no valid reply" in s.faults[0].message


def test_reply_delayed_beyond_the_timeout(tmp_path):
    fp = FaultPlan(delay_at=frozenset({FAULT_TICK}), delay_at_s=0.3, at_ticks=True)
    s, emus, rec = run(tmp_path, fp)
    assert_stopped_and_accounted(s, emus, rec, kind="timeout")
    assert s.platforms[1].device_last_tick == FAULT_TICK


def test_disconnect(tmp_path):
    fp = FaultPlan(disconnect_after=13)  # IDENTIFY, 2 STATUS queries, ticks 0..9, then gone
    s, emus, rec = run(tmp_path, fp)
    assert emus[1].disconnected
    assert_stopped_and_accounted(s, emus, rec, kind="link")
    assert emus[1].executed_ticks() == list(range(10))
    assert s.platforms[1].final_state == "unknown" and s.platforms[0].stop == "acked"


def test_device_fault(tmp_path):
    fp = FaultPlan(device_fault_after=FAULT_TICK)
    s, emus, rec = run(tmp_path, fp)
    # the ACK of the set-point after which the device faulted already reports state FAULT:
    # not a success (issue 13), the stream stops at that tick instead of one later on a NAK
    assert_stopped_and_accounted(s, emus, rec, kind="state")
    assert "state FAULT" in s.faults[0].message and "DEVICE" in s.faults[0].message
    assert s.faults[0].tick == FAULT_TICK - 1
    assert s.platforms[1].final_state == "FAULT" and "DEVICE" in s.platforms[1].final_faults
    assert emus[1].executed_ticks() == list(range(FAULT_TICK))
    assert s.platforms[1].unconfirmed_ticks == (FAULT_TICK - 1,)  # acked in a fault state
    assert s.platforms[1].device_last_tick == FAULT_TICK - 1  # the device says it executed it
    assert s.naks == 0 and s.retries == 0  # a device fault is not retried


@pytest.mark.parametrize("fault", [
    FaultPlan(drop_reply_at=frozenset({FAULT_TICK}), at_ticks=True, times=1),
    FaultPlan(drop_rx_at=frozenset({FAULT_TICK}), at_ticks=True, times=1),
    FaultPlan(corrupt_reply_at=frozenset({FAULT_TICK}), at_ticks=True, times=2),
    FaultPlan(corrupt_rx_at=frozenset({FAULT_TICK}), at_ticks=True, times=1),
    FaultPlan(delay_at=frozenset({FAULT_TICK}), delay_at_s=0.06, at_ticks=True, times=1),
    FaultPlan(garbage=0.3),
], ids=["lost-ack", "lost-setpoint", "corrupt-reply", "corrupt-setpoint", "late-reply",
        "garbage"])
def test_transient_faults_are_recovered_exactly_once(tmp_path, fault):
    s, emus, rec = run(tmp_path, fault)
    assert s.status == "completed", s.faults
    K = s.ticks_planned
    for i, e in enumerate(emus):
        assert e.executed_ticks() == list(range(K))  # each tick executed exactly once
        assert journal_acked(rec, i) == list(range(K))
    if fault.garbage:
        assert s.discarded_bytes > 0  # the garbage was skipped, every frame still decoded
    else:
        assert s.retries >= 1


def test_random_loss_is_recovered(tmp_path):
    """6 % of one platform's frames lost: every tick still executed exactly once, but the run
    is reported as degraded (retransmissions above max_retry_rate), not as a clean success."""
    s, emus, rec = run(tmp_path, FaultPlan(drop_reply=0.03, drop_rx=0.03))
    assert all(e.executed_ticks() == list(range(s.ticks_planned)) for e in emus)
    assert s.faults == () and s.ticks_completed == s.ticks_planned and s.retries > 0
    rate = s.quality.retry_rate
    assert rate == s.retries / s.frames_sent  # only set-points were retransmitted here
    assert s.status == ("degraded" if rate > DUO.hardware.max_retry_rate else "completed")
    if s.status == "degraded":
        assert any("retransmitted" in v for v in s.quality.violations)


def test_seeded_fault_injection_is_reproducible():
    """Same seed, same frames: the same faults (random.Random(seed), no global RNG)."""
    from hardware import protocol as P
    from hardware.emulator import DeviceEmulator

    cal = DUO.hardware.links[0].calibration
    c0 = cal.to_counts(home_legs(DUO)[0])
    frames = [P.encode_frame(P.MsgType.SETPOINT, 1, k, P.pack_setpoint(k, c0)) for k in range(300)]
    runs = []
    for seed in (7, 7, 8):
        e = DeviceEmulator(cal, address=1, initial_counts=c0, seed=seed,
                           faults=FaultPlan(drop_reply=0.2, drop_rx=0.1, corrupt_reply=0.1,
                                            garbage=0.1))
        for k, f in enumerate(frames):
            e.process(f, now=k * 0.001)
        runs.append([(ev.kind, ev.detail) for ev in e.events])
    assert runs[0] == runs[1] != runs[2]
    assert {"dropped_reply", "dropped_rx", "corrupted_reply"} <= {k for k, _ in runs[0]}
