"""Time-optimal time scaling (assemblers/ik/timescale.py) against the host's own checks.

Every time-scaled plan must pass what ``assemblers stream`` runs before it sends anything
(``hardware.plan.plan_trajectory``: the plan check in metres, then every rounded set-point
through the gate's rule) and the safety gate itself, set-point by set-point on schedule, at the
rate it was planned for and at any lower one; its binding limit must be reached to within a
few percent (time-optimal, not merely feasible), measured here by finite differences
independently of the module's own report; and a planned move streams to the Python emulator
as it is.  The old ``assemblers trajectory`` (a fixed 2 s quintic move) wrote plans the
streamer refused: test_cli_default_move_streams fails there.
"""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest
from hardware_support import hang_guard  # noqa: F401 (autouse fixture)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import assemblers as A
from assemblers.cli import main
from assemblers.errors import InputError
from assemblers.ik import timescale as ts
from hardware.gate import SafetyGate
from hardware.plan import calibrations, home_legs, plan_trajectory, resample, to_counts
from hardware.safety import Limits, LimitViolation, check_legs

DUO = A.load_config("duo")
HOME_T = A.forward_kinematics(DUO, A.home_pose(DUO))
MOVE = "0.03 0.02 0.62 0.1 -0.05 0.2"  # 2.3 cm up, 3.6 cm sideways, 0.23 rad: a leg at its stop
SMALL = "0.01 0 0.63 0.02 0 0.05"


def duo_with_limits(vmax, amax, **extra) -> A.Assembler:
    """The duo config with per-actuator limits ``vmax`` (2, 6) m/s and ``amax`` (2, 6) m/s^2
    (and ``extra`` keys for every [[hardware.platform]])."""
    with open(DUO.source, "rb") as f:
        data = tomllib.load(f)
    data["hardware"] = {"platform": [
        {"max_velocity": [float(x) for x in vmax[i]],
         "max_acceleration": [float(x) for x in amax[i]], **extra} for i in range(2)]}
    return A.config_from_dict(data, "duo-limits")


def peaks(t, legs, asm, rate):
    """(velocity fraction, acceleration fraction) of the worst actuator, from the streamer's own
    resampling and plain finite differences at rest before and after (this test's arithmetic,
    not the module's)."""
    _, L = resample(np.asarray(t), np.asarray(legs), rate)
    cals = calibrations(asm)
    vmax = np.stack([c.max_velocity for c in cals])
    amax = np.stack([c.max_acceleration for c in cals])
    ext = np.concatenate([L[:1], L[:1], L, L[-1:], L[-1:]])
    v = np.abs(np.diff(ext, axis=0)) * rate / vmax
    a = np.abs(np.diff(ext, 2, axis=0)) * rate**2 / amax
    return float(v.max()), float(a.max())


def gate_admits_on_schedule(plan, asm):
    """Every set-point of ``plan`` through a real SafetyGate per platform, at its tick's time."""
    dt = plan.period_s
    for i, cal in enumerate(calibrations(asm)):
        gate = SafetyGate(cal, dt, platform=i, clock=lambda: 0.0)
        gate.reset(plan.start_counts[i])
        for k in range(plan.n_ticks):
            gate.encode(k & 0xFFFF, 1, k, plan.counts[k, i], now=1.0 + k * dt)


pose_offsets = st.lists(st.floats(-1.0, 1.0), min_size=12, max_size=12)


def stack_pose(u) -> np.ndarray:
    """A duo stack pose near home from 12 numbers in [-1, 1]: each platform within 8 mm and
    0.06 rad of its home pose (reachable by construction)."""
    q = A.home_pose(DUO).copy()
    scale = np.array([0.008, 0.008, 0.008, 0.06, 0.06, 0.06] * 2)
    return q + scale * np.asarray(u)


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(start=pose_offsets, end=pose_offsets,
       vfac=st.lists(st.floats(0.2, 2.0), min_size=12, max_size=12),
       afac=st.lists(st.floats(0.2, 4.0), min_size=12, max_size=12),
       rate=st.sampled_from([50.0, 100.0, 200.0, 500.0]), lower=st.floats(0.02, 1.0))
def test_time_scaled_moves_pass_the_plan_check_and_the_gate(start, end, vfac, afac, rate, lower):
    vmax = 0.05 * np.reshape(vfac, (2, 6))
    amax = 0.5 * np.reshape(afac, (2, 6))
    asm = duo_with_limits(vmax, amax)
    T0 = A.forward_kinematics(asm, stack_pose(start))
    T1 = A.forward_kinematics(asm, stack_pose(end))
    try:
        mv = ts.time_optimal_move(asm, T0, T1, rate, samples=101)
    except InputError:  # the straight line between two reachable poses left the workspace
        assume(False)
    assert mv.report.feasible and mv.t[0] == 0.0 and np.all(np.diff(mv.t) > 0)
    cals = calibrations(asm)
    for r in sorted({rate, max(3.0, round(rate * lower, 3))}):
        plan = plan_trajectory(mv.t, mv.legs, cals, r)  # raises LimitViolation if refused
        assert plan.n_ramp == 0 or np.abs(plan.legs[0] - mv.legs[0]).max() < 1e-5
        gate_admits_on_schedule(plan, asm)
        fv, fa = peaks(mv.t, mv.legs, asm, r)
        assert fv <= 1.0 and fa <= 1.0, (r, fv, fa)
    fv, fa = peaks(mv.t, mv.legs, asm, rate)
    if mv.duration_s * rate >= 20:  # a move of a few ticks cannot show its peak at this rate
        assert max(fv, fa) >= 0.94, (fv, fa, mv.duration_s)
    # the report names the limit that binds, as measured here
    assert mv.report.binding.limit == ("velocity" if fv > fa else "acceleration") or \
        abs(fv - fa) < 0.01
    # the tool stays on the line (between the IK samples the legs are interpolated)
    assert mv.tool_error[0] < 1e-4 and mv.tool_error[1] < 1e-3


