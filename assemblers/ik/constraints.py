"""The IK constraints ``g(Q) >= 0``, each family defined once: its rows, its Numba values and
derivative rows, its JAX reference.

Families, in the order of ``g`` (:func:`rows`): stroke low ``L - leg_min``, stroke high
``leg_max - L`` (each leg of each platform), joint angle ``max_angle - angle`` (each leg, base
end then top end), pose lower ``Q_i - lo`` and pose upper ``hi - Q_i`` (the config's pose
bounds), leg force ``1 - (f / max_leg_force)^2`` (each leg of each platform with a rating) and
the epigraph rows of a minimax criterion (:mod:`.criteria`; per epigraph variable ``t``:
``t - h_k`` for each leg, then ``t + h_k``, so ``t >= max |h_k|``: linear in ``t``, exact);
every limit but the pose bounds and the epigraph keeps :data:`MARGIN` inside.  Adding a family means a
row of :func:`rows`, its rows in :func:`values` and :func:`jacobian` (Numba) and in
:func:`reference` (JAX), here alone.

The kernels take the per-platform quantities the evaluation kernel (:mod:`.evaluate`) computes
once: ``L`` (N, 6) m, ``ang`` (N, 6, 2) rad, leg vectors ``V`` and ``Rt`` = R t_k (N, 6, 3),
top normals ``N_top`` (N, 3), leg Jacobians ``Jl`` (N, 6, 6) and angular bases ``Es``
(N, 3, 3), all in each platform's base frame; the leg forces ``F`` (N, 6) N and ``dF``
(6N, 6N) = dF/dQ (world frame; only where the problem has force rows or a criterion of the
loads); ``z`` the decision variables and ``full`` as in :mod:`.criteria`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .. import _runtime  # noqa: F401  (sets NUMBA_CACHE_DIR to the user's cache)
from .criteria import CRIT_LOADS_MAX, epigraph_h

MARGIN = 1e-9  # m / rad kept inside every limit, so round-off never lands a pose outside
_TINY = 1e-12  # below this sin(joint angle) the angle's gradient is taken as 0 (as safe_norm)


def rows(n: int, n_lo: int, n_hi: int, n_rated: int = 0,
         n_epi: int = 0) -> tuple[tuple[str, int, int], ...]:
    """The layout of ``g`` for N = ``n`` platforms (``n_rated`` of them with a force rating,
    ``n_epi`` epigraph variables): ``(family, first row, end row)`` in order.  One definition
    for the kernel, the JAX oracle and the reasons of unreachable targets."""
    nq = 6 * n
    r = 4 * nq + n_lo + n_hi
    return (("stroke low", 0, nq), ("stroke high", nq, 2 * nq),
            ("joint angle", 2 * nq, 4 * nq),  # per leg: base end, top end
            ("pose lower", 4 * nq, 4 * nq + n_lo),
            ("pose upper", 4 * nq + n_lo, r),
            ("leg force", r, r + 6 * n_rated),
            ("epigraph", r + 6 * n_rated, r + 6 * n_rated + 2 * nq * n_epi))


@njit(cache=True)
def values(P, Q, z, full, L, ang, F, g):
    """``g`` (m,) at the full stack pose ``Q`` (6N,) of the problem ``P``."""
    n = P.b.shape[0]
    nq = 6 * n
    lo_idx, hi_idx = P.lo_idx, P.hi_idx
    for i in range(n):
        for k in range(6):
            g[6 * i + k] = L[i, k] - P.leg_min[i, k] - MARGIN  # (N, 6): per leg
            g[nq + 6 * i + k] = P.leg_max[i, k] - L[i, k] - MARGIN
            g[2 * nq + 12 * i + 2 * k] = P.max_angle[i] - ang[i, k, 0] - MARGIN
            g[2 * nq + 12 * i + 2 * k + 1] = P.max_angle[i] - ang[i, k, 1] - MARGIN
    r0 = 4 * nq
    for a in range(lo_idx.shape[0]):
        g[r0 + a] = Q[lo_idx[a]] - P.lo_val[a]
    r1 = r0 + lo_idx.shape[0]
    for a in range(hi_idx.shape[0]):
        g[r1 + a] = P.hi_val[a] - Q[hi_idx[a]]
    r = r1 + hi_idx.shape[0]
    rated = P.terms.rated
    for a in range(rated.shape[0]):
        i = rated[a]
        for k in range(6):
            h = F[i, k] / P.terms.force_scale[i]
            g[r + 6 * a + k] = 1.0 - h * h - MARGIN
    r += 6 * rated.shape[0]
    for e in range(P.terms.epi.shape[0]):
        code = P.terms.epi[e]
        if full:  # the variable at its value: max |h|
            t = 0.0
            for i in range(n):
                for k in range(6):
                    t = max(t, abs(epigraph_h(code, P, i, k, L, F)))
        else:
            t = z[nq - 6 + e]
        for i in range(n):
            for k in range(6):
                h = epigraph_h(code, P, i, k, L, F)
                g[r + 6 * i + k] = t - h
                g[r + nq + 6 * i + k] = t + h
        r += 2 * nq


@njit(cache=True)
def jacobian(P, V, L, N_top, Es, Rt, Jl, D, n_put, n_free, z, F, dF, G):
    """``G`` (m, n_free) = dg/dz: rows from dg/dq_i, direct for the free platforms and through
    ``D`` (6, n_free) = dq_N/dz for the last (``n_put`` = N + 1 when every platform is free, as
    for the closest pose)."""
    n = P.b.shape[0]
    nq = 6 * n
    lo_idx, hi_idx = P.lo_idx, P.hi_idx
    r0 = 4 * nq
    r1 = r0 + lo_idx.shape[0]
    G[:, :] = 0.0
    dq = np.empty(6)
    dq2 = np.empty(6)
    for i in range(n):
        for k in range(6):
            ux, uy, uz = V[i, k, 0] / L[i, k], V[i, k, 1] / L[i, k], V[i, k, 2] / L[i, k]
            # stroke rows: dL/dq = Jl row
            for j in range(6):
                dq[j] = Jl[i, k, j]
            _put(G, 6 * i + k, i, n_put, n_free, dq, 1.0, D)
            _put(G, nq + 6 * i + k, i, n_put, n_free, dq, -1.0, D)
            vx, vy, vz = V[i, k, 0], V[i, k, 1], V[i, k, 2]
            s_b = math.sqrt(vx * vx + vy * vy)
            nx, ny, nz = N_top[i, 0], N_top[i, 1], N_top[i, 2]
            sx = vy * nz - vz * ny
            sy = vz * nx - vx * nz
            sz = vx * ny - vy * nx
            s_t = math.sqrt(sx * sx + sy * sy + sz * sz)
            un = ux * nx + uy * ny + uz * nz
            for j in range(6):  # d v and d n (top normal) per parameter, base frame
                if j < 3:
                    dvx, dvy, dvz = 1.0 if j == 0 else 0.0, 1.0 if j == 1 else 0.0, 1.0 if j == 2 else 0.0
                    dnx, dny, dnz = 0.0, 0.0, 0.0
                else:
                    ex, ey, ez = Es[i, 0, j - 3], Es[i, 1, j - 3], Es[i, 2, j - 3]
                    rx, ry, rz = Rt[i, k, 0], Rt[i, k, 1], Rt[i, k, 2]
                    dvx, dvy, dvz = ey * rz - ez * ry, ez * rx - ex * rz, ex * ry - ey * rx
                    dnx, dny, dnz = ey * nz - ez * ny, ez * nx - ex * nz, ex * ny - ey * nx
                # base angle (normal e_z): da = -(e_z - u u_z) . dv / |v x e_z|
                if s_b > _TINY * L[i, k]:
                    dq[j] = ((-ux * uz) * dvx + (-uy * uz) * dvy + (1.0 - uz * uz) * dvz) / s_b
                else:
                    dq[j] = 0.0
                # top angle: da = -((n - u (u.n)) . dv + v . dn) / |v x n|
                if s_t > _TINY * L[i, k]:
                    dq2[j] = ((nx - ux * un) * dvx + (ny - uy * un) * dvy + (nz - uz * un) * dvz
                              + vx * dnx + vy * dny + vz * dnz) / s_t
                else:
                    dq2[j] = 0.0
            _put(G, 2 * nq + 12 * i + 2 * k, i, n_put, n_free, dq, 1.0, D)
            _put(G, 2 * nq + 12 * i + 2 * k + 1, i, n_put, n_free, dq2, 1.0, D)
    for a in range(lo_idx.shape[0]):
        _put_pose(G, r0 + a, lo_idx[a], n_free, 1.0, D)
    for a in range(hi_idx.shape[0]):
        _put_pose(G, r1 + a, hi_idx[a], n_free, -1.0, D)
    r = r1 + hi_idx.shape[0]
    rated = P.terms.rated
    dfull = np.empty(nq)
    for a in range(rated.shape[0]):
        i = rated[a]
        s2 = P.terms.force_scale[i] ** 2
        for k in range(6):
            c2 = -2.0 * F[i, k] / s2
            for c in range(nq):
                dfull[c] = c2 * dF[6 * i + k, c]
            _put_full(G, r + 6 * a + k, n_put, n_free, dfull, D)
    r += 6 * rated.shape[0]
    for e in range(P.terms.epi.shape[0]):
        code = P.terms.epi[e]
        col = n_free + e  # the variable's column, after the pose ones
        for i in range(n):
            for k in range(6):
                row = r + 6 * i + k
                G[row, col] = 1.0
                G[row + nq, col] = 1.0
                if code == CRIT_LOADS_MAX:  # h = F / scale: over the whole stack pose
                    s = 1.0 / P.terms.force_scale[i]
                    for c in range(nq):
                        dfull[c] = -s * dF[6 * i + k, c]
                    _put_full(G, row, n_put, n_free, dfull, D)
                    for c in range(n_free):
                        G[row + nq, c] = -G[row, c]
                else:  # h = (L - mid) / half: platform i's own leg
                    for j in range(6):
                        dq[j] = Jl[i, k, j] / P.terms.half[i, k]
                    _put(G, row, i, n_put, n_free, dq, -1.0, D)
                    _put(G, row + nq, i, n_put, n_free, dq, 1.0, D)
        r += 2 * nq


@njit(cache=True, inline="always")
def _put_full(G, row, n, n6, dQ, D):
    """Row ``row`` of dg/dz from dg/dQ (``dQ`` (6N,), every platform): direct columns for the
    free platforms, the last one's through D (``n`` = N + 1: every column direct)."""
    nq = dQ.shape[0]
    if n > nq // 6:
        for c in range(nq):
            G[row, c] = dQ[c]
        return
    for c in range(n6):
        s = dQ[c]
        for j in range(6):
            s += dQ[n6 + j] * D[j, c]
        G[row, c] = s


