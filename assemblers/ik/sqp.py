"""Sequential quadratic programming for the reduced IK problem, in Numba.

Why this exists: SciPy's SLSQP solves the IK subproblems well, but on these small problems
(n = 6(N-1) variables, m = 24N inequalities) most of its time is its Python driver and a
general least-squares subproblem, about 40 us per iteration before any evaluation.  This is the
same method, written for exactly this shape and compiled, so an iteration costs about as much as
one evaluation of :func:`assemblers.ik.evaluate.evaluate`:

* the quadratic subproblem ``min 1/2 d'Bd + grad'd  s.t.  G d + g >= 0`` is solved by the dual
  active-set method of Goldfarb and Idnani (Math. Programming 27, 1983; the method of
  quadprog), in the variables ``y = L' d`` where ``B = L L'``, with the QR factors of the
  active constraints rebuilt by modified Gram-Schmidt whenever the active set changes (at most
  n columns of length n: cheaper than updating them);
* ``B`` is a damped BFGS approximation of the Lagrangian Hessian (Powell's damping keeps it
  positive definite), from the identity (scaling it by the curvature of the first step, as
  Shanno and Phua suggest, doubled the iterations here);
* steps are accepted by backtracking on the l1 merit function ``f + sum rho_i max(0, -g_i)``
  with Powell's penalty update ``rho_i = max(|u_i|, (rho_i + |u_i|) / 2)``;
* convergence is the scaled KKT error of :func:`assemblers.optim.kkt.kkt_error` at the current
  point with the subproblem's multipliers.

When the linearised constraints are inconsistent (far from feasible), the subproblem is relaxed
as SLSQP does (an elastic variable ``delta``, see :func:`assemblers.optim.qp.elastic_qp`);
when even that step does not reduce the merit function the solver stops with QP_FAILED and
:mod:`assemblers.ik.solve` falls back to SciPy's SLSQP.  Arrays: ``z`` (n,) m and rad.  No I/O,
no randomness.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .. import _runtime  # noqa: F401  (sets NUMBA_CACHE_DIR to the user's cache)
from ..optim.kkt import kkt_error
from ..optim.linalg import cholesky, copy_into, dot, symmetrize
from ..optim.qp import QP_INFEASIBLE, QP_OK, elastic_qp, qp_dual
from .evaluate import NO, YES, evaluate, scaled, start
from .problem import CONVERGED, FAILED, JOINED, MAX_ITER, QP_FAILED, STALLED

_N_FLAT = 3  # consecutive steps below f_tol that make STALLED
# sqp's first BFGS matrix: the identity, ``B`` as given, or ``B`` given for the unscaled
# objective (sqp multiplies it by the objective's scale)
B_IDENTITY, B_GIVEN, B_UNSCALED = 0, 1, 2


@njit(cache=True, inline="always")  # inlined into cold.solve, its one compiled entry
def sqp(P, crit, x0, tol, max_iter, f_scale, x, lam, B, f_tol, b_init=B_IDENTITY, x_ref=None,
        r_ref=0.0):
    """SQP solve of the reduced problem ``min f(z)  s.t.  g(z) >= 0`` (:func:`assemblers.ik.evaluate
    .evaluate` with criterion ``crit``) from ``x0`` (n,), feasible or not.

    ``tol``: scaled KKT error; ``f_scale``: the objective is multiplied by this (0: by
    ``1 / |f(x0)|``, so the tolerance is relative).  ``f_tol`` > 0 adds SLSQP's kind of test
    for objectives that are not smooth at their optimum (a condition number whose extreme
    singular values cross there, where no multipliers make the KKT error small): STALLED after
    three feasible steps in a row that change the scaled objective by at most ``f_tol``.
    ``b_init``: the first BFGS matrix is the identity (B_IDENTITY), ``B`` as given (B_GIVEN,
    symmetric positive definite, for the scaled objective), or ``B`` given for the objective
    itself, multiplied here by the scale (B_UNSCALED; e.g. :func:`initial_hessian`).  Fills
    ``x_ref`` (n,), ``r_ref`` > 0: a minimum found before; the solve stops (JOINED) as soon as
    an iterate is within ``r_ref`` of it in every coordinate, feasible or not (the start is in
    its basin: the global layer's further starts need not converge to a minimum it has, and
    the joining iterate is never a result; waiting for feasibility cost 2-3 iterates each).
    Fills
    ``x`` (n,), ``lam`` (m,) (multipliers for the scaled objective) and ``B`` (n, n) (the last
    BFGS matrix) and returns ``(status, iterations, KKT error, f(x0) unscaled)``; status is
    CONVERGED, STALLED, JOINED, MAX_ITER, FAILED (the line search or the geometry broke down)
    or QP_FAILED."""
    n = x0.shape[0]
    m = lam.shape[0]
    f_raw, scale, Qw, grad, g, G, grad_t, g_t, G_t = start(P, crit, x0, m, f_scale, x)
    if not np.isfinite(f_raw):
        return FAILED, 0, np.inf, f_raw
    f = f_raw * scale
    if b_init == B_UNSCALED:
        for a in range(n):
            for c in range(n):
                B[a, c] *= scale
    elif b_init != B_GIVEN:
        B[:, :] = 0.0
        for c in range(n):
            B[c, c] = 1.0
    L = np.empty((n, n))
    rho = np.zeros(m)
    work = np.empty(n, dtype=np.int64)  # the active set of the last subproblem
    n_work = np.int64(0)  # (np.int64: a literal 0 compiles qp_dual once more)
    d = np.empty(n)
    u = np.empty(m)
    s_pos = np.empty(m)
    xt = np.empty(n)
    sv = np.empty(n)
    yv = np.empty(n)
    Bs = np.empty(n)
    err = np.inf
    n_flat = 0
    for k in range(max_iter + 1):
        if not cholesky(B, L, 0.0):
            B[:, :] = 0.0
            for c in range(n):
                B[c, c] = 1.0
            cholesky(B, L, 0.0)
        for i in range(m):
            g_t[i] = -g[i]
        st, n_work = qp_dual(L, grad, G, g_t, d, u, 1e-12, 10 * (m + n), work, n_work)
        delta = 0.0  # the relaxation of an elastic step
        if st == QP_INFEASIBLE:
            st, delta = elastic_qp(L, grad, G, g, d, u)
            n_work = np.int64(0)
        if st != QP_OK:
            return QP_FAILED, k, err, f_raw
        for i in range(m):
            s_pos[i] = max(g[i], 0.0)
        err = kkt_error(grad, G, g, s_pos, u, 0.0)
        copy_into(lam, u)
        if err <= tol:
            return CONVERGED, k, err, f_raw
        if k == max_iter:
            break
        # ---- l1 merit and backtracking (quadratic interpolation, at least a tenth)
        pen = 0.0
        for i in range(m):
            rho[i] = max(abs(u[i]), 0.5 * (rho[i] + abs(u[i])))
            pen += rho[i] * max(0.0, -g[i])
        phi0 = f + pen
        # the step's linearised violation is at most delta of the current one (an elastic row
        # reads g_i + G_i d >= delta g_i; none is left when delta = 0)
        dphi = dot(grad, d) - (1.0 - delta) * pen
        if delta > 0.0 and not dphi < 0.0:  # an elastic step that does not help: give up
            return QP_FAILED, k, err, f_raw
        # a predicted decrease at the level of roundoff in phi cannot be tested: the unit step
        # is then taken when it does not add to the violation
        tiny = -dphi <= 1e-13 * max(1.0, abs(phi0))
        alpha = 1.0
        ok = False
        for _ in range(30):
            for c in range(n):
                xt[c] = x[c] + alpha * d[c]
            ft = scaled(P, crit, scale, xt, Qw, YES, grad_t, g_t, G_t)
            phi = ft
            pen_t = 0.0
            for i in range(m):
                pen_t += rho[i] * max(0.0, -g_t[i])
            phi += pen_t
            if np.isfinite(phi) and (phi <= phi0 + 1e-4 * alpha * dphi
                                     or (tiny and pen_t <= pen + 1e-15)):
                ok = True
                break
            if np.isfinite(phi):
                den = phi - phi0 - dphi * alpha
                a_new = -0.5 * dphi * alpha * alpha / den if den > 0.0 else 0.5 * alpha
                alpha = max(0.1 * alpha, min(0.5 * alpha, a_new))
            else:
                alpha *= 0.1
        if not ok:
            return FAILED, k, err, f_raw
        # ---- damped BFGS update of the Lagrangian Hessian (multipliers u of this step)
        for c in range(n):
            sv[c] = alpha * d[c]
            yv[c] = grad_t[c] - grad[c]
        for i in range(m):  # row by row: contiguous, and only the active rows
            if u[i] != 0.0:
                for c in range(n):
                    yv[c] -= (G_t[i, c] - G[i, c]) * u[i]
        for a in range(n):
            v = 0.0
            for c in range(n):
                v += B[a, c] * sv[c]
            Bs[a] = v
        sBs = dot(sv, Bs)
        sy = dot(sv, yv)
        if sy < 0.2 * sBs:
            theta = 0.8 * sBs / (sBs - sy)
            for c in range(n):
                yv[c] = theta * yv[c] + (1.0 - theta) * Bs[c]
            sy = dot(sv, yv)
        if sBs > 0.0 and sy > 0.0:
            for a in range(n):
                for c in range(n):
                    B[a, c] += yv[a] * yv[c] / sy - Bs[a] * Bs[c] / sBs
        copy_into(x, xt)
        flat = f_tol > 0.0 and abs(ft - f) <= f_tol * max(1.0, abs(f))
        f = ft
        worst = 0.0
        for i in range(m):
            worst = max(worst, -g_t[i])
        n_flat = n_flat + 1 if flat and worst <= tol else 0
        if n_flat >= _N_FLAT:
            return STALLED, k + 1, err, f_raw
        if x_ref is not None and r_ref > 0.0:  # the basin is what counts, not feasibility
            near = True
            for c in range(n):
                near = near and abs(x[c] - x_ref[c]) <= r_ref
            if near:
                return JOINED, k + 1, err, f_raw
        # the trial point's values become the current ones (swapped, not copied)
        grad, grad_t = grad_t, grad
        g, g_t = g_t, g
        G, G_t = G_t, G
    return MAX_ITER, max_iter, err, f_raw


_EIG_FLOOR = 1e-3  # initial_hessian: eigenvalues at least this times the largest


@njit(cache=True, inline="always")  # as sqp
def initial_hessian(P, crit, x0, H, g):
    """The first BFGS matrix of a cold solve: ``H`` (n, n) = the objective's Hessian at ``x0``
    (n,) by forward differences of its exact gradient (n + 1 gradients; no constraint
    curvature: BFGS learns it), symmetrised, with its eigenvalues replaced by their absolute
    values, at least ``_EIG_FLOOR`` times the largest (positive definite).  Unscaled (for the
    objective itself).  ``g`` (m,): scratch for the constraint values.  Returns ``f(x0)``, or
    NaN (``H`` the identity) where the geometry breaks down.  Why: from the identity, BFGS
    needs ~36 iterates on the default Assembler (18 variables in m and rad, very differently
    curved); from this matrix at the home pose, used for every target, ~13 (docs/ik.md)."""
    n = x0.shape[0]
    Qw = np.empty(n + 6)
    g0 = np.empty(n)
    g1 = np.empty(n)
    no_rows = np.empty((0, n))
    # the constraints are not needed: a G of no rows skips their derivatives
    f0 = evaluate(P, crit, x0, Qw, YES, g0, g, no_rows, NO)
    H[:, :] = 0.0
    for c in range(n):
        H[c, c] = 1.0
    if not np.isfinite(f0):
        return f0
    xt = x0.copy()
    for c in range(n):
        h = 1.5e-8 * max(1.0, abs(x0[c]))
        xt[c] = x0[c] + h
        fc = evaluate(P, crit, xt, Qw, YES, g1, g, no_rows, NO)
        xt[c] = x0[c]
        if not np.isfinite(fc):
            for a in range(n):
                for b in range(n):
                    H[a, b] = 1.0 if a == b else 0.0
            return np.nan
        for a in range(n):
            H[a, c] = (g1[a] - g0[a]) / h
    symmetrize(H, n)
    w, V = np.linalg.eigh(H)
    top = 0.0
    for a in range(n):
        top = max(top, abs(w[a]))
    if not top > 0.0:
        for a in range(n):
            for b in range(n):
                H[a, b] = 1.0 if a == b else 0.0
        return f0
    for a in range(n):
        w[a] = max(abs(w[a]), _EIG_FLOOR * top)
    for a in range(n):
        for b in range(n):
            s = 0.0
            for k in range(n):
                s += V[a, k] * w[k] * V[b, k]
            H[a, b] = s
    return f0