def test_binding_limit_is_reached_and_never_exceeded():
    mv = ts.time_optimal_move(DUO, HOME_T, A.pose_to_transform([float(x) for x in
                                                                 SMALL.split()]), 100.0)
    fv, fa = peaks(mv.t, mv.legs, DUO, 100.0)
    b = mv.report.binding
    assert 0.95 <= max(fv, fa) <= 1.0 and min(fv, fa) <= 1.0
    assert b.fraction == pytest.approx(max(fv, fa), abs=1e-12)
    assert b.limit == ("velocity" if fv > fa else "acceleration")
    # time-optimal: a uniform speed-up of 3 % breaks a limit (the plan is at the edge) ...
    t_fast = mv.t / 1.03
    with pytest.raises(LimitViolation):
        check_legs(resample(t_fast, mv.legs, 100.0)[1],
                   [Limits.from_calibration(c) for c in calibrations(DUO)], 0.01)
    # ... and the quintic move of the same duration asks far more
    t, Ts = A.ik.straight_line(HOME_T, mv.T_target[-1], mv.duration_s, 100.0)
    r = A.solve_trajectory(DUO, t, Ts)
    assert max(peaks(r.t, r.legs, DUO, 100.0)) > 1.3


def test_limit_report_agrees_with_the_plan_check():
    """ts.limit_report(...).feasible is exactly hardware.safety.check_legs passing."""
    rng = np.random.default_rng(3)
    limits = ts.ActuatorLimits.from_assembler(DUO)
    hl = [Limits.from_calibration(c) for c in calibrations(DUO)]
    H = home_legs(DUO)
    agree = {True: 0, False: 0}
    for _ in range(300):
        K = int(rng.integers(2, 30))
        rate = float(rng.choice([20.0, 100.0, 1000.0]))
        amp = float(rng.choice([1e-6, 1e-5, 1e-4, 1e-3]))
        legs = H[None] + np.cumsum(rng.normal(scale=amp, size=(K, 2, 6)), axis=0)
        rep = ts.limit_report(legs, rate, limits)
        try:
            check_legs(legs, hl, 1.0 / rate)
            ok = True
        except LimitViolation:
            ok = False
        assert rep.feasible == ok, (K, rate, amp, rep)
        agree[ok] += 1
    assert agree[True] > 20 and agree[False] > 20


def test_resample_is_the_streamers():
    rng = np.random.default_rng(1)
    t = np.cumsum(rng.uniform(0.003, 0.03, size=40))
    legs = rng.normal(size=(40, 2, 6))
    for rate in (7.0, 100.0, 333.0):
        a, b = ts.resample(t, legs, rate), resample(t, legs, rate)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_a_path_past_tighter_soft_limits_is_reported_not_clipped():
    # the IK keeps the platform's stroke [0.20, 0.32]; soft limits inside it are the hardware's
    asm = duo_with_limits(np.full((2, 6), 0.05), np.full((2, 6), 0.5), soft_min=0.205,
                          soft_max=0.315)
    mv = ts.time_optimal_move(asm, HOME_T, A.pose_to_transform([float(x) for x in
                                                                MOVE.split()]), 100.0)
    st = mv.report.stroke
    assert st is not None and not mv.report.feasible
    assert st.limit == "stroke" and (st.value < 0.205 - 1e-6 or st.value > 0.315 + 1e-6)
    assert "past its soft stroke limit" in st.describe()
    with pytest.raises(LimitViolation, match="soft stroke"):
        plan_trajectory(mv.t, mv.legs, calibrations(asm), 100.0)


def test_a_path_that_does_not_move_is_one_sample_at_rest():
    legs = np.repeat(home_legs(DUO)[None], 5, axis=0)
    sc = ts.time_scale(legs, ts.ActuatorLimits.from_assembler(DUO), 100.0)
    assert sc.t.tolist() == [0.0] and sc.duration_s == 0.0 and sc.report.feasible


