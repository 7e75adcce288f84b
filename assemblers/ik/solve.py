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
from functools import partial

import numpy as np

from ..errors import InputError
from ..kinematics.api import as_array, forward_kinematics, home_pose
from ..model import Assembler
from . import cold
from .criteria import CODES, SPECS
from .custom import check, resolve, start_vector
from .driver import IPM_TOL, SQP_TOL, ReducedProblem, run_ipm
from .problem import CONVERGED, JOINED, STALLED, n_constraints, n_variables, problem
from .report import (
    FEAS_TOL,
    IKResult,
    Lazy,
    as_target,
    criterion_cost,
    default_criterion,
    full_pose,
    report_at,
    violation,
)
from .starts import (
    Rescue,
    even,
    even_baseline,
    even_split,
    repair,
    sample_solutions,
    unreachable,
)

RESTARTS = 4  # the global layer's further starts by default (measured: docs/ik.md)
BASIN_STEP_RAD = 0.1  # rad: the basin steps' standard deviation in each rotation (see _basin_step)
JOIN_RADIUS = 3e-3  # m / rad: a further start this close to the best minimum has joined it
JOINS_TO_STOP = 3  # the global layer stops after this many further starts in a row joined it
#: the global layer's default needs a stack of this many platforms: on 2 and 3 (6 and 12
#: variables) one start reached the best known minimum on 99-100 % of 200 targets each of
#: duo, trio and 2- and 3-platform stacks of the default platform (docs/ik.md)
GLOBAL_MIN_PLATFORMS = 4
START_HESSIAN = True  # the first BFGS matrix: cold.start_hessian (else the identity)

__all__ = ["IKResult", "solve_ik", "warmup"]


def _ipm_ok(criterion: str) -> bool:
    """Whether the interior point suits ``criterion`` (it needs second derivatives:
    "condition", not smooth where the extreme singular values cross, stays off it)."""
    return SPECS[criterion].ipm


