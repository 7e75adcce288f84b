"""The reduced IK problem in Numba: exact first derivatives and an interior-point solver.

Why this exists: a cold IK solve needs a few hundred evaluations of (f, grad f, g, dg/dz) once
the Hessian is counted, and on a CPU one jitted JAX evaluation costs 150-250 us of dispatch and
small-op overhead, where the same arithmetic written as scalar loops takes a few microseconds.
The derivatives here are exact closed forms (no finite differences); the JAX model
(:mod:`assemblers.ik`, autodiff) is the reference they are tested against to ~1e-12.

The problem (same as :mod:`assemblers.ik`): decision variables ``z`` (6(N-1),), the poses of
platforms 1..N-1; the last platform closes the chain onto the target exactly,
``Q = (z, q_N(z))``; objective ``f`` (the criterion) and inequalities ``g(Q) >= 0`` laid out as
:func:`assemblers.ik.constraint_values` (stroke low, stroke high, joint angles, pose bounds).

Derivatives, with ``J`` = J_Q (6, 6N) the world-frame tool-twist Jacobian:

* ``dq_N/dz = D = -J_N^-1 J_<N`` (the tool pose stays put), so ``df/dz = df/dz + D^T df/dq_N``.
* ``d J / d Q_c``: a parameter c of platform k moves everything above platform k's top frame
  rigidly with the twist ``(v_c, w_c) = J[:, c]``.  Column blocks above k rotate (``w_c x``),
  blocks below k see only the tool point move (``v_c``), and k's own block changes through
  ``E(rpy)`` and its lever (see :func:`_contract`).
* ``J_L = J_Q,i (dL_i/dq_i)^-1`` per platform; its derivative adds the change of the leg Jacobian.
* Legs and joint angles: unit-vector and angle derivatives in each platform's base frame.

Array arguments: ``P`` is the problem tuple built by :func:`problem` (geometry, target, weights,
limits); ``z`` (6(N-1),) m and rad; ``Q`` (6N,).  Randomness: none.  No I/O.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import _runtime  # noqa: F401  (sets NUMBA_CACHE_DIR to the user's cache)
from .fastkin import (
    forward,
    jacobian_pose,
    matmul4,
    pivot_rows,
    platform_legs,
    pose_transform,
    rigid_last_row,
    rpy_matrix,
)

CRIT_FN, CRIT_FN_LEGS, CRIT_DIST = 0, 1, 2  # ||W J_Q W||, ||W J_L W||, |Q - Q_ref|^2
# the closest pose to an unreachable target: |w_out * twist(T_target, FK(Q))|^2 over the whole
# stack pose (z = Q, (6N,); no elimination)
CRIT_CLOSEST = 3
CRIT_COND = 4  # condition number sigma_max / sigma_min of W_out J_Q W_in
RUNNING, CONVERGED, MAX_ITER, FAILED = 0, 1, 2, 3  # as assemblers.nlp
MARGIN = 1e-9  # m / rad inside every limit (as assemblers.ik._MARGIN)
_TINY = 1e-12  # below this sin(joint angle) the angle's gradient is taken as 0 (as safe_norm)


def problem(b, t, T_mount, T_after, T_target, w_out, w_in, Q_ref, limits):
    """The tuple every kernel here takes: geometry (``b``, ``t`` (N, 6, 3) m; ``T_mount``
    (4, 4); ``T_after`` (N, 4, 4)), ``T_target`` (4, 4) world_from_tool, weights ``w_out`` (6,)
    and ``w_in`` (6N,), ``Q_ref`` (6N,) (the reference of the distance criterion) and
    ``limits`` = (leg_min (N,) m, leg_max (N,) m, max_angle (N,) rad, lo_idx, lo_val, hi_idx,
    hi_val) as :func:`assemblers.ik._limits`."""
    f64 = [np.array(a, dtype=np.float64)  # writable copies: one Numba specialization
           for a in (b, t, T_mount, T_after, T_target, w_out, w_in, Q_ref)]
    leg_min, leg_max, max_angle, lo_idx, lo_val, hi_idx, hi_val = (np.asarray(a) for a in limits)
    return (*f64, np.asarray(leg_min, np.float64), np.asarray(leg_max, np.float64),
            np.asarray(max_angle, np.float64), np.asarray(lo_idx, np.int64),
            np.asarray(lo_val, np.float64), np.asarray(hi_idx, np.int64),
            np.asarray(hi_val, np.float64))


def n_constraints(P) -> int:
    return 24 * P[0].shape[0] + P[11].shape[0] + P[13].shape[0]


# ----------------------------------------------------------------------------- small pieces


@njit(cache=True, inline="always")
def _inv_rigid(T, out):
    """``out = T^-1`` for a rigid (4, 4) transform."""
    for i in range(3):
        for j in range(3):
            out[i, j] = T[j, i]
        out[i, 3] = -(T[0, i] * T[0, 3] + T[1, i] * T[1, 3] + T[2, i] * T[2, 3])
    rigid_last_row(out)


@njit(cache=True, inline="always")
def _to_pose(T, Q, off):
    """Pose (x, y, z, roll, pitch, yaw) of ``T`` into ``Q[off:off+6]`` (as lie.transform_to_pose)."""
    Q[off] = T[0, 3]
    Q[off + 1] = T[1, 3]
    Q[off + 2] = T[2, 3]
    Q[off + 3] = math.atan2(T[2, 1], T[2, 2])
    Q[off + 4] = math.atan2(-T[2, 0], math.sqrt(T[2, 1] ** 2 + T[2, 2] ** 2))
    Q[off + 5] = math.atan2(T[1, 0], T[0, 0])


@njit(cache=True)
def _invert6(A, out):
    """``out = A^-1`` (6, 6) by Gauss-Jordan with partial pivoting; False if singular."""
    n = A.shape[0]
    M = np.empty((n, 2 * n))
    for i in range(n):
        for j in range(n):
            M[i, j] = A[i, j]
            M[i, n + j] = 1.0 if i == j else 0.0
    for col in range(n):
        if pivot_rows(M, col) < 0:
            return False
        d = 1.0 / M[col, col]
        for j in range(2 * n):
            M[col, j] *= d
        for i in range(n):
            if i != col:
                fct = M[i, col]
                if fct != 0.0:
                    for j in range(2 * n):
                        M[i, j] -= fct * M[col, j]
    for i in range(n):
        for j in range(n):
            out[i, j] = M[i, n + j]
    return True


@njit(cache=True, inline="always")
def _times_block(A, i, B, transpose, out):
    """``out[:, 6i:6i+6] = A[:, 6i:6i+6] @ B`` (or ``@ B.T``); ``A``, ``out`` (6, 6N), ``B`` (6, 6)."""
    o = 6 * i
    for r in range(6):
        for c in range(6):
            s = 0.0
            for a in range(6):
                s += A[r, o + a] * (B[c, a] if transpose else B[a, c])
            out[r, o + c] = s


@njit(cache=True, inline="always")
def _E_and_dE(pitch, yaw, E, dE):
    """``E`` (3, 3): columns d(omega)/d(roll, pitch, yaw) (base frame); ``dE`` (3, 3, 3):
    ``dE[a]`` = dE/d(rpy_a) (roll: zero)."""
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    E[0, 0], E[1, 0], E[2, 0] = cp * cy, cp * sy, -sp
    E[0, 1], E[1, 1], E[2, 1] = -sy, cy, 0.0
    E[0, 2], E[1, 2], E[2, 2] = 0.0, 0.0, 1.0
    dE[:, :, :] = 0.0
    dE[1, 0, 0], dE[1, 1, 0], dE[1, 2, 0] = -sp * cy, -sp * sy, -cp
    dE[2, 0, 0], dE[2, 1, 0] = -cp * sy, cp * cy
    dE[2, 0, 1], dE[2, 1, 1] = -cy, -sy


@njit(cache=True)
def eliminate(P, z, Q):
    """``Q`` (6N,) = (z, q_N): the last platform closes the chain onto ``P``'s target."""
    T_mount, T_after, T_target = P[2], P[3], P[4]
    n = T_after.shape[0]
    n6 = 6 * (n - 1)
    A = T_mount.copy()
    T = np.empty((4, 4))
    B = np.empty((4, 4))
    for i in range(n - 1):
        pose_transform(z, 6 * i, T)
        matmul4(A, T, B)
        matmul4(B, T_after[i], A)
    _inv_rigid(A, B)
    matmul4(B, T_target, T)
    _inv_rigid(T_after[n - 1], B)
    matmul4(T, B, A)
    for k in range(n6):
        Q[k] = z[k]
    _to_pose(A, Q, n6)


