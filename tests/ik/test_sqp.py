"""The compiled SQP (assemblers.ik.sqp) against SciPy's SLSQP (method="slsqp") on the IK
problems themselves: same cost, inside every limit, multipliers checked; its fallbacks."""

import numpy as np
import pytest
import scipy.optimize
from ik_support import feasible_poses, with_pose_bounds

import assemblers as A
from assemblers import ik
from assemblers.ik import cold, driver, report, starts
from assemblers.ik import sqp as S
from assemblers.ik.criteria import CRIT_CLOSEST, CRIT_DIST
from assemblers.ik.problem import FAILED, QP_FAILED


@pytest.mark.parametrize("name", ["duo", "trio", "assembler", "duo+bounds"])
def test_sqp_reaches_the_slsqp_optimum_from_feasible_and_infeasible_starts(name):
    """From the even split (often outside the limits) and from a feasible pose, the SQP
    converges (scaled KKT error under its tolerance, multipliers checked here), lands inside
    every limit, and its cost equals SciPy SLSQP's (method="slsqp") from the same start."""
    asm = A.load_config(name.split("+")[0])
    if name.endswith("bounds"):
        asm = with_pose_bounds(asm)
    n6 = 6 * (asm.n_platforms - 1)
    crit = ik.default_criterion(asm)
    for Q in feasible_poses(asm, 2, 5):
        T = np.asarray(A.forward_kinematics(asm, Q))
        for z0 in (ik.even_split(asm, T)[:n6], Q[:n6]):
            prob = driver.ReducedProblem(asm, T, crit, None)
            res = prob.solve(z0, 200, 1e-10)
            assert res.solver == "sqp", res.message
            ref = driver.ReducedProblem(asm, T, crit, None).solve(z0, 200, 1e-12, method="slsqp")
            f, grad, g, G = prob.evaluate(res.x)
            f_ref, _, g_ref, _ = prob.evaluate(ref.x)
            assert g.min() >= -driver.SQP_TOL  # g keeps a 1e-9 margin: still inside every limit
            if g_ref.min() >= -1e-9:  # SLSQP may end elsewhere (a local optimum): compare
                assert f <= f_ref * (1 + 1e-7)
            lam = res.multipliers
            stat = grad * res.scale - G.T @ lam
            assert np.abs(stat).max() <= 1e-8 * max(1.0, np.abs(lam).mean())
            assert np.abs(lam * g).max() <= 1e-8 and lam.min() >= 0.0


def _cold_fails(*args):
    """cold.solve, failed: (status, iterations, KKT error, scale, cost, violation, errors)."""
    return QP_FAILED, 0, np.inf, 1.0, np.inf, np.inf, np.inf, np.inf


def test_solve_ik_uses_the_sqp_and_falls_back_to_slsqp(monkeypatch):
    """The default solve runs the compiled SQP; when it fails (forced here, in the one-call
    cold solve and in the general path), SciPy's SLSQP gives the same pose."""
    asm = A.load_config("trio")
    T = A.forward_kinematics(asm, feasible_poses(asm, 1, 9)[0])
    r = A.solve_ik(asm, T)
    assert r.success and r.extra["solver"] == "sqp"
    def fails(P, crit, x0, tol, max_iter, f_scale_or_tol, x, *rest):
        x[:] = x0  # where it started
        return QP_FAILED, 0, np.inf, 1.0

    monkeypatch.setattr(cold, "solve", _cold_fails)
    monkeypatch.setattr(driver, "sqp_from", fails)  # the general path's SQP (repairs too)
    monkeypatch.setattr(S, "sqp", fails)  # the closest-pose search's
    r2 = A.solve_ik(asm, T)
    assert r2.success and r2.extra["solver"] == "slsqp"
    assert r2.cost == pytest.approx(r.cost, rel=1e-7)


def test_closest_pose_of_unreachable_targets_matches_the_jax_slsqp_search(monkeypatch):
    """Unreachable targets: the SQP's closest pose (CRIT_CLOSEST) is inside every limit and
    misses the target by no more than SciPy's SLSQP on the JAX functions (the fallback, forced
    here) does."""
    asm = A.load_config("duo")
    T0 = np.asarray(A.forward_kinematics(asm, A.home_pose(asm)))
    l = asm.sensitivity.length_scale
    rng = np.random.default_rng(2)
    real = S.sqp

    def closest_fails(P, crit, *args):
        if crit == CRIT_CLOSEST:
            return FAILED, 0, np.inf, 1.0
        return real(P, crit, *args)

    n_checked = 0
    while n_checked < 4:
        T = T0.copy()
        T[:2, 3] += rng.uniform(-0.25, 0.25, 2)
        r = A.solve_ik(asm, T)
        if r.success:
            continue
        n_checked += 1
        assert r.extra["solver"] == "sqp" and r.max_violation == 0.0
        with monkeypatch.context() as mp:
            mp.setattr(S, "sqp", closest_fails)
            ref = A.solve_ik(asm, T)
        assert ref.extra["solver"] == "slsqp" and ref.reason == r.reason
        err = r.tool_error[0] ** 2 + (l * r.tool_error[1]) ** 2
        err_ref = ref.tool_error[0] ** 2 + (l * ref.tool_error[1]) ** 2
        assert err <= err_ref * (1 + 1e-7)