def solve_ik(asm: Assembler, T_target, criterion: str | None = None, initial=None, *,
             n_starts: int = 1, max_iter: int = 200, ftol: float = 1e-10,
             seed: int = 0, baseline: bool = True, method: str = "auto",
             restarts: int | None = None, budget_s: float | None = None) -> IKResult:
    """Least-sensitive stack pose reaching ``T_target``.

    Args:
        asm: the Assembler.
        T_target: (4, 4) world_from_tool target.
        criterion: "fn" (||W_out J_Q W_in||_F, the paper's), "fn_legs" (J_L), "condition"
            (condition number of the weighted J_Q), or the baselines "even" (motion split evenly,
            repaired to feasibility) and "nearest" (feasible pose closest to home).  Default:
            "fn", or "fn_legs" when the config's ``[sensitivity] wrt = "legs"``.
        initial: (6N,) start pose (e.g. the previous solution of a trajectory); its first N-1
            platforms are used, and the solve stays in its basin (no global layer).  Default:
            the even split (outside the limits or not: the SQP starts from either).
        n_starts: more starts on request: the nearest pose to home, then random feasible
            solutions, after the even split and the global layer's.
        max_iter: iteration limit of each solve; ftol: SLSQP's (the fallback).
        baseline: report the ``even`` baseline's cost (``baseline_cost``, ``reduction``;
            computed when first read, outside ``time_s``); False: None.
        method: "auto": the compiled SQP (:mod:`assemblers.ik.sqp`) on the Numba evaluation
            kernel (:mod:`assemblers.ik.evaluate`, exact derivatives), with SciPy's SLSQP as the
            fallback when it does not converge; "slsqp": SciPy's SLSQP on the same kernel (kept
            for comparison); "ipm": the interior point (:mod:`assemblers.ik.ipm`; each
            Newton step needs a Hessian, n extra gradients, so from a cold start it is slower;
            trajectories use it warm, see :func:`solve_trajectory`).
        restarts: the global layer: after the first solve, this many basin steps, each a start
            at a random step (``seed``) from the best minimum so far (a quarter of each
            platform's stroke, 0.1 rad), the lowest minimum kept; a start that comes back to
            the best one stops there, and after :data:`JOINS_TO_STOP` such starts in a row the
            layer stops.  Default :data:`RESTARTS` (measured, docs/ik.md), 0 for a
            non-smooth criterion (``condition``), for the minimax criteria (``loads_max``,
            ``margin`` and blends with them: one start, as before they had the cold path) and
            for stacks of fewer than :data:`GLOBAL_MIN_PLATFORMS` platforms; 0: one start.
        budget_s: a wall-clock budget of the call: no further start of the global layer (or of
            ``n_starts``) begins once it is spent (the first solve always runs).  None: no
            limit, so the result does not depend on the machine's speed.

    Returns an :class:`IKResult`; an unreachable target is a result (``success`` False, the
    reason, the closest feasible pose and its tool-pose error), not an exception.
    ``extra["solver"]`` says which solver produced the pose.
    """
    t0 = time.perf_counter()
    criterion = resolve(criterion or default_criterion(asm))  # a blend or a function: a name
    check(asm, criterion)
    if method not in ("auto", "ipm", "slsqp"):
        raise InputError(f"method: must be one of auto, ipm, slsqp, got {method!r}")
    if restarts is None:
        # one start for: a non-smooth criterion (condition: f_tol > 0, its optimum where
        # singular values cross), which stalls in each basin step instead of converging
        # (measured on trio, 2.4 ms with one start, 6.9 ms with RESTARTS); the minimax
        # criteria, as before they took the cold path; and stacks of fewer than
        # GLOBAL_MIN_PLATFORMS, where one start already reaches the best known minimum
        # (docs/ik.md)
        spec = SPECS[criterion]
        restarts = 0 if spec.f_tol > 0 or spec.epigraph or \
            asm.n_platforms < GLOBAL_MIN_PLATFORMS else RESTARTS
    restarts = int(restarts)
    if restarts < 0:
        raise InputError(f"restarts: must be >= 0, got {restarts}")
    if budget_s is not None and not budget_s >= 0:
        raise InputError(f"budget_s: must be a number of seconds >= 0, got {budget_s}")
    T_target = as_target(T_target)
    if method == "auto" and asm.n_platforms > 1 and criterion not in ("even", "nearest"):
        r = _solve_cold(asm, T_target, criterion, initial, n_starts, max_iter, seed, baseline,
                        restarts, budget_s, t0)
        if r is not None:
            return r
    return _solve_general(asm, T_target, criterion, initial, n_starts, max_iter, ftol, seed,
                          baseline, method, t0)


