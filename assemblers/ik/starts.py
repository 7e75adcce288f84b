"""Where a solve starts, and where it ends when the target is out of reach.

* the ``even`` split (the baseline, and the first start) and its repair to feasibility;
* random feasible solutions (further starts, robustness studies);
* the closest-pose search (the tool pose error minimized within every limit) that tells an
  unreachable target from a hard one and gives the pose an unreachable result reports.
"""

from __future__ import annotations

import time

import numpy as np

from ..kinematics.api import home_pose, stack_arrays
from ..model import Assembler
from . import evaluate as ev
from . import sqp
from .criteria import CODES, SPECS
from .driver import SQP_TOL, ReducedProblem
from .problem import CONVERGED, closest_problem, limits, n_constraints, problem
from .report import (
    FEAS_TOL,
    IKResult,
    as_target,
    at_pose,
    criterion_cost,
    full_pose,
    reason,
    report_at,
    violation,
)


def even_split(asm: Assembler, T_target) -> np.ndarray:
    """The ``even`` pose before repair: the tool motion from home split evenly along the stack.

    The motion from the home tool pose to the target, in the home tool frame, is written as a
    translation ``d`` and a rotation vector ``w`` (a decoupled SE(3) logarithm); each of platforms
    1..N-1 applies ``(d / N, exp(w / N))`` to its home transform, and the last platform takes
    whatever puts the tool exactly on target.  Returns ``Q`` (6N,) (possibly infeasible).
    """
    Q = np.empty(6 * asm.n_platforms)
    ev.even_split(problem(asm, as_target(T_target), "fn"), home_pose(asm), Q)
    return Q


def even(asm: Assembler, T_target, criterion: str):
    """The even split (before repair), its constraints and its cost: ``(Q, g, cost)``."""
    crit = SPECS[criterion].cost
    P = problem(asm, T_target, crit)
    Q = np.empty(6 * asm.n_platforms)
    ev.even_split(P, home_pose(asm), Q)
    cost, g = at_pose(P, crit, Q)
    return Q, g, cost


def even_baseline(asm: Assembler, T_target, criterion: str, method: str = "auto"):
    """The ``even`` baseline's cost for ``criterion`` (its reported criterion, as ``cost``):
    at the even split when that is feasible, else at the split repaired to feasibility (the
    feasible pose nearest to it: a solve of its own); None when the repair fails."""
    Q_even, g_even, c_even = even(asm, T_target, criterion)
    if violation(np.asarray(g_even)) == 0.0:
        return float(c_even)
    z, ok, _ = repair(asm, T_target, np.asarray(Q_even), method=method,
                      rescue=Rescue(asm, T_target))
    return criterion_cost(asm, full_pose(asm, T_target, z), criterion) if ok else None


def repair(asm, T_target, Q_ref, max_iter=200, method="auto", rescue=None):
    """The feasible pose nearest (in Q) to ``Q_ref`` that reaches the target: (z, ok, calls).

    With ``rescue`` (a :class:`Rescue`) and method "auto": when the SQP from ``Q_ref`` fails,
    SciPy's SLSQP is not tried from there (on unreachable targets it only spends time);
    instead, if the closest-pose search shows the target reachable, the repair runs again from
    that feasible pose (SLSQP as the fallback)."""
    n6 = 6 * (asm.n_platforms - 1)
    prob = ReducedProblem(asm, T_target, "even", Q_ref)
    z0 = np.asarray(Q_ref[:n6])
    if violation(prob.g(z0)) == 0.0:
        return z0, True, prob.calls
    quick = rescue is not None and method == "auto"
    # a feasible pose near the split is all it needs
    res = prob.solve(z0, max_iter, 1e-10, method, fallback=not quick)
    ok = violation(prob.g(res.x)) <= FEAS_TOL
    if not ok and quick:
        Q_start = rescue.start()
        if Q_start is not None:
            res = prob.solve(Q_start[:n6], max_iter, 1e-10, method)
            ok = violation(prob.g(res.x)) <= FEAS_TOL
    return res.x, ok, prob.calls


