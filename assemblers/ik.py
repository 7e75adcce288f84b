"""Redundant inverse kinematics: the least-sensitive stack pose that puts the tool at a target.

    minimize    criterion(Q)                         (default: || W_out J W_in ||_F, SPEC)
    subject to  T_world_tool(Q) = T_target           (eliminated exactly, see below)
                leg_min <= L <= leg_max, joint angles <= limit, pose bounds

Elimination: for platforms 1..N-1 given (the decision variables ``z``, 6(N-1) of them), the last
platform's transform is ``T(q_N) = A^-1 T_target T_tool^-1`` with A everything below it, and
``q_N`` follows in closed form; the tool pose then holds to ~1e-16 by construction, and the
optimizer (the compiled SQP of :mod:`assemblers.fastsqp`, SciPy's SLSQP as its fallback) sees
only inequality constraints.  Objective, gradient, constraints and their Jacobian
come from the Numba kernel of :mod:`assemblers.fastik` (closed-form exact derivatives, a few
microseconds), evaluated once per iterate, for every criterion and for the closest pose of
unreachable targets; the JAX functions here (autodiff) are the reference it is tested against,
and the closest-pose search's fallback.

This module is part of the math core: no files, no printing.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from functools import cache

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import OptimizeResult, minimize

from . import fastik, fastsqp, lie
from . import kinematics as K
from .api import as_array, home_pose, leg_lengths, stack_arrays
from .errors import InputError
from .model import Assembler

CRITERIA = ("fn", "fn_legs", "condition", "even", "nearest")
_MARGIN = 1e-9  # m / rad kept inside every limit, so round-off never lands a pose outside
_FEAS_TOL = 1e-8  # largest violation (m or rad) still called feasible by the optimizer
_SQP_TOL = 1e-10  # scaled KKT error at which fastsqp.sqp stops (objective normalised to 1)
# "condition": also stop when three feasible steps change the normalised objective by <= this
# (its optimum is often where the extreme singular values cross: no small KKT error there)
_COND_FTOL = 1e-12


@dataclass(frozen=True, eq=False)
class IKResult:
    """Result of :func:`solve_ik`.

    ``Q``: (6N,) stack pose (the closest one found when ``success`` is False); ``legs``: (N, 6) m;
    ``cost``: the criterion at ``Q``; ``baseline_cost``: the same criterion at the ``even``
    baseline (None if that baseline is infeasible); ``max_violation``: largest limit violation
    (m or rad, 0 if none); ``tool_error``: (position m, rotation rad) between the tool pose at
    ``Q`` and the target; ``reason``: None, "unreachable: stroke", "unreachable: joint angle",
    "unreachable: pose bounds" or "no convergence".
    """

    Q: np.ndarray
    legs: np.ndarray
    cost: float
    baseline_cost: float | None
    max_violation: float
    success: bool
    message: str
    iterations: int
    time_s: float
    criterion: str
    tool_error: tuple[float, float] = (0.0, 0.0)
    reason: str | None = None
    starts: int = 1
    extra: dict = field(default_factory=dict)

    @property
    def reduction(self) -> float | None:
        """Relative cost reduction against the ``even`` baseline (0.25 = 25 % lower)."""
        if self.baseline_cost is None or self.baseline_cost == 0:
            return None
        return 1.0 - self.cost / self.baseline_cost


# ----------------------------------------------------------------------------- JAX pieces


def eliminate_last(arrs, z, T_target):
    """Full stack pose ``Q`` (6N,) from platforms 1..N-1 (``z`` (6(N-1),)) and the target."""
    n = arrs.b.shape[0]
    A = arrs.T_mount
    for i in range(n - 1):
        A = A @ lie.pose_to_transform(z[6 * i: 6 * i + 6]) @ arrs.T_after[i]
    T_last = lie.inverse_transform(A) @ T_target @ lie.inverse_transform(arrs.T_after[n - 1])
    return jnp.concatenate([z, lie.transform_to_pose(T_last)])


def constraint_values(arrs, Q, limits):
    """Inequalities ``g(Q) >= 0`` (stroke, joint angle, pose bounds), in m and rad."""
    leg_min, leg_max, max_angle, lo_idx, lo_val, hi_idx, hi_val = limits
    L = K.stack_legs(arrs, Q)  # (N, 6)
    ang = K.stack_joint_angles(arrs, Q)  # (N, 6, 2)
    parts = [
        (L - leg_min[:, None]).reshape(-1) - _MARGIN,
        (leg_max[:, None] - L).reshape(-1) - _MARGIN,
        (max_angle[:, None, None] - ang).reshape(-1) - _MARGIN,
        Q[lo_idx] - lo_val,
        hi_val - Q[hi_idx],
    ]
    return jnp.concatenate(parts)


def _objective(criterion, arrs, Q, w_out, w_in, Q_ref):
    if criterion in ("fn", "fn_legs"):
        return K.sensitivity(arrs, Q, w_out, w_in, "pose" if criterion == "fn" else "legs")
    if criterion == "condition":
        J = K.jacobian(arrs, Q, "pose")
        s = jnp.linalg.svd(w_out[:, None] * J * w_in[None, :], compute_uv=False)
        return s[0] / s[-1]
    # "nearest" (to Q_ref = home) and the "even" repair (to Q_ref = the even split):
    d = Q - Q_ref
    return jnp.sum(d * d)


@cache
def _compiled(criterion: str):
    """One jitted function returning (f, grad f, g, dg/dz) for the reduced problem: the JAX
    reference (autodiff) that ``tests/test_fastik.py`` checks :func:`assemblers.fastik.evaluate`
    against."""

    def f_of_z(z, arrs, T_target, w_out, w_in, Q_ref):
        Q = eliminate_last(arrs, z, T_target)
        return _objective(criterion, arrs, Q, w_out, w_in, Q_ref)

    def g_of_z(z, arrs, T_target, limits):
        return constraint_values(arrs, eliminate_last(arrs, z, T_target), limits)

    @jax.jit
    def all_in_one(z, arrs, T_target, w_out, w_in, Q_ref, limits):
        f, df = jax.value_and_grad(f_of_z)(z, arrs, T_target, w_out, w_in, Q_ref)
        g = g_of_z(z, arrs, T_target, limits)
        dg = jax.jacfwd(g_of_z)(z, arrs, T_target, limits)
        # one flat array: one device-to-host transfer per iterate instead of four
        return jnp.concatenate([f[None], df, g, dg.reshape(-1)])

    return all_in_one


@jax.jit
def _eliminate_batch(arrs, Z, T_target):
    return jax.vmap(eliminate_last, in_axes=(None, 0, None))(arrs, Z, T_target)


@jax.jit
def _constraints_batch(arrs, Qs, limits):
    return jax.vmap(constraint_values, in_axes=(None, 0, None))(arrs, Qs, limits)


# ----------------------------------------------------------------------------- helpers


def _limits_np(asm: Assembler):
    """The limits as NumPy arrays: ``(leg_min (N,), leg_max (N,), max_angle (N,), lo_idx,
    lo_val, hi_idx, hi_val)`` (pose bounds as indices into Q and values; a missing joint-angle
    limit becomes 4 rad, beyond any angle)."""
    cached = asm.__dict__.get("_ik_limits_np")
    if cached is None:
        lo = np.nonzero(np.isfinite(asm.pose_lower))[0]
        hi = np.nonzero(np.isfinite(asm.pose_upper))[0]
        max_angle = np.where(np.isfinite(asm.max_joint_angle), asm.max_joint_angle, 4.0)
        cached = (np.asarray(asm.leg_min), np.asarray(asm.leg_max), max_angle, lo,
                  asm.pose_lower[lo], hi, asm.pose_upper[hi])
        asm.__dict__["_ik_limits_np"] = cached
    return cached


def _limits(asm: Assembler):
    """:func:`_limits_np` as JAX arrays (for the jitted functions)."""
    cached = asm.__dict__.get("_ik_limits")
    if cached is None:
        cached = tuple(jnp.asarray(a) for a in _limits_np(asm))
        asm.__dict__["_ik_limits"] = cached
    return cached


def _weights(asm: Assembler, criterion: str):
    wrt = "legs" if criterion == "fn_legs" else "pose"
    key = f"_ik_weights_{wrt}"
    cached = asm.__dict__.get(key)
    if cached is None:
        s = asm.sensitivity
        cached = (jnp.asarray(s.w_out), jnp.asarray(s.w_in(asm.n_platforms, wrt)))
        asm.__dict__[key] = cached
    return cached


def default_criterion(asm: Assembler) -> str:
    """``fn`` (||J_Q||) unless the config's ``[sensitivity] wrt`` is "legs" (then ``fn_legs``)."""
    return "fn_legs" if asm.sensitivity.wrt == "legs" else "fn"