class _ColdSolves:
    """The cold solves of one target (:func:`assemblers.ik.cold.solve`), the best kept."""

    def __init__(self, asm, T_target, criterion, max_iter):
        self.P = problem(asm, T_target, criterion)
        self.code, self.f_tol, self.max_iter = CODES[criterion], SPECS[criterion].f_tol, max_iter
        n_pl = asm.n_platforms
        # variables: the poses of platforms 1..N-1 (n6), then a minimax criterion's epigraph
        # variables (their objective is linear: its Hessian at home is no first BFGS matrix;
        # the identity, as the general path)
        self.n6, self.n, self.m = 6 * (n_pl - 1), n_variables(self.P), n_constraints(self.P)
        self.n_pl = n_pl
        self.H0 = cold.start_hessian(asm, criterion) if START_HESSIAN and self.n == self.n6 \
            else np.empty((0, 0))
        self.even = _even_fractions(n_pl)
        self.no_z, self.no_x = np.empty(self.n6), np.empty(self.n)
        self.best = None  # (cost, x, lam, Q, legs, tool error, violation, scale, last B)
        self.starts = self.iters = self.joined = 0
        self.time = 0.0

    def run(self, z=None, split=None, join=0.0) -> bool:
        """One start: the poses ``z`` (6(N-1),) (more entries are ignored), or ``split`` =
        (a, c) fractions (None: the even split).
        ``join`` > 0: stop as soon as the iterate is within ``join`` (m, rad) of the best
        minimum so far (the same basin; ``joined`` counts them).  Returns whether it converged
        inside every limit (or joined)."""
        n, m, n_pl = self.n, self.m, self.n_pl
        x, lam, B = np.empty(n), np.empty(m), np.empty((n, n))
        Q, legs, tw, g = np.empty(6 * n_pl), np.empty((n_pl, 6)), np.empty(6), np.empty(m)
        if z is None:
            kind, z = cold.START_SPLIT, self.no_z
            a, c = split if split is not None else self.even
        else:
            kind, (a, c) = cold.START_GIVEN, self.even
            z = np.array(z[:self.n6], dtype=np.float64)
        x_ref, r_ref = (self.best[1], join) if join > 0.0 and self.best else (self.no_x, 0.0)
        t = time.perf_counter()
        st, k, _, scale, cost, viol, ep, er = cold.solve(
            self.P, self.code, self.P.Q_ref, a, c, z, kind, self.H0, SQP_TOL, self.max_iter,
            self.f_tol, x_ref, r_ref, x, lam, B, Q, legs, tw, g)
        self.time += time.perf_counter() - t
        self.starts += 1
        self.iters += int(k)
        if st == JOINED:
            self.joined += 1
            return True
        ok = (st == CONVERGED or st == STALLED) and viol <= FEAS_TOL and np.isfinite(cost)
        if ok and (self.best is None or cost < self.best[0]):
            self.best = (float(cost), x, lam, Q, legs, (float(ep), float(er)), float(viol), scale,
                         B)
        return ok


_EVEN: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _even_fractions(n: int):
    """(a, c) of the even split for N = ``n`` (built once)."""
    if n not in _EVEN:
        w = np.full(n, 1.0 / n)
        _EVEN[n] = (w, w)
    return _EVEN[n]


def _basin_step(asm) -> np.ndarray:
    """Standard deviations (6(N-1),) of the global layer's basin steps: a quarter of each
    platform's stroke in x, y, z (m), :data:`BASIN_STEP_RAD` in roll, pitch, yaw (rad);
    built once per Assembler."""
    step = asm.__dict__.get("_ik_basin_step")
    if step is None:
        stroke = np.asarray(asm.leg_max - asm.leg_min, dtype=np.float64)[:-1]
        step = np.concatenate([[s / 4] * 3 + [BASIN_STEP_RAD] * 3 for s in stroke])
        asm.__dict__["_ik_basin_step"] = step
    return step


def _solve_cold(asm, T_target, criterion, initial, n_starts, max_iter, seed, baseline, restarts,
                budget_s, t0):
    """The common path: the compiled cold solve from the even split (or ``initial``), the
    global layer's further starts, the result.  None when the first start does not converge
    inside the limits (then :func:`_solve_general` takes over: repairs, SciPy's SLSQP, the
    closest-pose search for unreachable targets)."""
    runs = _ColdSolves(asm, T_target, criterion, max_iter)
    if initial is not None:
        runs.run(z=as_array(initial, "initial", (6 * asm.n_platforms,), batch=False))
    else:
        runs.run()
    if runs.best is None:
        return None

    def spent():
        return budget_s is not None and time.perf_counter() - t0 >= budget_s

    if initial is None and restarts > 0:
        # the global layer: basin steps, each a start at a random step from the best minimum
        # so far (seeded: the same result every call), kept when it ends lower
        rng = np.random.default_rng(seed)
        step = _basin_step(asm)
        joins = 0  # consecutive basin steps that came back to the best minimum
        for _ in range(restarts):
            if spent() or joins >= JOINS_TO_STOP:
                break
            before = runs.joined
            runs.run(z=runs.best[1][:step.size] + rng.standard_normal(step.size) * step,
                     join=JOIN_RADIUS)
            joins = joins + 1 if runs.joined > before else 0
    if initial is None and n_starts > 1:
        more = []
        if not spent():
            z, ok, _ = repair(asm, T_target, home_pose(asm))
            more += [z] if ok else []
        if n_starts > 2 and not spent():
            more += list(sample_solutions(asm, T_target, n_starts - 2, seed=seed))
        for z in more:
            if spent():
                break
            runs.run(z=z)
    cost, x, lam, Q, legs, tool_error, viol, scale, _ = runs.best
    extra = {"jax_calls": runs.iters + runs.starts, "solver": "sqp"}
    if _ipm_ok(criterion) and cost > 0:
        # the multipliers are for the objective times scale; stored per unit cost (warm starts)
        extra["lam"] = np.maximum(lam, 0.0) / (scale * cost)
    legs = asm.commanded_lengths(legs)  # the kernel's are geometric; results are commanded
    return IKResult.make(Q=Q, legs=legs, cost=cost,
                         baseline_cost=Lazy(partial(even_baseline, asm, T_target, criterion))
                         if baseline else None,
                         max_violation=viol, success=True, message="ok", iterations=runs.iters,
                         time_s=time.perf_counter() - t0, criterion=criterion,
                         tool_error=tool_error, reason=None, starts=runs.starts, extra=extra,
                         solver_time_s=runs.time)


