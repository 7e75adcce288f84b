"""Replies checked in full and controllers identified (issue 13): an ACK reporting ESTOP or a
device fault is not a success, swapped cables and duplicate controllers are refused before any
set-point, and stream quality limits (gaps, lag, retransmissions) end a run as faulted or
degraded instead of a clean "completed"."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from hardware_support import hang_guard, journal_acked  # noqa: F401 (autouse fixture)

import assemblers
from hardware import protocol as P
from hardware.emulator import EmulatorGroup, FaultPlan, emulators_for
from hardware.plan import home_legs
from hardware.streamer import read_journal, stream_trajectory

DUO = assemblers.load_config("duo")


def smooth(duration=0.4, amplitude=0.0008):
    H = home_legs(DUO)
    t = np.linspace(0.0, duration, 21)
    s = 0.5 * (1 - np.cos(2 * np.pi * t / duration))
    return t, H[None] + amplitude * s[:, None, None]


def _run(faults=None, platform=1, journal=None, asm=DUO, emus=None, **kw):
    t, legs = smooth(kw.pop("duration", 0.4))
    emus = emus or emulators_for(asm)
    if faults is not None:
        emus[platform].faults = faults
    with EmulatorGroup(emus) as g:
        s = stream_trajectory(asm, t, legs, g.ports, rate_hz=100, journal=journal, **kw)
    return s, g.emulators


@pytest.mark.parametrize("fault, state", [
    (["estop-after=10", "ack-when-faulted=true"], "ESTOP"),
    (["device-fault-after=10", "ack-when-faulted=true"], "FAULT"),
])
def test_ack_reporting_a_fault_state_is_not_a_success(fault, state):
    """A device whose ACKs report ESTOP (its own button) or FAULT: the host stops at the first
    such ACK (it used to count them as acknowledged and report "completed")."""
    s, emus = _run(FaultPlan.parse(fault))
    assert s.status == "fault", s.table()
    f = s.faults[0]
    assert f.kind == "state" and f.platform == 1 and f.tick == 9 and f"state {state}" in f.message
    assert s.ticks_completed == 9 and s.platforms[1].unconfirmed_ticks == (9,)
    assert emus[1].executed_ticks() == list(range(10))  # the 10th executed, then it tripped
    assert max(emus[0].executed_ticks()) == 9  # lock-step: nobody went further
    assert all("stop" in e.event_kinds() for e in emus)


def test_swapped_cables_are_refused_with_nothing_but_identify_sent():
    from hardware.streamer import WiringError

    t, legs = smooth()
    with EmulatorGroup(emulators_for(DUO)) as g:
        with pytest.raises(WiringError, match=r"platform 0 .* answers IDENTIFY as address 2.*"
                           r"configured address is 1: cables swapped"):
            stream_trajectory(DUO, t, legs, g.ports[::-1], rate_hz=100)
    for e in g.emulators:
        assert {f.type for _, f in e.received} == {P.MsgType.IDENTIFY}


def test_the_same_controller_on_two_ports_is_refused():
    """Two ports answering with the same (address, device id): refused.  (The config refuses
    duplicate addresses; this asm is built by hand to get past it.)"""
    from hardware.emulator import DeviceEmulator
    from hardware.streamer import WiringError

    links = tuple(dataclasses.replace(lk, address=1) for lk in DUO.hardware.links)
    asm = dataclasses.replace(DUO, hardware=dataclasses.replace(DUO.hardware, links=links))
    cal = links[0].calibration
    init = cal.to_counts(home_legs(DUO)[0])
    emus = [DeviceEmulator(cal, address=1, seed=7, initial_counts=init) for _ in range(2)]
    assert emus[0].device_id == emus[1].device_id != 0
    t, legs = smooth()
    with EmulatorGroup(emus) as g:
        with pytest.raises(WiringError, match="report the same controller"):
            stream_trajectory(asm, t, legs, g.ports, rate_hz=100)
    assert all({f.type for _, f in e.received} == {P.MsgType.IDENTIFY} for e in emus)


def test_identities_are_journaled(tmp_path):
    s, emus = _run(journal=tmp_path / "j.jsonl")
    assert s.ok
    ids = [r for r in read_journal(tmp_path / "j.jsonl") if r["ev"] == "identify"]
    assert [(r["platform"], r["address"], r["device_id"]) for r in ids] == [
        (i, e.address, e.device_id) for i, e in enumerate(emus)]


def test_slow_stream_is_degraded():
    """Every reply 25 ms late at 100 Hz: the stream runs at a third of its speed.  Everything
    is delivered, but the run ends "degraded" (it used to say "completed")."""
    s, emus = _run(FaultPlan(delay_s=0.025), duration=0.6)
    assert s.faults == () and s.ticks_completed == s.ticks_planned
    assert all(e.executed_ticks() == list(range(s.ticks_planned)) for e in emus)
    assert s.status == "degraded" and s.exit_status == 1
    assert s.quality.lag_s > DUO.hardware.max_lag_s
    assert any("behind its schedule" in v for v in s.quality.violations)
    assert s.duration_s > 2.5 * s.ticks_planned / s.rate_hz


def test_many_retransmissions_degrade_the_run():
    s, emus = _run(FaultPlan(drop_reply=0.25))
    assert s.faults == () and all(e.executed_ticks() == list(range(s.ticks_planned))
                                  for e in emus)
    assert s.quality.retry_rate > DUO.hardware.max_retry_rate
    assert s.status == "degraded"
    assert any("retransmitted" in v for v in s.quality.violations)


def test_gap_mid_motion_is_a_fault():
    """The host stalls 0.3 s mid-motion (inside the loop): more than max_gap_s, so the stream
    stops there instead of resuming (it used to resume and report "completed")."""
    def progress(done, total):
        if done == 15:
            time.sleep(0.3)

    s, emus = _run(progress=progress)
    assert s.status == "fault" and s.faults[0].kind == "gap" and s.faults[0].tick == 15
    assert s.quality.gap_max_s > DUO.hardware.max_gap_s
    assert all(e.executed_ticks() == list(range(15)) for e in emus)
    assert all("stop" in e.event_kinds() for e in emus)


def test_second_fault_is_not_dropped():
    """Both platforms fault at the same tick: both faults are in the summary (the second one
    used to be thrown away)."""
    emus = emulators_for(DUO)
    for e in emus:
        e.faults = FaultPlan(device_fault_after=10)
    s, _ = _run(emus=emus)
    assert s.status == "fault"
    assert sorted(f.platform for f in s.faults if f.phase == "stream") == [0, 1], s.faults
    assert all(p.final_state == "FAULT" for p in s.platforms)


def test_late_acknowledgement_counts_as_executed(tmp_path):
    """Platform 0 faults at a tick while platform 1's acknowledgement of the same tick is still
    on its way (its replies all come 3 ms late, in order): that acknowledgement, read while the
    stop is exchanged, counts."""
    emus = emulators_for(DUO)
    emus[0].faults = FaultPlan(device_fault_after=10)
    emus[1].faults = FaultPlan(delay_s=0.003)
    s, _ = _run(emus=emus, journal=tmp_path / "j.jsonl")
    assert s.faults[0].platform == 0 and s.faults[0].tick == 9
    p1 = s.platforms[1]
    assert p1.last_acked_tick == 9 and p1.unconfirmed_ticks == () and p1.device_last_tick == 9
    assert journal_acked(read_journal(tmp_path / "j.jsonl"), 1) == list(range(10))
