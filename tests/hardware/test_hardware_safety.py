"""Safety gate and plan checks: nothing past a limit gets encoded, whatever the caller asks."""

from __future__ import annotations

import numpy as np
import pytest
from hardware_support import hang_guard  # noqa: F401 (autouse fixture)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import assemblers
from hardware import protocol as P
from hardware.link import DeviceLink, NullPort
from hardware.plan import (
    calibrations,
    home_legs,
    plan_target,
    plan_trajectory,
    quintic_ramp,
    resample,
    to_counts,
)
from hardware.safety import (
    Limits,
    LimitViolation,
    SafetyGate,
    check_legs,
    verify_counts,
    window_ticks,
)

ASM = assemblers.load_config("duo")
CAL = ASM.hardware.links[0].calibration
HOME = home_legs(ASM)


SUPPRESS = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


def independent_check(counts_seq, start_counts, cal, dt):
    """The documented gate rule, written out plainly: stroke exactly; for every lag m up to
    ceil(0.1 s / dt), first differences <= v_max m dt + 1 count and second differences <=
    a_max (m dt)^2 + 2 counts, in metres after converting counts back."""
    q = 1.0 / np.asarray(cal.scale)
    M = window_ticks(dt)
    L = [cal.to_length(np.asarray(start_counts))] * (2 * M) + [
        cal.to_length(np.asarray(c)) for c in counts_seq]
    L = np.array(L)
    bad = []
    for k in range(2 * M, len(L)):
        if np.any(L[k] < cal.soft_min - 1e-12) or np.any(L[k] > cal.soft_max + 1e-12):
            bad.append((k - 2 * M, "stroke"))
        for m in range(1, M + 1):
            v = np.abs(L[k] - L[k - m])
            if np.any(v > cal.max_velocity * m * dt + q + 1e-12):
                bad.append((k - 2 * M, "velocity", m))
            a = np.abs(L[k] - 2 * L[k - m] + L[k - 2 * m])
            if np.any(a > cal.max_acceleration * (m * dt) ** 2 + 2 * q + 1e-12):
                bad.append((k - 2 * M, "acceleration", m))
    return bad


class ScheduleClock:
    """The gate's clock for tests that send on the nominal schedule: ``tick(k)`` sets it to
    k * dt (a stream that starts every tick exactly on its deadline)."""

    def __init__(self, dt):
        self.dt, self.t = dt, 0.0

    def tick(self, k):
        self.t = k * self.dt
        return self

    def __call__(self):
        return self.t


def _gate(dt=0.01):
    clock = ScheduleClock(dt)
    g = SafetyGate(CAL, dt, platform=1, clock=clock)
    g.reset(CAL.to_counts(HOME[1]))
    g.clock = clock
    return g


def test_gate_admits_rest_and_refuses_each_limit():
    g = _gate()
    c0 = CAL.to_counts(HOME[1])
    frame = g.encode(0, 2, 0, c0)
    g.clock.tick(1)  # the next frame, one period later
    f = P.decode(frame).frames[0]
    assert f.type == P.MsgType.SETPOINT and P.parse_setpoint(f.payload).counts == tuple(c0)
    # stroke: a set-point past soft_max, approached legally, is refused
    with pytest.raises(LimitViolation, match="position") as e:
        g.check(CAL.to_counts(np.full(6, CAL.soft_max[0] + 1e-3)))
    assert e.value.platform == 1 and e.value.limit == "position"
    # velocity: 1 mm in one 10 ms tick = 0.1 m/s > 0.05
    with pytest.raises(LimitViolation, match="velocity|acceleration"):
        g.check(c0 + 100)
    # acceleration: 3 counts from rest in one tick = 0.3 m/s^2 allowed? 5 counts is not:
    # 5e-5 m / 1e-4 s^2 = 0.5 m/s^2 + 2 counts of resolution allowance -> 7 counts refused
    g.check(c0 + 7)
    with pytest.raises(LimitViolation, match="acceleration") as e:
        g.check(c0 + 8)
    assert e.value.limit == "acceleration" and e.value.actuator == 0
    assert "platform 1 actuator 0" in str(e.value)


def test_refusal_leaves_state_unchanged_and_wrong_input_is_refused():
    g = _gate()
    c0 = CAL.to_counts(HOME[1])
    g.encode(0, 2, 0, c0)
    g.clock.tick(1)
    with pytest.raises(LimitViolation):
        g.encode(1, 2, 1, c0 + 1000)
    assert g.admitted == 1 and g.refused == 1
    g.encode(1, 2, 1, c0)  # still from rest at c0
    for bad in ([1, 2, 3], np.full(6, 0.5) + c0, ["a"] * 6, np.full(6, 2**40)):
        with pytest.raises(LimitViolation):
            g.check(bad)
    with pytest.raises(RuntimeError, match="reset"):
        SafetyGate(CAL, 0.01).check(c0)
    # a stream has started: reset only after a STOP (the link tells the gate)
    with pytest.raises(RuntimeError, match="stopped state"):
        g.reset(c0 + 100)