# ----------------------------------------------------------------------------- evaluation


@njit(cache=True)
def _contract(K, J, Q, bases, tops, T_ee, gQ):
    """``gQ[c] += sum_ij K_ij dJ_ij/dQ_c`` for ``J`` = J_Q (6, 6N) at ``Q``; ``K`` (6, 6N)."""
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
        _E_and_dE(E_pitch, E_yaw, E, dE)
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
def evaluate(P, crit, z, Q, want, grad, g, G, full):
    """The reduced problem at ``z``: returns ``f``; fills ``Q`` (6N,) and ``g`` (m,) and, when
    ``want``, ``grad`` (n,) = df/dz and ``G`` (m, n) = dg/dz (exact).  With ``full``, ``Q``
    is an input (any stack pose, e.g. one off target; ``z`` unused) and only ``f`` and ``g`` are
    computed.  For CRIT_CLOSEST the variables are the whole stack pose: ``z`` (6N,) = ``Q``,
    ``grad`` (6N,), ``G`` (m, 6N), and ``w_out`` weighs the tool's error twist (its three
    rotation weights must be equal).  Returns NaN
    where the geometry breaks down (a singular leg Jacobian for ``fn_legs``, a zero-length
    leg)."""
    b, t, T_mount, T_after, w_out, w_in, Q_ref = P[0], P[1], P[2], P[3], P[5], P[6], P[7]
    leg_min, leg_max, max_angle, lo_idx, lo_val, hi_idx, hi_val = (P[8], P[9], P[10], P[11],
                                                                   P[12], P[13], P[14])
    n = b.shape[0]
    nq = 6 * n
    n6 = nq - 6
    closest = crit == CRIT_CLOSEST
    if full:
        want = False
    elif closest:
        for c in range(nq):
            Q[c] = z[c]
    else:
        eliminate(P, z, Q)
    # ---- per-platform legs, leg Jacobians and joint angles (each in its base frame)
    R = np.empty((3, 3))
    E = np.empty((3, 3))
    dE = np.empty((3, 3, 3))
    Jl = np.empty((n, 6, 6))
    V = np.empty((n, 6, 3))  # leg vectors
    Rt = np.empty((n, 6, 3))  # R t_k
    L = np.empty((n, 6))
    N_top = np.empty((n, 3))
    ang = np.empty((n, 6, 2))
    Es = np.empty((n, 3, 3))
    dEs = np.empty((n, 3, 3, 3))
    for i in range(n):
        o = 6 * i
        rpy_matrix(Q[o + 3], Q[o + 4], Q[o + 5], R)
        _E_and_dE(Q[o + 4], Q[o + 5], E, dE)
        Es[i] = E
        dEs[i] = dE
        nx, ny, nz = R[0, 2], R[1, 2], R[2, 2]
        N_top[i, 0], N_top[i, 1], N_top[i, 2] = nx, ny, nz
        for k in range(6):
            rx = R[0, 0] * t[i, k, 0] + R[0, 1] * t[i, k, 1] + R[0, 2] * t[i, k, 2]
            ry = R[1, 0] * t[i, k, 0] + R[1, 1] * t[i, k, 1] + R[1, 2] * t[i, k, 2]
            rz = R[2, 0] * t[i, k, 0] + R[2, 1] * t[i, k, 1] + R[2, 2] * t[i, k, 2]
            vx = Q[o] + rx - b[i, k, 0]
            vy = Q[o + 1] + ry - b[i, k, 1]
            vz = Q[o + 2] + rz - b[i, k, 2]
            Lk = math.sqrt(vx * vx + vy * vy + vz * vz)
            Rt[i, k, 0], Rt[i, k, 1], Rt[i, k, 2] = rx, ry, rz
            V[i, k, 0], V[i, k, 1], V[i, k, 2] = vx, vy, vz
            L[i, k] = Lk
            ux, uy, uz = vx / Lk, vy / Lk, vz / Lk
            cx = ry * uz - rz * uy
            cy = rz * ux - rx * uz
            cz = rx * uy - ry * ux
            Jl[i, k, 0], Jl[i, k, 1], Jl[i, k, 2] = ux, uy, uz
            for m in range(3):
                Jl[i, k, 3 + m] = cx * E[0, m] + cy * E[1, m] + cz * E[2, m]
            ang[i, k, 0] = math.atan2(math.sqrt(vx * vx + vy * vy), vz)
            sx = vy * nz - vz * ny
            sy = vz * nx - vx * nz
            sz = vx * ny - vy * nx
            ang[i, k, 1] = math.atan2(math.sqrt(sx * sx + sy * sy + sz * sz),
                                      vx * nx + vy * ny + vz * nz)
    # ---- constraints
    for i in range(n):
        for k in range(6):
            g[6 * i + k] = L[i, k] - leg_min[i] - MARGIN
            g[nq + 6 * i + k] = leg_max[i] - L[i, k] - MARGIN
            g[2 * nq + 12 * i + 2 * k] = max_angle[i] - ang[i, k, 0] - MARGIN
            g[2 * nq + 12 * i + 2 * k + 1] = max_angle[i] - ang[i, k, 1] - MARGIN
    r0 = 4 * nq
    for a in range(lo_idx.shape[0]):
        g[r0 + a] = Q[lo_idx[a]] - lo_val[a]
    r1 = r0 + lo_idx.shape[0]
    for a in range(hi_idx.shape[0]):
        g[r1 + a] = hi_val[a] - Q[hi_idx[a]]
    # ---- objective
    J = np.empty((6, nq))
    bases = np.empty((n, 4, 4))
    tops = np.empty((n, 4, 4))
    T_ee = np.empty((4, 4))
    tmp = np.empty((4, 4))
    Jinv = np.empty((n, 6, 6))
    X = np.empty((6, nq))
    e = np.empty(6)
    if crit == CRIT_DIST:
        f = 0.0
        for c in range(nq):
            d = Q[c] - Q_ref[c]
            f += d * d
    elif closest:
        jacobian_pose(T_mount, T_after, Q, J, bases, tops, T_ee, tmp)
        tool_twist(T_ee, P[4], e)
        f = 0.0
        for r in range(6):
            f += (w_out[r] * e[r]) ** 2
    elif crit == CRIT_COND:
        jacobian_pose(T_mount, T_after, Q, J, bases, tops, T_ee, tmp)
        for r in range(6):
            for c in range(nq):
                X[r, c] = w_out[r] * J[r, c] * w_in[c]
        U, S, Vt = np.linalg.svd(X, full_matrices=False)  # (6, 6), (6,), (6, 6N)
        f = S[0] / S[5]
    else:
        jacobian_pose(T_mount, T_after, Q, J, bases, tops, T_ee, tmp)
        if crit == CRIT_FN_LEGS:
            for i in range(n):
                if not _invert6(Jl[i], Jinv[i]):
                    return np.nan
                _times_block(J, i, Jinv[i], False, X)
        else:
            X[:, :] = J
        f = 0.0
        for r in range(6):
            for c in range(nq):
                mrc = w_out[r] * X[r, c] * w_in[c]
                f += mrc * mrc
        f = math.sqrt(f)
    if not want:
        return f
    # ---- d f / d Q
    gQ = np.zeros(nq)
    if crit == CRIT_DIST:
        for c in range(nq):
            gQ[c] = 2.0 * (Q[c] - Q_ref[c])
    elif crit == CRIT_COND:
        # d sigma_i = u_i' dM v_i (simple singular values), M = W_out J W_in
        Gf = np.empty((6, nq))
        a1 = 1.0 / S[5]
        a2 = S[0] / (S[5] * S[5])
        for r in range(6):
            for c in range(nq):
                Gf[r, c] = w_out[r] * w_in[c] * (a1 * U[r, 0] * Vt[0, c] - a2 * U[r, 5] * Vt[5, c])
        _contract(Gf, J, Q, bases, tops, T_ee, gQ)
    elif closest:
        # d e = [I 0; 0 Jl^-1(phi)] J_Q dQ (phi = e_rot, a left perturbation), and
        # phi^T Jl^-1(phi) = phi^T (Jl^-1 = I - hat(phi)/2 + k hat(phi)^2): with equal
        # rotation weights (as built by assemblers.ik._closest_problem) d|phi|^2 = 2 phi . omega
        a = np.empty(6)
        for r in range(6):
            a[r] = 2.0 * w_out[r] * w_out[r] * e[r]
        for c in range(nq):
            v = 0.0
            for r in range(6):
                v += a[r] * J[r, c]
            gQ[c] = v
    else:
        Gf = np.empty((6, nq))  # d f / d X
        for r in range(6):
            for c in range(nq):
                wgt = w_out[r] * w_in[c]
                Gf[r, c] = wgt * wgt * X[r, c] / f if f > 0.0 else 0.0
        if crit == CRIT_FN:
            _contract(Gf, J, Q, bases, tops, T_ee, gQ)
        else:
            Hm = np.empty((6, nq))  # G_i Jinv_i^T: what multiplies d J_Q
            for i in range(n):
                _times_block(Gf, i, Jinv[i], True, Hm)
            _contract(Hm, J, Q, bases, tops, T_ee, gQ)
            Pm = np.empty((6, 6))  # X_i^T H_i: what multiplies d Jleg_i
            drow = np.empty(6)
            for i in range(n):
                for r in range(6):
                    for c in range(6):
                        s = 0.0
                        for a in range(6):
                            s += X[a, 6 * i + r] * Hm[a, 6 * i + c]
                        Pm[r, c] = s
                for j in range(6):
                    acc = 0.0
                    for k in range(6):
                        _leg_row_derivative(V[i, k], Rt[i, k], L[i, k], Es[i], dEs[i], j, drow)
                        for c in range(6):
                            acc += Pm[k, c] * drow[c]
                    gQ[6 * i + j] -= acc
    # ---- d q_N / d z = -J_N^-1 J_<N
    D = np.empty((6, max(n6, 1)))
    n_put, n_free = (n + 1, nq) if closest else (n, n6)  # CRIT_CLOSEST: every column direct
    if closest:
        for c in range(nq):
            grad[c] = gQ[c]
    elif n > 1:
        if crit == CRIT_DIST:
            jacobian_pose(T_mount, T_after, Q, J, bases, tops, T_ee, tmp)
        JN = np.empty((6, 6))
        for r in range(6):
            for c in range(6):
                JN[r, c] = J[r, n6 + c]
        JNi = np.empty((6, 6))
        if not _invert6(JN, JNi):
            return np.nan
        for r in range(6):
            for c in range(n6):
                s = 0.0
                for a in range(6):
                    s -= JNi[r, a] * J[a, c]
                D[r, c] = s
    if not closest:
        for c in range(n6):
            s = gQ[c]
            for r in range(6):
                s += D[r, c] * gQ[n6 + r]
            grad[c] = s
    # ---- d g / d z
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
            # base joint angle (normal e_z): da = -(n - u u_z) . dv / s, s = |v x e_z|
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
    return f


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