def _cost_criterion(criterion: str) -> str:
    """The criterion a result's cost is measured in: the baselines report the ``fn`` cost."""
    return criterion if criterion in ("fn", "fn_legs", "condition") else "fn"


def _at_pose(P, crit, Q):
    """The criterion ``crit`` and the constraints at a full stack pose ``Q`` (6N,) (on target
    or not): ``(cost, g (m,))``."""
    g = np.empty(fastik.n_constraints(P))
    cost = fastik.evaluate(P, _FAST_CODES[crit], Q[:0], Q, False, Q[:0], g, np.empty((0, 0)),
                           True)
    return float(cost), g


def criterion_cost(asm: Assembler, Q, criterion: str) -> float:
    """The value of a criterion at a full pose ``Q`` (6N,); for ``even``/``nearest`` (which do
    not optimize sensitivity) this is the ``fn`` cost."""
    crit = _cost_criterion(criterion)
    # a writable copy (Numba types read-only arrays apart)
    return _at_pose(_fast_problem(asm, np.eye(4), crit), crit, np.array(Q, dtype=np.float64))[0]


def _even_split_jax(arrs, Q_home, T_target):
    """JAX kernel of :func:`even_split`: ``Q_home`` (6N,), ``T_target`` (4, 4) -> Q (6N,)."""
    n = Q_home.shape[0] // 6
    if n == 1:
        return eliminate_last(arrs, Q_home[:0], T_target)
    D = lie.inverse_transform(K.forward(arrs, Q_home)) @ T_target  # motion in the home tool frame
    step = jnp.eye(4).at[:3, :3].set(lie.so3_exp(lie.so3_log(D[:3, :3]) / n))
    step = step.at[:3, 3].set(D[:3, 3] / n)
    z = jnp.concatenate([lie.transform_to_pose(lie.pose_to_transform(Q_home[6 * i: 6 * i + 6]) @ step)
                         for i in range(n - 1)])
    return eliminate_last(arrs, z, T_target)