def test_condition_criterion_reaches_the_slsqp_optimum():
    """"condition" (sigma_max / sigma_min of the weighted J_Q) by the SQP: the same cost as
    SciPy's SLSQP from the same start.  Its optimum is often where the extreme singular values
    cross (not smooth: no small KKT error), which ends in the objective test (STALLED); at
    least one target here does."""
    asm = A.load_config("trio")
    messages = []
    for Q in feasible_poses(asm, 6, 13):
        T = A.forward_kinematics(asm, Q)
        r = A.solve_ik(asm, T, "condition")
        ref = A.solve_ik(asm, T, "condition", method="slsqp")
        assert r.success and r.extra["solver"] == "sqp" and r.max_violation == 0.0
        assert r.cost <= ref.cost * (1 + 1e-8)
        assert r.cost == pytest.approx(np.linalg.cond(
            asm.sensitivity.w_out[:, None] * A.jacobian(asm, r.Q)
            * asm.sensitivity.w_in(asm.n_platforms, "pose")[None, :]), rel=1e-10)
        z0 = A.solve_ik(asm, T, "even").Q[:12]
        messages.append(driver.ReducedProblem(asm, T, "condition", None).solve(z0, 200, 1e-10).message)
    assert any("not smooth" in m for m in messages), messages


def _no_scipy(*a, **k):
    raise AssertionError("SciPy's SLSQP was called")


def test_failed_repair_is_rescued_by_the_closest_pose_search(monkeypatch):
    """When the SQP cannot repair the even split (forced here, once), SLSQP is not run from
    there; the closest-pose search finds the target reachable and the repair restarts from
    that feasible pose: the solve still succeeds, with its baseline.  Both where the repair
    runs: in the general path (the cold solve forced to fail) as the start, and in the lazy
    baseline of the cold path, when the baseline is read."""
    asm = A.load_config("trio")
    crit = ik.default_criterion(asm)
    rng = np.random.default_rng(17)
    lim = np.tile([0.04, 0.04, 0.04, 0.2, 0.2, 0.2], asm.n_platforms)
    poses = (A.home_pose(asm) + rng.uniform(-lim, lim) for _ in range(200))
    feasible = (Q for Q in poses if A.solve_ik(asm, A.forward_kinematics(asm, Q)).success)
    T = next(T for T in (A.forward_kinematics(asm, Q) for Q in feasible)
             if report.violation(starts.even(asm, np.asarray(T), crit)[1]) > 0)  # needs a repair
    real, real_closest = driver.sqp_from, S.sqp
    seen = {"dist": 0, "closest": 0}

    def first_repair_fails(P, crit, x0, tol, max_iter, f_tol, x, *rest):
        if crit == CRIT_DIST:
            seen["dist"] += 1
            if seen["dist"] == 1:  # fails where it starts (the even split, outside the limits)
                x[:] = x0
                return FAILED, 0, np.inf, 1.0
        return real(P, crit, x0, tol, max_iter, f_tol, x, *rest)

    def counted(P, crit, *args):  # the closest-pose search's SQP
        if crit == CRIT_CLOSEST:
            seen["closest"] += 1
        return real_closest(P, crit, *args)

    plain = A.solve_ik(asm, T)
    monkeypatch.setattr(driver, "sqp_from", first_repair_fails)
    monkeypatch.setattr(S, "sqp", counted)
    monkeypatch.setattr(scipy.optimize, "minimize", _no_scipy)  # (imported where used)
    for general in (True, False):
        seen.update(dist=0, closest=0)
        with monkeypatch.context() as m:
            if general:
                m.setattr(cold, "solve", _cold_fails)
            r = A.solve_ik(asm, T)
            assert r.success and r.baseline_cost is not None and r.max_violation == 0.0
        assert seen["dist"] >= 2 and seen["closest"] == 1
        assert r.cost <= r.baseline_cost and r.cost == pytest.approx(plain.cost, rel=1e-6)


def test_unreachable_targets_need_no_scipy(monkeypatch):
    """An unreachable target: the repairs fail in the SQP, the closest-pose search runs once,
    and SciPy's SLSQP is never called (it would only spend time)."""
    asm = A.load_config("duo")
    T = np.array(A.forward_kinematics(asm, A.home_pose(asm)))
    T[0, 3] += 0.2

    monkeypatch.setattr(scipy.optimize, "minimize", _no_scipy)  # (imported where used)
    r = A.solve_ik(asm, T)
    assert not r.success and r.reason.startswith("unreachable") and r.extra["solver"] == "sqp"
    assert r.max_violation == 0.0 and r.tool_error[0] > 1e-3
