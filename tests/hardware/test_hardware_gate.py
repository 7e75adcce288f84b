"""The safety gate as the single owner of the wire (issue 13): a clock in the gate (set-points
judged on the wall time between frames), ``reset`` only from a stopped state, no public way to
write bytes past it, and every count checked against int32 on every path."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time

import numpy as np
import pytest
from hardware_support import ROOT, hang_guard  # noqa: F401 (autouse fixture)
from support import stderr_lines

import assemblers
from hardware import protocol as P
from hardware.emulator import EmulatorGroup, emulators_for
from hardware.link import DeviceLink, NullPort
from hardware.plan import calibrations, home_legs
from hardware.safety import LimitViolation, SafetyGate

DUO = assemblers.load_config("duo")
CAL = DUO.hardware.links[0].calibration
C0 = CAL.to_counts(home_legs(DUO)[0])
DT = 0.01  # 100 Hz: one tick's velocity allowance is v_max dt = 0.5 mm = 50 counts


def ramp_counts(n):
    """(n, 6) counts that speed up by 5 counts per tick to 50 counts per tick (v_max, a_max
    respected tick by tick) and then cruise: each set-point within one tick's allowance."""
    v = np.minimum(5 * np.arange(1, n + 1), 50)
    return C0[None] + np.cumsum(v)[:, None] * np.ones(6, dtype=np.int64)


def test_setpoints_sent_back_to_back_are_refused_on_wall_time():
    """Set-points each within one tick's allowance, written back to back to an emulated
    device: the gate refuses them within a few frames, and over every window of what reached
    the device, the displacement is within v_max x (the wall time + half a period) + one
    count (it used to let all of them through, at 30x max_velocity and more)."""
    import serial

    counts = ramp_counts(200)
    with EmulatorGroup(emulators_for(DUO, n=1)) as g:
        port = serial.serial_for_url(g.ports[0], timeout=0)
        link = DeviceLink(port, url=g.ports[0], platform=0, address=1, calibration=CAL,
                          period_s=DT)
        link.gate.reset(C0)
        sent = []
        with pytest.raises(LimitViolation, match="velocity|acceleration"):
            for k, c in enumerate(counts):
                link.send_setpoint(k, c)
                sent.append((time.perf_counter(), k))
        time.sleep(0.05)
        link.close()
    assert len(sent) < 10
    got = g.emulators[0].received_setpoints()
    assert [s.tick for s in got] == [k for _, k in sent]
    t = np.array([x for x, _ in sent])
    L = np.array([CAL.to_length(np.asarray(s.counts))[0] for s in got])
    q = 1 / CAL.scale[0]
    for i in range(len(L)):
        for j in range(i + 1, len(L)):
            assert abs(L[j] - L[i]) <= CAL.max_velocity[0] * (t[j] - t[i] + DT / 2) + q + 1e-12


def test_gate_clock_rule_with_a_controlled_clock():
    """Deterministic: on schedule the gate is the tick rule; a frame early by more than half a
    period shrinks the allowance; a frame late earns no extra allowance; a retransmission moves
    the frame's time (the device may execute it then)."""
    now = [0.0]
    g = SafetyGate(CAL, DT, clock=lambda: now[0])
    g.reset(C0)
    counts = ramp_counts(30)
    for k in range(20):  # on schedule: all admitted
        now[0] = k * DT
        g.encode(k, 1, k, counts[k])
    # the next one a quarter period after the previous: refused (velocity on wall time)
    now[0] = 19 * DT + DT / 4
    with pytest.raises(LimitViolation, match="sent within"):
        g.check(counts[20])
    # 0.6 s late: the same step is fine (nothing more than the nominal allowance)...
    now[0] = 19 * DT + 0.6
    g.check(counts[20])
    # ... but a step twice the allowance is refused even after a long pause
    with pytest.raises(LimitViolation, match="velocity|acceleration"):
        g.check(counts[19] + 2 * (counts[19] - counts[18]))
    # tick 19 retransmitted 8 ms late: tick 20 may only follow half a period after that
    g._retransmitted(19 * DT + 0.008)
    now[0] = 20 * DT
    with pytest.raises(LimitViolation):
        g.check(counts[20])
    now[0] = 19 * DT + 0.008 + DT / 2
    g.check(counts[20])