def test_cli_default_move_streams(tmp_path, capsys):
    """`assemblers trajectory --to ...` (no --duration) writes a plan the streamer accepts and
    that the Python emulator executes as it is; the output says how long and what binds."""
    from hardware.emulator import EmulatorGroup, emulators_for
    from hardware.streamer import stream_trajectory

    out = tmp_path / "move.json"
    assert main(["trajectory", "--config", "duo", "--to", MOVE, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "time-optimal move of" in text and "binding limit: platform" in text
    assert "streamable at 100 Hz" in text
    tr = A.load_trajectory(out)
    assert tr.meta["timing"] == "time-optimal" and tr.meta["streamable"] is True
    dur = tr.meta["duration_s"]
    assert f"{dur:.3f} s" in text and 1.0 < dur < 3.0
    # the file's poses are the legs' (exactly) and on the line
    np.testing.assert_allclose(A.leg_lengths(DUO, tr.Q), tr.legs, atol=1e-11)
    cals = calibrations(DUO)
    legs = np.asarray(tr.legs)
    emus = emulators_for(DUO, initial_legs=legs[0])
    with EmulatorGroup(emus) as g:
        s = stream_trajectory(DUO, tr.t, legs, g.ports, rate_hz=100.0)
    assert s.status == "completed" and s.ok, s.table()
    K = s.ticks_planned
    assert s.frames_sent == s.frames_acked == 2 * K and s.naks == 0
    last = to_counts(legs[-1:], cals)[0]
    for i, e in enumerate(emus):
        assert e.executed_ticks() == list(range(K))
        assert tuple(e.executed[-1].counts) == tuple(int(x) for x in last[i])


def test_cli_too_fast_duration_is_reported_with_the_shortest_that_passes(tmp_path, capsys):
    out = tmp_path / "fast.json"
    assert main(["trajectory", "--config", "duo", "--to", SMALL, "--duration", "0.2",
                 "--rate", "50", "--out", str(out), "--json"]) == 0
    res = capsys.readouterr()
    doc = json.loads(res.out)
    assert doc["streamable"] is False and "--duration 0.2 s is too fast" in doc["problem"]
    assert "NOT STREAMABLE" in res.err and "or longer passes" in res.err
    assert doc["limits"]["binding"] == "acceleration" and doc["limits"]["acceleration"][
        "fraction"] > 1
    shortest, optimal = doc["min_duration_s"], doc["time_optimal_s"]
    assert optimal < shortest
    cals = calibrations(DUO)
    tr = A.load_trajectory(out)  # written all the same (for animate), refused by the streamer
    with pytest.raises(LimitViolation):
        plan_trajectory(tr.t, tr.legs, cals, 50.0)
    # the duration it names passes; 5 % less does not
    for dur, ok in ((shortest, True), (round(shortest * 0.95, 2), False)):
        assert main(["trajectory", "--config", "duo", "--to", SMALL, "--duration", str(dur),
                     "--rate", "50", "--out", str(out)]) == 0
        capsys.readouterr()
        tr = A.load_trajectory(out)
        assert tr.meta["streamable"] is ok
        if ok:
            plan_trajectory(tr.t, tr.legs, cals, 50.0)
        else:
            with pytest.raises(LimitViolation):
                plan_trajectory(tr.t, tr.legs, cals, 50.0)


def test_cli_retimes_a_targets_file(tmp_path, capsys):
    p0 = A.transform_to_pose(HOME_T)
    poses = [p0 + np.array([0.004 * k, 0.002 * k, 0.003 * k, 0.01 * k, 0, 0.02 * k])
             for k in range(6)]
    src = tmp_path / "targets.csv"
    src.write_text("t,x,y,z,roll,pitch,yaw\n" + "".join(
        f"{0.01 * k},{','.join(repr(float(v)) for v in p)}\n" for k, p in enumerate(poses)))
    out = tmp_path / "r.json"
    assert main(["trajectory", "--config", "duo", "--targets", str(src), "--out", str(out)]) == 0
    assert "NOT STREAMABLE: the targets' times are too fast" in capsys.readouterr().out
    assert main(["trajectory", "--config", "duo", "--targets", str(src), "--time-optimal",
                 "--out", str(out)]) == 0
    assert "streamable at 100 Hz" in capsys.readouterr().out
    tr = A.load_trajectory(out)
    plan_trajectory(tr.t, tr.legs, calibrations(DUO), 100.0)
    # the targets are passed through: the tool reaches each of them on the way
    tool = A.transform_to_pose(A.forward_kinematics(DUO, tr.Q))
    for p in poses:
        assert np.abs(tool - p).max(axis=1).min() < 2e-3
    np.testing.assert_allclose(tool[-1], poses[-1], atol=1e-6)


@pytest.mark.parametrize("argv,fragment", [
    (["--to", SMALL, "--duration", "1", "--time-optimal"], "not both"),
    (["--targets", "x.csv", "--duration", "1"], "--duration goes with --to"),
    (["--to", SMALL, "--rate", "0"], "--rate: must be in (0, 10000]"),
])
def test_cli_bad_timing_options_exit_2(tmp_path, capsys, monkeypatch, argv, fragment):
    monkeypatch.chdir(tmp_path)
    assert main(["trajectory", "--config", "duo", *argv, "--out", "o.json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "o.json").exists()