@njit(cache=True)
def _leg_row_derivative(v, rt, Lk, E, dE, j, out):
    """d/dq_j of the leg Jacobian's row ``[u, (Rt x u)^T E]`` (all in the platform's base frame):
    ``v`` leg vector, ``rt`` = R t_k, ``Lk`` = |v|, into ``out`` (6,)."""
    ux, uy, uz = v[0] / Lk, v[1] / Lk, v[2] / Lk
    rx, ry, rz = rt[0], rt[1], rt[2]
    if j < 3:
        drx, dry, drz = 0.0, 0.0, 0.0
        dvx, dvy, dvz = 1.0 if j == 0 else 0.0, 1.0 if j == 1 else 0.0, 1.0 if j == 2 else 0.0
    else:
        ex, ey, ez = E[0, j - 3], E[1, j - 3], E[2, j - 3]
        drx, dry, drz = ey * rz - ez * ry, ez * rx - ex * rz, ex * ry - ey * rx
        dvx, dvy, dvz = drx, dry, drz
    ud = ux * dvx + uy * dvy + uz * dvz
    dux, duy, duz = (dvx - ux * ud) / Lk, (dvy - uy * ud) / Lk, (dvz - uz * ud) / Lk
    cx, cy, cz = ry * uz - rz * uy, rz * ux - rx * uz, rx * uy - ry * ux
    dcx = dry * uz - drz * uy + ry * duz - rz * duy
    dcy = drz * ux - drx * uz + rz * dux - rx * duz
    dcz = drx * uy - dry * ux + rx * duy - ry * dux
    out[0], out[1], out[2] = dux, duy, duz
    for m in range(3):
        s = dcx * E[0, m] + dcy * E[1, m] + dcz * E[2, m]
        if j >= 3:
            s += cx * dE[j - 3, 0, m] + cy * dE[j - 3, 1, m] + cz * dE[j - 3, 2, m]
        out[3 + m] = s


