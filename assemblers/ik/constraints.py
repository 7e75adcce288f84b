"""The IK constraints ``g(Q) >= 0``, each family defined once: its rows, its Numba values and
derivative rows, its JAX reference.

Families, in the order of ``g`` (:func:`rows`): stroke low ``L - leg_min``, stroke high
``leg_max - L`` (each leg of each platform), joint angle ``max_angle - angle`` (each leg, base
end then top end), pose lower ``Q_i - lo`` and pose upper ``hi - Q_i`` (the config's pose
bounds); every limit but the pose bounds keeps :data:`MARGIN` inside.  Adding a family means a
row of :func:`rows`, its rows in :func:`values` and :func:`jacobian` (Numba) and in
:func:`reference` (JAX), here alone.

The kernels take the per-platform quantities the evaluation kernel (:mod:`.evaluate`) computes
once: ``L`` (N, 6) m, ``ang`` (N, 6, 2) rad, leg vectors ``V`` and ``Rt`` = R t_k (N, 6, 3),
top normals ``N_top`` (N, 3), leg Jacobians ``Jl`` (N, 6, 6) and angular bases ``Es``
(N, 3, 3), all in each platform's base frame.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .. import _runtime  # noqa: F401  (sets NUMBA_CACHE_DIR to the user's cache)

MARGIN = 1e-9  # m / rad kept inside every limit, so round-off never lands a pose outside
_TINY = 1e-12  # below this sin(joint angle) the angle's gradient is taken as 0 (as safe_norm)


def rows(n: int, n_lo: int, n_hi: int) -> tuple[tuple[str, int, int], ...]:
    """The layout of ``g`` for N = ``n`` platforms: ``(family, first row, end row)`` in order.
    One definition for the kernel, the JAX oracle and the reasons of unreachable targets."""
    nq = 6 * n
    return (("stroke low", 0, nq), ("stroke high", nq, 2 * nq),
            ("joint angle", 2 * nq, 4 * nq),  # per leg: base end, top end
            ("pose lower", 4 * nq, 4 * nq + n_lo),
            ("pose upper", 4 * nq + n_lo, 4 * nq + n_lo + n_hi))


@njit(cache=True)
def values(P, Q, L, ang, g):
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


@njit(cache=True)
def jacobian(P, V, L, N_top, Es, Rt, Jl, D, n_put, n_free, G):
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


def reference(arrs, Q, limits):
    """``g(Q)`` in JAX (traceable; the oracle of :func:`values` and, through autodiff, of
    :func:`jacobian`): ``arrs`` JAX :class:`~assemblers.model.StackArrays`, ``limits`` a
    :class:`~assemblers.ik.problem.Limits`."""
    import jax.numpy as jnp

    from ..kinematics import reference as K

    leg_min, leg_max, max_angle, lo_idx, lo_val, hi_idx, hi_val = limits
    L = K.stack_legs(arrs, Q)  # (N, 6)
    ang = K.stack_joint_angles(arrs, Q)  # (N, 6, 2)
    return jnp.concatenate([
        (L - leg_min).reshape(-1) - MARGIN,  # leg bounds (N, 6): per leg
        (leg_max - L).reshape(-1) - MARGIN,
        (max_angle[:, None, None] - ang).reshape(-1) - MARGIN,
        Q[lo_idx] - lo_val,
        hi_val - Q[hi_idx],
    ])
