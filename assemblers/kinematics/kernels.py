"""Numba kernels of the stack kinematics: the twins of :mod:`.reference` (JAX).

Scalar loops writing into preallocated outputs.  The per-pose kernels (:func:`forward`,
:func:`jacobian_pose`, :func:`platform_legs`, ...) are building blocks for other kernels (the
IK, the Monte Carlo).  Each batched quantity has two drivers over the rows of ``Q`` (B, 6N):
``*_rows(..., lo, hi)``, serial (rows ``lo:hi``, scratch allocated once), and ``*_batch``,
``parallel=True`` over chunks of :data:`CHUNK` rows, each chunk one ``*_rows`` call (the same
compiled code, so both give the same bits, deterministic whatever the thread count).  Which one
runs is the facade's rule (:mod:`.api`): single poses and small batches never start threads.
Tested against :mod:`.reference` in ``tests/twins``.

Array arguments: ``b``, ``t``: (N, 6, 3) m joints (base frame / top frame); ``T_mount``: (4, 4);
``T_after``: (N, 4, 4) (interfaces, then the tool); ``Q``: (6N,) or (B, 6N) (m, rad).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .. import _runtime  # noqa: F401  (sets NUMBA_CACHE_DIR to the user's cache)
from ..geometry.kernels import angular_basis, compose, pose_to_transform, rpy_to_matrix
from ..optim.linalg import copy_into, invert6, solve6

CHUNK = 64  # rows per task of the parallel drivers


@njit(cache=True)
def stack_frames(T_mount, T_after, Q, bases, tops, T_ee, tmp):
    """Fill ``bases`` (N, 4, 4) world_from_base_i, ``tops`` (N, 4, 4) world_from_top_i and
    ``T_ee`` (4, 4) world_from_tool for ``Q`` (6N,); ``tmp`` (4, 4) scratch."""
    n = T_after.shape[0]
    copy_into(bases[0], T_mount)
    for i in range(n):
        pose_to_transform(Q, 6 * i, tmp)
        compose(bases[i], tmp, tops[i])
        if i + 1 < n:
            compose(tops[i], T_after[i], bases[i + 1])
        else:
            compose(tops[i], T_after[i], T_ee)


@njit(cache=True)
def forward(T_mount, T_after, Q, T_ee, work):
    """World_from_tool of ``Q`` (6N,) into ``T_ee`` (4, 4); ``work`` (2, 4, 4) scratch."""
    n = T_after.shape[0]
    A = work[0]
    B = work[1]
    copy_into(A, T_mount)
    for i in range(n):
        pose_to_transform(Q, 6 * i, B)
        compose(A, B, T_ee)
        compose(T_ee, T_after[i], A)
    copy_into(T_ee, A)


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
    rpy_to_matrix(q[off + 3], q[off + 4], q[off + 5], R)
    for k in range(6):
        s = 0.0
        for r in range(3):
            v = q[off + r] + R[r, 0] * t[k, 0] + R[r, 1] * t[k, 1] + R[r, 2] * t[k, 2] - b[k, r]
            s += v * v
        L[k] = math.sqrt(s)


@njit(cache=True)
def platform_leg_jacobian(b, t, q, off, Jl, R):
    """``dL/dq`` (6, 6) of one platform into ``Jl``; returns nothing; ``R`` (3, 3) scratch."""
    rpy_to_matrix(q[off + 3], q[off + 4], q[off + 5], R)
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


@njit(cache=True)
def from_legs_stack(b, t, L, Q, tol, max_iter, err, iters):
    """Every platform's Newton: ``L`` (N, 6) m; ``Q`` (6N,) start, updated in place;
    ``err`` (N,) m and ``iters`` (N,) filled."""
    for i in range(b.shape[0]):
        e, it = from_legs_platform(b[i], t[i], L[i], Q, 6 * i, tol, max_iter)
        err[i] = e
        iters[i] = it


@njit(cache=True)
def platform_joint_angles(b, t, q, off, ang, R):
    """Angle between each leg and its plate's normal at both ends, platform pose
    ``q[off:off+6]``, into ``ang`` (6, 2) rad: ``[:, 0]`` at the base joint (normal e_z),
    ``[:, 1]`` at the top joint (normal R e_z); ``R`` (3, 3) scratch."""
    rpy_to_matrix(q[off + 3], q[off + 4], q[off + 5], R)
    nx, ny, nz = R[0, 2], R[1, 2], R[2, 2]
    for k in range(6):
        vx = q[off] + R[0, 0] * t[k, 0] + R[0, 1] * t[k, 1] + R[0, 2] * t[k, 2] - b[k, 0]
        vy = q[off + 1] + R[1, 0] * t[k, 0] + R[1, 1] * t[k, 1] + R[1, 2] * t[k, 2] - b[k, 1]
        vz = q[off + 2] + R[2, 0] * t[k, 0] + R[2, 1] * t[k, 1] + R[2, 2] * t[k, 2] - b[k, 2]
        ang[k, 0] = math.atan2(math.sqrt(vx * vx + vy * vy), vz)
        sx = vy * nz - vz * ny
        sy = vz * nx - vx * nz
        sz = vx * ny - vy * nx
        ang[k, 1] = math.atan2(math.sqrt(sx * sx + sy * sy + sz * sz), vx * nx + vy * ny + vz * nz)


@njit(cache=True)
def jacobian_legs(b, t, T_mount, T_after, Q, J, JL, bases, tops, T_ee, tmp):
    """``J_L`` (6, 6N) of ``Q`` (6N,) into ``JL``: per platform ``J_Q,i (dL_i/dq_i)^-1``;
    ``J`` (6, 6N) receives ``J_Q``; the rest is scratch as :func:`jacobian_pose`.  Returns False
    (``JL`` NaN) when a leg Jacobian is singular."""
    jacobian_pose(T_mount, T_after, Q, J, bases, tops, T_ee, tmp)
    Jl = np.empty((6, 6))
    Jinv = np.empty((6, 6))
    R = np.empty((3, 3))
    for i in range(b.shape[0]):
        o = 6 * i
        platform_leg_jacobian(b[i], t[i], Q, o, Jl, R)
        if not invert6(Jl, Jinv):
            JL[:, :] = np.nan
            return False
        for r in range(6):
            for c in range(6):
                s = 0.0
                for a in range(6):
                    s += J[r, o + a] * Jinv[a, c]
                JL[r, o + c] = s
    return True


# ----------------------------------------------------------------------------- second derivatives


@njit(cache=True)
def jacobian_pose_contract(K, J, Q, bases, tops, T_ee, gQ):
    """``gQ[c] += sum_ij K_ij dJ_ij/dQ_c`` (6N,) for ``J`` = J_Q (6, 6N) at ``Q`` with its frames
    ``bases``, ``tops`` (N, 4, 4), ``T_ee`` (4, 4) (from :func:`jacobian_pose`); ``K`` (6, 6N).

    A parameter c of platform k moves everything above platform k's top frame rigidly with the
    twist ``(v_c, w_c) = J[:, c]``: column blocks above k rotate (``w_c x``), blocks below k see
    only the tool point move (``v_c``), and k's own block changes through ``E(rpy)`` and its
    lever.  (A vector-Jacobian product of J_Q; the twin of autodiff of ``sum(K * J_Q(Q))``.)"""
    n = bases.shape[0]
    S = np.zeros((n, 3))  # sum over block i of a x K_top + b x K_bot: rigid rotation of block i
    U = np.zeros((n, 3))  # sum over rotation columns of block i of K_top x omega: tool point moves
    for i in range(n):
        for col in range(6 * i, 6 * i + 6):
            ax, ay, az = J[0, col], J[1, col], J[2, col]
            bx, by, bz = J[3, col], J[4, col], J[5, col]
            kx, ky, kz = K[0, col], K[1, col], K[2, col]
            lx, ly, lz = K[3, col], K[4, col], K[5, col]
            S[i, 0] += ay * kz - az * ky + by * lz - bz * ly
            S[i, 1] += az * kx - ax * kz + bz * lx - bx * lz
            S[i, 2] += ax * ky - ay * kx + bx * ly - by * lx
            if col >= 6 * i + 3:
                U[i, 0] += ky * bz - kz * by
                U[i, 1] += kz * bx - kx * bz
                U[i, 2] += kx * by - ky * bx
    above = np.zeros((n + 1, 3))  # above[k] = sum_{i > k} S_i
    below = np.zeros((n + 1, 3))  # below[k] = sum_{i < k} U_i
    for k in range(n - 1, -1, -1):
        for a in range(3):
            above[k, a] = above[k + 1, a] + (S[k + 1, a] if k + 1 < n else 0.0)
    for k in range(1, n + 1):
        for a in range(3):
            below[k, a] = below[k - 1, a] + U[k - 1, a]
    E = np.empty((3, 3))
    dE = np.empty((3, 3, 3))
    dw = np.empty((3, 3))
    for k in range(n):
        E_pitch, E_yaw = Q[6 * k + 4], Q[6 * k + 5]
        angular_basis(E_pitch, E_yaw, E, dE)
        lx = T_ee[0, 3] - tops[k, 0, 3]
        ly = T_ee[1, 3] - tops[k, 1, 3]
        lz = T_ee[2, 3] - tops[k, 2, 3]
        for j in range(6):
            c = 6 * k + j
            vx, vy, vz = J[0, c], J[1, c], J[2, c]
            wx, wy, wz = J[3, c], J[4, c], J[5, c]
            acc = (wx * above[k, 0] + wy * above[k, 1] + wz * above[k, 2]
                   + vx * below[k, 0] + vy * below[k, 1] + vz * below[k, 2])
            if j >= 3:
                a = j - 3  # which of roll, pitch, yaw
                # d omega_m = R_A dE[a][:, m] (world); w_c = omega_a; lever turns with w_c
                for m in range(3):
                    for r in range(3):
                        dw[r, m] = (bases[k, r, 0] * dE[a, 0, m] + bases[k, r, 1] * dE[a, 1, m]
                                    + bases[k, r, 2] * dE[a, 2, m])
                # w_c x lever
                clx = wy * lz - wz * ly
                cly = wz * lx - wx * lz
                clz = wx * ly - wy * lx
                for m in range(3):
                    col = 6 * k + 3 + m
                    ox, oy, oz = J[3, col], J[4, col], J[5, col]
                    # top: d omega_m x lever + omega_m x (w_c x lever); bottom: d omega_m
                    tx = dw[1, m] * lz - dw[2, m] * ly + oy * clz - oz * cly
                    ty = dw[2, m] * lx - dw[0, m] * lz + oz * clx - ox * clz
                    tz = dw[0, m] * ly - dw[1, m] * lx + ox * cly - oy * clx
                    acc += (K[0, col] * tx + K[1, col] * ty + K[2, col] * tz
                            + K[3, col] * dw[0, m] + K[4, col] * dw[1, m] + K[5, col] * dw[2, m])
            gQ[c] += acc


@njit(cache=True)
def leg_jacobian_row_contract(v, rt, Lk, E, dE, p, out):
    """Adds ``sum_c p[c] d/dq_j row[c]`` to ``out[j]`` for the six pose parameters ``q_j`` of
    a platform, ``row`` = ``[u, (Rt x u)^T E]`` its leg's Jacobian row (all in the platform's
    base frame): ``v`` (3,) leg vector m, ``rt`` (3,) = R t_k m, ``Lk`` = |v|, ``E`` (3, 3) and
    ``dE`` (3, 3, 3) the angular basis and its derivatives in the three angles (``dE[a]`` =
    dE/dq_{3+a}), ``p`` (6,), ``out`` (6,).  The six derivatives of a row, contracted as they
    are built: with ``w = E p_rot``, ``P = p_lin + w x Rt`` and ``h = (P - u (u.P)) / L``
    (du_j . P = dv_j . h), the translations give ``h`` and each rotation
    ``e_j . (Rt x (h + u x w)) + c . (dE_j p_rot)`` (``e_j`` = E[:, j], ``c`` = Rt x u).
    Why: the gradients of ``fn_legs`` and ``compliance`` need only this contraction; building
    the six rows one by one and contracting them took about five times the arithmetic (the
    compliance gradient's evaluation 11-13 % slower, measured)."""
    ux, uy, uz = v[0] / Lk, v[1] / Lk, v[2] / Lk
    rx, ry, rz = rt[0], rt[1], rt[2]
    wx = E[0, 0] * p[3] + E[0, 1] * p[4] + E[0, 2] * p[5]
    wy = E[1, 0] * p[3] + E[1, 1] * p[4] + E[1, 2] * p[5]
    wz = E[2, 0] * p[3] + E[2, 1] * p[4] + E[2, 2] * p[5]
    Px = p[0] + wy * rz - wz * ry
    Py = p[1] + wz * rx - wx * rz
    Pz = p[2] + wx * ry - wy * rx
    uP = ux * Px + uy * Py + uz * Pz
    hx, hy, hz = (Px - ux * uP) / Lk, (Py - uy * uP) / Lk, (Pz - uz * uP) / Lk
    out[0] += hx
    out[1] += hy
    out[2] += hz
    qx = hx + uy * wz - uz * wy
    qy = hy + uz * wx - ux * wz
    qz = hz + ux * wy - uy * wx
    sx, sy, sz = ry * qz - rz * qy, rz * qx - rx * qz, rx * qy - ry * qx  # Rt x q
    cx, cy, cz = ry * uz - rz * uy, rz * ux - rx * uz, rx * uy - ry * ux
    for a in range(3):
        s = E[0, a] * sx + E[1, a] * sy + E[2, a] * sz
        for m in range(3):
            s += (cx * dE[a, 0, m] + cy * dE[a, 1, m] + cz * dE[a, 2, m]) * p[3 + m]
        out[3 + a] += s


# ----------------------------------------------------------------------------- batch drivers


@njit(cache=True)
def forward_rows(T_mount, T_after, Q, out, lo, hi):
    """World_from_tool for rows ``lo:hi`` of ``Q`` (B, 6N) into ``out`` (B, 4, 4)."""
    work = np.empty((2, 4, 4))
    for s in range(lo, hi):
        forward(T_mount, T_after, Q[s], out[s], work)


@njit(cache=True)
def stack_frames_rows(T_mount, T_after, Q, bases, tops, T_ee, lo, hi):
    """:func:`stack_frames` for rows ``lo:hi`` of ``Q`` (B, 6N) into ``bases``, ``tops``
    (B, N, 4, 4) and ``T_ee`` (B, 4, 4)."""
    tmp = np.empty((4, 4))
    for s in range(lo, hi):
        stack_frames(T_mount, T_after, Q[s], bases[s], tops[s], T_ee[s], tmp)


@njit(cache=True)
def legs_rows(b, t, Q, out, lo, hi):
    """Leg lengths for rows ``lo:hi`` of ``Q`` (B, 6N) into ``out`` (B, N, 6) m."""
    R = np.empty((3, 3))
    for s in range(lo, hi):
        for i in range(b.shape[0]):
            platform_legs(b[i], t[i], Q[s], 6 * i, out[s, i], R)


@njit(cache=True)
def joint_angles_rows(b, t, Q, out, lo, hi):
    """Joint angles for rows ``lo:hi`` of ``Q`` (B, 6N) into ``out`` (B, N, 6, 2) rad."""
    R = np.empty((3, 3))
    for s in range(lo, hi):
        for i in range(b.shape[0]):
            platform_joint_angles(b[i], t[i], Q[s], 6 * i, out[s, i], R)


@njit(cache=True)
def jacobian_pose_rows(T_mount, T_after, Q, out, lo, hi):
    """Analytic ``J_Q`` for rows ``lo:hi`` of ``Q`` (B, 6N) into ``out`` (B, 6, 6N)."""
    n = T_after.shape[0]
    bases = np.empty((n, 4, 4))
    tops = np.empty((n, 4, 4))
    T_ee = np.empty((4, 4))
    tmp = np.empty((4, 4))
    for s in range(lo, hi):
        jacobian_pose(T_mount, T_after, Q[s], out[s], bases, tops, T_ee, tmp)


@njit(cache=True)
def jacobian_legs_rows(b, t, T_mount, T_after, Q, out, lo, hi):
    """``J_L`` for rows ``lo:hi`` of ``Q`` (B, 6N) into ``out`` (B, 6, 6N) (NaN where a leg
    Jacobian is singular)."""
    n = T_after.shape[0]
    J = np.empty((6, 6 * n))
    bases = np.empty((n, 4, 4))
    tops = np.empty((n, 4, 4))
    T_ee = np.empty((4, 4))
    tmp = np.empty((4, 4))
    for s in range(lo, hi):
        jacobian_legs(b, t, T_mount, T_after, Q[s], J, out[s], bases, tops, T_ee, tmp)


@njit(cache=True)
def from_legs_rows(b, t, L, Q, tol, max_iter, err, iters, lo, hi):
    """:func:`from_legs_stack` for rows ``lo:hi``: ``L`` (B, N, 6) m, ``Q`` (B, 6N) start,
    updated in place, ``err`` (B, N) m and ``iters`` (B, N) filled."""
    for s in range(lo, hi):
        from_legs_stack(b, t, L[s], Q[s], tol, max_iter, err[s], iters[s])


@njit(cache=True, parallel=True)
def forward_batch(T_mount, T_after, Q, out):
    """:func:`forward_rows` over all rows, threads over chunks."""
    B = Q.shape[0]
    for c in prange((B + CHUNK - 1) // CHUNK):
        forward_rows(T_mount, T_after, Q, out, c * CHUNK, min(B, (c + 1) * CHUNK))


@njit(cache=True, parallel=True)
def stack_frames_batch(T_mount, T_after, Q, bases, tops, T_ee):
    """:func:`stack_frames_rows` over all rows, threads over chunks."""
    B = Q.shape[0]
    for c in prange((B + CHUNK - 1) // CHUNK):
        stack_frames_rows(T_mount, T_after, Q, bases, tops, T_ee, c * CHUNK,
                          min(B, (c + 1) * CHUNK))


@njit(cache=True, parallel=True)
def legs_batch(b, t, Q, out):
    """:func:`legs_rows` over all rows, threads over chunks."""
    B = Q.shape[0]
    for c in prange((B + CHUNK - 1) // CHUNK):
        legs_rows(b, t, Q, out, c * CHUNK, min(B, (c + 1) * CHUNK))


@njit(cache=True, parallel=True)
def joint_angles_batch(b, t, Q, out):
    """:func:`joint_angles_rows` over all rows, threads over chunks."""
    B = Q.shape[0]
    for c in prange((B + CHUNK - 1) // CHUNK):
        joint_angles_rows(b, t, Q, out, c * CHUNK, min(B, (c + 1) * CHUNK))


@njit(cache=True, parallel=True)
def jacobian_pose_batch(T_mount, T_after, Q, out):
    """:func:`jacobian_pose_rows` over all rows, threads over chunks."""
    B = Q.shape[0]
    for c in prange((B + CHUNK - 1) // CHUNK):
        jacobian_pose_rows(T_mount, T_after, Q, out, c * CHUNK, min(B, (c + 1) * CHUNK))


@njit(cache=True, parallel=True)
def jacobian_legs_batch(b, t, T_mount, T_after, Q, out):
    """:func:`jacobian_legs_rows` over all rows, threads over chunks."""
    B = Q.shape[0]
    for c in prange((B + CHUNK - 1) // CHUNK):
        jacobian_legs_rows(b, t, T_mount, T_after, Q, out, c * CHUNK, min(B, (c + 1) * CHUNK))


@njit(cache=True, parallel=True)
def from_legs_batch(b, t, L, Q, tol, max_iter, err, iters):
    """:func:`from_legs_rows` over all rows, threads over chunks."""
    B = Q.shape[0]
    for c in prange((B + CHUNK - 1) // CHUNK):
        from_legs_rows(b, t, L, Q, tol, max_iter, err, iters, c * CHUNK, min(B, (c + 1) * CHUNK))