def even_split(asm: Assembler, T_target) -> np.ndarray:
    """The ``even`` pose before repair: the tool motion from home split evenly along the stack.

    The motion from the home tool pose to the target, in the home tool frame, is written as a
    translation ``d`` and a rotation vector ``w`` (a decoupled SE(3) logarithm); each of platforms
    1..N-1 applies ``(d / N, exp(w / N))`` to its home transform, and the last platform takes
    whatever puts the tool exactly on target.  Returns ``Q`` (6N,) (possibly infeasible).
    """
    Q = np.empty(6 * asm.n_platforms)
    fastik.even_split(_fast_problem(asm, _as_target(T_target), "fn"), home_pose(asm), Q)
    return Q


def _even(asm, T_target, criterion):
    """The even split (before repair), its constraints and its cost: ``(Q, g, cost)``."""
    crit = _cost_criterion(criterion)
    P = _fast_problem(asm, T_target, crit)
    Q = np.empty(6 * asm.n_platforms)
    fastik.even_split(P, home_pose(asm), Q)
    cost, g = _at_pose(P, crit, Q)
    return Q, g, cost


def _violation(g) -> float:
    return float(max(0.0, -float(np.min(g)) - _MARGIN)) if g.size else 0.0


def _reason(asm: Assembler, g) -> str:
    """Which family of limits is violated most (g laid out as in constraint_values)."""
    n6 = 6 * asm.n_platforms
    fams = [("unreachable: stroke", g[: 2 * n6]), ("unreachable: joint angle", g[2 * n6: 4 * n6]),
            ("unreachable: pose bounds", g[4 * n6:])]
    worst = min(fams, key=lambda kv: np.min(kv[1]) if kv[1].size else np.inf)
    return worst[0]


_FAST_CODES = {"fn": fastik.CRIT_FN, "fn_legs": fastik.CRIT_FN_LEGS,  # fastik criterion codes
               "condition": fastik.CRIT_COND, "even": fastik.CRIT_DIST,
               "nearest": fastik.CRIT_DIST}


def _fast_problem(asm, T_target, criterion, Q_ref=None):
    """The :mod:`assemblers.fastik` problem tuple for a target and criterion (the geometry,
    weights and limits are converted once per Assembler)."""
    crit = _cost_criterion(criterion)
    key = f"_ik_fast_{crit}"
    base = asm.__dict__.get(key)
    if base is None:
        arrs = stack_arrays(asm)
        w_out, w_in = _weights(asm, crit)
        base = fastik.problem(arrs.b, arrs.t, arrs.T_mount, arrs.T_after, np.eye(4), w_out, w_in,
                              home_pose(asm), _limits_np(asm))
        asm.__dict__[key] = base
    Q_ref = base[7] if Q_ref is None else np.array(Q_ref, dtype=np.float64)
    return (*base[:4], np.array(T_target, dtype=np.float64), *base[5:7], Q_ref,
            *base[8:])