def _solve_general(asm, T_target, criterion, initial, n_starts, max_iter, ftol, seed, baseline,
                   method, t0):
    """Every other solve: the baselines, N = 1, ``method`` "slsqp" or "ipm", and targets the
    cold path does not converge on (the even split repaired first, the nearest pose, random
    starts, SciPy's SLSQP as the fallback, unreachable targets with their closest pose)."""
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
                        extra={"jax_calls": calls, "solver": solver},
                        solver_time_s=state["solver_t"] if state else 0.0)

    state = None
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
    # best: (cost, kind, payload); solver_t: time in the runs of the criterion (solver_time_s)
    state = {"prob": None, "best": None, "iters": 0, "calls": calls, "solver_t": 0.0}

    def run_from(Q0):
        t_run = time.perf_counter()
        try:
            _run_from(Q0)
        finally:
            state["solver_t"] += time.perf_counter() - t_run

    def _run_from(Q0):
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
                               "lam": out["lam"]}, solver_time_s=state["solver_t"])
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
    use, so the first real solves run at full speed: one solve at the home tool pose (the
    one-call cold solve with its first BFGS matrix, cached per Assembler, and the global
    layer), its baseline, and one solve of the general path (the SQP as the repairs call it,
    through the same compiled cold solve; one Numba kernel serves every criterion; the SQP
    includes its elastic subproblems; the closest-pose search's own SQP compiles when first
    needed, or in ``assemblers warmup``'s ``rescue`` group); with ``trajectory``, also the warm
    interior-point steps.  (SciPy's fallbacks on the JAX functions compile when first needed.)
    Returns the seconds it took."""
    t0 = time.perf_counter()
    criterion = criterion or default_criterion(asm)
    Q0 = home_pose(asm)
    T0 = as_target(forward_kinematics(asm, Q0))
    r = solve_ik(asm, T0, criterion)
    r.baseline_cost  # noqa: B018  (the lazy baseline's path)
    n6 = 6 * (asm.n_platforms - 1)
    if asm.n_platforms > 1:  # the SQP as the general path's repairs call it
        ReducedProblem(asm, T0, "even", Q0 + 1e-3).solve(Q0[:n6], 50, 1e-10)
    if trajectory and asm.n_platforms > 1 and _ipm_ok(criterion):
        lam = r.extra.get("lam") if r.extra else None
        out = run_ipm(asm, T0, criterion, r.Q[:n6], lam0=lam, mu0=IPM_TOL / 10)
        run_ipm(asm, T0, criterion, r.Q[:n6], lam0=out["lam"], mu0=IPM_TOL / 10, H0=out["H"])
    return time.perf_counter() - t0
