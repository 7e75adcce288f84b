"""Lane kernels of the Monte Carlo (Numba): blocks of :data:`KB` samples, one per lane.

Samples are processed in blocks of ``KB`` = 64 lanes laid out as a structure of arrays (row
``r`` of a quantity is ``X[r * KB : (r + 1) * KB]``): the fixed trip count and the separate input
and output rows let LLVM vectorize every loop over lanes (AVX-512: 8 samples per instruction).

Twins (the only lane copies of the kinematics; each is checked against the JAX reference in
``tests/twins/test_lanes.py``):

* :func:`forward_lanes`, of ``assemblers.kinematics.kernels.forward`` (stack FK) with
  :func:`rpy_to_matrix_near`, of ``assemblers.geometry.kernels.rpy_to_matrix``: the perturbed
  angles' cosines and sines from the nominal ones by the addition theorems and Taylor
  polynomials of the angle error (no libm calls in the loop);
* :func:`twist_between_lanes`, of ``assemblers.geometry.kernels.twist_between``: the
  small-angle branch of the log only (the series of ``asin(s) / s``, no ``atan2``);
* the leg residuals inside :func:`legs_newton_lanes` (of ``kinematics.kernels.platform_legs``).

Lanes outside a twin's range are flagged (``big``, ``fb``) and the caller recomputes them with
the scalar kernels of :mod:`assemblers.kinematics.kernels` / :mod:`assemblers.geometry.kernels`.
Why the twins exist at all, measured (``python benchmarks/montecarlo.py --twins``: random
numbers, FK, twist and statistics of 256 000 pose-noise samples on trio, CPU time of one thread,
best of 7 interleaved repeats): 16 ms with the twins, 85 ms with the shared scalar kernels
(``kinematics.kernels.forward`` + ``geometry.kernels.twist_between``) lane by lane, 5.3 times
as much: the scalar kernels' per-sample libm calls (sin, cos, atan2) and their row-by-row loops
do not vectorize over samples.
"""

from __future__ import annotations

import math

from numba import njit

from assemblers import _runtime  # noqa: F401  (NUMBA_CACHE_DIR in the user's cache)

from .stats import F_MAXP, F_MAXR, F_S1, F_S2, F_SHIFT, F_SW, F_SWW, F_W0

KB = 64  # lanes per block

# asin(s) / s = sum_k c_k s^(2k): used below s = 0.03 (truncation < 1e-20 relative)
_AS1, _AS2, _AS3, _AS4, _AS5 = 1.0 / 6.0, 3.0 / 40.0, 5.0 / 112.0, 35.0 / 1152.0, 63.0 / 2816.0
SMALL_S2 = 0.0009  # s^2 (s = sin of the angle) below which, with cos > 0, the series is used
_SIN = (-1.0 / 6.0, 1.0 / 120.0, -1.0 / 5040.0, 1.0 / 362880.0, -1.0 / 39916800.0)
_COS = (-0.5, 1.0 / 24.0, -1.0 / 720.0, 1.0 / 40320.0, -1.0 / 3628800.0, 1.0 / 479001600.0)
POLY_MAX = 0.125  # |angle error| up to which the Taylor polynomials are exact to rounding


@njit(cache=True, inline="always")
def rpy_to_matrix_near(cr0, sr0, cp0, sp0, cy0, sy0, dr, dp, dy):
    """Twin of ``geometry.kernels.rpy_to_matrix``: ``R = Rz(yaw) Ry(pitch) Rx(roll)``, a
    row-major 9-tuple, at the nominal angles (their cosines and sines given) plus the changes
    ``dr, dp, dy`` (rad): the perturbed cosines and sines from the addition theorems with Taylor
    polynomials of the change (degree 11 / 12: exact to rounding for ``|change| <= POLY_MAX``)."""
    s1, s2, s3, s4, s5 = _SIN
    c1, c2, c3, c4, c5, c6 = _COS
    x = dr * dr
    sn = dr * (1.0 + x * (s1 + x * (s2 + x * (s3 + x * (s4 + x * s5)))))
    cs = 1.0 + x * (c1 + x * (c2 + x * (c3 + x * (c4 + x * (c5 + x * c6)))))
    cr = cr0 * cs - sr0 * sn
    sr = sr0 * cs + cr0 * sn
    x = dp * dp
    sn = dp * (1.0 + x * (s1 + x * (s2 + x * (s3 + x * (s4 + x * s5)))))
    cs = 1.0 + x * (c1 + x * (c2 + x * (c3 + x * (c4 + x * (c5 + x * c6)))))
    cp = cp0 * cs - sp0 * sn
    sp = sp0 * cs + cp0 * sn
    x = dy * dy
    sn = dy * (1.0 + x * (s1 + x * (s2 + x * (s3 + x * (s4 + x * s5)))))
    cs = 1.0 + x * (c1 + x * (c2 + x * (c3 + x * (c4 + x * (c5 + x * c6)))))
    cy = cy0 * cs - sy0 * sn
    sy = sy0 * cs + cy0 * sn
    return (cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr,
            sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr,
            -sp, cp * sr, cp * cr)