def test_gate_catches_sustained_acceleration_hidden_in_resolution():
    # at 1 kHz one count per tick^2 is 10 m/s^2, within the per-tick resolution allowance;
    # but a sustained ramp-up is caught at longer lags
    dt = 0.001
    g = SafetyGate(CAL, dt)
    c0 = CAL.to_counts(HOME[0])
    g.reset(c0)
    c = c0.copy()
    v = 0
    with pytest.raises(LimitViolation, match="acceleration|velocity"):
        for k in range(200):
            v = min(v + 1, 4)  # velocity 4 counts/ms = 0.04 m/s, inside v_max
            c = c + v
            g.encode(k, 1, k, c, now=k * dt)
    assert g.admitted < 10


def test_link_refuses_setpoints_outside_the_gate():
    port = NullPort()
    link = DeviceLink(port, url="null", platform=0, address=1, calibration=CAL,
                      period_s=0.01)
    with pytest.raises(PermissionError):
        link.send(P.MsgType.SETPOINT, P.pack_setpoint(0, [0] * 6))
    link.gate.reset(CAL.to_counts(HOME[0]))
    with pytest.raises(LimitViolation):
        link.send_setpoint(0, CAL.to_counts(HOME[0]) + 5000)
    assert port.written == []  # nothing reached the port


@settings(max_examples=150, deadline=None, suppress_health_check=SUPPRESS)
@given(st.sampled_from([0.001, 0.01, 0.05]),
       st.lists(st.lists(st.integers(-12, 12), min_size=6, max_size=6), min_size=1,
                max_size=60),
       st.integers(0, 3))
def test_gate_admits_only_sequences_within_limits(dt, steps, scale_pow):
    """Random count walks (steps scaled up to 1000 counts per tick) hammer the gate: every
    set-point it admits, together with those before it, satisfies the documented rule."""
    g = SafetyGate(CAL, dt)
    c0 = CAL.to_counts(HOME[0])
    g.reset(c0)
    c = c0.copy()
    admitted = []
    for k, s in enumerate(steps):
        cand = c + np.asarray(s, dtype=np.int64) * 10**scale_pow
        try:
            g.encode(k, 1, k, cand, now=k * dt)  # on schedule (the streamer's pacing)
        except LimitViolation:
            continue
        admitted.append(cand)
        c = cand
    assert independent_check(admitted, c0, CAL, dt) == []


def test_plan_check_names_platform_actuator_time_and_limit():
    lims = [Limits.from_calibration(c) for c in calibrations(ASM)]
    t = np.linspace(0, 1, 11)
    legs = np.repeat(HOME[None], 11, axis=0)
    legs[6, 1, 4] = 0.33  # past leg_max 0.32 (and far too fast)
    with pytest.raises(LimitViolation) as e:
        check_legs(legs, lims, 0.1, times=t)
    assert (e.value.platform, e.value.actuator) == (1, 4)
    assert e.value.time_s == pytest.approx(0.6)
    msg = str(e.value)
    assert "platform 1 actuator 4" in msg and "t = 0.6000 s" in msg
    # velocity
    legs = np.repeat(HOME[None], 101, axis=0)
    legs[:, 0, 2] += np.linspace(0, 0.02, 101)  # 0.02 m in 0.1 s, 0.2 m/s; starts abruptly
    with pytest.raises(LimitViolation) as e:
        check_legs(legs, lims, 0.001)
    assert e.value.limit in ("velocity", "acceleration") and e.value.actuator == 2


def test_plan_ends_moving_is_refused_and_ramp_respects_limits():
    cals = calibrations(ASM)
    lims = [Limits.from_calibration(c) for c in cals]
    start = HOME.copy()
    end = HOME + np.array([[0.03, -0.02, 0, 0, 0.01, 0], [0, 0, 0, 0, 0, -0.05]])
    for rate in (10.0, 100.0, 1000.0):
        R = quintic_ramp(start, end, lims, rate)
        assert np.allclose(R[-1], end)
        check_legs(R, lims, 1 / rate, rest_before=start)  # no violation
        counts = to_counts(R, cals)
        for i in range(2):
            verify_counts(counts[:, i], cals[i].to_counts(start[i]), cals[i], 1 / rate,
                          platform=i)
    assert quintic_ramp(start, start, lims, 100.0).shape == (0, 2, 6)
    # a trajectory that ends while moving would stop abruptly: refused
    t = np.linspace(0, 0.5, 51)
    legs = HOME[None] + 0.005 * (t / 0.5)[:, None, None] ** 3
    with pytest.raises(LimitViolation, match="ends moving"):
        plan_trajectory(t, legs, cals, 100.0)


