"""Numba kernels of the same kinematics, for throughput (batches) and Monte Carlo loops.

Scalar-loop twins of :mod:`assemblers.kinematics` (the JAX reference, checked by autodiff); the
tests compare them element by element.  Building blocks (``@njit`` functions taking preallocated
outputs) are meant to be called from other Numba kernels (``sims.montecarlo``); the ``*_batch``
kernels are ``parallel=True`` over the batch and deterministic whatever the thread count.

Array arguments: ``b``, ``t``: (N, 6, 3) m joints (base frame / top frame); ``T_mount``: (4, 4);
``T_after``: (N, 4, 4) (interfaces, then the tool); ``Q``: (6N,) or (B, 6N) (m, rad).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from . import _runtime  # noqa: F401  (sets NUMBA_CACHE_DIR to the user's cache)


@njit(cache=True, inline="always")
def rpy_matrix(roll, pitch, yaw, R):
    """Write ``Rz(yaw) Ry(pitch) Rx(roll)`` into ``R`` (3, 3)."""
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    R[0, 0] = cy * cp
    R[0, 1] = cy * sp * sr - sy * cr
    R[0, 2] = cy * sp * cr + sy * sr
    R[1, 0] = sy * cp
    R[1, 1] = sy * sp * sr + cy * cr
    R[1, 2] = sy * sp * cr - cy * sr
    R[2, 0] = -sp
    R[2, 1] = cp * sr
    R[2, 2] = cp * cr


@njit(cache=True, inline="always")
def rigid_last_row(T):
    """Set the last row of the (4, 4) transform ``T`` to 0 0 0 1."""
    T[3, 0] = 0.0
    T[3, 1] = 0.0
    T[3, 2] = 0.0
    T[3, 3] = 1.0


@njit(cache=True, inline="always")
def pose_transform(q, off, T):
    """Write the (4, 4) transform of pose ``q[off:off+6]`` into ``T``."""
    rpy_matrix(q[off + 3], q[off + 4], q[off + 5], T)
    T[0, 3] = q[off]
    T[1, 3] = q[off + 1]
    T[2, 3] = q[off + 2]
    rigid_last_row(T)


@njit(cache=True, inline="always")
def matmul4(A, B, C):
    """``C = A @ B`` for rigid (4, 4) transforms (last row assumed 0 0 0 1)."""
    for i in range(3):
        for j in range(4):
            C[i, j] = A[i, 0] * B[0, j] + A[i, 1] * B[1, j] + A[i, 2] * B[2, j]
        C[i, 3] += A[i, 3]
    rigid_last_row(C)


@njit(cache=True)
def stack_frames(T_mount, T_after, Q, bases, tops, T_ee, tmp):
    """Fill ``bases`` (N, 4, 4) world_from_base_i, ``tops`` (N, 4, 4) world_from_top_i and
    ``T_ee`` (4, 4) world_from_tool for ``Q`` (6N,); ``tmp`` (4, 4) scratch."""
    n = T_after.shape[0]
    bases[0, :, :] = T_mount
    for i in range(n):
        pose_transform(Q, 6 * i, tmp)
        matmul4(bases[i], tmp, tops[i])
        if i + 1 < n:
            matmul4(tops[i], T_after[i], bases[i + 1])
        else:
            matmul4(tops[i], T_after[i], T_ee)


@njit(cache=True)
def forward(T_mount, T_after, Q, T_ee, work):
    """World_from_tool of ``Q`` (6N,) into ``T_ee`` (4, 4); ``work`` (2, 4, 4) scratch."""
    n = T_after.shape[0]
    A = work[0]
    B = work[1]
    A[:, :] = T_mount
    for i in range(n):
        pose_transform(Q, 6 * i, B)
        matmul4(A, B, T_ee)
        matmul4(T_ee, T_after[i], A)
    T_ee[:, :] = A


@njit(cache=True)
def jacobian_pose(T_mount, T_after, Q, J, bases, tops, T_ee, tmp):
    """Analytic ``J_Q`` (6, 6N) of ``Q`` (6N,) into ``J``; other arguments are scratch
    (``bases``/``tops`` (N, 4, 4), ``T_ee``/``tmp`` (4, 4))."""
    n = T_after.shape[0]
    stack_frames(T_mount, T_after, Q, bases, tops, T_ee, tmp)
    px, py, pz = T_ee[0, 3], T_ee[1, 3], T_ee[2, 3]
    for i in range(n):
        c = 6 * i
        pitch, yaw = Q[c + 4], Q[c + 5]
        cp, sp = math.cos(pitch), math.sin(pitch)
        cy, sy = math.cos(yaw), math.sin(yaw)
        # E columns: d/droll, d/dpitch, d/dyaw (base frame)
        e0x, e0y, e0z = cp * cy, cp * sy, -sp
        e1x, e1y, e1z = -sy, cy, 0.0
        lx = px - tops[i, 0, 3]
        ly = py - tops[i, 1, 3]
        lz = pz - tops[i, 2, 3]
        for r in range(3):
            for k in range(3):
                J[r, c + k] = bases[i, r, k]
                J[r + 3, c + k] = 0.0
        for k in range(3):
            if k == 0:
                ex, ey, ez = e0x, e0y, e0z
            elif k == 1:
                ex, ey, ez = e1x, e1y, e1z
            else:
                ex, ey, ez = 0.0, 0.0, 1.0
            wx = bases[i, 0, 0] * ex + bases[i, 0, 1] * ey + bases[i, 0, 2] * ez
            wy = bases[i, 1, 0] * ex + bases[i, 1, 1] * ey + bases[i, 1, 2] * ez
            wz = bases[i, 2, 0] * ex + bases[i, 2, 1] * ey + bases[i, 2, 2] * ez
            J[0, c + 3 + k] = wy * lz - wz * ly
            J[1, c + 3 + k] = wz * lx - wx * lz
            J[2, c + 3 + k] = wx * ly - wy * lx
            J[3, c + 3 + k] = wx
            J[4, c + 3 + k] = wy
            J[5, c + 3 + k] = wz


@njit(cache=True)
def platform_legs(b, t, q, off, L, R):
    """Leg lengths of one platform (``b``, ``t`` (6, 3)) at pose ``q[off:off+6]`` into ``L`` (6,);
    ``R`` (3, 3) scratch."""
    rpy_matrix(q[off + 3], q[off + 4], q[off + 5], R)
    for k in range(6):
        s = 0.0
        for r in range(3):
            v = q[off + r] + R[r, 0] * t[k, 0] + R[r, 1] * t[k, 1] + R[r, 2] * t[k, 2] - b[k, r]
            s += v * v
        L[k] = math.sqrt(s)


@njit(cache=True)
def platform_leg_jacobian(b, t, q, off, Jl, R):
    """``dL/dq`` (6, 6) of one platform into ``Jl``; returns nothing; ``R`` (3, 3) scratch."""
    rpy_matrix(q[off + 3], q[off + 4], q[off + 5], R)
    pitch, yaw = q[off + 4], q[off + 5]
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    for k in range(6):
        rx = R[0, 0] * t[k, 0] + R[0, 1] * t[k, 1] + R[0, 2] * t[k, 2]
        ry = R[1, 0] * t[k, 0] + R[1, 1] * t[k, 1] + R[1, 2] * t[k, 2]
        rz = R[2, 0] * t[k, 0] + R[2, 1] * t[k, 1] + R[2, 2] * t[k, 2]
        vx = q[off] + rx - b[k, 0]
        vy = q[off + 1] + ry - b[k, 1]
        vz = q[off + 2] + rz - b[k, 2]
        inv = 1.0 / math.sqrt(vx * vx + vy * vy + vz * vz)
        ux, uy, uz = vx * inv, vy * inv, vz * inv
        # (R t) x u
        cx = ry * uz - rz * uy
        cyy = rz * ux - rx * uz
        cz = rx * uy - ry * ux
        Jl[k, 0] = ux
        Jl[k, 1] = uy
        Jl[k, 2] = uz
        Jl[k, 3] = cx * cp * cy + cyy * cp * sy - cz * sp
        Jl[k, 4] = -cx * sy + cyy * cy
        Jl[k, 5] = cz


@njit(cache=True, inline="always")
def pivot_rows(A, col):
    """Partial pivoting: swap into row ``col`` of ``A`` (all its columns) the row at or below it
    with the largest ``|A[row, col]|``.  Returns that row's former index, or -1 if the column is
    zero to working precision (singular)."""
    piv = col
    best = abs(A[col, col])
    for i in range(col + 1, A.shape[0]):
        if abs(A[i, col]) > best:
            best = abs(A[i, col])
            piv = i
    if best < 1e-300:
        return -1
    if piv != col:
        for j in range(A.shape[1]):
            tmp = A[col, j]
            A[col, j] = A[piv, j]
            A[piv, j] = tmp
    return piv


@njit(cache=True)
def solve6(A, r, x):
    """Solve ``A x = r`` (6 x 6) by Gaussian elimination with partial pivoting (A, r destroyed).
    Returns False if A is singular to working precision."""
    n = 6
    for col in range(n):
        piv = pivot_rows(A, col)
        if piv < 0:
            return False
        r[col], r[piv] = r[piv], r[col]
        for i in range(col + 1, n):
            f = A[i, col] / A[col, col]
            for j in range(col, n):
                A[i, j] -= f * A[col, j]
            r[i] -= f * r[col]
    for i in range(n - 1, -1, -1):
        s = r[i]
        for j in range(i + 1, n):
            s -= A[i, j] * x[j]
        x[i] = s / A[i, i]
    return True


@njit(cache=True)
def from_legs_platform(b, t, L, q, off, tol, max_iter):
    """Newton (with backtracking) for one platform: updates ``q[off:off+6]`` in place so that its
    legs match ``L`` (6,) m.  Returns (max residual m, iterations)."""
    R = np.empty((3, 3))
    Jl = np.empty((6, 6))
    Lc = np.empty(6)
    r = np.empty(6)
    dq = np.empty(6)
    qt = np.empty(6)
    platform_legs(b, t, q, off, Lc, R)
    err = 0.0
    for k in range(6):
        r[k] = Lc[k] - L[k]
        err = max(err, abs(r[k]))
    it = 0
    while err > tol and it < max_iter:
        platform_leg_jacobian(b, t, q, off, Jl, R)
        rr = r.copy()
        if not solve6(Jl, rr, dq):
            break
        # backtrack 1, 1/2, 1/4, 1/8; with no decrease take the full step (as the JAX twin)
        alpha = 1.0
        chosen = 1.0
        for _ in range(4):
            for k in range(6):
                qt[k] = q[off + k] - alpha * dq[k]
            platform_legs(b, t, qt, 0, Lc, R)
            e = 0.0
            for k in range(6):
                e = max(e, abs(Lc[k] - L[k]))
            if e < err:
                chosen = alpha
                break
            alpha *= 0.5
        for k in range(6):
            qt[k] = q[off + k] - chosen * dq[k]
        for k in range(6):
            q[off + k] = qt[k]
        platform_legs(b, t, q, off, Lc, R)
        err = 0.0
        for k in range(6):
            r[k] = Lc[k] - L[k]
            err = max(err, abs(r[k]))
        it += 1
    return err, it


@njit(cache=True, parallel=True)
def forward_batch(T_mount, T_after, Q, out):
    """World_from_tool for each row of ``Q`` (B, 6N) into ``out`` (B, 4, 4)."""
    for s in prange(Q.shape[0]):
        work = np.empty((2, 4, 4))
        forward(T_mount, T_after, Q[s], out[s], work)


@njit(cache=True, parallel=True)
def jacobian_pose_batch(T_mount, T_after, Q, out):
    """Analytic ``J_Q`` for each row of ``Q`` (B, 6N) into ``out`` (B, 6, 6N)."""
    n = T_after.shape[0]
    chunk = 64
    nchunks = (Q.shape[0] + chunk - 1) // chunk
    for c in prange(nchunks):
        bases = np.empty((n, 4, 4))
        tops = np.empty((n, 4, 4))
        T_ee = np.empty((4, 4))
        tmp = np.empty((4, 4))
        for s in range(c * chunk, min((c + 1) * chunk, Q.shape[0])):
            jacobian_pose(T_mount, T_after, Q[s], out[s], bases, tops, T_ee, tmp)


@njit(cache=True, parallel=True)
def legs_batch(b, t, Q, out):
    """Leg lengths for each row of ``Q`` (B, 6N) into ``out`` (B, N, 6)."""
    n = b.shape[0]
    for s in prange(Q.shape[0]):
        R = np.empty((3, 3))
        for i in range(n):
            platform_legs(b[i], t[i], Q[s], 6 * i, out[s, i], R)


def jacobian_pose_np(arrs, Q: np.ndarray) -> np.ndarray:
    """NumPy wrapper: ``Q`` (B, 6N) -> ``J_Q`` (B, 6, 6N) with the Numba kernel."""
    Q = np.ascontiguousarray(Q, dtype=np.float64)
    out = np.empty((Q.shape[0], 6, Q.shape[1]))
    jacobian_pose_batch(np.ascontiguousarray(arrs.T_mount), np.ascontiguousarray(arrs.T_after),
                        Q, out)
    return out


def forward_np(arrs, Q: np.ndarray) -> np.ndarray:
    """NumPy wrapper: ``Q`` (B, 6N) -> T_world_tool (B, 4, 4) with the Numba kernel."""
    Q = np.ascontiguousarray(Q, dtype=np.float64)
    out = np.empty((Q.shape[0], 4, 4))
    forward_batch(np.ascontiguousarray(arrs.T_mount), np.ascontiguousarray(arrs.T_after), Q, out)
    return out


@njit(cache=True)
def from_legs_stack(b, t, L, Q, tol, max_iter, err, iters):
    """Every platform's Newton: ``L`` (N, 6) m; ``Q`` (6N,) start, updated in place;
    ``err`` (N,) m and ``iters`` (N,) filled."""
    for i in range(b.shape[0]):
        e, it = from_legs_platform(b[i], t[i], L[i], Q, 6 * i, tol, max_iter)
        err[i] = e
        iters[i] = it


@njit(cache=True, parallel=True)
def from_legs_batch(b, t, L, Q, tol, max_iter, err, iters):
    """Batched :func:`from_legs_stack`: ``L`` (B, N, 6), ``Q`` (B, 6N) in place, ``err`` and
    ``iters`` (B, N)."""
    for s in prange(Q.shape[0]):
        from_legs_stack(b, t, L[s], Q[s], tol, max_iter, err[s], iters[s])