# ----------------------------------------------------------------------------- even split, report


@njit(cache=True)
def so3_log(R, w):
    """Rotation vector of ``R`` (3, 3) into ``w`` (3,), angle in [0, pi] (as lie.so3_log)."""
    vx, vy, vz = R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]
    c = min(1.0, max(-1.0, (R[0, 0] + R[1, 1] + R[2, 2] - 1.0) / 2.0))
    s = math.sqrt(vx * vx + vy * vy + vz * vz) / 2.0
    theta = math.atan2(s, c)
    if c >= -0.99:
        fct = 0.5 + theta * theta / 12.0 if theta < 1e-6 else theta / (2.0 * s)
        w[0], w[1], w[2] = fct * vx, fct * vy, fct * vz
        return
    # near pi: the axis from the symmetric part R + R^T = 2 c I + 2 (1 - c) a a^T
    B = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            B[i, j] = (R[i, j] + R[j, i]) / 2.0 - (c if i == j else 0.0)
    i = 0
    for j in range(1, 3):
        if B[j, j] > B[i, i]:
            i = j
    d = math.sqrt(max(B[i, i], 1e-30))
    ax, ay, az = B[0, i] / d, B[1, i] / d, B[2, i] / d
    nrm = max(math.sqrt(ax * ax + ay * ay + az * az), 1e-30)
    sgn = -1.0 if ax * vx + ay * vy + az * vz < 0.0 else 1.0
    w[0], w[1], w[2] = sgn * theta * ax / nrm, sgn * theta * ay / nrm, sgn * theta * az / nrm