@njit(cache=True, inline="always")
def lane_3x4(A, k):
    """Lane ``k`` of rows (12 KB,): the top 3 x 4 of a transform, row-major 12-tuple."""
    return (A[k], A[KB + k], A[2 * KB + k], A[3 * KB + k],
            A[4 * KB + k], A[5 * KB + k], A[6 * KB + k], A[7 * KB + k],
            A[8 * KB + k], A[9 * KB + k], A[10 * KB + k], A[11 * KB + k])


@njit(cache=True, error_model="numpy")
def forward_lanes(T_mount, T_after, Q, trig, pose_sig, Zf, zoff, A, big):
    """Exact forward kinematics of ``Q + pose_sig * z`` for KB lanes: ``A[r * KB + k]`` gets
    row-major entry ``r`` (0..11) of the top 3 x 4 of world_from_tool of lane ``k``.

    Twin of ``assemblers.kinematics.kernels.forward``: the same product
    (``T_mount T(q_1) T_after_1 ... T(q_N) T_after_N``, docs/conventions.md), over lanes so LLVM
    vectorizes it: ``trig`` (N, 6) holds (cos, sin) of the nominal roll, pitch and yaw, and the
    perturbed angles' cosines and sines come from the addition theorems with Taylor polynomials
    of the angle error (degree 11 / 12: truncation below 1e-21 for ``|d| <= 1/8``).  Lanes with
    a larger angle error get ``big[k] = 1`` and must be recomputed with ``kernels.forward``.
    ``Zf``: random numbers, pose rows from ``zoff``; ``pose_sig`` (6N,) std (m, rad) (the
    pose change of lane ``k`` is ``pose_sig * Zf[(zoff + j) * KB + k]``); ``A`` (12 KB,);
    ``big`` (KB,) uint8.  ``Q`` (6N,) the nominal pose; ``trig`` (N, 6) its angles' (cos, sin).
    """
    for r in range(12):
        v = T_mount[r // 4, r % 4]
        for k in range(KB):
            A[r * KB + k] = v
    for k in range(KB):
        big[k] = 0
    for i in range(T_after.shape[0]):
        o = 6 * i
        cr0, sr0, cp0, sp0, cy0, sy0 = trig[i, 0], trig[i, 1], trig[i, 2], trig[i, 3], \
            trig[i, 4], trig[i, 5]
        g0, g1, g2 = pose_sig[o], pose_sig[o + 1], pose_sig[o + 2]
        g3, g4, g5 = pose_sig[o + 3], pose_sig[o + 4], pose_sig[o + 5]
        q0, q1, q2 = Q[o], Q[o + 1], Q[o + 2]
        F = T_after[i]
        f00, f01, f02, f03 = F[0, 0], F[0, 1], F[0, 2], F[0, 3]
        f10, f11, f12, f13 = F[1, 0], F[1, 1], F[1, 2], F[1, 3]
        f20, f21, f22, f23 = F[2, 0], F[2, 1], F[2, 2], F[2, 3]
        zb = (zoff + o) * KB
        for k in range(KB):
            dr = g3 * Zf[zb + 3 * KB + k]
            dp = g4 * Zf[zb + 4 * KB + k]
            dy = g5 * Zf[zb + 5 * KB + k]
            if max(abs(dr), abs(dp), abs(dy)) > POLY_MAX:
                big[k] = 1
            # platform transform B: R = Rz(yaw) Ry(pitch) Rx(roll), p (rpy_to_matrix_near)
            b00, b01, b02, b10, b11, b12, b20, b21, b22 = rpy_to_matrix_near(
                cr0, sr0, cp0, sp0, cy0, sy0, dr, dp, dy)
            b03 = q0 + g0 * Zf[zb + k]
            b13 = q1 + g1 * Zf[zb + KB + k]
            b23 = q2 + g2 * Zf[zb + 2 * KB + k]
            (a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22,
             a23) = lane_3x4(A, k)
            # C = A B
            c00 = a00 * b00 + a01 * b10 + a02 * b20
            c01 = a00 * b01 + a01 * b11 + a02 * b21
            c02 = a00 * b02 + a01 * b12 + a02 * b22
            c03 = a00 * b03 + a01 * b13 + a02 * b23 + a03
            c10 = a10 * b00 + a11 * b10 + a12 * b20
            c11 = a10 * b01 + a11 * b11 + a12 * b21
            c12 = a10 * b02 + a11 * b12 + a12 * b22
            c13 = a10 * b03 + a11 * b13 + a12 * b23 + a13
            c20 = a20 * b00 + a21 * b10 + a22 * b20
            c21 = a20 * b01 + a21 * b11 + a22 * b21
            c22 = a20 * b02 + a21 * b12 + a22 * b22
            c23 = a20 * b03 + a21 * b13 + a22 * b23 + a23
            # A = C T_after[i]
            A[k] = c00 * f00 + c01 * f10 + c02 * f20
            A[KB + k] = c00 * f01 + c01 * f11 + c02 * f21
            A[2 * KB + k] = c00 * f02 + c01 * f12 + c02 * f22
            A[3 * KB + k] = c00 * f03 + c01 * f13 + c02 * f23 + c03
            A[4 * KB + k] = c10 * f00 + c11 * f10 + c12 * f20
            A[5 * KB + k] = c10 * f01 + c11 * f11 + c12 * f21
            A[6 * KB + k] = c10 * f02 + c11 * f12 + c12 * f22
            A[7 * KB + k] = c10 * f03 + c11 * f13 + c12 * f23 + c13
            A[8 * KB + k] = c20 * f00 + c21 * f10 + c22 * f20
            A[9 * KB + k] = c20 * f01 + c21 * f11 + c22 * f21
            A[10 * KB + k] = c20 * f02 + c21 * f12 + c22 * f22
            A[11 * KB + k] = c20 * f03 + c21 * f13 + c22 * f23 + c23


@njit(cache=True, error_model="numpy")
def twist_between_lanes(A, T_nom, E, big):
    """Twin of ``geometry.kernels.twist_between`` (small angles): error twists of KB lanes of
    :func:`forward_lanes` output ``A`` (12 KB,) against ``T_nom`` (4, 4) into ``E[r * KB + k]``
    (r = 0..5: dp m, rotation vector of ``R_A R_nom^T`` rad; world frame).

    With ``v = vee(R - R^T) = 2 sin(theta) a`` and ``s = |v| / 2``: ``w = v asin(s) / (2 s)``
    with the series of ``asin(s) / s`` (finite and exact at ``s = 0``), valid for ``c > 0`` and
    ``s^2 < SMALL_S2`` (about 1.7 degrees: nearly every Monte Carlo sample); lanes outside get
    ``big[k] = 1`` and are redone with ``geometry.kernels.twist_between``."""
    n00, n01, n02, n03 = T_nom[0, 0], T_nom[0, 1], T_nom[0, 2], T_nom[0, 3]
    n10, n11, n12, n13 = T_nom[1, 0], T_nom[1, 1], T_nom[1, 2], T_nom[1, 3]
    n20, n21, n22, n23 = T_nom[2, 0], T_nom[2, 1], T_nom[2, 2], T_nom[2, 3]
    for k in range(KB):
        (a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22,
         a23) = lane_3x4(A, k)
        # R = R_A R_nom^T
        r00 = a00 * n00 + a01 * n01 + a02 * n02
        r11 = a10 * n10 + a11 * n11 + a12 * n12
        r22 = a20 * n20 + a21 * n21 + a22 * n22
        r01 = a00 * n10 + a01 * n11 + a02 * n12
        r10 = a10 * n00 + a11 * n01 + a12 * n02
        r02 = a00 * n20 + a01 * n21 + a02 * n22
        r20 = a20 * n00 + a21 * n01 + a22 * n02
        r12 = a10 * n20 + a11 * n21 + a12 * n22
        r21 = a20 * n10 + a21 * n11 + a22 * n12
        vx = r21 - r12
        vy = r02 - r20
        vz = r10 - r01
        c = 0.5 * (r00 + r11 + r22 - 1.0)
        s2 = 0.25 * (vx * vx + vy * vy + vz * vz)
        f = 0.5 * (1.0 + s2 * (_AS1 + s2 * (_AS2 + s2 * (_AS3 + s2 * (_AS4 + s2 * _AS5)))))
        E[k] = a03 - n03
        E[KB + k] = a13 - n13
        E[2 * KB + k] = a23 - n23
        E[3 * KB + k] = f * vx
        E[4 * KB + k] = f * vy
        E[5 * KB + k] = f * vz
        if not (c > 0.0 and s2 < SMALL_S2):
            big[k] = 1


CHORD_ITERS = 12  # chord steps of :func:`legs_newton_lanes` before a lane goes to scalar Newton


@njit(cache=True, error_model="numpy")
def legs_newton_lanes(b, t, Q, trig, L_nom, Jinv, leg_sig, Zf, tol, max_it, D, res, act, X, fb):
    """Actuator noise for KB lanes: every platform's pose recovered from its perturbed legs by a
    chord-Newton iteration vectorized over lanes (structure of arrays, rows of KB doubles).

    Lane ``k``, platform ``i``: commanded legs ``L_nom[i] + leg_sig * z`` with ``z`` the rows
    ``6 i .. 6 i + 5`` of ``Zf``.  From the nominal pose, ``d <- d - Jinv[i] r`` with ``r`` the
    leg residual (m) and ``Jinv[i]`` the inverse of ``dL/dq`` at the nominal pose (fixed: chord
    method; for 0.1 mm leg noise the residual falls by about 1e-3 a step, 3 to 4 steps to 1e-12
    m).  The legs come from the exact geometry (``|p + R t_j - b_j|``: a lane twin of
    ``kinematics.kernels.platform_legs``), the perturbed angles' cosines and sines from
    :func:`rpy_to_matrix_near`.  A lane stops moving once its largest ``|r| <= tol``, so its result does
    not depend on the other lanes of the block.

    Outputs: ``D[(6 i + c) * KB + k]`` the pose change ``q_i,c - Q_i,c`` (m, rad); ``fb[k] = 1``
    where lane ``k`` did not converge within ``max_it`` steps or an angle moved by more than
    the polynomials' range (NaN included): the caller redoes those lanes with the scalar,
    backtracking Newton (``kinematics.kernels.from_legs_platform``).  Scratch: ``res`` (6 KB), ``act`` (KB),
    ``X`` (13 KB).  ``b``/``t`` (N, 6, 3) m; ``Q`` (6N,); ``trig`` (N, 6) cos/sin of the
    nominal angles; ``L_nom`` (N, 6) m; ``Jinv`` (N, 6, 6).
    """
    for k in range(KB):
        fb[k] = 0
    for i in range(b.shape[0]):
        o = 6 * i
        zb = o * KB
        for j in range(6):
            for k in range(KB):
                res[j * KB + k] = -leg_sig * Zf[zb + j * KB + k]
                D[(o + j) * KB + k] = 0.0
        for k in range(KB):
            act[k] = 1.0
        cr0, sr0, cp0, sp0, cy0, sy0 = trig[i, 0], trig[i, 1], trig[i, 2], trig[i, 3], \
            trig[i, 4], trig[i, 5]
        q0, q1, q2 = Q[o], Q[o + 1], Q[o + 2]
        J = Jinv[i]
        for _ in range(max_it):
            # chord step and the new pose's p (rows 0-2) and R (rows 3-11, row-major)
            for k in range(KB):
                a = act[k]
                r0, r1, r2 = res[k], res[KB + k], res[2 * KB + k]
                r3, r4, r5 = res[3 * KB + k], res[4 * KB + k], res[5 * KB + k]
                dx = D[o * KB + k] - a * (J[0, 0] * r0 + J[0, 1] * r1 + J[0, 2] * r2
                                          + J[0, 3] * r3 + J[0, 4] * r4 + J[0, 5] * r5)
                dyy = D[(o + 1) * KB + k] - a * (J[1, 0] * r0 + J[1, 1] * r1 + J[1, 2] * r2
                                                 + J[1, 3] * r3 + J[1, 4] * r4 + J[1, 5] * r5)
                dz = D[(o + 2) * KB + k] - a * (J[2, 0] * r0 + J[2, 1] * r1 + J[2, 2] * r2
                                                + J[2, 3] * r3 + J[2, 4] * r4 + J[2, 5] * r5)
                dr = D[(o + 3) * KB + k] - a * (J[3, 0] * r0 + J[3, 1] * r1 + J[3, 2] * r2
                                                + J[3, 3] * r3 + J[3, 4] * r4 + J[3, 5] * r5)
                dp = D[(o + 4) * KB + k] - a * (J[4, 0] * r0 + J[4, 1] * r1 + J[4, 2] * r2
                                                + J[4, 3] * r3 + J[4, 4] * r4 + J[4, 5] * r5)
                dy = D[(o + 5) * KB + k] - a * (J[5, 0] * r0 + J[5, 1] * r1 + J[5, 2] * r2
                                                + J[5, 3] * r3 + J[5, 4] * r4 + J[5, 5] * r5)
                D[o * KB + k] = dx
                D[(o + 1) * KB + k] = dyy
                D[(o + 2) * KB + k] = dz
                D[(o + 3) * KB + k] = dr
                D[(o + 4) * KB + k] = dp
                D[(o + 5) * KB + k] = dy
                if not max(abs(dr), abs(dp), abs(dy)) <= POLY_MAX:
                    fb[k] = 1
                r00, r01, r02, r10, r11, r12, r20, r21, r22 = rpy_to_matrix_near(
                    cr0, sr0, cp0, sp0, cy0, sy0, dr, dp, dy)
                X[k] = q0 + dx
                X[KB + k] = q1 + dyy
                X[2 * KB + k] = q2 + dz
                X[3 * KB + k] = r00
                X[4 * KB + k] = r01
                X[5 * KB + k] = r02
                X[6 * KB + k] = r10
                X[7 * KB + k] = r11
                X[8 * KB + k] = r12
                X[9 * KB + k] = r20
                X[10 * KB + k] = r21
                X[11 * KB + k] = r22
                X[12 * KB + k] = 0.0
            # leg residuals and their largest magnitude per lane (row 12)
            for j in range(6):
                tx, ty, tz = t[i, j, 0], t[i, j, 1], t[i, j, 2]
                bx, by, bz = b[i, j, 0], b[i, j, 1], b[i, j, 2]
                ln = L_nom[i, j]
                for k in range(KB):
                    vx = X[k] + X[3 * KB + k] * tx + X[4 * KB + k] * ty + X[5 * KB + k] * tz - bx
                    vy = X[KB + k] + X[6 * KB + k] * tx + X[7 * KB + k] * ty \
                        + X[8 * KB + k] * tz - by
                    vz = X[2 * KB + k] + X[9 * KB + k] * tx + X[10 * KB + k] * ty \
                        + X[11 * KB + k] * tz - bz
                    r = math.sqrt(vx * vx + vy * vy + vz * vz) - ln - leg_sig * Zf[zb + j * KB + k]
                    res[j * KB + k] = r
                    v = abs(r)  # a NaN (all six legs at once) stays: never "converged"
                    X[12 * KB + k] = v if not v <= X[12 * KB + k] else X[12 * KB + k]
            n_act = 0.0
            for k in range(KB):
                a = 0.0 if X[12 * KB + k] <= tol else 1.0
                act[k] = a
                n_act += a
            if n_act == 0.0:
                break
        for k in range(KB):
            if act[k] != 0.0:
                fb[k] = 1


P_ROWS = 31  # partial sums per lane: S1 (6), S2 upper (21), Sw, Sww, max |dp|, max |dtheta|


@njit(cache=True, error_model="numpy")
def stats_lanes(E, valid, shift, l2, P, MP, MR):
    """Add KB lanes of twists ``E`` (rows of KB) to per-lane partial sums ``P`` (P_ROWS * KB):
    shifted first and second moments, weighted squared error ``|dp|^2 + l2 |dtheta|^2``
    (``l2`` m^2), maxima; ``valid[k]`` 1/0 (invalid lanes must hold finite values);
    ``shift`` (7,) the chunk's shift (twist, weighted square).  ``MP``/``MR`` (KB,) get
    ``|dp|`` and ``|dtheta|`` for the histograms.  Lanes are independent, so it vectorizes and
    the sums do not depend on the thread count."""
    h0, h1, h2, h3, h4, h5, hw = shift[0], shift[1], shift[2], shift[3], shift[4], shift[5], \
        shift[6]
    for k in range(KB):
        v = float(valid[k])
        e0, e1, e2 = E[k], E[KB + k], E[2 * KB + k]
        e3, e4, e5 = E[3 * KB + k], E[4 * KB + k], E[5 * KB + k]
        d0, d1, d2 = (e0 - h0) * v, (e1 - h1) * v, (e2 - h2) * v
        d3, d4, d5 = (e3 - h3) * v, (e4 - h4) * v, (e5 - h5) * v
        P[k] += d0
        P[KB + k] += d1
        P[2 * KB + k] += d2
        P[3 * KB + k] += d3
        P[4 * KB + k] += d4
        P[5 * KB + k] += d5
        P[6 * KB + k] += d0 * d0
        P[7 * KB + k] += d0 * d1
        P[8 * KB + k] += d0 * d2
        P[9 * KB + k] += d0 * d3
        P[10 * KB + k] += d0 * d4
        P[11 * KB + k] += d0 * d5
        P[12 * KB + k] += d1 * d1
        P[13 * KB + k] += d1 * d2
        P[14 * KB + k] += d1 * d3
        P[15 * KB + k] += d1 * d4
        P[16 * KB + k] += d1 * d5
        P[17 * KB + k] += d2 * d2
        P[18 * KB + k] += d2 * d3
        P[19 * KB + k] += d2 * d4
        P[20 * KB + k] += d2 * d5
        P[21 * KB + k] += d3 * d3
        P[22 * KB + k] += d3 * d4
        P[23 * KB + k] += d3 * d5
        P[24 * KB + k] += d4 * d4
        P[25 * KB + k] += d4 * d5
        P[26 * KB + k] += d5 * d5
        p2 = e0 * e0 + e1 * e1 + e2 * e2
        r2 = e3 * e3 + e4 * e4 + e5 * e5
        dw = (p2 + l2 * r2 - hw) * v
        P[27 * KB + k] += dw
        P[28 * KB + k] += dw * dw
        mp = math.sqrt(p2)
        mr = math.sqrt(r2)
        MP[k] = mp
        MR[k] = mr
        P[29 * KB + k] = max(P[29 * KB + k], mp * v)
        P[30 * KB + k] = max(P[30 * KB + k], mr * v)


@njit(cache=True)
def finish_record(P, shift, rec):
    """Chunk record (:mod:`.stats` layout) from the per-lane partial sums ``P`` of
    :func:`stats_lanes` and the chunk's ``shift`` (7,), summed in lane order into ``rec``."""
    for r in range(6):
        rec[F_SHIFT + r] = shift[r]
    rec[F_W0] = shift[6]
    idx = 6
    for i in range(6):
        acc = 0.0
        for k in range(KB):
            acc += P[i * KB + k]
        rec[F_S1 + i] = acc
        for j in range(i, 6):
            acc = 0.0
            for k in range(KB):
                acc += P[idx * KB + k]
            rec[F_S2 + 6 * i + j] = acc
            idx += 1
    sw = 0.0
    sww = 0.0
    mp = 0.0
    mr = 0.0
    for k in range(KB):
        sw += P[27 * KB + k]
        sww += P[28 * KB + k]
        mp = max(mp, P[29 * KB + k])
        mr = max(mr, P[30 * KB + k])
    rec[F_SW] = sw
    rec[F_SWW] = sww
    rec[F_MAXP] = mp
    rec[F_MAXR] = mr
