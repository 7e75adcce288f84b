"""Commanded lengths (issue 17): a platform's ``leg_offset``/``leg_scale`` make the facade,
the strokes, the IK limits and the streamer's home legs work in commanded lengths (what the
actuators report), with geometric length = ``leg_scale * commanded + leg_offset``; without
them everything is as before, bit for bit.  Checked against leg lengths computed here in
NumPy from the joints and against finite differences."""

import copy

import numpy as np
import pytest

import assemblers as A
from assemblers.geometry.api import pose_to_transform, twist_between
from assemblers.ik import criterion_cost
from assemblers.ik.problem import limits
from assemblers.ik.report import at_pose
from assemblers.model.config import ConfigError, config_from_dict
from assemblers.model.writer import config_to_dict

OFFSET = np.array([0.003, -0.002, 0.0015, -0.003, 0.002, 0.0])
SCALE = np.array([1.002, 0.999, 1.0, 1.001, 0.998, 1.0015])


def _calibrated(name="duo", offset=OFFSET, scale=SCALE):
    d = config_to_dict(A.load_config(name))
    for entry in d["platforms"].values():
        entry["leg_offset"] = list(offset)
        entry["leg_scale"] = list(scale)
    return config_from_dict(d, f"<{name} with leg calibration>")


def _geometric(asm, Q):
    """Joint-to-joint lengths (B, N, 6) by NumPy: |p + R t_k - b_k|."""
    Q = np.atleast_2d(Q)
    out = np.empty((Q.shape[0], asm.n_platforms, 6))
    for i, p in enumerate(asm.platforms):
        T = pose_to_transform(Q[:, 6 * i: 6 * i + 6])
        v = T[:, None, :3, 3] + np.einsum("bij,kj->bki", T[:, :3, :3], p.top_joints) - p.base_joints
        out[:, i] = np.linalg.norm(v, axis=2)
    return out


@pytest.fixture(scope="module")
def cal():
    return _calibrated()


def test_facade_legs_are_commanded(cal):
    rng = np.random.default_rng(0)
    Q = A.home_pose(cal) + rng.uniform(-1, 1, (50, 12)) * np.tile([0.01] * 3 + [0.05] * 3, 2)
    L = A.leg_lengths(cal, Q)
    assert np.allclose(L, (_geometric(cal, Q) - OFFSET) / SCALE, atol=1e-15, rtol=0)
    Q2 = A.from_legs(cal, L)
    assert np.allclose(_geometric(cal, Q2), SCALE * L + OFFSET, atol=1e-12, rtol=0)
    assert np.allclose(Q2, Q, atol=1e-10)
    # J_L by commanded lengths, against central differences through from_legs
    q, Lq = Q[0], L[0]
    J = A.jacobian(cal, q, wrt="legs")
    T0 = A.forward_kinematics(cal, q)
    h = 1e-7
    for j in range(12):
        e = np.zeros(12)
        e[j] = h
        Tp = A.forward_kinematics(cal, A.from_legs(cal, Lq + e.reshape(2, 6), initial=q, tol=1e-14))
        Tm = A.forward_kinematics(cal, A.from_legs(cal, Lq - e.reshape(2, 6), initial=q, tol=1e-14))
        fd = (twist_between(T0, Tp) - twist_between(T0, Tm)) / (2 * h)
        assert np.allclose(J[:, j], fd, atol=1e-6), j
    # the IK's leg-mode cost is the facade's sensitivity in commanded lengths
    assert criterion_cost(cal, q, "fn_legs") == pytest.approx(A.sensitivity(cal, q, wrt="legs"),
                                                              rel=1e-12)