@njit(cache=True)
def _so3_exp(w, R):
    """Rodrigues: rotation vector ``w`` (3,) -> ``R`` (3, 3)."""
    th2 = w[0] * w[0] + w[1] * w[1] + w[2] * w[2]
    if th2 < 1e-16:
        a, b = 1.0 - th2 / 6.0, 0.5 - th2 / 24.0
    else:
        th = math.sqrt(th2)
        a, b = math.sin(th) / th, (1.0 - math.cos(th)) / th2
    K = np.array([[0.0, -w[2], w[1]], [w[2], 0.0, -w[0]], [-w[1], w[0], 0.0]])
    KK = K @ K
    for i in range(3):
        for j in range(3):
            R[i, j] = (1.0 if i == j else 0.0) + a * K[i, j] + b * KK[i, j]


@njit(cache=True)
def even_split(P, Q_home, Q):
    """The ``even`` pose before repair into ``Q`` (6N,) (as :func:`assemblers.ik.even_split`):
    the tool motion from home (``Q_home`` (6N,)) to the target, in the home tool frame, split
    into N equal parts (translation / N, rotation vector / N) applied by platforms 1..N-1; the
    last platform closes the chain."""
    T_mount, T_after, T_target = P[2], P[3], P[4]
    n = T_after.shape[0]
    work = np.empty((2, 4, 4))
    T_home = np.empty((4, 4))
    forward(T_mount, T_after, Q_home, T_home, work)
    Ti = np.empty((4, 4))
    _inv_rigid(T_home, Ti)
    D = np.empty((4, 4))
    matmul4(Ti, T_target, D)
    w = np.empty(3)
    so3_log(D[0:3, 0:3].copy(), w)
    for a in range(3):
        w[a] /= n
    step = np.eye(4)
    Rs = np.empty((3, 3))
    _so3_exp(w, Rs)
    step[0:3, 0:3] = Rs
    for a in range(3):
        step[a, 3] = D[a, 3] / n
    z = np.empty(6 * (n - 1))
    Tq = np.empty((4, 4))
    for i in range(n - 1):
        pose_transform(Q_home, 6 * i, Tq)
        matmul4(Tq, step, Ti)
        _to_pose(Ti, z, 6 * i)
    eliminate(P, z, Q)


