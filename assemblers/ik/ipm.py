"""A primal-dual interior-point method for the reduced IK problem, in Numba.

The textbook primal-dual barrier method (Nocedal & Wright, *Numerical Optimization*, 2nd ed.,
ch. 19; Waechter & Biegler's IPOPT for the barrier update and the fraction-to-boundary rule):
slacks ``s > 0`` turn ``g(z) >= 0`` into ``g(z) - s = 0``; each iterate takes one Newton step on
the perturbed KKT conditions ``grad f - G^T lam = 0, g - s = 0, s * lam = mu``, condensed to an
(n, n) system ``(H + G^T diag(lam / s) G) dz = rhs`` (H the Lagrangian Hessian, shifted to be
positive definite where the problem is not convex), keeps ``s`` and ``lam`` positive with the
fraction-to-boundary rule and backtracks on ``f - mu sum(log s) + nu ||g - s||_1`` (Armijo).
Warm-started (``z``, ``lam`` of a neighbouring problem, small ``mu``, a frozen Hessian) it
converges in a few steps: what trajectory IK uses (:mod:`.trajectory`).  Evaluations:
:func:`assemblers.ik.evaluate.evaluate`.  No I/O, no randomness.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .. import _runtime  # noqa: F401  (sets NUMBA_CACHE_DIR to the user's cache)
from ..optim.kkt import kkt_error, lagrangian_gradient
from ..optim.linalg import cholesky_solve, copy_into, symmetrize
from .evaluate import NO, YES, result_at, scaled, start
from .problem import CONVERGED, FAILED, MAX_ITER

HESS_FD, HESS_FROZEN = 0, 1  # the Lagrangian Hessian of interior_point


@njit(cache=True)
def interior_point(P, crit, x0, lam0, mu0, cold, H0, hess, tol, max_iter, s_push, f_scale,
                   x, s, lam, H):
    """Primal-dual interior-point solve of the reduced problem (IPOPT's monotone barrier
    update, fraction to boundary, Armijo backtracking on ``f - mu sum log s + nu |g - s|_1``),
    with exact first derivatives from :func:`~assemblers.ik.evaluate.evaluate` and the
    Lagrangian Hessian ``hess``: HESS_FD (forward differences of the exact Lagrangian gradient,
    n extra gradients per step) or HESS_FROZEN (``H0`` at every step:
    cheap tracking steps, linear convergence at a rate set by how much the Hessian differs).

    ``x0`` (n,) start ``z`` (best strictly inside the limits: from far outside, the
    fraction-to-boundary rule makes the steps tiny); ``lam0`` (m,) multipliers of a warm start
    (in units of the scaled objective; ignored when ``cold``); ``mu0`` initial barrier
    parameter; ``tol`` scaled KKT error; ``s_push``: slacks of a cold start are at least this;
    ``f_scale``: the objective is multiplied by this (0: by ``1 / |f(z0)|``, so the tolerance is
    relative).  Fills ``x``, ``s``, ``lam`` and ``H`` (the last Hessian used) and returns
    ``(status, Newton steps, KKT error, f(z0) unscaled)``.
    """
    nx = x0.shape[0]
    m = lam0.shape[0]
    f_raw, scale, Qw, grad, g, G, grad2, g2, G2 = start(P, crit, x0, m, f_scale, x)
    if not np.isfinite(f_raw):
        return FAILED, 0, np.inf, f_raw
    f_cur = f_raw * scale  # the scaled objective at x
    dL = np.empty(nx)
    dL2 = np.empty(nx)
    if cold:
        for i in range(m):
            s[i] = max(g[i], s_push)
            lam[i] = mu0 / s[i]
    else:
        # an active constraint (multiplier clearly above mu / s) starts with the slack its
        # complementarity asks for; the rest start at g
        for i in range(m):
            lam[i] = lam0[i]
            lo = mu0 / max(lam0[i], mu0)
            s[i] = lo if lam0[i] > 1e-6 else max(g[i], lo)
    if hess == HESS_FROZEN:
        copy_into(H, H0)
    mu = mu0
    mu_min = tol / 10.0
    nu = 0.0
    kappa_eps, kappa_mu, theta_mu, tau_min = 10.0, 0.2, 1.5, 0.99
    eta = 1e-4
    dx = np.empty(nx)
    ds = np.empty(m)
    dlam = np.empty(m)
    rhs = np.empty(nx)
    M = np.empty((nx, nx))
    xt = np.empty(nx)
    st = np.empty(m)
    k = 0
    while True:
        err = kkt_error(grad, G, g, s, lam, 0.0)
        if not np.isfinite(err):
            return FAILED, k, err, f_raw
        if err <= tol:
            return CONVERGED, k, err, f_raw
        if k >= max_iter:
            return MAX_ITER, k, err, f_raw
        # ---- Lagrangian Hessian
        if hess == HESS_FD:
            lagrangian_gradient(grad, G, lam, dL)
            H[:, :] = 0.0
            for c in range(nx):
                h = 1.5e-8 * max(1.0, abs(x[c]))
                copy_into(xt, x)
                xt[c] += h
                scaled(P, crit, scale, xt, Qw, YES, grad2, g2, G2)
                lagrangian_gradient(grad2, G2, lam, dL2)
                for a in range(nx):
                    H[a, c] = (dL2[a] - dL[a]) / h
            symmetrize(H, nx)
        # ---- barrier update (IPOPT's monotone rule)
        while mu > mu_min and kkt_error(grad, G, g, s, lam, mu) <= kappa_eps * mu:
            mu = max(mu_min, min(kappa_mu * mu, mu ** theta_mu))
        tau = max(tau_min, 1.0 - mu)
        # ---- Newton step on the perturbed KKT conditions, condensed to x
        hmax = 1.0
        for a in range(nx):
            hmax = max(hmax, abs(H[a, a]))
        floor = 1e-9 * hmax
        for a in range(nx):
            r = -grad[a]
            for i in range(m):
                r += G[i, a] * lam[i]
            rhs[a] = r  # -r_d
        for i in range(m):
            w = (s[i] * lam[i] - mu + lam[i] * (g[i] - s[i])) / s[i]
            for a in range(nx):
                rhs[a] -= G[i, a] * w
        for a in range(nx):
            for c in range(a, nx):
                v = H[a, c]
                for i in range(m):
                    v += G[i, a] * (lam[i] / s[i]) * G[i, c]
                M[a, c] = v
                M[c, a] = v
            M[a, a] += floor
        if not cholesky_solve(M, rhs, dx, floor):
            # indefinite: shift the smallest eigenvalue up
            # (to |smallest| eigenvalue, not to the floor: a nearly singular M gives huge steps)
            if not np.all(np.isfinite(M)):
                return FAILED, k, err, f_raw
            ev = np.linalg.eigvalsh(M)
            shift = max(0.0, floor - ev[0]) + max(1e-4 * hmax, -ev[0])
            for a in range(nx):
                M[a, a] += shift
            if not cholesky_solve(M, rhs, dx, 0.0):
                return FAILED, k, err, f_raw
        a_s = 1.0
        a_l = 1.0
        nu_need = 0.0
        for i in range(m):
            v = g[i] - s[i]
            for a in range(nx):
                v += G[i, a] * dx[a]
            ds[i] = v
            dlam[i] = -(s[i] * lam[i] - mu + lam[i] * v) / s[i]
            if v < 0.0:
                a_s = min(a_s, -tau * s[i] / v)
            if dlam[i] < 0.0:
                a_l = min(a_l, -tau * lam[i] / dlam[i])
            nu_need = max(nu_need, 1.1 * abs(lam[i] + dlam[i]))
        nu = max(nu, nu_need)
        # ---- Armijo backtracking on the merit function
        phi0 = f_cur
        dphi = 0.0
        for a in range(nx):
            dphi += grad[a] * dx[a]
        for i in range(m):
            phi0 += -mu * math.log(s[i]) + nu * abs(g[i] - s[i])
            dphi += -mu * ds[i] / s[i] - nu * abs(g[i] - s[i])
        dphi = min(dphi, 0.0)
        alpha = a_s
        ok = False
        for _ in range(40):
            for a in range(nx):
                xt[a] = x[a] + alpha * dx[a]
            phi = scaled(P, crit, scale, xt, Qw, NO, grad2, g2, G2)
            for i in range(m):
                st[i] = s[i] + alpha * ds[i]
                phi += -mu * math.log(st[i]) + nu * abs(g2[i] - st[i])
            if np.isfinite(phi) and phi <= phi0 + eta * alpha * dphi + 1e-14 * abs(phi0):
                ok = True
                break
            alpha *= 0.5
        if not ok:
            return FAILED, k, err, f_raw
        for a in range(nx):
            x[a] += alpha * dx[a]
        for i in range(m):
            s[i] += alpha * ds[i]
            lam[i] += a_l * dlam[i]
        k += 1
        f_cur = scaled(P, crit, scale, x, Qw, YES, grad, g, G)
        if not np.isfinite(f_cur):
            return FAILED, k, np.inf, f_raw


@njit(cache=True)
def step(P, crit, x0, lam0, mu0, cold, H0, hess, tol, max_iter, s_push, x, s, lam, H, Q, g, legs,
         twist):
    """:func:`interior_point` (objective scaled by ``1 / |f(x0)|``) and everything a result
    reports, in one compiled call: at ``Q`` (6N,), the full pose of ``x``, the constraints ``g``
    (m,), the criterion (unscaled), ``legs`` (N, 6) m (geometric) and ``twist`` (6,) the tool's
    error against the target.  Why: a trajectory step's Python around four compiled calls
    (each unboxing the :class:`~.problem.Problem`) cost a fifth of the step.  Returns
    ``(status, Newton steps, KKT error, f(x0) unscaled, cost, tool position error m, tool
    rotation error rad)``."""
    status, k, err, f0 = interior_point(P, crit, x0, lam0, mu0, cold, H0, hess, tol, max_iter,
                                        s_push, 0.0, x, s, lam, H)
    cost, ep, er = result_at(P, crit, x, Q, g, legs, twist)
    return status, k, err, f0, cost, ep, er