def sample_solutions(asm: Assembler, T_target, n: int, seed: int = 0, *, spread: float = 1.0,
                     max_tries: int = 50) -> np.ndarray:
    """Random feasible stack poses that reach ``T_target``: (n, 6N) (fewer if few exist).

    Platforms 1..N-1 are drawn uniformly around the even split (+-2 cm, +-0.1 rad times
    ``spread``), the last platform closes the chain exactly, and draws outside any limit of a
    solve (stroke with ``[ik] stroke_margin``, joint angles, pose bounds, leg force ratings) are
    rejected.  Each draw is one call of the compiled evaluation kernel (the one the solves
    use: no JAX, about 10 us a draw)."""
    T_target = as_target(T_target)
    rng = np.random.default_rng(seed)
    N = asm.n_platforms
    n6 = 6 * (N - 1)
    center = even_split(asm, T_target)[:n6]
    lim = np.tile([0.02, 0.02, 0.02, 0.1, 0.1, 0.1], N - 1) * spread
    P = problem(asm, T_target, "nearest")  # the constraints of every solve, no epigraph rows
    code = CODES["nearest"]
    Q, g, no_rows = np.empty(6 * N), np.empty(n_constraints(P)), np.empty((0, n6))
    found = []
    for _ in range(max_tries):
        for z in center + rng.uniform(-lim, lim, size=(max(64, 4 * n), n6)):
            f = ev.evaluate(P, code, z, Q, ev.NO, z[:0], g, no_rows, ev.NO)
            if np.isfinite(f) and g.min() >= 0.0:
                found.append(Q.copy())
        if len(found) >= n:
            break
    return np.array(found[:n]).reshape(-1, 6 * N)


def closest(asm: Assembler, T_target):
    """The feasible stack pose closest to the target (weighted tool-pose error over the whole
    stack pose, within every limit), from home: the compiled SQP on the ``closest`` criterion,
    SciPy's SLSQP on the JAX oracle (:func:`assemblers.ik.reference.closest_values`) as the
    fallback.  Returns ``(Q (6N,), iterations, solver)``."""
    # start from the home pose (feasible) so the solver walks inside the limits to the target
    Q0 = np.array(home_pose(asm), dtype=np.float64)
    P = closest_problem(asm, T_target)
    Q, lam, B = np.empty_like(Q0), np.empty(n_constraints(P)), np.empty((Q0.size,) * 2)
    status, nit, _, _ = sqp.sqp(P, CODES["closest"], Q0, SQP_TOL, 300, 0.0, Q, lam, B, 0.0,
                                  sqp.B_IDENTITY, Q0[:0], 0.0)
    if status == CONVERGED:
        return Q, int(nit), "sqp"
    import jax
    import jax.numpy as jnp
    from scipy.optimize import minimize  # (here: see driver.ReducedProblem.solve)

    from . import reference

    arrs = stack_arrays(asm)
    lims = tuple(jnp.asarray(a) for a in limits(asm))
    Tt = jnp.asarray(T_target)
    w = jnp.asarray(P.w_out)
    cache = {}

    def values(Q):
        k = Q.tobytes()
        if k not in cache:
            cache.clear()
            cache[k] = jax.device_get(reference.closest_values(Q, arrs, Tt, w, lims))
        return cache[k]

    res = minimize(lambda Q: float(values(Q)[0]), Q0, jac=lambda Q: values(Q)[1], method="SLSQP",
                   constraints=[{"type": "ineq", "fun": lambda Q: values(Q)[2],
                                 "jac": lambda Q: values(Q)[3]}],
                   options={"maxiter": 300, "ftol": 1e-14})
    return res.x, int(res.nit), "slsqp"


class Rescue:
    """The closest-pose search of one solve, run at most once: when a repair fails it tells
    whether the target is reachable after all (the closest pose reaches it within every limit;
    then it is a feasible start), and for an unreachable target it is the pose reported."""

    def __init__(self, asm, T_target):
        self.asm, self.T_target, self.value = asm, T_target, None

    def __call__(self):
        if self.value is None:
            self.value = closest(self.asm, self.T_target)
        return self.value

    def start(self):
        """``Q`` (6N,) of the closest pose when it reaches the target within every limit (to
        1e-9 m / rad), else None."""
        Q = self()[0]
        g, (ep, er), _, _ = report_at(self.asm, self.T_target, Q, "fn")
        return Q if max(ep, er) <= 1e-9 and violation(g) <= FEAS_TOL else None


def unreachable(asm, T_target, Q_start, criterion, baseline, t0, calls, rescue=None) -> IKResult:
    """The result for an unreachable target: the closest feasible pose (:func:`closest`,
    ``rescue``'s when given) and the reason (the limit ``Q_start`` violates most)."""
    why = reason(asm, report_at(asm, T_target, Q_start, criterion)[0])
    Q, nit, solver = (rescue or Rescue(asm, T_target))()
    g, (ep, er), legs, cost = report_at(asm, T_target, Q, criterion)
    msg = (f"{why}: no pose within the limits reaches the target; closest pose found misses "
           f"it by {ep * 1e3:.3f} mm and {er * 1e3:.3f} mrad")
    return IKResult(Q=Q, legs=legs, cost=cost, baseline_cost=baseline,
                    max_violation=violation(g), success=False, message=msg,
                    iterations=nit, time_s=time.perf_counter() - t0, criterion=criterion,
                    tool_error=(ep, er), reason=why,
                    extra={"jax_calls": calls, "solver": solver})


__all__ = ["Rescue", "closest", "even", "even_baseline", "even_split",
           "repair", "sample_solutions", "unreachable"]