@njit(cache=True)
def report(P, Q, legs, twist):
    """What a result reports at a full stack pose ``Q`` (6N,), on target or not, besides the
    cost and limits (``evaluate(..., full=True)``): fills ``legs`` (N, 6) m and ``twist`` (6,),
    the tool's error twist against the target (position m, rotation vector rad; world frame).
    (Kept apart from :func:`evaluate`: every Numba caller of it compiles it again.)"""
    b, t, T_mount, T_after, T_target = P[0], P[1], P[2], P[3], P[4]
    n = b.shape[0]
    R = np.empty((3, 3))
    for i in range(n):
        platform_legs(b[i], t[i], Q, 6 * i, legs[i], R)
    T = np.empty((4, 4))
    forward(T_mount, T_after, Q, T, np.empty((2, 4, 4)))
    tool_twist(T, T_target, twist)


@njit(cache=True)
def tool_twist(T, T_target, twist):
    """Error twist (6,) of the tool pose ``T`` (4, 4) against ``T_target`` (4, 4): position
    difference (m, world) and the rotation vector of ``R R_target^T`` (rad, world), as
    :func:`assemblers.lie.twist_between`."""
    for a in range(3):
        twist[a] = T[a, 3] - T_target[a, 3]
    Rd = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            Rd[i, j] = T[i, 0] * T_target[j, 0] + T[i, 1] * T_target[j, 1] + T[i, 2] * T_target[j, 2]
    w = np.empty(3)
    so3_log(Rd, w)
    twist[3], twist[4], twist[5] = w[0], w[1], w[2]


