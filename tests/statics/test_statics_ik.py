"""The IK on the loads: the criteria of the loads do what they say against the other criteria's
poses (forces recomputed by assemblers.leg_forces, legs by NumPy), the hard limits hold, blends
reduce to their single term, a user criterion written like a built-in finds the built-in's pose,
trajectories with any criterion."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
from statics_support import frames, point, poses

import assemblers as A
from assemblers.errors import InputError

LOADED = "assembler_loaded"


@pytest.fixture(scope="module")
def loaded():
    return A.load_config(LOADED)


def targets(asm, k, seed, scale=1.0):
    """Reachable tool targets: the tool at random stack poses inside the strokes."""
    return [A.forward_kinematics(asm, Q) for Q in poses(asm, k, seed, scale)]


def legs_np(asm, Q):
    """Leg lengths by plain matrix products (independent of the kernels)."""
    bases, tops, _ = frames(asm, Q)
    return np.array([[np.linalg.norm(point(tops[i], t) - point(bases[i], b))
                      for b, t in zip(p.base_joints, p.top_joints)]
                     for i, p in enumerate(asm.platforms)])


def worst(asm, Q):
    """Largest |leg force| / rating of a pose."""
    F = A.leg_forces(asm, Q)
    return float(np.max(np.abs(F) / np.array([p.max_leg_force for p in asm.platforms])[:, None]))


def on_target(asm, T, r):
    assert r.success, r.message
    Tq = A.forward_kinematics(asm, r.Q)
    assert np.abs(Tq - T).max() < 1e-9
    L = legs_np(asm, r.Q)
    assert np.all(L >= asm.leg_min[:, None] - 1e-12) and np.all(L <= asm.leg_max[:, None] + 1e-12)


def test_loads_criteria_lower_the_forces(loaded):
    """On the default Assembler with its mass model: ``loads`` gives a smaller sum of squared
    normalized forces than ``fn`` and ``even``, ``loads_max`` the smallest largest force of
    all, ``margin`` the largest smallest stroke margin, ``compliance`` the smallest tool
    deflection; each cost is the quantity recomputed through the public API."""
    ratings = np.array([p.max_leg_force for p in loaded.platforms])[:, None]
    for T in targets(loaded, 3, 0):
        rs = {c: A.solve_ik(loaded, T, c) for c in ("fn", "even", "loads", "loads_max", "margin",
                                                     "compliance")}
        for r in rs.values():
            on_target(loaded, T, r)
        sq = {c: float(np.sum((A.leg_forces(loaded, r.Q) / ratings) ** 2)) for c, r in rs.items()}
        mx = {c: worst(loaded, r.Q) for c, r in rs.items()}
        L = {c: legs_np(loaded, r.Q) for c, r in rs.items()}
        half = (loaded.leg_max - loaded.leg_min)[:, None] / 2
        mid = (loaded.leg_max + loaded.leg_min)[:, None] / 2
        exc = {c: float(np.max(np.abs(L[c] - mid) / half)) for c in rs}
        defl = {c: float(np.linalg.norm(A.deflection(loaded, r.Q))) for c, r in rs.items()}
        assert rs["loads"].cost == pytest.approx(sq["loads"], rel=1e-10)
        assert rs["loads_max"].cost == pytest.approx(mx["loads_max"], rel=1e-10)
        assert rs["margin"].cost == pytest.approx(exc["margin"], rel=1e-10)
        assert rs["compliance"].cost == pytest.approx(defl["compliance"], rel=1e-10)
        for other in ("fn", "even", "loads_max", "margin", "compliance"):
            assert sq["loads"] <= sq[other] * (1 + 1e-9), (other, sq)
        for other in ("fn", "even", "loads", "margin", "compliance"):
            assert mx["loads_max"] <= mx[other] * (1 + 1e-9), (other, mx)
            assert exc["margin"] <= exc[other] + 1e-9 or other == "margin", (other, exc)
        for other in ("fn", "even", "loads", "loads_max", "margin"):
            assert defl["compliance"] <= defl[other] * (1 + 1e-9), (other, defl)
        assert mx["loads_max"] < mx["fn"]  # a real reduction on these targets


def test_blend_reduces_to_its_single_term(loaded):
    """A blend with the other weight 0 finds the single criterion's pose (its cost is that
    criterion over its value at the even split); both weights on: in between."""
    T = targets(loaded, 1, 4)[0]
    fn, ld = A.solve_ik(loaded, T, "fn"), A.solve_ik(loaded, T, "loads")
    only_fn = A.solve_ik(loaded, T, {"fn": 1.0, "loads": 0.0})
    only_ld = A.solve_ik(loaded, T, "fn:0,loads:2")
    np.testing.assert_allclose(only_fn.Q, fn.Q, atol=1e-7)
    np.testing.assert_allclose(only_ld.Q, ld.Q, atol=1e-7)
    Q_even = A.ik.even_split(loaded, T)
    assert only_fn.cost == pytest.approx(fn.cost / A.ik.criterion_cost(loaded, Q_even, "fn"),
                                         rel=1e-9)
    both = A.solve_ik(loaded, T, "fn:1,loads:0.2")
    on_target(loaded, T, both)
    assert fn.cost <= A.ik.criterion_cost(loaded, both.Q, "fn") <= A.ik.criterion_cost(
        loaded, ld.Q, "fn")
    assert ld.cost <= A.ik.criterion_cost(loaded, both.Q, "loads") <= A.ik.criterion_cost(
        loaded, fn.Q, "loads")


def test_user_criterion_finds_the_builtin_pose(loaded):
    """A user-defined JAX criterion written as the built-in ``loads`` (forces from the model's
    quantities) is solved by the same SQP to the same pose."""
    ratings = jnp.asarray([p.max_leg_force for p in loaded.platforms])[:, None]

    def my_loads(Q, m):
        return jnp.sum((m.forces / ratings) ** 2)

    for T in targets(loaded, 2, 5):
        ref = A.solve_ik(loaded, T, "loads")
        r = A.solve_ik(loaded, T, my_loads)
        on_target(loaded, T, r)
        assert r.criterion.startswith("user:my_loads") and r.extra["solver"] == "sqp"
        assert r.cost == pytest.approx(ref.cost, rel=1e-8)
        np.testing.assert_allclose(r.Q, ref.Q, atol=1e-6)


def test_max_leg_force_is_a_hard_limit():
    """With a rating below what ``fn``'s pose needs, every solve keeps every |f| within it (the
    pose reaches the target); with a rating no pose can meet, the target is unreachable with
    the reason ``leg force``."""
    base = A.load_config(LOADED)
    T = targets(base, 1, 6, scale=1.5)[0]
    need = worst(base, A.solve_ik(base, T, "fn").Q) * 150.0  # N, fn's largest force
    floor = worst(base, A.solve_ik(base, T, "loads_max").Q) * 150.0  # the least any pose needs
    assert floor < need
    rating = 0.5 * (floor + need)
    asm = dataclasses.replace(base, platforms=tuple(
        dataclasses.replace(p, max_leg_force=rating) for p in base.platforms))
    for crit in ("fn", "loads", "margin", "fn:1,loads:0.2"):
        r = A.solve_ik(asm, T, crit)
        on_target(asm, T, r)
        assert np.abs(A.leg_forces(asm, r.Q)).max() <= rating * (1 + 1e-8), crit
    low = dataclasses.replace(base, platforms=tuple(
        dataclasses.replace(p, max_leg_force=0.9 * floor) for p in base.platforms))
    r = A.solve_ik(low, T, "fn")
    assert not r.success and r.reason == "unreachable: leg force", r.message


def test_stroke_margin_keeps_every_leg_inside(loaded):
    """``[ik] stroke_margin = 0.05``: every leg at least 5 % of its stroke away from both ends,
    where ``fn`` without the margin goes to the stops."""
    asm = dataclasses.replace(loaded, ik=dataclasses.replace(loaded.ik, stroke_margin=0.05))
    lo = asm.leg_min + 0.05 * (asm.leg_max - asm.leg_min)
    hi = asm.leg_max - 0.05 * (asm.leg_max - asm.leg_min)
    at_stop = 0
    for T in targets(loaded, 4, 7):
        free = A.solve_ik(loaded, T, "fn")
        L0 = legs_np(loaded, free.Q)
        at_stop += bool(np.any(L0 < lo[:, None]) or np.any(L0 > hi[:, None]))
        r = A.solve_ik(asm, T, "fn")
        on_target(asm, T, r)
        L = legs_np(asm, r.Q)
        assert np.all(L >= lo[:, None] - 1e-12) and np.all(L <= hi[:, None] + 1e-12)
        assert r.cost >= free.cost * (1 - 1e-9)  # a margin never lowers the cost
    assert at_stop >= 1


def test_trajectory_with_any_criterion(loaded):
    """Trajectories with a minimax criterion and with a blend: every step solved and as good as
    an independent solve of its target; the blend's legs move about as smoothly as ``fn``'s (a
    minimax optimum fixes only the worst legs, so its pose may move along the flat rest:
    docs/statics.md)."""
    from assemblers.ik import solve_trajectory, straight_line

    T0 = A.forward_kinematics(loaded, A.home_pose(loaded))
    T1 = targets(loaded, 1, 8)[0]
    t, Ts = straight_line(T0, T1, 0.5, 40.0)
    fn_step = solve_trajectory(loaded, t, Ts, "fn").max_leg_step
    for crit in ("loads_max", "fn:1,loads:0.2"):
        res = solve_trajectory(loaded, t, Ts, crit)
        assert res.ok, (crit, res.messages)
        for k in (1, len(t) // 2, len(t) - 1):
            assert res.cost[k] <= A.solve_ik(loaded, Ts[k], crit).cost * (1 + 1e-6)
        if crit != "loads_max":
            assert res.max_leg_step < 2 * fn_step, (crit, res.max_leg_step, fn_step)


def test_bad_criteria_are_input_errors(loaded):
    T = targets(loaded, 1, 9)[0]
    plain = A.load_config("assembler")
    for bad, what in (("loadz", "must be one of"), ("fn:1,loads:x", "number"),
                      ("fn:0,loads:0", "every weight"), ({"fn": -1.0}, ">= 0"),
                      ("fn:1,fn_legs:1", "cannot be blended"), ({"even": 1.0}, "blend term")):
        with pytest.raises(InputError, match=what):
            A.solve_ik(loaded, T, bad)
    with pytest.raises(InputError, match="no load"):
        A.solve_ik(plain, targets(plain, 1, 9)[0], "loads")
    with pytest.raises(InputError, match="leg_stiffness"):
        nostiff = dataclasses.replace(loaded, platforms=tuple(
            dataclasses.replace(p, leg_stiffness=None) for p in loaded.platforms))
        A.solve_ik(nostiff, T, "compliance")