@njit(cache=True, inline="always")
def _put(G, row, i, n, n6, dq, sign, D):
    """Row ``row`` of dg/dz from dg/dq_i (``dq`` (6,)): direct for i < N-1, through D for the last."""
    if i < n - 1:
        for j in range(6):
            G[row, 6 * i + j] = sign * dq[j]
    else:
        for c in range(n6):
            s = 0.0
            for j in range(6):
                s += dq[j] * D[j, c]
            G[row, c] = sign * s


@njit(cache=True, inline="always")
def _put_pose(G, row, idx, n6, sign, D):
    if idx < n6:
        G[row, idx] = sign
    else:
        for c in range(n6):
            G[row, c] = sign * D[idx - n6, c]


def reference(arrs, Q, limits, loads=None, terms=None, z=None, epi=()):
    """``g(Q)`` in JAX (traceable; the oracle of :func:`values` and, through autodiff, of
    :func:`jacobian`): ``arrs`` JAX :class:`~assemblers.model.StackArrays`, ``limits`` a
    :class:`~assemblers.ik.problem.Limits`; with ``loads`` and ``terms`` (a
    :class:`~assemblers.ik.criteria.Terms`) also the leg force rows, and the epigraph rows of
    the codes ``epi`` (static) with their variables in ``z`` after the 6(N-1) pose ones."""
    import jax.numpy as jnp

    from ..kinematics import reference as K

    leg_min, leg_max, max_angle, lo_idx, lo_val, hi_idx, hi_val = limits
    L = K.stack_legs(arrs, Q)  # (N, 6)
    ang = K.stack_joint_angles(arrs, Q)  # (N, 6, 2)
    parts = [
        (L - leg_min).reshape(-1) - MARGIN,  # leg bounds (N, 6): per leg
        (leg_max - L).reshape(-1) - MARGIN,
        (max_angle[:, None, None] - ang).reshape(-1) - MARGIN,
        Q[lo_idx] - lo_val,
        hi_val - Q[hi_idx],
    ]
    if terms is not None and (len(terms.rated) or len(epi)):
        from . import user
        from .criteria import epigraph_reference

        m = user.quantities(arrs, loads, Q)
        h = m.forces[terms.rated] / terms.force_scale[terms.rated][:, None]
        parts.append((1.0 - h * h).reshape(-1) - MARGIN)
        n6 = Q.shape[0] - 6
        for e, code in enumerate(epi):
            t = z[n6 + e]
            he = epigraph_reference(code, m, terms).reshape(-1)
            parts += [t - he, t + he]
    return jnp.concatenate(parts)