class _Problem:
    """The reduced problem for one target on the Numba kernel of :mod:`assemblers.fastik`
    (exact closed-form derivatives, a few microseconds), with a one-entry cache so SLSQP's
    separate calls for f, grad, g and dg at the same iterate cost one evaluation."""

    def __init__(self, asm, T_target, criterion, Q_ref):
        self.code = _FAST_CODES[criterion]
        self.P = _fast_problem(asm, T_target, criterion, Q_ref)
        self._Q = np.empty(6 * asm.n_platforms)
        self._shape = (6 * (asm.n_platforms - 1), fastik.n_constraints(self.P))
        self._x = None
        self._key = None
        self.calls = 0
        self.scale = 1.0

    def _eval(self, z):
        key = z.tobytes() if isinstance(z, np.ndarray) else np.asarray(z, np.float64).tobytes()
        if key != self._key:  # bytes compare: much cheaper than np.array_equal per call
            self._key = key
            self._x = np.array(z, dtype=np.float64)
            n, m = self._shape
            grad, g, G = np.empty(n), np.empty(m), np.empty((m, n))
            f = fastik.evaluate(self.P, self.code, self._x, self._Q, True, grad, g, G, False)
            self._val = (f, grad, g, G)
            self.calls += 1
        return self._val

    def f(self, z):
        return float(self._eval(z)[0]) * self.scale

    def df(self, z):
        return self._eval(z)[1] * self.scale

    def g(self, z):
        return self._eval(z)[2]

    def dg(self, z):
        return self._eval(z)[3]

    def solve(self, z0, max_iter, ftol, method="auto", fallback=True):
        """Minimise from ``z0``: :func:`assemblers.fastsqp.sqp` (compiled SQP) when ``method`` is
        "auto", else (or when it stops without converging, e.g. on inconsistent linearised
        constraints far from feasible, unless ``fallback`` is False) SciPy's SLSQP on the same
        kernel.  Returns a SciPy ``OptimizeResult`` with ``solver`` ("sqp" or "slsqp") and
        ``scale`` added; ``multipliers`` are for the objective times ``scale``."""
        z0 = np.asarray(z0, dtype=np.float64)
        # both solvers see the objective normalised to ~1 at the start (SLSQP's ftol is absolute)
        f0 = abs(float(self._eval(z0)[0]))
        self.scale = 1.0 / f0 if f0 > 1e-300 else 1.0
        if method == "auto":
            n, m = self._shape
            z, lam, B = np.empty(n), np.empty(m), np.empty((n, n))
            f_tol = _COND_FTOL if self.code == fastik.CRIT_COND else 0.0
            status, k, err, _ = fastsqp.sqp(self.P, self.code, z0, _SQP_TOL, max_iter,
                                            self.scale, z, lam, B, f_tol)
            self.calls += k + 1
            if status in (fastik.CONVERGED, fastsqp.STALLED):
                msg = (f"converged (KKT error {err:.1e})" if status == fastik.CONVERGED else
                       f"objective converged (KKT error {err:.1e}: not smooth at the optimum)")
                return OptimizeResult(x=z, success=True, status=0, nit=int(k), multipliers=lam,
                                      message=msg, solver="sqp", scale=self.scale)
            if not fallback:
                return OptimizeResult(x=z, success=False, status=int(status), nit=int(k),
                                      message=f"no convergence (status {status})", solver="sqp",
                                      scale=self.scale)
        n_con = len(self.g(z0))
        cons = [{"type": "ineq", "fun": self.g, "jac": self.dg}] if n_con else []
        res = minimize(self.f, z0, jac=self.df, constraints=cons, method="SLSQP",
                       options={"maxiter": max_iter, "ftol": ftol})
        res.solver, res.scale = "slsqp", self.scale
        return res


def _full(asm, T_target, z):
    """Full stack pose (6N,) from the first N-1 platforms ``z`` and the target."""
    Q = np.empty(6 * asm.n_platforms)
    fastik.eliminate(_fast_problem(asm, T_target, "fn"), np.array(z, dtype=np.float64), Q)
    return Q


def _report_values(cost_criterion, arrs, Q, T_target, limits, w_out, w_in):
    """What a result reports at a full pose ``Q``: constraints ``g`` (m,), the tool's error
    twist against the target (6,), legs (N, 6) m and the cost (traceable)."""
    return (constraint_values(arrs, Q, limits), lie.twist_between(T_target, K.forward(arrs, Q)),
            K.stack_legs(arrs, Q), _objective(cost_criterion, arrs, Q, w_out, w_in, None))


def _report_at(asm, T_target, Q, criterion):
    """``(g, (position error m, rotation error rad), legs, cost)`` at a full pose ``Q``; the
    cost of ``even``/``nearest`` is the ``fn`` cost (as :func:`criterion_cost`)."""
    crit = _cost_criterion(criterion)
    P = _fast_problem(asm, T_target, crit)
    Q = np.array(Q, dtype=np.float64)
    cost, g = _at_pose(P, crit, Q)
    legs, tw = np.empty((asm.n_platforms, 6)), np.empty(6)
    fastik.report(P, Q, legs, tw)
    return g, (float(np.linalg.norm(tw[:3])), float(np.linalg.norm(tw[3:]))), legs, cost


_EYE3 = np.eye(3)


def _as_target(T_target) -> np.ndarray:
    T = as_array(T_target, "T_target", (4, 4), batch=False)
    R = T[:3, :3]
    (a, b, c), (d, e, f), (g, h, i) = R.tolist()  # det by the rule of Sarrus: no LAPACK call
    det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    if np.abs(R.T @ R - _EYE3).max() > 1e-9 or abs(det - 1) > 1e-9 or \
            T[3].tolist() != [0.0, 0.0, 0.0, 1.0]:
        raise InputError("T_target: not a rigid transform (rotation must be orthonormal with "
                         "det +1 to 1e-9, last row 0 0 0 1)")
    return T