def test_reset_only_from_a_stopped_state():
    port = NullPort()
    link = DeviceLink(port, url="null", platform=0, address=1, calibration=CAL, period_s=DT)
    link.gate.reset(C0)
    link.gate.reset(C0 + 3)  # nothing sent since: still at rest
    link.gate.reset(C0)
    link.send_setpoint(0, C0)
    with pytest.raises(RuntimeError, match="stopped state"):
        link.gate.reset(C0 + 1000)  # mid-stream: refused
    link.send(P.MsgType.STOP)
    with pytest.raises(RuntimeError, match="stopped"):
        link.send_setpoint(1, C0)  # nothing passes after a STOP...
    link.resend()  # a retransmission now repeats the STOP, never the set-point before it
    assert P.decode(port.written[-1]).frames[0].type == P.MsgType.STOP
    link.gate.reset(C0 + 1)  # ... until the gate is reset from where the device holds
    link.send_setpoint(1, C0 + 1)


def test_no_public_way_past_the_gate():
    """The link keeps its port and its last frame to itself; a retransmission writes the bytes
    the gate produced, nothing a caller set."""
    port = NullPort()
    link = DeviceLink(port, url="null", platform=0, address=1, calibration=CAL, period_s=DT)
    assert not hasattr(link, "port")
    with pytest.raises(AttributeError):
        link.last_frame = P.encode_frame(P.MsgType.SETPOINT, 1, 0, P.pack_setpoint(0, C0 + 9999))
    with pytest.raises(AttributeError):
        link.gate = SafetyGate(CAL, DT)
    link.gate.reset(C0)
    link.send_setpoint(0, C0 + 1)
    link.resend()
    assert port.written[0] == port.written[1] == link.last_frame
    assert P.parse_setpoint(P.decode(port.written[1]).frames[0].payload).counts == tuple(C0 + 1)
    with pytest.raises(PermissionError):
        link.send(P.MsgType.SETPOINT, P.pack_setpoint(1, C0))


def _int32_cal():
    """A calibration whose counts fit int32 at soft_min but not at soft_max (offset chosen so):
    accepted by the old code, then a struct.error mid-motion."""
    lo = CAL.scale[0] * CAL.soft_min[0]
    span = CAL.scale[0] * (CAL.soft_max[0] - CAL.soft_min[0])
    off = np.full(6, 2**31 - 1 - lo - span / 2)
    return dataclasses.replace(CAL, offset=off)


def test_counts_outside_int32_are_refused_on_every_path():
    bad = _int32_cal()
    with pytest.raises(LimitViolation, match="int32"):
        SafetyGate(bad, DT)
    asm = dataclasses.replace(DUO, hardware=dataclasses.replace(DUO.hardware, links=tuple(
        dataclasses.replace(lk, calibration=bad) for lk in DUO.hardware.links)))
    from hardware.plan import plan_trajectory
    from hardware.streamer import stream_trajectory

    H = home_legs(DUO)
    t = np.linspace(0, 1.0, 11)
    legs = H[None] + np.linspace(0, 0.02, 11)[:, None, None] * np.sin(np.pi * t)[:, None, None]
    with pytest.raises(LimitViolation, match="int32"):
        plan_trajectory(t, legs, calibrations(asm), 100.0)
    with EmulatorGroup(emulators_for(DUO)) as g:
        with pytest.raises(LimitViolation, match="int32"):  # before any port is opened
            stream_trajectory(asm, t, legs, g.ports, rate_hz=100)
    assert all(e.frames_in == 0 for e in g.emulators)


def test_int32_calibration_refused_by_config_and_cli(tmp_path):
    """`assemblers info` and `stream --dry-run` on such a config: exit 2, one line (it used to
    be accepted by info and a traceback in the dry run)."""
    off = float(_int32_cal().offset[0])  # int32 at soft_min, not at soft_max
    cfg = (ROOT / "configs" / "duo.toml").read_text()
    assert "[hardware" not in cfg
    path = tmp_path / "int32.toml"
    path.write_text(cfg + f"\n[hardware.actuator]\noffset = {off!r}\n")
    from hardware_support import write_trajectory

    traj = write_trajectory(tmp_path / "t.json", DUO, duration=0.5)
    for argv in (["info", "--config", str(path)],
                 ["stream", "--config", str(path), "--trajectory", traj, "--dry-run"]):
        p = subprocess.run([sys.executable, "-m", "assemblers.cli", *argv], capture_output=True,
                           text=True, cwd=ROOT, timeout=120)
        assert p.returncode == 2, (argv, p.stdout[-300:], p.stderr[-300:])
        assert "Traceback" not in p.stderr and len(stderr_lines(p.stderr.strip())) == 1
        assert "int32" in p.stderr