# ----------------------------------------------------------------------------- interior point


@njit(cache=True)
def cholesky(M, L, floor):
    """Lower Cholesky factor ``L`` (n, n) of a symmetric ``M`` (n, n); False when a squared
    pivot is not above ``floor`` (not safely positive definite)."""
    n = M.shape[0]
    L[:, :] = 0.0
    for j in range(n):
        s = M[j, j]
        for k in range(j):
            s -= L[j, k] * L[j, k]
        if not (s > floor):
            return False
        L[j, j] = math.sqrt(s)
        for i in range(j + 1, n):
            s = M[i, j]
            for k in range(j):
                s -= L[i, k] * L[j, k]
            L[i, j] = s / L[j, j]
    return True


@njit(cache=True)
def lower_solve(L, v, out):
    """``out = L^-1 v`` for lower-triangular ``L`` (n, n)."""
    n = L.shape[0]
    for i in range(n):
        s = v[i]
        for k in range(i):
            s -= L[i, k] * out[k]
        out[i] = s / L[i, i]


@njit(cache=True)
def upper_solve(L, v, out):
    """``out = L^-T v`` for lower-triangular ``L`` (n, n); ``out`` may be ``v`` (in place).
    With ``L = R.T`` it solves with the upper-triangular ``R``."""
    n = L.shape[0]
    for i in range(n - 1, -1, -1):
        s = v[i]
        for k in range(i + 1, n):
            s -= L[k, i] * out[k]
        out[i] = s / L[i, i]


@njit(cache=True)
def _cholesky_solve(M, rhs, x, floor):
    """Solve ``M x = rhs`` for a symmetric positive definite ``M`` (n, n); False (x untouched)
    when a squared pivot is not above ``floor`` (not safely positive definite)."""
    n = M.shape[0]
    L = np.empty((n, n))
    if not cholesky(M, L, floor):
        return False
    y = np.empty(n)
    lower_solve(L, rhs, y)
    upper_solve(L, y, x)
    return True


@njit(cache=True)
def _kkt_error(grad, G, g, s, lam, mu):
    """Scaled KKT error of the barrier problem (as :func:`assemblers.nlp.kkt_error`)."""
    m, n = G.shape
    scale = 0.0
    for i in range(m):
        scale += abs(lam[i])
    scale = max(1.0, scale / m) if m > 0 else 1.0
    stat = 0.0
    for c in range(n):
        r = grad[c]
        for i in range(m):
            r -= G[i, c] * lam[i]
        stat = max(stat, abs(r))
    err = stat / scale
    for i in range(m):
        err = max(err, abs(g[i] - s[i]), abs(s[i] * lam[i] - mu) / scale)
    return err


@njit(cache=True)
def _lagrangian_gradient(grad, G, lam, out):
    m, n = G.shape
    for c in range(n):
        r = grad[c]
        for i in range(m):
            r -= G[i, c] * lam[i]
        out[c] = r


HESS_FD, HESS_FROZEN = 0, 1  # Lagrangian Hessian of interior_point


@njit(cache=True, inline="always")
def _ev(P, crit, scale, z, Qw, want, grad, g, G):
    """:func:`evaluate` with the objective (and gradient) times ``scale``."""
    f = evaluate(P, crit, z, Qw, want, grad, g, G, False) * scale
    if want:
        for a in range(z.shape[0]):
            grad[a] *= scale
    return f