# ----------------------------------------------------------------------------- solver


def _repair(asm, T_target, Q_ref, max_iter=200, method="auto", rescue=None):
    """The feasible pose nearest (in Q) to ``Q_ref`` that reaches the target: (z, ok, calls).

    With ``rescue`` (a :class:`_Rescue`) and method "auto": when the SQP from ``Q_ref`` fails,
    SciPy's SLSQP is not tried from there (on unreachable targets it only spends time);
    instead, if the closest-pose search shows the target reachable, the repair runs again from
    that feasible pose (SLSQP as the fallback)."""
    n6 = 6 * (asm.n_platforms - 1)
    prob = _Problem(asm, T_target, "even", Q_ref)
    z0 = np.asarray(Q_ref[:n6])
    if _violation(prob.g(z0)) == 0.0:
        return z0, True, prob.calls
    quick = rescue is not None and method == "auto"
    # a feasible pose near the split is all it needs
    res = prob.solve(z0, max_iter, 1e-10, method, fallback=not quick)
    ok = _violation(prob.g(res.x)) <= _FEAS_TOL
    if not ok and quick:
        Q_start = rescue.start()
        if Q_start is not None:
            res = prob.solve(Q_start[:n6], max_iter, 1e-10, method)
            ok = _violation(prob.g(res.x)) <= _FEAS_TOL
    return res.x, ok, prob.calls


# ----------------------------------------------------------------------------- interior point

# "condition" (a ratio of singular values, not smooth where they cross) stays off the interior
# point, whose Newton steps need its second derivatives
_IPM_CRITERIA = ("fn", "fn_legs", "nearest")
# (the solver: assemblers.fastik.interior_point, the algorithm of assemblers.nlp in Numba)
_IPM_TOL = 1e-10  # scaled KKT error (objective normalised to 1 at the start)
_IPM_MAX_ITER = 80
_MU_COLD = 1e-3  # barrier parameter of a cold start
_S_PUSH = 1e-3  # m / rad: slacks of a cold start are at least this (IPOPT's bound push)


