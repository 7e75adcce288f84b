"""The emulated controller (issues 13 and 14): its state machine driven directly with bytes (no
pty), IDENTIFY, and its exit summary, which says how many STOP and ESTOP frames it received and
what put it in its final state, so a commanded stop and a watchdog stop can be told apart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from hardware_support import ROOT, hang_guard, killed_on_exit, wait_for  # noqa: F401 (autouse fixture)

import assemblers
from hardware import protocol as P
from hardware.plan import home_legs

DUO = assemblers.load_config("duo")
CAL = DUO.hardware.links[0].calibration
C0 = CAL.to_counts(home_legs(DUO)[0])


def device(**kw):
    from hardware.emulator import Device

    return Device(CAL, address=1, initial_counts=C0, watchdog_s=0.5, **kw)


def exchange(d, frame, now):
    """Feed one frame at ``now``; return the decoded replies."""
    d.process(frame, now)
    return P.decode(d.read_output()).frames


def test_state_machine_without_a_pty():
    d = device(seed=3)
    assert (P.State(d.state).name, d.cause) == ("IDLE", "power-up")
    # IDENTIFY is answered whatever its address field says, with the device's own address
    for addr in (1, 7, 255):
        (r,) = exchange(d, P.encode_frame(P.MsgType.IDENTIFY, addr, 40 + addr), 0.0)
        assert r.type == P.MsgType.IDENT and r.address == 1 and r.seq == 40 + addr
        ident = P.parse_ident(r.payload)
        assert ident == P.Ident(1, P.PROTOCOL_VERSION, 0, d.device_id) and d.device_id != 0
    # ... but any other frame for another address is ignored
    assert exchange(d, P.encode_frame(P.MsgType.STATUS_QUERY, 2, 1), 0.0) == []
    # set-points execute, STOP holds: cause "STOP", counted
    (a,) = exchange(d, P.encode_frame(P.MsgType.SETPOINT, 1, 2, P.pack_setpoint(0, C0 + 1)),
                    0.01)
    assert P.parse_ack(a.payload).state == P.State.RUNNING and d.cause == "set-point"
    exchange(d, P.encode_frame(P.MsgType.STOP, 1, 3), 0.02)
    assert (P.State(d.state).name, d.cause, d.stop_frames) == ("HOLD", "STOP", 1)
    exchange(d, P.encode_frame(P.MsgType.STOP, 1, 3), 0.03)  # a retransmission: re-acked
    assert d.stop_frames == 2 and d.event_kinds().count("duplicate") == 1
    # the watchdog trips later (the host went quiet), but it was a commanded stop
    d.on_timer(0.03 + 0.6)
    assert d.cause == "STOP" and d.fault_bits & P.Fault.WATCHDOG
    s = d.summary()
    assert (s["stop_frames"], s["estop_frames"], s["cause"], s["state"]) == (2, 0, "STOP", "HOLD")


def test_watchdog_stop_is_told_apart_from_a_commanded_one():
    d = device()
    exchange(d, P.encode_frame(P.MsgType.SETPOINT, 1, 0, P.pack_setpoint(0, C0)), 0.0)
    d.on_timer(0.6)  # no frame for 0.6 s while RUNNING
    assert (P.State(d.state).name, d.cause) == ("HOLD", "watchdog")
    (n,) = exchange(d, P.encode_frame(P.MsgType.SETPOINT, 1, 1, P.pack_setpoint(1, C0)), 0.7)
    assert P.parse_nak(n.payload).code == P.NakCode.WATCHDOG
    exchange(d, P.encode_frame(P.MsgType.STOP, 1, 2), 0.71)  # the host's stop, after the trip
    assert d.cause == "watchdog" and d.stop_frames == 1
    exchange(d, P.encode_frame(P.MsgType.ESTOP, 1, 3), 0.72)
    assert (P.State(d.state).name, d.cause, d.estop_frames) == ("ESTOP", "ESTOP", 1)
    exchange(d, P.encode_frame(P.MsgType.CLEAR_FAULTS, 1, 4), 0.73)
    assert (P.State(d.state).name, d.cause) == ("HOLD", "CLEAR_FAULTS")


def test_device_fault_and_own_estop_causes():
    from hardware.emulator import FaultPlan

    for fp, state, cause in ((FaultPlan(device_fault_after=2), "FAULT", "device fault"),
                             (FaultPlan(estop_after=2), "ESTOP", "ESTOP (device)")):
        d = device(faults=fp)
        for k in range(3):
            exchange(d, P.encode_frame(P.MsgType.SETPOINT, 1, k, P.pack_setpoint(k, C0)),
                     k * 0.01)
        assert (P.State(d.state).name, d.cause) == (state, cause)
        assert len(d.executed) == 2


def test_emulated_device_ids_are_reproducible_and_distinct():
    from hardware.emulator import emulated_device_id, emulators_for

    emus = emulators_for(assemblers.load_config("trio"))
    ids = [e.device_id for e in emus]
    assert len(set(ids)) == 3 and 0 not in ids
    assert ids == [emulated_device_id(i, e.address) for i, e in enumerate(emus)]


def test_emulate_exit_summary_says_what_stopped_each_device(tmp_path):
    """`assemblers emulate --json` in a process of its own; a stream stopped because tick 5's
    acknowledgements never come; the host goes away and the devices' watchdog trips later.
    On SIGINT the emulator's summary says per device how many STOP/ESTOP frames arrived and
    that a STOP (not the watchdog that tripped afterwards) holds it."""
    import time

    from hardware_support import write_trajectory

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, "-m", "assemblers.cli", "emulate", "--config", "duo",
                          "--json", "--fault", "drop-reply-at=5", "--fault", "at-ticks=true"],
                         stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    with killed_on_exit(p):
        ports = json.loads(p.stdout.readline())["ports"]
        traj = write_trajectory(tmp_path / "t.json", DUO, duration=0.5)
        s = subprocess.run([sys.executable, "-m", "assemblers.cli", "stream", "--trajectory",
                            traj, "--port", ports[0], "--port", ports[1], "--no-progress",
                            "--json"], capture_output=True, text=True, env=env, cwd=ROOT,
                           timeout=60)
        assert s.returncode == 1, s.stderr
        assert json.loads(s.stdout)["faults"][0]["kind"] == "timeout"
        time.sleep(DUO.hardware.watchdog_s + 0.3)  # the watchdog trips after the stop
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
    assert p.returncode == 0 and "Traceback" not in err
    devices = json.loads(out.strip().splitlines()[-1])["devices"]
    for d in devices:
        assert (d["cause"], d["state"], d["stop_frames"], d["estop_frames"]) == (
            "STOP", "HOLD", 1, 0), d
        assert d["setpoints_executed"] == 6 and d["last_tick"] == 5
        assert "WATCHDOG" in d["faults"] and d["watchdog_trips"] == 1
    assert err.count("1 STOP and 0 ESTOP frame(s) received") == 2
    assert err.count("state HOLD (by STOP)") == 2


def test_the_emulator_has_no_entry_point_of_its_own():
    """`assemblers emulate` is the way in (issue 14): `python -m hardware.emulator` is gone."""
    p = subprocess.run([sys.executable, "-m", "hardware.emulator"], capture_output=True,
                       text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                       timeout=60)
    assert p.returncode != 0 and "cannot be directly executed" in p.stderr


@pytest.mark.parametrize("name", ["hardware.emulator", "hardware"])
def test_public_names_still_import(name):
    import importlib

    mod = importlib.import_module(name)
    for n in ("DeviceEmulator", "EmulatorGroup", "FaultPlan"):
        assert getattr(mod, n).__name__ == n
    if name == "hardware":
        for n in ("Streamer", "StreamSummary", "stream_trajectory", "stream_target",
                  "read_journal", "DeviceNotReady", "StreamError", "SafetyGate",
                  "LimitViolation", "Plan", "Decoder", "LinkError"):
            assert getattr(mod, n).__name__ == n