@njit(cache=True, inline="always")
def start(P, crit, x0, m, f_scale, x):
    """The start of a solver: ``x = x0`` evaluated, the objective scale (``f_scale``, or
    ``1 / |f(x0)|`` when 0, or 1 when f(x0) is ~0) applied to the gradient, and the buffers.
    Returns ``(f(x0) unscaled, scale, Qw (n + 6,), grad (n,), g (m,), G (m, n))`` filled at
    ``x0`` and a second ``(grad, g, G)`` for trial points."""
    n = x0.shape[0]
    Qw = np.empty(n + 6)
    grad = np.empty(n)
    g = np.empty(m)
    G = np.empty((m, n))
    x[:] = x0
    f_raw = evaluate(P, crit, x, Qw, True, grad, g, G, False)
    scale = f_scale if f_scale > 0.0 else (1.0 / abs(f_raw) if abs(f_raw) > 1e-12 else 1.0)
    if np.isfinite(f_raw):
        for a in range(n):
            grad[a] *= scale
    return f_raw, scale, Qw, grad, g, G, np.empty(n), np.empty(m), np.empty((m, n))


@njit(cache=True)
def interior_point(P, crit, x0, lam0, mu0, cold, H0, hess, tol, max_iter, s_push, f_scale,
                   x, s, lam, H):
    """Primal-dual interior-point solve of the reduced problem (the algorithm of
    :mod:`assemblers.nlp`: IPOPT's monotone barrier update, fraction to boundary, Armijo
    backtracking on ``f - mu sum log s + nu |g - s|_1``), with exact first derivatives from
    :func:`evaluate` and the Lagrangian Hessian ``hess``: HESS_FD (forward differences of the
    exact Lagrangian gradient, n extra gradients per step) or HESS_FROZEN (``H0`` at every step:
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
        # complementarity asks for; the rest start at g (see assemblers.ik._ipm)
        for i in range(m):
            lam[i] = lam0[i]
            lo = mu0 / max(lam0[i], mu0)
            s[i] = lo if lam0[i] > 1e-6 else max(g[i], lo)
    if hess == HESS_FROZEN:
        H[:, :] = H0
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
        err = _kkt_error(grad, G, g, s, lam, 0.0)
        if not np.isfinite(err):
            return FAILED, k, err, f_raw
        if err <= tol:
            return CONVERGED, k, err, f_raw
        if k >= max_iter:
            return MAX_ITER, k, err, f_raw
        # ---- Lagrangian Hessian
        if hess == HESS_FD:
            _lagrangian_gradient(grad, G, lam, dL)
            H[:, :] = 0.0
            for c in range(nx):
                h = 1.5e-8 * max(1.0, abs(x[c]))
                xt[:] = x
                xt[c] += h
                _ev(P, crit, scale, xt, Qw, True, grad2, g2, G2)
                _lagrangian_gradient(grad2, G2, lam, dL2)
                for a in range(nx):
                    H[a, c] = (dL2[a] - dL[a]) / h
            for a in range(nx):
                for c in range(a + 1, nx):
                    v = 0.5 * (H[a, c] + H[c, a])
                    H[a, c] = v
                    H[c, a] = v
        # ---- barrier update (IPOPT's monotone rule)
        while mu > mu_min and _kkt_error(grad, G, g, s, lam, mu) <= kappa_eps * mu:
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
        if not _cholesky_solve(M, rhs, dx, floor):
            # indefinite: shift the smallest eigenvalue up
            # (to |smallest| eigenvalue, not to the floor: a nearly singular M gives huge steps)
            if not np.all(np.isfinite(M)):
                return FAILED, k, err, f_raw
            ev = np.linalg.eigvalsh(M)
            shift = max(0.0, floor - ev[0]) + max(1e-4 * hmax, -ev[0])
            for a in range(nx):
                M[a, a] += shift
            if not _cholesky_solve(M, rhs, dx, 0.0):
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
            phi = _ev(P, crit, scale, xt, Qw, False, grad2, g2, G2)
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
        f_cur = _ev(P, crit, scale, x, Qw, True, grad, g, G)
        if not np.isfinite(f_cur):
            return FAILED, k, np.inf, f_raw
