"""Sequential quadratic programming for the reduced IK problem, in Numba.

Why this exists: SciPy's SLSQP solves the IK subproblems well, but on these small problems
(n = 6(N-1) variables, m = 24N inequalities) most of its time is its Python driver and a
general least-squares subproblem, about 40 us per iteration before any evaluation.  This is the
same method, written for exactly this shape and compiled, so an iteration costs about as much as
one evaluation of :func:`assemblers.fastik.evaluate`:

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
* convergence is the scaled KKT error of :func:`assemblers.fastik._kkt_error` at the current
  point with the subproblem's multipliers.

When the linearised constraints are inconsistent (far from feasible), the subproblem is relaxed
as SLSQP does (an elastic variable ``delta``, see :func:`_elastic_qp`); when even that step does
not reduce the merit function the solver stops with QP_FAILED and :mod:`assemblers.ik` falls
back to SciPy's SLSQP.  Arrays: ``z`` (n,) m and rad as :mod:`assemblers.fastik`.  No I/O, no
randomness.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import _runtime  # noqa: F401  (sets NUMBA_CACHE_DIR to the user's cache)
from .fastik import CONVERGED, FAILED, MAX_ITER, _ev, _kkt_error, cholesky, lower_solve, start, upper_solve

QP_OK, QP_INFEASIBLE, QP_MAX_ITER = 0, 1, 2  # qp_dual
QP_FAILED = 4  # sqp: no useful subproblem step (inconsistent linearisation, no elastic progress)
STALLED = 5  # sqp with f_tol: feasible, the objective no longer moves, the KKT error not small
_N_FLAT = 3  # consecutive steps below f_tol that make STALLED
_DEPENDENT = 1e-12  # a constraint whose projection is below this (relative) is dependent


@njit(cache=True)
def _dot(a, b):
    """``a . b`` as a loop (np.dot calls BLAS: ~0.1 us of overhead per call at these sizes)."""
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i]
    return s


@njit(cache=True)
def _qr_append(Qm, Rm, q, v):
    """Append column ``v`` (n,) to the thin QR factors (``Qm`` (n, n) orthonormal columns
    0..q-1, ``Rm`` upper (n, n)) by modified Gram-Schmidt, twice for orthogonality."""
    n = v.shape[0]
    w = v.copy()
    for j in range(q):
        Rm[j, q] = 0.0
    for _ in range(2):
        for j in range(q):
            c = 0.0
            for a in range(n):
                c += Qm[a, j] * w[a]
            Rm[j, q] += c
            for a in range(n):
                w[a] -= c * Qm[a, j]
    nrm = math.sqrt(_dot(w, w))
    Rm[q, q] = nrm
    for a in range(n):
        Qm[a, q] = w[a] / nrm if nrm > 0.0 else 0.0


@njit(cache=True)
def qp_dual(L, a, N, b, x, u, tol, max_steps, work, n_work):
    """``min 1/2 x'Bx + a'x  s.t.  N x >= b`` for ``B = L L'`` (``L`` (n, n) lower Cholesky
    factor), by the dual active-set method of Goldfarb and Idnani.  ``N`` (m, n), ``b`` (m,).

    ``work`` (n,) int64 holds ``n_work`` indices of a guess of the active set (e.g. the
    previous subproblem's).  The guess is tried first: the minimum with those constraints as
    equalities is the solution when its multipliers are >= 0 and it satisfies the rest (one
    small solve, where the full method adds the constraints one by one).  Otherwise the
    method runs from the unconstrained minimum.

    Fills ``x`` (n,), ``u`` (m,) (multipliers, >= 0, zero off the active set) and ``work``
    (the active set found) and returns ``(status, its size)``; status QP_OK, QP_INFEASIBLE (no
    x satisfies the constraints) or QP_MAX_ITER.  ``tol``: a constraint counts as violated
    when it is below ``b`` by more than ``tol`` times its row norm."""
    m, n = N.shape
    Nt = np.empty((m, n))  # rows L^-1 n_i (the constraints in y = L' x), made when needed
    have = np.zeros(m, dtype=np.bool_)
    nrm = np.empty(m)  # Euclidean row norms: the violation measure that picks a constraint
    for i in range(m):
        nrm[i] = math.sqrt(_dot(N[i], N[i]))
    y = np.empty(n)
    lower_solve(L, a, y)
    for c in range(n):
        y[c] = -y[c]  # the unconstrained minimum, in y and in x
    u[:] = 0.0
    active = np.empty(n, dtype=np.int64)
    is_active = np.zeros(m, dtype=np.bool_)
    ua = np.zeros(n + 1)
    Qm = np.zeros((n, n))
    Rm = np.zeros((n, n))
    z = np.empty(n)
    dx = np.empty(n)
    r = np.empty(n)
    # ---- the guess: equality-constrained minimum on work[:n_work]
    q = 0
    for j in range(n_work):
        i = work[j]
        if not have[i]:
            lower_solve(L, N[i], Nt[i])
            have[i] = True
        _qr_append(Qm, Rm, j, Nt[i])
        if not Rm[j, j] > _DEPENDENT * math.sqrt(_dot(Nt[i], Nt[i])):
            break  # dependent rows: no guess
        q += 1
    if q == n_work and q > 0:
        for j in range(q):  # R'R mu = b_W - N_W y0, by two triangular solves
            v = b[work[j]] - _dot(Nt[work[j]], y)
            for k in range(j):
                v -= Rm[k, j] * r[k]
            r[j] = v / Rm[j, j]
        upper_solve(Rm[:q, :q].T, r[:q], r[:q])  # r = R^-1 r, in place
        mu_max = 0.0
        for j in range(q):
            mu_max = max(mu_max, abs(r[j]))
        ok = True
        for j in range(q):
            ok = ok and r[j] >= -1e-12 * max(1.0, mu_max)
        if ok:
            for c in range(n):
                z[c] = y[c]
                for j in range(q):
                    z[c] += r[j] * Nt[work[j], c]
            upper_solve(L, z, x)
            for j in range(q):
                is_active[work[j]] = True
            for i in range(m):
                if not is_active[i] and nrm[i] > 0.0 and _dot(N[i], x) - b[i] < -tol * nrm[i]:
                    ok = False
                    break
            if ok:
                for j in range(q):
                    u[work[j]] = max(r[j], 0.0)
                return QP_OK, q
            for j in range(q):
                is_active[work[j]] = False
    # ---- the dual method from the unconstrained minimum
    upper_solve(L, y, x)
    q = 0
    steps = 0
    while True:
        p = -1
        worst = -tol
        for i in range(m):
            if is_active[i]:
                continue
            if nrm[i] == 0.0:
                if b[i] > tol:
                    return QP_INFEASIBLE, 0
                continue
            s = (_dot(N[i], x) - b[i]) / nrm[i]
            if s < worst:
                worst = s
                p = i
        if p < 0:
            break
        if not have[p]:
            lower_solve(L, N[p], Nt[p])
            have[p] = True
        npv = Nt[p]
        nrm_p = math.sqrt(_dot(npv, npv))
        up = 0.0
        while True:  # steps towards satisfying constraint p
            steps += 1
            if steps > max_steps:
                return QP_MAX_ITER, 0
            # z: npv projected off the active constraints; r: its coefficients on them
            for c in range(n):
                z[c] = npv[c]
            for j in range(q):
                cj = 0.0
                for c in range(n):
                    cj += Qm[c, j] * npv[c]
                r[j] = cj
                for c in range(n):
                    z[c] -= cj * Qm[c, j]
            upper_solve(Rm[:q, :q].T, r[:q], r[:q])  # R r = Q' npv, in place
            zz = _dot(z, z)
            t2 = math.inf
            if zz > (_DEPENDENT * nrm_p) ** 2:
                t2 = -(_dot(N[p], x) - b[p]) / zz
            t1 = math.inf
            k_drop = -1
            for j in range(q):
                if r[j] > 0.0 and ua[j] / r[j] < t1:
                    t1 = ua[j] / r[j]
                    k_drop = j
            t = min(t1, t2)
            if t == math.inf:
                return QP_INFEASIBLE, 0
            if t2 < math.inf:
                upper_solve(L, z, dx)
                for c in range(n):
                    x[c] += t * dx[c]
            for j in range(q):
                ua[j] -= t * r[j]
            up += t
            if t2 <= t1:  # full step: p joins the active set
                active[q] = p
                ua[q] = up
                is_active[p] = True
                _qr_append(Qm, Rm, q, npv)
                q += 1
                break
            # partial step: constraint k_drop leaves; rebuild the factors without it
            is_active[active[k_drop]] = False
            for j in range(k_drop, q - 1):
                active[j] = active[j + 1]
                ua[j] = ua[j + 1]
            q -= 1
            for j in range(q):
                _qr_append(Qm, Rm, j, Nt[active[j]])
    for j in range(q):
        u[active[j]] = max(ua[j], 0.0)
        work[j] = active[j]
    return QP_OK, q


_RHO_ELASTIC = 1e6  # weight of 1/2 delta^2 in an elastic subproblem


@njit(cache=True)
def _elastic_qp(L, grad, G, g, d, u):
    """The subproblem when ``G d + g >= 0`` is inconsistent (SLSQP's relaxation): the violated
    rows become ``G_i d + (1 - delta) g_i >= 0`` with ``0 <= delta <= 1`` and ``1/2 rho delta^2``
    added to the objective, which is always feasible (``d = 0, delta = 1``).  Fills ``d`` (n,)
    and ``u`` (m,) and returns ``(status, delta)``."""
    m, n = G.shape
    La = np.zeros((n + 1, n + 1))
    La[:n, :n] = L
    La[n, n] = math.sqrt(_RHO_ELASTIC)
    aa = np.zeros(n + 1)
    aa[:n] = grad
    Na = np.zeros((m + 2, n + 1))
    ba = np.empty(m + 2)
    for i in range(m):
        Na[i, :n] = G[i]
        Na[i, n] = -g[i] if g[i] < 0.0 else 0.0
        ba[i] = -g[i]
    Na[m, n] = 1.0  # delta >= 0
    ba[m] = 0.0
    Na[m + 1, n] = -1.0  # delta <= 1
    ba[m + 1] = -1.0
    xa = np.empty(n + 1)
    ua = np.empty(m + 2)
    st, _ = qp_dual(La, aa, Na, ba, xa, ua, 1e-12, 10 * (m + n), np.empty(n + 1, np.int64), 0)
    d[:] = xa[:n]
    u[:] = ua[:m]
    return st, min(1.0, max(0.0, xa[n]))


@njit(cache=True)
def sqp(P, crit, x0, tol, max_iter, f_scale, x, lam, B, f_tol):
    """SQP solve of the reduced problem ``min f(z)  s.t.  g(z) >= 0`` (:func:`assemblers.fastik
    .evaluate` with criterion ``crit``) from ``x0`` (n,), feasible or not.

    ``tol``: scaled KKT error; ``f_scale``: the objective is multiplied by this (0: by
    ``1 / |f(x0)|``, so the tolerance is relative).  ``f_tol`` > 0 adds SLSQP's kind of test
    for objectives that are not smooth at their optimum (a condition number whose extreme
    singular values cross there, where no multipliers make the KKT error small): STALLED after
    three feasible steps in a row that change the scaled objective by at most ``f_tol``.  Fills
    ``x`` (n,), ``lam`` (m,) (multipliers for the scaled objective) and ``B`` (n, n) (the last
    BFGS matrix) and returns ``(status, iterations, KKT error, f(x0) unscaled)``; status is
    CONVERGED, STALLED, MAX_ITER, FAILED (the line search or the geometry broke down) or
    QP_FAILED."""
    n = x0.shape[0]
    m = lam.shape[0]
    f_raw, scale, Qw, grad, g, G, grad_t, g_t, G_t = start(P, crit, x0, m, f_scale, x)
    if not np.isfinite(f_raw):
        return FAILED, 0, np.inf, f_raw
    f = f_raw * scale
    B[:, :] = 0.0
    for c in range(n):
        B[c, c] = 1.0
    L = np.empty((n, n))
    rho = np.zeros(m)
    work = np.empty(n, dtype=np.int64)  # the active set of the last subproblem
    n_work = 0
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
            st, delta = _elastic_qp(L, grad, G, g, d, u)
            n_work = 0
        if st != QP_OK:
            return QP_FAILED, k, err, f_raw
        for i in range(m):
            s_pos[i] = max(g[i], 0.0)
        err = _kkt_error(grad, G, g, s_pos, u, 0.0)
        lam[:] = u
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
        dphi = _dot(grad, d) - (1.0 - delta) * pen
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
            ft = _ev(P, crit, scale, xt, Qw, True, grad_t, g_t, G_t)
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
            v = grad_t[c] - grad[c]
            for i in range(m):
                if u[i] != 0.0:
                    v -= (G_t[i, c] - G[i, c]) * u[i]
            yv[c] = v
        for a in range(n):
            v = 0.0
            for c in range(n):
                v += B[a, c] * sv[c]
            Bs[a] = v
        sBs = _dot(sv, Bs)
        sy = _dot(sv, yv)
        if sy < 0.2 * sBs:
            theta = 0.8 * sBs / (sBs - sy)
            for c in range(n):
                yv[c] = theta * yv[c] + (1.0 - theta) * Bs[c]
            sy = _dot(sv, yv)
        if sBs > 0.0 and sy > 0.0:
            for a in range(n):
                for c in range(n):
                    B[a, c] += yv[a] * yv[c] / sy - Bs[a] * Bs[c] / sBs
        x[:] = xt
        flat = f_tol > 0.0 and abs(ft - f) <= f_tol * max(1.0, abs(f))
        f = ft
        worst = 0.0
        for i in range(m):
            worst = max(worst, -g_t[i])
        n_flat = n_flat + 1 if flat and worst <= tol else 0
        if n_flat >= _N_FLAT:
            return STALLED, k + 1, err, f_raw
        grad[:] = grad_t
        g[:] = g_t
        G[:, :] = G_t
    return MAX_ITER, max_iter, err, f_raw
