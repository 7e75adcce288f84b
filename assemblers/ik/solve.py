"""``solve_ik``: the least-sensitive stack pose that puts the tool at a target.

    minimize    criterion(Q)                         (default: || W_out J W_in ||_F)
    subject to  T_world_tool(Q) = T_target           (eliminated exactly, docs/ik.md)
                leg_min <= L <= leg_max, joint angles <= limit, pose bounds

The starts (:mod:`.starts`: the repaired even split, the nearest pose, random solutions), the
compiled SQP on the evaluation kernel (:mod:`.driver`; SciPy's SLSQP as its fallback, the
interior point on request) and the report (:mod:`.report`).  Part of the math core: no files,
no printing.
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import InputError
from ..kinematics.api import as_array, forward_kinematics, home_pose
from ..model import Assembler
from .criteria import SPECS
from .custom import check, resolve, start_vector
from .driver import IPM_TOL, ReducedProblem, run_ipm
from .problem import problem
from .report import (
    FEAS_TOL,
    IKResult,
    as_target,
    criterion_cost,
    default_criterion,
    full_pose,
    report_at,
    violation,
)
from .starts import Rescue, even, even_split, repair, sample_solutions, unreachable

__all__ = ["IKResult", "solve_ik", "warmup"]


def _ipm_ok(criterion: str) -> bool:
    """Whether the interior point suits ``criterion`` (it needs second derivatives:
    "condition", not smooth where the extreme singular values cross, stays off it)."""
    return SPECS[criterion].ipm


def solve_ik(asm: Assembler, T_target, criterion: str | None = None, initial=None, *,
             n_starts: int = 1, max_iter: int = 200, ftol: float = 1e-10,
             seed: int = 0, baseline: bool = True, method: str = "auto") -> IKResult:
    """Least-sensitive stack pose reaching ``T_target``.

    Args:
        asm: the Assembler.
        T_target: (4, 4) world_from_tool target.
        criterion: "fn" (||W_out J_Q W_in||_F, the paper's), "fn_legs" (J_L), "condition"
            (condition number of the weighted J_Q), or the baselines "even" (motion split evenly,
            repaired to feasibility) and "nearest" (feasible pose closest to home).  Default:
            "fn", or "fn_legs" when the config's ``[sensitivity] wrt = "legs"``.
        initial: (6N,) start pose (e.g. the previous solution of a trajectory); its first N-1
            platforms are used.  Default: the even split, repaired.
        n_starts: starts tried when no ``initial`` is given: the even split, then the nearest
            pose to home, then random feasible solutions (``seed``).  The nearest pose is also
            tried whenever the even split cannot be repaired to feasibility.
        max_iter: iteration limit of each solve; ftol: SLSQP's (the fallback).
        baseline: compute the ``even`` baseline's cost (skipped by trajectories when a warm
            start is given, to save time; ``baseline_cost`` is then None).
        method: "auto": the compiled SQP (:mod:`assemblers.ik.sqp`) on the Numba evaluation
            kernel (:mod:`assemblers.ik.evaluate`, exact derivatives), with SciPy's SLSQP as the
            fallback when it does not converge; "slsqp": SciPy's SLSQP on the same kernel (kept
            for comparison); "ipm": the interior point (:mod:`assemblers.ik.ipm`; each
            Newton step needs a Hessian, n extra gradients, so from a cold start it is slower;
            trajectories use it warm, see :func:`solve_trajectory`).

    Returns an :class:`IKResult`; an unreachable target is a result (``success`` False, the
    reason, the closest feasible pose and its tool-pose error), not an exception.
    ``extra["solver"]`` says which solver produced the pose.
    """
    t0 = time.perf_counter()
    criterion = resolve(criterion or default_criterion(asm))  # a blend or a function: a name
    check(asm, criterion)
    if method not in ("auto", "ipm", "slsqp"):
        raise InputError(f"method: must be one of auto, ipm, slsqp, got {method!r}")
    T_target = as_target(T_target)
    n = asm.n_platforms
    n6 = 6 * (n - 1)
    calls = 0
    rescue = Rescue(asm, T_target)  # the closest-pose search, run only if a repair fails

    def repaired_home():
        """The feasible pose nearest home reaching the target (None if the repair fails) and
        the evaluations it took."""
        z, ok, c = repair(asm, T_target, home_pose(asm), method=method, rescue=rescue)
        return (full_pose(asm, T_target, z) if ok else None), c
    warm = initial is not None and not baseline and criterion not in ("even", "nearest")
    if warm:  # trajectory step: no baseline, start at the given pose
        Q_even_feas, even_ok, baseline = None, False, None
    else:
        Q_even, g_even, c_even = even(asm, T_target, criterion)
        calls += 1
        if violation(np.asarray(g_even)) == 0.0:
            Q_even_feas, even_ok, baseline = np.asarray(Q_even), True, float(c_even)
        else:
            z_even, even_ok, c = repair(asm, T_target, np.asarray(Q_even), method=method,
                                        rescue=rescue)
            calls += c
            Q_even_feas = full_pose(asm, T_target, z_even)
            baseline = criterion_cost(asm, Q_even_feas, criterion) if even_ok else None

    def finish(Q, ok, msg, iters, reason=None, starts=1, solver="slsqp"):
        g, tool_error, legs, cost = report_at(asm, T_target, Q, criterion)
        return IKResult(Q=Q, legs=legs, cost=cost,
                        baseline_cost=baseline, max_violation=violation(g), success=ok,
                        message=msg, iterations=iters, time_s=time.perf_counter() - t0,
                        criterion=criterion, tool_error=tool_error, reason=reason, starts=starts,
                        extra={"jax_calls": calls, "solver": solver})

    if n == 1 or criterion == "even":
        if even_ok:
            return finish(Q_even_feas, True, "ok" if n > 1 else "ok (N = 1: IK is unique)", 0,
                          solver="closed form" if n == 1 else "even split")
        return unreachable(asm, T_target, Q_even_feas, criterion, baseline, t0, calls, rescue)

    if criterion == "nearest":
        starts = [np.asarray(home_pose(asm))]
        ref = home_pose(asm)
    else:
        ref = home_pose(asm)
        starts = []
        if initial is not None:
            starts.append(as_array(initial, "initial", (6 * n,), batch=False))
        else:
            if even_ok:
                starts.append(Q_even_feas)
            if n_starts > 1 or not even_ok:  # the nearest pose to home as a further start
                Q_near, c = repaired_home()
                calls += c
                starts += [Q_near] if Q_near is not None else []
            if n_starts > 2:
                starts += list(sample_solutions(asm, T_target, n_starts - 2, seed=seed))
    use_ipm = method == "ipm" and _ipm_ok(criterion)
    state = {"prob": None, "best": None, "iters": 0, "calls": calls}  # best: (cost, kind, payload)

    def run_from(Q0):
        z0 = np.asarray(Q0[:n6], dtype=np.float64)
        if SPECS[criterion].epigraph:  # minimax: its variables start just above their values
            z0 = start_vector(asm, problem(asm, T_target, criterion), Q0)
        if use_ipm:
            out = run_ipm(asm, T_target, criterion, z0)
            state["calls"] += 1
            state["iters"] += out["iterations"]
            f_val = out["cost"] if criterion != "nearest" else float(np.sum((out["Q"] - ref) ** 2))
            if out["converged"] and violation(out["g"]) <= FEAS_TOL:
                if state["best"] is None or f_val < state["best"][0]:
                    state["best"] = (f_val, "ipm", out)
                return
            if method == "ipm":
                return
        if state["prob"] is None:
            state["prob"] = ReducedProblem(asm, T_target, criterion, ref)
        prob = state["prob"]
        res = prob.solve(z0, max_iter, ftol, method)
        state["iters"] += int(res.nit)
        viol = violation(prob.g(res.x))
        f_val = float(prob.evaluate(res.x)[0])  # the criterion itself (unscaled)
        if viol <= FEAS_TOL and (state["best"] is None or f_val < state["best"][0]):
            state["best"] = (f_val, res.solver, res)

    for Q0 in starts:
        run_from(Q0)
    best = state["best"]
    clearly_optimal = best is not None and (best[1] == "ipm" or bool(best[2].success)
                                            or best[2].status == 8)
    if (not clearly_optimal and starts and initial is None and criterion != "nearest"
            and n_starts == 1):
        # the first start ended without convergence (or infeasible): a few more starts, the
        # nearest pose to home (unless tried) and random feasible solutions
        extra = []
        if len(starts) < 2:
            Q_near, c = repaired_home()
            state["calls"] += c
            extra += [Q_near] if Q_near is not None else []
        extra += list(sample_solutions(asm, T_target, 2, seed=seed))
        for Q0 in extra:
            run_from(Q0)
        starts = starts + extra
    if state["best"] is None and criterion == "nearest" and initial is None:
        # the start at home found no feasible pose: the repaired even split and the closest
        # pose (when it reaches the target) are feasible starts
        extra = [Q for Q in (Q_even_feas if even_ok else None, rescue.start()) if Q is not None]
        for Q0 in extra:
            run_from(Q0)
        starts = starts + extra
    best, iters, prob, calls = state["best"], state["iters"], state["prob"], state["calls"]
    calls += prob.calls if prob is not None else 0
    if best is None:
        Q_try = full_pose(asm, T_target, starts[0][:n6]) if starts else even_split(asm, T_target)
        return unreachable(asm, T_target, Q_try, criterion, baseline, t0, calls, rescue)
    _, kind, payload = best
    if kind == "ipm":
        out = payload
        return IKResult(Q=out["Q"], legs=out["legs"], cost=out["cost"], baseline_cost=baseline,
                        max_violation=violation(out["g"]), success=True, message="ok",
                        iterations=iters, time_s=time.perf_counter() - t0, criterion=criterion,
                        tool_error=out["tool_error"], reason=None, starts=len(starts),
                        extra={"jax_calls": calls, "solver": "ipm", "kkt": out["kkt"],
                               "lam": out["lam"]})
    res = payload
    Q = full_pose(asm, T_target, res.x)
    ok = bool(res.success) or res.status == 8  # 8: positive directional derivative (at optimum)
    msg = "ok" if ok else f"no convergence: {res.message}"
    out = finish(Q, ok, msg, iters, None if ok else "no convergence", starts=len(starts),
                 solver=res.solver)
    lam = getattr(res, "multipliers", None)
    if lam is not None and _ipm_ok(criterion) and out.cost > 0:
        # the multipliers are for the objective times res.scale; store them per unit cost
        out.extra["lam"] = np.maximum(np.asarray(lam, dtype=np.float64), 0.0) / (res.scale * out.cost)
    if out.max_violation > FEAS_TOL:  # should not happen; never report a violating pose as ok
        return unreachable(asm, T_target, Q, criterion, baseline, t0, calls, rescue)
    return out


def warmup(asm: Assembler, criterion: str | None = None, *, trajectory: bool = False) -> float:
    """Compile (or load from the persistent cache) every compiled piece a solve of ``asm`` can
    use, so the first real solves run at full speed: one solve at the home tool pose builds
    them all (one Numba kernel serves every criterion, the repairs and the closest-pose search;
    the SQP includes its elastic subproblems); with ``trajectory``, also the warm
    interior-point steps.  (SciPy's fallbacks on the JAX functions compile when first needed.)
    Returns the seconds it took."""
    t0 = time.perf_counter()
    criterion = criterion or default_criterion(asm)
    Q0 = home_pose(asm)
    T0 = as_target(forward_kinematics(asm, Q0))
    r = solve_ik(asm, T0, criterion)
    n6 = 6 * (asm.n_platforms - 1)
    if trajectory and asm.n_platforms > 1 and _ipm_ok(criterion):
        lam = r.extra.get("lam") if r.extra else None
        out = run_ipm(asm, T0, criterion, r.Q[:n6], lam0=lam, mu0=IPM_TOL / 10)
        run_ipm(asm, T0, criterion, r.Q[:n6], lam0=out["lam"], mu0=IPM_TOL / 10, H0=out["H"])
    return time.perf_counter() - t0