def test_plan_from_elsewhere_prepends_ramp_and_every_count_passes_the_gate():
    cals = calibrations(ASM)
    start = to_counts((HOME + 0.01)[None], cals)[0]
    plan = plan_target(HOME, cals, 200.0, start)
    assert plan.n_ramp == plan.n_ticks - 1 > 10  # the ramp, then the target itself
    assert np.all(plan.counts[-1] == to_counts(HOME[None], cals)[0])
    assert plan.t[0] < 0  # ramp ticks are before the trajectory's start
    for i in range(2):
        assert independent_check(plan.counts[:, i], start[i], cals[i], plan.period_s) == []


def test_resample_grid_and_stroke_start_outside():
    t = np.array([0.0, 0.25, 0.5])
    legs = np.repeat(HOME[None], 3, axis=0)
    tg, L = resample(t, legs, 100.0)
    assert tg.shape == (51,) and np.allclose(tg[-1], 0.5) and L.shape == (51, 2, 6)
    tg, L = resample(np.array([0.0, 0.333]), legs[:2], 10.0, "linear")
    assert tg.shape == (5,) and np.allclose(L[-1], legs[-1])  # extended to cover t[-1]
    cals = calibrations(ASM)
    outside = np.stack([c.to_counts(h + 0.1) for c, h in zip(cals, HOME)])  # not clipped
    with pytest.raises(LimitViolation, match="outside its soft stroke"):
        plan_target(HOME, cals, 100.0, outside)


@settings(max_examples=100, deadline=None, suppress_health_check=SUPPRESS)
@given(st.sampled_from([0.002, 0.01]),
       st.lists(st.lists(st.integers(-3, 3), min_size=6, max_size=6), min_size=1, max_size=40))
def test_vectorised_plan_verification_agrees_with_the_gate(dt, steps):
    c0 = CAL.to_counts(HOME[0])
    counts = c0[None] + np.cumsum(np.asarray(steps, dtype=np.int64), axis=0)
    g = SafetyGate(CAL, dt)
    g.reset(c0)
    refused_at = None
    for k, c in enumerate(counts):
        try:
            g.encode(k, 1, k, c, now=k * dt)
        except LimitViolation:
            refused_at = k
            break
    try:
        verify_counts(counts, c0, CAL, dt)
        verified_at = None
    except LimitViolation as e:
        verified_at = e.tick
    assert refused_at == verified_at


def test_legs_at_the_stroke_limit_are_accepted_and_clipped_inside():
    """An IK solution may put a leg exactly at its limit (or 1e-10 m past, round-off): the
    plan accepts it and the counts sent are the last whole count inside the stroke."""
    cals = calibrations(ASM)
    target = HOME.copy()
    target[0, :] = CAL.soft_max[0] + 1e-10
    target[1, 2] = CAL.soft_min[2] - 1e-10
    plan = plan_target(target, cals, 100.0, to_counts(HOME[None], cals)[0])
    assert plan.counts[:, 0].max() == CAL.to_counts(CAL.soft_max)[0]
    assert plan.counts[:, 1, 2].min() == CAL.to_counts(CAL.soft_min)[2]
    target[0, 0] = CAL.soft_max[0] + 1e-6  # a micrometre past is a violation
    with pytest.raises(LimitViolation, match="outside the soft stroke"):
        plan_target(target, cals, 100.0, to_counts(HOME[None], cals)[0])


@pytest.mark.parametrize("what", ["nan leg", "inf time", "repeated time", "short times"])
def test_non_finite_or_unordered_input_is_refused_before_any_port_opens(what):
    """NaN / inf legs or times and non-increasing times are refused at the API boundary with a
    message that names the entry, before any port is opened (the port here does not exist)."""
    from hardware.streamer import stream_target, stream_trajectory

    duo = assemblers.load_config("duo")
    H = home_legs(duo)
    t = np.linspace(0.0, 0.2, 5)
    legs = np.repeat(H[None], 5, axis=0)
    ports = ["/dev/no-such-port-0", "/dev/no-such-port-1"]
    if what == "nan leg":
        legs[2, 1, 3] = np.nan
        with pytest.raises(ValueError, match=r"non-finite value nan at index \(1, 3\)"):
            stream_target(duo, legs[2], ports)
        msg = r"legs: non-finite value nan at index \(2, 1, 3\)"
    elif what == "inf time":
        t[3] = np.inf
        msg = "times: non-finite value at index 3"
    elif what == "repeated time":
        t[2] = t[1]
        msg = r"strictly increasing \(index 2\)"
    else:
        t = t[:4]
        msg = r"shape \(5,\)"
    with pytest.raises(ValueError, match=msg):
        stream_trajectory(duo, t, legs, ports)
