"""Python drivers of the compiled solvers on one target: the SQP (SciPy's SLSQP as its
fallback) through :class:`ReducedProblem`, and the interior point through :func:`run_ipm`."""

from __future__ import annotations

import numpy as np

from . import cold, ipm
from . import evaluate as ev
from .criteria import CODES, SPECS
from .problem import CONVERGED, STALLED, n_constraints, n_variables, problem
from .report import report_at

SQP_TOL = 1e-10  # scaled KKT error at which sqp.sqp stops (objective normalised to 1)
IPM_TOL = 1e-10  # scaled KKT error of the interior point (objective normalised to 1)
IPM_MAX_ITER = 80
_NO_SPLIT, _NO_H = np.empty(0), np.empty((0, 0))  # cold.solve's unused split and first matrix
MU_COLD = 1e-3  # barrier parameter of a cold start
S_PUSH = 1e-3  # m / rad: slacks of a cold start are at least this (IPOPT's bound push)


# the cold path's one compiled entry, as the general path's SQP (captured here: a test that
# makes the cold path fail by replacing ``cold.solve`` leaves the general path's SQP as it is)
_COLD_SOLVE = cold.solve


def sqp_from(P, crit, x0, tol, max_iter, f_tol, x, lam, B):
    """:func:`assemblers.ik.sqp.sqp` of ``P`` from ``x0`` (n,) and the identity, the objective
    scaled by ``1 / |f(x0)|``, through :func:`assemblers.ik.cold.solve` (the SQP is inlined
    there, so its large compiled closure is built once, for both paths).  Fills ``x`` (n,),
    ``lam`` (m,), ``B`` (n, n); returns ``(status, iterations, KKT error, scale)``."""
    n_pl = P.b.shape[0]
    m = lam.shape[0]
    status, k, err, scale, _, _, _, _ = _COLD_SOLVE(
        P, crit, P.Q_ref, _NO_SPLIT, _NO_SPLIT, x0, cold.START_GIVEN, _NO_H, tol, max_iter,
        f_tol, x[:0], 0.0, x, lam, B, np.empty(6 * n_pl), np.empty((n_pl, 6)), np.empty(6),
        np.empty(m))
    return status, k, err, scale


class ReducedProblem:
    """The reduced problem for one target on the evaluation kernel (:mod:`.evaluate`: exact
    closed-form derivatives, a few microseconds), with a one-entry cache so SLSQP's separate
    calls for f, grad, g and dg at the same iterate cost one evaluation."""

    def __init__(self, asm, T_target, criterion, Q_ref):
        self.criterion = criterion
        self.code = CODES[criterion]
        self.P = problem(asm, T_target, criterion, Q_ref)
        self._Q = np.empty(6 * asm.n_platforms)
        self._shape = (n_variables(self.P), n_constraints(self.P))
        self._x = None
        self._key = None
        self.calls = 0
        self.scale = 1.0

    def evaluate(self, z):
        """``(f, grad (n,), g (m,), G (m, n))`` at ``z`` (6(N-1),), unscaled."""
        key = z.tobytes() if isinstance(z, np.ndarray) else np.asarray(z, np.float64).tobytes()
        if key != self._key:  # bytes compare: much cheaper than np.array_equal per call
            self._key = key
            self._x = np.array(z, dtype=np.float64)
            n, m = self._shape
            grad, g, G = np.empty(n), np.empty(m), np.empty((m, n))
            f = ev.evaluate(self.P, self.code, self._x, self._Q, True, grad, g, G, False)
            self._val = (f, grad, g, G)
            self.calls += 1
        return self._val

    def f(self, z):
        return float(self.evaluate(z)[0]) * self.scale

    def df(self, z):
        return self.evaluate(z)[1] * self.scale

    def g(self, z):
        return self.evaluate(z)[2]

    def dg(self, z):
        return self.evaluate(z)[3]

    def solve(self, z0, max_iter, ftol, method="auto", fallback=True):
        """Minimise from ``z0``: the compiled SQP (:func:`sqp_from`) when ``method`` is
        "auto", else (or when it stops without converging, e.g. on inconsistent linearised
        constraints far from feasible, unless ``fallback`` is False) SciPy's SLSQP on the same
        kernel.  Returns a SciPy ``OptimizeResult`` with ``solver`` ("sqp" or "slsqp") and
        ``scale`` added; ``multipliers`` are for the objective times ``scale``."""
        # here, not at the top: scipy.optimize takes about 0.2 s to import, and every process
        # that imports the IK (a first run's kernel-compiling processes too) would pay it
        from scipy.optimize import OptimizeResult, minimize

        z0 = np.asarray(z0, dtype=np.float64)
        # both solvers see the objective normalised to ~1 at the start (SLSQP's ftol is absolute)
        f0 = abs(float(self.evaluate(z0)[0]))
        self.scale = 1.0 / f0 if f0 > 1e-300 else 1.0
        if method == "auto":
            n, m = self._shape
            z, lam, B = np.empty(n), np.empty(m), np.empty((n, n))
            f_tol = SPECS[self.criterion].f_tol
            status, k, err, scale = sqp_from(self.P, self.code, z0, SQP_TOL, max_iter, f_tol, z,
                                             lam, B)
            self.calls += k + 1
            if status in (CONVERGED, STALLED):
                msg = (f"converged (KKT error {err:.1e})" if status == CONVERGED else
                       f"objective converged (KKT error {err:.1e}: not smooth at the optimum)")
                return OptimizeResult(x=z, success=True, status=0, nit=int(k), multipliers=lam,
                                      message=msg, solver="sqp", scale=float(scale))
            if not fallback:
                return OptimizeResult(x=z, success=False, status=int(status), nit=int(k),
                                      message=f"no convergence (status {status})", solver="sqp",
                                      scale=float(scale))
        n_con = len(self.g(z0))
        cons = [{"type": "ineq", "fun": self.g, "jac": self.dg}] if n_con else []
        res = minimize(self.f, z0, jac=self.df, constraints=cons, method="SLSQP",
                       options={"maxiter": max_iter, "ftol": ftol})
        res.solver, res.scale = "slsqp", self.scale
        return res