def _run_ipm(asm, T_target, criterion, z0, lam0=None, mu0=_MU_COLD, H0=None):
    """One interior-point solve (:func:`assemblers.fastik.interior_point`: exact first
    derivatives, Lagrangian Hessian by differences of exact gradients, or ``H0`` frozen) from
    ``z0`` (6(N-1),), plus everything a result reports.  A warm start passes the multipliers
    ``lam0`` (m,) of a neighbouring solution (per unit of its cost), a small ``mu0`` and
    optionally its Hessian ``H0``.  Returns a dict of NumPy values; ``lam`` is per unit of the
    returned cost."""
    P = _fast_problem(asm, T_target, criterion)
    code = _FAST_CODES[criterion]
    n6 = 6 * (asm.n_platforms - 1)
    m = fastik.n_constraints(P)
    cold = lam0 is None
    lam_in = np.zeros(m) if cold else np.asarray(lam0, dtype=np.float64)
    hess = fastik.HESS_FD if H0 is None else fastik.HESS_FROZEN
    H_in = np.zeros((n6, n6)) if H0 is None else np.asarray(H0, dtype=np.float64)
    z, s, lam, H = np.empty(n6), np.empty(m), np.empty(m), np.empty((n6, n6))
    status, k, err, f0 = fastik.interior_point(
        P, code, np.array(z0, dtype=np.float64), lam_in, mu0, cold, H_in, hess, _IPM_TOL,
        _IPM_MAX_ITER, _S_PUSH, 0.0, z, s, lam, H)
    Q = np.empty(6 * asm.n_platforms)
    fastik.eliminate(P, z, Q)
    g, tool_error, legs, cost = _report_at(asm, T_target, Q, criterion)
    return {"converged": status == fastik.CONVERGED, "status": int(status), "iterations": int(k),
            "kkt": float(err), "lam": lam * f0 / max(cost, 1e-300), "H": H, "Q": Q, "g": g,
            "tool_error": tool_error, "legs": legs, "cost": cost}


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
        method: "auto": the compiled SQP of :mod:`assemblers.fastsqp` on the Numba kernel of
            :mod:`assemblers.fastik` (exact derivatives), with SciPy's SLSQP as the fallback
            when it does not converge;
            "slsqp": SciPy's SLSQP on the same kernel (the solver before fastsqp, kept for
            comparison); "ipm": the interior-point solver of :mod:`assemblers.fastik` (each
            Newton step needs a Hessian, n extra gradients, so from a cold start it is slower;
            trajectories use it warm, see :func:`solve_trajectory`).

    Returns an :class:`IKResult`; an unreachable target is a result (``success`` False, the
    reason, the closest feasible pose and its tool-pose error), not an exception.
    ``extra["solver"]`` says which solver produced the pose.
    """
    t0 = time.perf_counter()
    criterion = criterion or default_criterion(asm)
    if criterion not in CRITERIA:
        raise InputError(f"criterion: must be one of {', '.join(CRITERIA)}, got {criterion!r}")
    if method not in ("auto", "ipm", "slsqp"):
        raise InputError(f"method: must be one of auto, ipm, slsqp, got {method!r}")
    T_target = _as_target(T_target)
    n = asm.n_platforms
    n6 = 6 * (n - 1)
    calls = 0
    rescue = _Rescue(asm, T_target)  # the closest-pose search, run only if a repair fails

    def repaired_home():
        """The feasible pose nearest home reaching the target (None if the repair fails) and
        the evaluations it took."""
        z, ok, c = _repair(asm, T_target, home_pose(asm), method=method, rescue=rescue)
        return (_full(asm, T_target, z) if ok else None), c
    warm = initial is not None and not baseline and criterion not in ("even", "nearest")
    if warm:  # trajectory step: no baseline, start at the given pose
        Q_even_feas, even_ok, baseline = None, False, None
    else:
        Q_even, g_even, c_even = _even(asm, T_target, criterion)
        calls += 1
        if _violation(np.asarray(g_even)) == 0.0:
            Q_even_feas, even_ok, baseline = np.asarray(Q_even), True, float(c_even)
        else:
            z_even, even_ok, c = _repair(asm, T_target, np.asarray(Q_even), method=method,
                                        rescue=rescue)
            calls += c
            Q_even_feas = _full(asm, T_target, z_even)
            baseline = criterion_cost(asm, Q_even_feas, criterion) if even_ok else None

    def finish(Q, ok, msg, iters, reason=None, starts=1, solver="slsqp"):
        g, tool_error, legs, cost = _report_at(asm, T_target, Q, criterion)
        return IKResult(Q=Q, legs=legs, cost=cost,
                        baseline_cost=baseline, max_violation=_violation(g), success=ok,
                        message=msg, iterations=iters, time_s=time.perf_counter() - t0,
                        criterion=criterion, tool_error=tool_error, reason=reason, starts=starts,
                        extra={"jax_calls": calls, "solver": solver})

    if n == 1 or criterion == "even":
        if even_ok:
            return finish(Q_even_feas, True, "ok" if n > 1 else "ok (N = 1: IK is unique)", 0,
                          solver="closed form" if n == 1 else "even split")
        return _unreachable(asm, T_target, Q_even_feas, criterion, baseline, t0, calls, rescue)

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
    use_ipm = method == "ipm" and criterion in _IPM_CRITERIA
    state = {"prob": None, "best": None, "iters": 0, "calls": calls}  # best: (cost, kind, payload)

    def run_from(Q0):
        z0 = np.asarray(Q0[:n6], dtype=np.float64)
        if use_ipm:
            out = _run_ipm(asm, T_target, criterion, z0)
            state["calls"] += 1
            state["iters"] += out["iterations"]
            f_val = out["cost"] if criterion != "nearest" else float(np.sum((out["Q"] - ref) ** 2))
            if out["converged"] and _violation(out["g"]) <= _FEAS_TOL:
                if state["best"] is None or f_val < state["best"][0]:
                    state["best"] = (f_val, "ipm", out)
                return
            if method == "ipm":
                return
        if state["prob"] is None:
            state["prob"] = _Problem(asm, T_target, criterion, ref)
        prob = state["prob"]
        res = prob.solve(z0, max_iter, ftol, method)
        state["iters"] += int(res.nit)
        viol = _violation(prob.g(res.x))
        f_val = float(prob._eval(res.x)[0])  # the criterion itself (unscaled)
        if viol <= _FEAS_TOL and (state["best"] is None or f_val < state["best"][0]):
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
        Q_try = _full(asm, T_target, starts[0][:n6]) if starts else even_split(asm, T_target)
        return _unreachable(asm, T_target, Q_try, criterion, baseline, t0, calls, rescue)
    _, kind, payload = best
    if kind == "ipm":
        out = payload
        return IKResult(Q=out["Q"], legs=out["legs"], cost=out["cost"], baseline_cost=baseline,
                        max_violation=_violation(out["g"]), success=True, message="ok",
                        iterations=iters, time_s=time.perf_counter() - t0, criterion=criterion,
                        tool_error=out["tool_error"], reason=None, starts=len(starts),
                        extra={"jax_calls": calls, "solver": "ipm", "kkt": out["kkt"],
                               "lam": out["lam"]})
    res = payload
    Q = _full(asm, T_target, res.x)
    ok = bool(res.success) or res.status == 8  # 8: positive directional derivative (at optimum)
    msg = "ok" if ok else f"no convergence: {res.message}"
    out = finish(Q, ok, msg, iters, None if ok else "no convergence", starts=len(starts),
                 solver=res.solver)
    lam = getattr(res, "multipliers", None)
    if lam is not None and criterion in _IPM_CRITERIA and out.cost > 0:
        # the multipliers are for the objective times res.scale; store them per unit cost
        out.extra["lam"] = np.maximum(np.asarray(lam, dtype=np.float64), 0.0) / (res.scale * out.cost)
    if out.max_violation > _FEAS_TOL:  # should not happen; never report a violating pose as ok
        return _unreachable(asm, T_target, Q, criterion, baseline, t0, calls, rescue)
    return out


def _track(asm, T_target, criterion, prev: IKResult, before: IKResult | None = None) -> IKResult:
    """A trajectory step: the interior-point method warm-started at the previous solution, its
    multipliers and (when it has one) its Lagrangian Hessian, frozen; a few cheap Newton steps
    while the active set holds.  If that does not converge: the exact Hessian; then a full solve
    from the previous pose.  ``before``: the step before ``prev``; when given, the start is
    extrapolated linearly from the two (a predictor: error second order in the time step)."""
    t0 = time.perf_counter()
    lam = prev.extra.get("lam") if prev.extra else None
    if criterion in _IPM_CRITERIA and lam is not None:
        n6 = 6 * (asm.n_platforms - 1)
        z0 = prev.Q[:n6] if before is None else 2.0 * prev.Q[:n6] - before.Q[:n6]
        H = prev.extra.get("H")
        tries = ([H] if H is not None else []) + [None]
        for H0 in tries:
            out = _run_ipm(asm, T_target, criterion, z0, lam0=lam, mu0=_IPM_TOL / 10, H0=H0)
            if out["converged"] and _violation(out["g"]) <= _FEAS_TOL:
                # a frozen Hessian that needed many steps is refreshed at the next step
                keep_H = out["H"] if (H0 is None or out["iterations"] <= 2) else None
                return IKResult(
                    Q=out["Q"], legs=out["legs"], cost=out["cost"], baseline_cost=None,
                    max_violation=_violation(out["g"]), success=True, message="ok",
                    iterations=out["iterations"], time_s=time.perf_counter() - t0,
                    criterion=criterion, tool_error=out["tool_error"],
                    extra={"solver": "ipm (warm)", "kkt": out["kkt"], "lam": out["lam"],
                           "H": keep_H})
    r = solve_ik(asm, T_target, criterion, initial=prev.Q, baseline=False)
    return dataclasses.replace(r, time_s=time.perf_counter() - t0)


@jax.jit
def _closest_fg(Q, arrs, T_target, w, limits):
    """(f, grad f, g, dg/dQ) of the closest-pose problem: f = |w * twist(T_target, FK(Q))|^2."""

    def f(Q):
        e = w * lie.twist_between(T_target, K.forward(arrs, Q))
        return jnp.sum(e * e)

    def g(Q):
        return constraint_values(arrs, Q, limits)

    v, d = jax.value_and_grad(f)(Q)
    return v, d, g(Q), jax.jacfwd(g)(Q)


def _closest_problem(asm, T_target):
    """The :mod:`assemblers.fastik` problem of the closest pose: CRIT_CLOSEST, with the tool
    error weights ``(1, 1, 1, l, l, l)`` (``l`` the config's length scale) as ``w_out``."""
    l = asm.sensitivity.length_scale
    P = _fast_problem(asm, T_target, "even")
    return (*P[:5], np.array([1.0, 1.0, 1.0, l, l, l]), *P[6:])


def _closest(asm, T_target):
    """The feasible stack pose closest to the target (weighted tool-pose error over the whole
    stack pose, within every limit), from home: the compiled SQP of :mod:`assemblers.fastsqp` on
    :data:`assemblers.fastik.CRIT_CLOSEST`, SciPy's SLSQP on the JAX functions as the fallback.
    Returns ``(Q (6N,), iterations, solver)``."""
    # start from the home pose (feasible) so the solver walks inside the limits to the target
    Q0 = np.array(home_pose(asm), dtype=np.float64)
    P = _closest_problem(asm, T_target)
    Q, lam, B = np.empty_like(Q0), np.empty(fastik.n_constraints(P)), np.empty((Q0.size,) * 2)
    status, nit, _, _ = fastsqp.sqp(P, fastik.CRIT_CLOSEST, Q0, _SQP_TOL, 300, 0.0, Q, lam, B,
                                    0.0)
    if status == fastik.CONVERGED:
        return Q, int(nit), "sqp"
    arrs, limits = stack_arrays(asm), _limits(asm)
    Tt = jnp.asarray(T_target)
    w = jnp.asarray(P[5])
    cache = {}

    def ev(Q):
        k = Q.tobytes()
        if k not in cache:
            cache.clear()
            cache[k] = jax.device_get(_closest_fg(Q, arrs, Tt, w, limits))
        return cache[k]

    res = minimize(lambda Q: float(ev(Q)[0]), Q0, jac=lambda Q: ev(Q)[1], method="SLSQP",
                   constraints=[{"type": "ineq", "fun": lambda Q: ev(Q)[2],
                                 "jac": lambda Q: ev(Q)[3]}],
                   options={"maxiter": 300, "ftol": 1e-14})
    return res.x, int(res.nit), "slsqp"


class _Rescue:
    """The closest-pose search of one solve, run at most once: when a repair fails it tells
    whether the target is reachable after all (the closest pose reaches it within every limit;
    then it is a feasible start), and for an unreachable target it is the pose reported."""

    def __init__(self, asm, T_target):
        self.asm, self.T_target, self.value = asm, T_target, None

    def __call__(self):
        if self.value is None:
            self.value = _closest(self.asm, self.T_target)
        return self.value

    def start(self):
        """``Q`` (6N,) of the closest pose when it reaches the target within every limit (to
        1e-9 m / rad), else None."""
        Q = self()[0]
        g, (ep, er), _, _ = _report_at(self.asm, self.T_target, Q, "fn")
        return Q if max(ep, er) <= 1e-9 and _violation(g) <= _FEAS_TOL else None


def _unreachable(asm, T_target, Q_start, criterion, baseline, t0, calls, rescue=None) -> IKResult:
    """The result for an unreachable target: the closest feasible pose (:func:`_closest`,
    ``rescue``'s when given) and the reason (the limit ``Q_start`` violates most)."""
    reason = _reason(asm, _report_at(asm, T_target, Q_start, criterion)[0])
    Q, nit, solver = (rescue or _Rescue(asm, T_target))()
    g, (ep, er), legs, cost = _report_at(asm, T_target, Q, criterion)
    msg = (f"{reason}: no pose within the limits reaches the target; closest pose found misses "
           f"it by {ep * 1e3:.3f} mm and {er * 1e3:.3f} mrad")
    return IKResult(Q=Q, legs=legs, cost=cost, baseline_cost=baseline,
                    max_violation=_violation(g), success=False, message=msg,
                    iterations=nit, time_s=time.perf_counter() - t0, criterion=criterion,
                    tool_error=(ep, er), reason=reason,
                    extra={"jax_calls": calls, "solver": solver})


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
    T0 = _as_target(np.asarray(K.forward(stack_arrays(asm), jnp.asarray(Q0))))
    r = solve_ik(asm, T0, criterion)
    n6 = 6 * (asm.n_platforms - 1)
    if trajectory and asm.n_platforms > 1 and criterion in _IPM_CRITERIA:
        lam = r.extra.get("lam") if r.extra else None
        out = _run_ipm(asm, T0, criterion, r.Q[:n6], lam0=lam, mu0=_IPM_TOL / 10)
        _run_ipm(asm, T0, criterion, r.Q[:n6], lam0=out["lam"], mu0=_IPM_TOL / 10, H0=out["H"])
    return time.perf_counter() - t0


def sample_solutions(asm: Assembler, T_target, n: int, seed: int = 0, *, spread: float = 1.0,
                     max_tries: int = 50) -> np.ndarray:
    """Random feasible stack poses that reach ``T_target``: (n, 6N) (fewer if few exist).

    Platforms 1..N-1 are drawn uniformly around the even split (+-2 cm, +-0.1 rad times
    ``spread``), the last platform closes the chain exactly, and infeasible draws are rejected.
    """
    T_target = _as_target(T_target)
    rng = np.random.default_rng(seed)
    N = asm.n_platforms
    n6 = 6 * (N - 1)
    center = even_split(asm, T_target)[:n6]
    lim = np.tile([0.02, 0.02, 0.02, 0.1, 0.1, 0.1], N - 1) * spread
    arrs, Tt, limits = stack_arrays(asm), jnp.asarray(T_target), _limits(asm)
    found = []
    for _ in range(max_tries):
        Z = center + rng.uniform(-lim, lim, size=(max(64, 4 * n), n6))
        Qs = np.asarray(_eliminate_batch(arrs, Z, Tt))
        g = np.asarray(_constraints_batch(arrs, Qs, limits))
        found.extend(Qs[np.min(g, axis=1) >= 0])
        if len(found) >= n:
            break
    return np.array(found[:n]).reshape(-1, 6 * N)


# ----------------------------------------------------------------------------- trajectories


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
    T_from, T_to = _as_target(T_from), _as_target(T_to)
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
    steps, "slsqp" for the first step and any fallback)."""

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
    starts at ``initial``); each later one is an interior-point solve (:mod:`assemblers.nlp`)
    warm-started at its predecessor's pose, multipliers and Lagrangian Hessian, one jitted
    dispatch of a few Newton steps (SLSQP from the predecessor if that does not converge), so
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
    criterion = criterion or default_criterion(asm)
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
            r = _track(asm, T_targets[k], criterion, prev, before if prev_k == k - 1 else None)
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
