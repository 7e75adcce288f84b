"""IK along timed targets: straight-line targets, and warm-started steps that stay on one branch."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..kinematics.api import as_array, leg_lengths
from ..model import Assembler
from .criteria import SPECS
from .custom import resolve
from .driver import IPM_TOL, run_ipm
from .report import FEAS_TOL, IKResult, as_target, default_criterion, violation
from .solve import solve_ik

__all__ = ["TrajectoryResult", "solve_trajectory", "straight_line", "track"]


def straight_line(T_from, T_to, duration: float, rate: float):
    """Timed targets on a straight line with SLERP between two tool poses.

    ``T_from``, ``T_to``: (4, 4); ``duration`` s; ``rate`` Hz.  Returns ``(t (T,), T (T, 4, 4))``
    with ``T = round(duration * rate) + 1`` samples, a smooth (quintic, rest-to-rest) time law.
    """
    from scipy.spatial.transform import Rotation, Slerp

    if not (np.isfinite(duration) and duration > 0):
        raise InputError(f"duration: must be a positive number of seconds, got {duration}")
    if not (np.isfinite(rate) and 0 < rate <= 10_000):
        raise InputError(f"rate: must be in (0, 10000] Hz, got {rate}")
    T_from, T_to = as_target(T_from), as_target(T_to)
    n = max(2, int(round(duration * rate)) + 1)
    t = np.linspace(0.0, duration, n)
    u = t / duration
    s = 10 * u**3 - 15 * u**4 + 6 * u**5  # zero velocity and acceleration at both ends
    slerp = Slerp([0.0, 1.0], Rotation.from_matrix(np.stack([T_from[:3, :3], T_to[:3, :3]])))
    Ts = np.tile(np.eye(4), (n, 1, 1))
    Ts[:, :3, :3] = slerp(s).as_matrix()
    Ts[:, :3, 3] = T_from[:3, 3] + s[:, None] * (T_to[:3, 3] - T_from[:3, 3])
    return t, Ts


@dataclass(frozen=True, eq=False)
class TrajectoryResult:
    """Result of :func:`solve_trajectory`: ``t`` (T,) s, ``Q`` (T, 6N), ``legs`` (T, N, 6) m,
    ``cost`` (T,), ``success`` (T,) bool, ``max_leg_step`` m (largest change of any leg between
    neighbouring samples), ``step_times_s`` (T,) wall time of each step, ``messages`` per failed
    step, ``solvers``: how many steps each solver produced ("ipm (warm)" for the tracking
    steps, the full solve's solver, e.g. "sqp", for the first step and any fallback)."""

    t: np.ndarray
    Q: np.ndarray
    legs: np.ndarray
    T_target: np.ndarray
    cost: np.ndarray
    success: np.ndarray
    max_leg_step: float
    step_times_s: np.ndarray
    criterion: str
    messages: dict
    solvers: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(np.all(self.success))


def solve_trajectory(asm: Assembler, t, T_targets, criterion: str | None = None,
                     initial=None, progress=None) -> TrajectoryResult:
    """IK along timed targets, each step warm-started from the previous solution.

    ``t``: (T,) s increasing; ``T_targets``: (T, 4, 4).  The first step is a full solve (or
    starts at ``initial``); each later one is an interior-point solve (:mod:`.ipm`)
    warm-started at its predecessor's pose, multipliers and Lagrangian Hessian, one compiled
    call of a few Newton steps (a full solve from the predecessor if that does not converge), so
    neighbouring solutions stay on the same branch (no jumps) and each step is a KKT point to
    the same tolerance as a cold solve; ``max_leg_step`` reports the largest leg change.
    ``progress``: optional callable ``progress(k)`` after each step.
    """
    t = as_array(t, "t", (np.shape(t)[0],), batch=False) if np.ndim(t) == 1 else None
    if t is None:
        raise InputError("t: must be a 1-D array of times")
    T_targets = np.asarray(T_targets, dtype=np.float64)
    if T_targets.shape != (t.shape[0], 4, 4):
        raise InputError(f"T_targets: expected shape ({t.shape[0]}, 4, 4), got {T_targets.shape}")
    if t.shape[0] > 1 and np.any(np.diff(t) <= 0):
        raise InputError("t: times must increase strictly")
    criterion = resolve(criterion or default_criterion(asm))  # a blend or a function: a name
    n = asm.n_platforms
    Qs = np.empty((t.shape[0], 6 * n))
    costs = np.empty(t.shape[0])
    ok = np.zeros(t.shape[0], dtype=bool)
    times = np.empty(t.shape[0])
    msgs = {}
    start = None if initial is None else as_array(initial, "initial", (6 * n,), batch=False)
    prev = before = None  # the last successful IKResult and the one before it
    prev_k = -2
    solvers: dict[str, int] = {}
    for k in range(t.shape[0]):
        t_step = time.perf_counter()
        if prev is not None:
            # predictor from the last two steps when they are neighbours on the time grid
            r = track(asm, T_targets[k], criterion, prev, before if prev_k == k - 1 else None)
        else:
            r = solve_ik(asm, T_targets[k], criterion, initial=start, baseline=start is None)
        Qs[k], costs[k], ok[k] = r.Q, r.cost, r.success
        times[k] = time.perf_counter() - t_step
        solver = (r.extra or {}).get("solver", "slsqp")
        solvers[solver] = solvers.get(solver, 0) + 1
        if not r.success:
            msgs[k] = r.message
        else:
            before, prev, prev_k = prev, r, k
        if progress is not None:
            progress(k)
    legs = leg_lengths(asm, Qs)
    step = float(np.abs(np.diff(legs, axis=0)).max()) if t.shape[0] > 1 else 0.0
    return TrajectoryResult(t=t, Q=Qs, legs=legs, T_target=T_targets, cost=costs, success=ok,
                            max_leg_step=step, step_times_s=times, criterion=criterion,
                            messages=msgs, solvers=solvers)


def track(asm, T_target, criterion, prev: IKResult, before: IKResult | None = None) -> IKResult:
    """A trajectory step: the interior-point method warm-started at the previous solution, its
    multipliers and (when it has one) its Lagrangian Hessian, frozen; a few cheap Newton steps
    while the active set holds.  If that does not converge: the exact Hessian; then a full solve
    from the previous pose.  ``before``: the step before ``prev``; when given, the start is
    extrapolated linearly from the two (a predictor: error second order in the time step)."""
    t0 = time.perf_counter()
    lam = prev.extra.get("lam") if prev.extra else None
    if SPECS[criterion].ipm and lam is not None:
        n6 = 6 * (asm.n_platforms - 1)
        z0 = prev.Q[:n6] if before is None else 2.0 * prev.Q[:n6] - before.Q[:n6]
        H = prev.extra.get("H")
        tries = ([H] if H is not None else []) + [None]
        for H0 in tries:
            out = run_ipm(asm, T_target, criterion, z0, lam0=lam, mu0=IPM_TOL / 10, H0=H0)
            viol = violation(out["g"]) if out["converged"] else np.inf
            if viol <= FEAS_TOL:
                # a frozen Hessian that needed many steps is refreshed at the next step
                keep_H = out["H"] if (H0 is None or out["iterations"] <= 2) else None
                return IKResult(
                    Q=out["Q"], legs=out["legs"], cost=out["cost"], baseline_cost=None,
                    max_violation=viol, success=True, message="ok",
                    iterations=out["iterations"], time_s=time.perf_counter() - t0,
                    criterion=criterion, tool_error=out["tool_error"],
                    extra={"solver": "ipm (warm)", "kkt": out["kkt"], "lam": out["lam"],
                           "H": keep_H})
    r = solve_ik(asm, T_target, criterion, initial=prev.Q, baseline=False)
    return dataclasses.replace(r, time_s=time.perf_counter() - t0)
