"""Strictly convex quadratic programs with inequality constraints, in Numba (problem-agnostic).

    minimize  1/2 x'Bx + a'x   subject to   N x >= b            B = L L' (its Cholesky factor)

:func:`qp_dual` is the dual active-set method of Goldfarb and Idnani (Math. Programming 27,
1983; the method of quadprog), in the variables ``y = L' x``, with the QR factors of the active
constraints (modified Gram-Schmidt to append a constraint, Givens rotations to remove one), and
an optional guess of the active set it starts from.
:func:`elastic_qp` is SLSQP's relaxation of a subproblem whose linearised constraints are
inconsistent.  Used by :mod:`assemblers.ik.sqp`; tested against its KKT conditions and SciPy
(tests/optim).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .. import _runtime  # noqa: F401  (sets NUMBA_CACHE_DIR to the user's cache)
from .linalg import copy_into, dot, lower_solve, upper_solve

QP_OK, QP_INFEASIBLE, QP_MAX_ITER = 0, 1, 2  # qp_dual
_DEPENDENT = 1e-12  # a constraint whose projection is below this (relative) is dependent


# Reassociation (and fused multiply-adds) let LLVM vectorise the short dot products; no
# assumption about NaN or infinities (the QP tests for both).
_FAST = {"reassoc", "contract", "nsz", "arcp"}


@njit(cache=True, fastmath=_FAST, inline="always")
def project_off(Qt, q, n, w, coef):
    """Project ``w`` (n,) off the rows 0..q-1 of ``Qt`` in place: ``coef[j] = Qt[j] . w`` (of
    ``w`` as given), then ``w -= sum_j coef[j] Qt[j]``."""
    for j in range(q):
        s = 0.0
        for a in range(n):
            s += Qt[j, a] * w[a]
        coef[j] = s
    for j in range(q):
        cj = coef[j]
        for a in range(n):
            w[a] -= cj * Qt[j, a]


@njit(cache=True, fastmath=_FAST)
def qr_append(Qt, Rm, q, v):
    """Append ``v`` (n,) to the thin QR factors of the active constraints: ``Qt`` (n, n) holds
    the orthonormal basis as ROWS 0..q-1 (contiguous: the products vectorise), ``Rm`` (n, n)
    upper triangular.  Classical Gram-Schmidt, a second pass only when the first removed most
    of the vector (then round-off may have left it not orthogonal: "twice is enough")."""
    n = v.shape[0]
    w = v.copy()
    c = np.empty(max(q, 1))
    for j in range(q):
        Rm[j, q] = 0.0
    before = dot(w, w)
    after = before
    for _ in range(2):
        project_off(Qt, q, n, w, c)
        for j in range(q):
            Rm[j, q] += c[j]
        after = dot(w, w)
        if after > 0.5 * before:  # |w| > 0.707 |v|: orthogonal to working precision
            break
        before = after
    nrm = math.sqrt(after)
    Rm[q, q] = nrm
    for a in range(n):
        Qt[q, a] = w[a] / nrm if nrm > 0.0 else 0.0


@njit(cache=True, fastmath=_FAST)
def qr_delete(Qt, Rm, q, k):
    """Remove the ``k``-th of ``q`` vectors from the thin QR factors (as :func:`qr_append`'s):
    Givens rotations restore the triangle, O((q - k)(n + q)) where a rebuild costs O(q^2 n)."""
    n = Qt.shape[1]
    for j in range(k, q - 1):  # shift the columns left: R becomes upper Hessenberg from k
        for i in range(j + 2):
            Rm[i, j] = Rm[i, j + 1]
    for j in range(k, q - 1):
        a, b = Rm[j, j], Rm[j + 1, j]
        h = math.hypot(a, b)
        if h == 0.0:
            continue
        c, s = a / h, b / h
        for col in range(j, q - 1):
            x1, x2 = Rm[j, col], Rm[j + 1, col]
            Rm[j, col] = c * x1 + s * x2
            Rm[j + 1, col] = -s * x1 + c * x2
        Rm[j + 1, j] = 0.0
        for a2 in range(n):
            y1, y2 = Qt[j, a2], Qt[j + 1, a2]
            Qt[j, a2] = c * y1 + s * y2
            Qt[j + 1, a2] = -s * y1 + c * y2
    for i in range(q):
        Rm[i, q - 1] = 0.0


@njit(cache=True, fastmath=_FAST)
def qp_dual(L, a, N, b, x, u, tol, max_steps, work, n_work):
    """``min 1/2 x'Bx + a'x  s.t.  N x >= b`` for ``B = L L'`` (``L`` (n, n) lower Cholesky
    factor), by the dual active-set method of Goldfarb and Idnani.  ``N`` (m, n), ``b`` (m,).

    ``work`` (n,) int64 holds ``n_work`` indices of a guess of the active set (e.g. the
    previous subproblem's).  The method starts from the minimum with those constraints as
    equalities, after dropping (one at a time, the most negative first) those whose multiplier
    is negative: that point is dual feasible, so the dual method continues from it, and it is
    the solution at once when it satisfies the other constraints (one small solve, where a
    start from the unconstrained minimum adds the constraints one by one; in an SQP the active
    set rarely changes between subproblems).

    Fills ``x`` (n,), ``u`` (m,) (multipliers, >= 0, zero off the active set) and ``work``
    (the active set found) and returns ``(status, its size)``; status QP_OK, QP_INFEASIBLE (no
    x satisfies the constraints) or QP_MAX_ITER.  ``tol``: a constraint counts as violated
    when it is below ``b`` by more than ``tol`` times its row norm."""
    m, n = N.shape
    Nt = np.empty((m, n))  # rows L^-1 n_i (the constraints in y = L' x), made when needed
    have = np.zeros(m, dtype=np.bool_)
    nrm = np.empty(m)  # Euclidean row norms: the violation measure that picks a constraint
    for i in range(m):
        nrm[i] = math.sqrt(dot(N[i], N[i]))
    y = np.empty(n)
    lower_solve(L, a, y)
    for c in range(n):
        y[c] = -y[c]  # the unconstrained minimum, in y and in x
    u[:] = 0.0
    active = np.empty(n, dtype=np.int64)
    is_active = np.zeros(m, dtype=np.bool_)
    ua = np.zeros(n + 1)
    Qt = np.zeros((n, n))  # the active constraints' orthonormal basis, as rows
    Rm = np.zeros((n, n))
    z = np.empty(n)
    dx = np.empty(n)
    r = np.empty(n)
    # ---- the guess: the equality-constrained minimum on work[:n_work], with constraints of
    # negative multiplier (and dependent ones) dropped until every multiplier is >= 0; that
    # point is dual feasible, so the dual method continues from it (and stops at once when it
    # satisfies every other constraint: the guess was the solution)
    q = np.int64(0)  # (np.int64: a literal 0 would compile qr_append once more for it)
    for j in range(n_work):
        i = work[j]
        if not have[i]:
            lower_solve(L, N[i], Nt[i])
            have[i] = True
        qr_append(Qt, Rm, q, Nt[i])
        if Rm[q, q] > _DEPENDENT * math.sqrt(dot(Nt[i], Nt[i])):  # else dependent: skip it
            active[q] = i
            q += 1
    while q > 0:
        for j in range(q):  # R'R mu = b_W - N_W y0, by two triangular solves
            v = b[active[j]] - dot(Nt[active[j]], y)
            for k in range(j):
                v -= Rm[k, j] * r[k]
            r[j] = v / Rm[j, j]
        upper_solve(Rm[:q, :q].T, r[:q], r[:q])  # r = R^-1 r, in place
        mu_max = 0.0
        for j in range(q):
            mu_max = max(mu_max, abs(r[j]))
        k_neg = np.int64(-1)
        r_neg = -1e-12 * max(1.0, mu_max)
        for j in range(q):
            if r[j] < r_neg:
                r_neg = r[j]
                k_neg = j
        if k_neg < 0:
            break
        qr_delete(Qt, Rm, q, k_neg)  # the most negative multiplier leaves
        for j in range(k_neg, q - 1):
            active[j] = active[j + 1]
        q -= 1
    for c in range(n):
        z[c] = y[c]
        for j in range(q):
            z[c] += r[j] * Nt[active[j], c]
    upper_solve(L, z, x)
    for j in range(q):
        is_active[active[j]] = True
        ua[j] = max(r[j], 0.0)
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
            s = (dot(N[i], x) - b[i]) / nrm[i]
            if s < worst:
                worst = s
                p = i
        if p < 0:
            break
        if not have[p]:
            lower_solve(L, N[p], Nt[p])
            have[p] = True
        npv = Nt[p]
        nrm_p = math.sqrt(dot(npv, npv))
        up = 0.0
        while True:  # steps towards satisfying constraint p
            steps += 1
            if steps > max_steps:
                return QP_MAX_ITER, 0
            # z: npv projected off the active constraints; r: its coefficients on them
            for c in range(n):
                z[c] = npv[c]
            project_off(Qt, q, n, z, r)
            upper_solve(Rm[:q, :q].T, r[:q], r[:q])  # R r = Q' npv, in place
            zz = dot(z, z)
            t2 = math.inf
            if zz > (_DEPENDENT * nrm_p) ** 2:
                t2 = -(dot(N[p], x) - b[p]) / zz
            t1 = math.inf
            k_drop = np.int64(-1)
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
                qr_append(Qt, Rm, q, npv)
                q += 1
                break
            # partial step: constraint k_drop leaves
            is_active[active[k_drop]] = False
            qr_delete(Qt, Rm, q, k_drop)
            for j in range(k_drop, q - 1):
                active[j] = active[j + 1]
                ua[j] = ua[j + 1]
            q -= 1
    for j in range(q):
        u[active[j]] = max(ua[j], 0.0)
        work[j] = active[j]
    return QP_OK, q


_RHO_ELASTIC = 1e6  # weight of 1/2 delta^2 in an elastic subproblem


@njit(cache=True)
def elastic_qp(L, grad, G, g, d, u):
    """The subproblem when ``G d + g >= 0`` is inconsistent (SLSQP's relaxation): the violated
    rows become ``G_i d + (1 - delta) g_i >= 0`` with ``0 <= delta <= 1`` and ``1/2 rho delta^2``
    added to the objective, which is always feasible (``d = 0, delta = 1``).  Fills ``d`` (n,)
    and ``u`` (m,) and returns ``(status, delta)``."""
    m, n = G.shape
    La = np.zeros((n + 1, n + 1))
    copy_into(La[:n, :n], L)
    La[n, n] = math.sqrt(_RHO_ELASTIC)
    aa = np.zeros(n + 1)
    copy_into(aa[:n], grad)
    Na = np.zeros((m + 2, n + 1))
    ba = np.empty(m + 2)
    for i in range(m):
        copy_into(Na[i, :n], G[i])
        Na[i, n] = -g[i] if g[i] < 0.0 else 0.0
        ba[i] = -g[i]
    Na[m, n] = 1.0  # delta >= 0
    ba[m] = 0.0
    Na[m + 1, n] = -1.0  # delta <= 1
    ba[m + 1] = -1.0
    xa = np.empty(n + 1)
    ua = np.empty(m + 2)
    st, _ = qp_dual(La, aa, Na, ba, xa, ua, 1e-12, 10 * (m + n), np.empty(n + 1, np.int64), np.int64(0))
    copy_into(d, xa[:n])
    copy_into(u, ua[:m])
    return st, min(1.0, max(0.0, xa[n]))