def test_ik_limits_are_per_leg_geometric_bounds_of_the_commanded_stroke(cal):
    lim = limits(cal)
    assert lim.leg_min.shape == lim.leg_max.shape == (2, 6)
    assert np.allclose(lim.leg_min, SCALE * 0.20 + OFFSET, rtol=0, atol=1e-15)
    assert np.allclose(lim.leg_max, SCALE * 0.32 + OFFSET, rtol=0, atol=1e-15)
    # a pose whose geometric legs are inside [leg_min, leg_max] but whose commanded leg 1
    # (offset -2 mm, scale 0.999) is past leg_max: the IK's constraints call it infeasible
    # (bounds on the geometric lengths would not)
    home = A.home_pose(cal)
    for dz in np.linspace(0.0, 0.08, 801):
        Q = home + np.array([0, 0, dz, 0, 0, 0] * 2)
        Lc, Lg = A.leg_lengths(cal, Q), _geometric(cal, Q)[0]
        if Lc[0, 1] > 0.32 and np.all(Lg <= 0.32):
            break
    else:
        pytest.fail("no such pose in the sweep")
    from assemblers.ik.problem import problem

    _, g = at_pose(problem(cal, np.eye(4), "fn"), "fn", np.array(Q))
    assert g[12 + 1] < 0  # stroke high of platform 1, leg 1


def test_solve_ik_keeps_commanded_legs_in_the_stroke(cal):
    rng = np.random.default_rng(4)
    solved = 0
    for _ in range(6):
        Qt = A.home_pose(cal) + rng.uniform(-1, 1, 12) * np.tile([0.03] * 3 + [0.15] * 3, 2)
        T = A.forward_kinematics(cal, Qt)
        r = A.solve_ik(cal, T)
        if not r.success:
            continue
        assert np.allclose(r.legs, A.leg_lengths(cal, r.Q), atol=1e-12)  # commanded
        assert np.all(r.legs >= 0.20 - 1e-9) and np.all(r.legs <= 0.32 + 1e-9)
        assert r.tool_error[0] < 1e-8
        solved += 1
    assert solved >= 4


def test_hardware_home_legs_are_commanded(cal):
    from hardware.plan import home_legs

    assert np.allclose(home_legs(cal), A.leg_lengths(cal, A.home_pose(cal)), atol=1e-15)


def test_zero_offsets_and_unit_scales_change_nothing():
    plain = A.load_config("trio")
    explicit = _calibrated("trio", np.zeros(6), np.ones(6))
    assert not explicit.legs_calibrated
    rng = np.random.default_rng(2)
    Q = A.home_pose(plain) + rng.uniform(-0.01, 0.01, (20, 18))
    assert np.array_equal(A.leg_lengths(plain, Q), A.leg_lengths(explicit, Q))
    assert np.array_equal(A.jacobian(plain, Q[0], "legs"), A.jacobian(explicit, Q[0], "legs"))
    L = A.leg_lengths(plain, Q)
    assert np.array_equal(A.from_legs(plain, L), A.from_legs(explicit, L))
    for lp, le in zip(limits(plain), limits(explicit)):
        assert np.array_equal(lp, le)
    T = A.forward_kinematics(plain, Q[3])
    a, b = A.solve_ik(plain, T), A.solve_ik(explicit, T)
    assert np.array_equal(a.Q, b.Q) and a.cost == b.cost and a.iterations == b.iterations


@pytest.mark.parametrize("key, value, message", [
    ("leg_scale", [1.0] * 5 + [0.0], r"leg_scale\[5\]: must be in \[0.5, 2.0\]"),
    ("leg_scale", [3.0] * 6, r"leg_scale\[0\]: must be in \[0.5, 2.0\]"),
    ("leg_offset", [-0.2] + [0.0] * 5, r"leg_offset: leg 0 would be .* at least 0.001 m"),
    ("leg_offset", [0.0] * 5, r"leg_offset: must be a list of 6 numbers"),
    ("leg_offset", [0.07] * 6, r"at the home pose .* leg 0 is .* outside the stroke"),
])
def test_bad_leg_calibration_is_one_clear_error(key, value, message):
    d = copy.deepcopy(config_to_dict(A.load_config("duo")))
    d["platforms"]["hexapod"][key] = value
    with pytest.raises(ConfigError, match=message):
        config_from_dict(d, "x.toml")