def run_ipm(asm, T_target, criterion, z0, lam0=None, mu0=MU_COLD, H0=None):
    """One interior-point solve (:func:`assemblers.ik.ipm.interior_point`: exact first
    derivatives, Lagrangian Hessian by differences of exact gradients, or ``H0`` frozen) from
    ``z0`` (6(N-1),), plus everything a result reports.  A warm start passes the multipliers
    ``lam0`` (m,) of a neighbouring solution (per unit of its cost), a small ``mu0`` and
    optionally its Hessian ``H0``.  Returns a dict of NumPy values; ``lam`` is per unit of the
    returned cost."""
    P = problem(asm, T_target, criterion)
    n6 = 6 * (asm.n_platforms - 1)
    m = n_constraints(P)
    cold = lam0 is None
    lam_in = np.zeros(m) if cold else np.asarray(lam0, dtype=np.float64)
    hess = ipm.HESS_FD if H0 is None else ipm.HESS_FROZEN
    H_in = np.zeros((n6, n6)) if H0 is None else np.asarray(H0, dtype=np.float64)
    z, s, lam, H = np.empty(n6), np.empty(m), np.empty(m), np.empty((n6, n6))
    x0 = np.array(z0, dtype=np.float64)
    if SPECS[criterion].cost == criterion:  # the step and its report in one compiled call
        n = asm.n_platforms
        Q, g, legs, tw = np.empty(6 * n), np.empty(m), np.empty((n, 6)), np.empty(6)
        status, k, err, f0, cost, ep, er = ipm.step(
            P, CODES[criterion], x0, lam_in, mu0, cold, H_in, hess, IPM_TOL, IPM_MAX_ITER,
            S_PUSH, z, s, lam, H, Q, g, legs, tw)
        cost, tool_error, legs = float(cost), (float(ep), float(er)), asm.commanded_lengths(legs)
    else:  # nearest: its result reports the fn cost (report_at)
        status, k, err, f0 = ipm.interior_point(
            P, CODES[criterion], x0, lam_in, mu0, cold, H_in, hess, IPM_TOL, IPM_MAX_ITER,
            S_PUSH, 0.0, z, s, lam, H)
        Q = np.empty(6 * asm.n_platforms)
        ev.eliminate(P, z, Q)
        g, tool_error, legs, cost = report_at(asm, T_target, Q, criterion)
    return {"converged": status == CONVERGED, "status": int(status), "iterations": int(k),
            "kkt": float(err), "lam": lam * f0 / max(cost, 1e-300), "H": H, "Q": Q, "g": g,
            "tool_error": tool_error, "legs": legs, "cost": cost}
