"""Monte Carlo of internal disturbances through the exact nonlinear kinematics (Numba).

Each sample perturbs the stack at a nominal pose ``Q`` (6N,), recomputes the tool pose with the
exact forward kinematics (never the linearization) and records the tool's error twist
``e = (dp, dtheta)`` (SPEC): ``dp`` (m) the position change in the world frame, ``dtheta`` (rad)
the rotation vector of ``R_perturbed R_nominal^T``, world frame.

Disturbance models (:class:`Disturbance`; any combination):

* **pose** noise: every platform's pose parameter ``q_i,k`` gets an independent zero-mean error of
  standard deviation ``pose_sigma[k]`` (Gaussian, or uniform on ``+-sqrt(3) sigma`` so that
  ``sigma`` is the standard deviation in both cases);
* **legs** (actuator) noise: every leg length gets a Gaussian error of std ``leg_sigma`` (m) and
  each platform's pose is recovered from its six legs by Newton to ``tol`` (1e-12 m) from the
  nominal pose: a chord iteration vectorized over lanes (:func:`legs_newton_block`), with
  ``fastkin.from_legs_platform`` (backtracking Newton) for the rare lanes it does not settle;
* **joints** (manufacturing) errors: every coordinate of every base and top joint (in its plate's
  frame) gets a Gaussian error of std ``joint_sigma`` (m); the actuators hold their nominal lengths
  (plus leg noise if any) and each platform's pose is recovered by Newton with the perturbed joints.

Order when combined: legs and joints first (Newton), then the pose noise is added to the pose
Newton found (a compliance on top of the actuators).

Randomness: a counter-based generator.  Sample ``s`` of seed ``seed`` draws from its own stream,
SplitMix64 started at ``key(seed) + s * 2^20 * gamma``: at most 2^20 draws per sample, streams of
different samples never overlap.  Normals come from a 256-layer ziggurat.  A sample's value is
therefore a pure function of ``(seed, s)``, whatever the chunk size, thread count or batching, and
the statistics (:mod:`sims.stats`) are merged in chunk order, so they depend on the seed and the
chunk size only.  Memory is fixed: chunks are processed in batches and merged as they finish.

Speed: inside a chunk, samples go in blocks of :data:`KB` = 64 lanes stored as rows of 64 doubles,
so LLVM vectorizes the random numbers, the forward kinematics, the twist and the per-lane
statistics (see :func:`run_chunk`); so does Newton for actuator noise (:func:`legs_newton_block`);
with joint errors (per-sample geometry) Newton runs lane by lane with the building blocks of
:mod:`assemblers.fastkin`.  Entry points: :func:`simulate`,
:func:`sample_errors`, :func:`first_order_mean_sq`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

from assemblers import fastkin
from assemblers.errors import InputError
from assemblers.fastkin import forward, from_legs_platform

from .stats import (
    CHUNK_FIELDS,
    F_MAXP,
    F_MAXR,
    F_S1,
    F_S2,
    F_SHIFT,
    F_SW,
    F_SWW,
    F_W0,
    HIST_BINS,
    ErrorStats,
    StreamingStats,
    hist_index,
)

# ----------------------------------------------------------------------------- random numbers

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_U27, _U30, _U31 = np.uint64(27), np.uint64(30), np.uint64(31)
_U1, _U8, _U11 = np.uint64(1), np.uint64(8), np.uint64(11)
_MASK8 = np.uint64(0xFF)
_MASK52 = np.uint64(0x000FFFFFFFFFFFFF)
DRAWS_PER_SAMPLE_LOG2 = 20  # each sample's stream has 2^20 draws before the next sample's
_STRIDE = np.uint64((int(_GAMMA) << DRAWS_PER_SAMPLE_LOG2) & 0xFFFFFFFFFFFFFFFF)
# draws of a sample: 0 .. m-1 the vectorized ones; the extra uniforms of the ziggurat's slow path
# from 2^19 on, so a draw's value never depends on how many draws the disturbance needs
_EXTRA = np.uint64((int(_GAMMA) << (DRAWS_PER_SAMPLE_LOG2 - 1)) & 0xFFFFFFFFFFFFFFFF)
_INV53 = 1.0 / 9007199254740992.0  # 2^-53
_SQRT3 = 1.7320508075688772


def _mix64_py(z: int) -> int:
    m = 0xFFFFFFFFFFFFFFFF
    z = (z + int(_GAMMA)) & m
    z = ((z ^ (z >> 30)) * int(_MIX1)) & m
    z = ((z ^ (z >> 27)) * int(_MIX2)) & m
    return z ^ (z >> 31)


def seed_key(seed: int) -> np.uint64:
    """The 64-bit stream key of a user seed (SplitMix64 hash, so nearby seeds are unrelated)."""
    return np.uint64(_mix64_py(_mix64_py(int(seed) & 0xFFFFFFFFFFFFFFFF) ^ 0x5EED))


@njit(cache=True, inline="always")
def _mix(z):
    """SplitMix64's output function of a uint64 counter."""
    z = (z ^ (z >> _U30)) * _MIX1
    z = (z ^ (z >> _U27)) * _MIX2
    return z ^ (z >> _U31)


@njit(cache=True, inline="always")
def _next_u64(st):
    """SplitMix64: advance ``st[0]`` (uint64 state) by gamma and return 64 random bits."""
    z = st[0] + _GAMMA
    st[0] = z
    return _mix(z)


@njit(cache=True, inline="always")
def _uniform(st):
    """Uniform double in [0, 1) (53 random bits)."""
    return float(_next_u64(st) >> _U11) * _INV53


def _ziggurat_tables():
    """Marsaglia & Tsang's ziggurat for exp(-x^2/2), 256 layers (as in NumPy's generator)."""
    r = 3.6541528853610088
    v = 0.00492867323399
    m1 = 2.0**52

    def f(x):
        return math.exp(-0.5 * x * x)

    ki = np.zeros(256, dtype=np.uint64)
    wi = np.zeros(256)
    fi = np.zeros(256)
    dn = tn = r
    q = v / f(dn)
    ki[0] = np.uint64(int(dn / q * m1))
    ki[1] = np.uint64(0)
    wi[0] = q / m1
    wi[255] = dn / m1
    fi[0] = 1.0
    fi[255] = f(dn)
    for i in range(254, 0, -1):
        dn = math.sqrt(-2.0 * math.log(v / dn + f(dn)))
        ki[i + 1] = np.uint64(int(dn / tn * m1))
        tn = dn
        fi[i] = f(dn)
        wi[i] = dn / m1
    return ki, wi, fi


ZIG_KI, ZIG_WI, ZIG_FI = _ziggurat_tables()
_ZIG_R = 3.6541528853610088


@njit(cache=True)
def _normal_resume(st, i, x, neg):
    """Finish a ziggurat draw whose fast test failed: layer ``i``, proposal ``x`` (signed),
    ``neg`` its sign; further uniforms come from the stream ``st``.  Wedge test (``i > 0``) or
    Marsaglia's tail method (``i == 0``); on a wedge rejection, a whole new draw.  One flat loop
    (a nested loop here made LLVM's code several times slower)."""
    tail = False
    while True:
        if tail:
            xx = -math.log1p(-_uniform(st)) / _ZIG_R
            yy = -math.log1p(-_uniform(st))
            if yy + yy > xx * xx:
                return -(_ZIG_R + xx) if neg else _ZIG_R + xx
            continue
        if i == 0:
            tail = True
            continue
        if ZIG_FI[i] + _uniform(st) * (ZIG_FI[i - 1] - ZIG_FI[i]) < math.exp(-0.5 * x * x):
            return x
        u = _next_u64(st)
        i = int(u & _MASK8)
        u = u >> _U8
        neg = (u & _U1) != 0
        rabs = (u >> _U1) & _MASK52
        x = float(rabs) * ZIG_WI[i]
        if neg:
            x = -x
        if rabs < ZIG_KI[i]:
            return x


# Monte Carlo samples are processed in blocks of KB lanes (structure of arrays, rows of KB
# doubles): the fixed trip count and separate input / output arrays let LLVM vectorize the
# loops over lanes (AVX-512: 8 samples per instruction).
KB = 64


@njit(cache=True, error_model="numpy")
def random_block(key, s0, m, first_uniform, Zf, Rj):
    """Draws ``j = 0 .. m-1`` of samples ``s0 .. s0 + KB - 1`` into ``Zf[j * KB + k]``.

    Draw ``j`` of sample ``s`` is ``mix(key + s * 2^20 * gamma + (j + 1) * gamma)``: SplitMix64
    counters, so the value depends only on (seed, s, j).  Rows ``j >= first_uniform`` are
    uniform on ``[-sqrt 3, sqrt 3)`` (std 1); the others are the ziggurat's fast path for a
    standard normal, with ``Rj[j * KB + k] = 1`` where that fast test failed
    (:func:`fix_rejections` then finishes those draws).  ``Zf`` (>= m * KB,) float64, ``Rj``
    (>= m * KB,) uint8.
    """
    for j in range(m):
        base = j * KB
        jj = np.uint64(j + 1) * _GAMMA
        if j >= first_uniform:
            for k in range(KB):
                z = _mix(key + np.uint64(s0 + k) * _STRIDE + jj)
                Zf[base + k] = _SQRT3 * (2.0 * (float(z >> _U11) * _INV53) - 1.0)
                Rj[base + k] = 0
        else:
            for k in range(KB):
                z = _mix(key + np.uint64(s0 + k) * _STRIDE + jj)
                i = z & _MASK8
                u = z >> _U8
                rabs = (u >> _U1) & _MASK52
                x = float(rabs) * ZIG_WI[i]
                Zf[base + k] = x - 2.0 * x * float(u & _U1)
                Rj[base + k] = rabs >= ZIG_KI[i]


@njit(cache=True)
def fix_rejections(key, s0, kb, m, first_uniform, Zf, Rj, st):
    """Finish the normal draws of :func:`random_block` whose fast test failed (~1.5 %), lane by
    lane and row by row; the extra uniforms of sample ``s`` come from its own stream from draw
    2^19 on, so the result depends only on (seed, s) and the rows before (a disturbance that
    adds rows at the end leaves the earlier numbers unchanged)."""
    n_gauss = min(m, first_uniform)
    for k in range(kb):
        base = key + np.uint64(s0 + k) * _STRIDE
        started = False
        for j in range(n_gauss):
            if Rj[j * KB + k]:
                if not started:
                    st[0] = base + _EXTRA
                    started = True
                z = _mix(base + np.uint64(j + 1) * _GAMMA)
                i = int(z & _MASK8)
                u = z >> _U8
                neg = (u & _U1) != 0
                x = float((u >> _U1) & _MASK52) * ZIG_WI[i]
                Zf[j * KB + k] = _normal_resume(st, i, -x if neg else x, neg)


@njit(cache=True)
def normals_kernel(key, n_samples, m, out):
    """``out`` (n_samples, m): the first ``m`` standard normals of each sample's stream, exactly
    as the Monte Carlo draws them (tests of the generator)."""
    Zf = np.empty(m * KB)
    Rj = np.empty(m * KB, dtype=np.uint8)
    st = np.empty(1, dtype=np.uint64)
    for s0 in range(0, n_samples, KB):
        kb = min(KB, n_samples - s0)
        random_block(key, s0, m, m, Zf, Rj)
        fix_rejections(key, s0, kb, m, m, Zf, Rj, st)
        for k in range(kb):
            for j in range(m):
                out[s0 + k, j] = Zf[j * KB + k]


# ----------------------------------------------------------------------------- SO(3) log

# asin(s) / s = sum_k c_k s^(2k): used below s = 0.03 (truncation < 1e-20 relative)
_AS1, _AS2, _AS3, _AS4, _AS5 = 1.0 / 6.0, 3.0 / 40.0, 5.0 / 112.0, 35.0 / 1152.0, 63.0 / 2816.0
_SMALL_S2 = 0.0009  # s^2 below which (and cos > 0) the series is used


@njit(cache=True)
def so3_log(R, w):
    """Rotation vector (rad) of the rotation ``R`` (3, 3) into ``w`` (3,), angle in [0, pi].

    With ``v = vee(R - R^T) = 2 sin(theta) a`` and ``c = (tr R - 1) / 2 = cos(theta)``:
    small-angle branch (``c > 0`` and ``s = |v| / 2 < 0.03``, about 1.7 degrees, which holds for
    nearly every Monte Carlo sample): ``w = v asin(s) / (2 s)`` with the series of ``asin(s)/s``
    (finite and exact at ``s = 0``, no atan2); otherwise ``theta = atan2(s, c)``,
    ``w = theta v / (2 s)``; near pi (``c < -0.99``) the axis comes from the symmetric part (as
    :func:`assemblers.lie.so3_log`).
    """
    vx = R[2, 1] - R[1, 2]
    vy = R[0, 2] - R[2, 0]
    vz = R[1, 0] - R[0, 1]
    c = 0.5 * (R[0, 0] + R[1, 1] + R[2, 2] - 1.0)
    s2 = 0.25 * (vx * vx + vy * vy + vz * vz)
    if c > 0.0 and s2 < _SMALL_S2:
        f = 0.5 * (1.0 + s2 * (_AS1 + s2 * (_AS2 + s2 * (_AS3 + s2 * (_AS4 + s2 * _AS5)))))
        w[0] = f * vx
        w[1] = f * vy
        w[2] = f * vz
        return
    c = min(1.0, max(-1.0, c))
    s = math.sqrt(s2)
    theta = math.atan2(s, c)
    if c >= -0.99:
        f = theta / (2.0 * s)  # s >= 0.03 here, or c <= 0 (theta >= pi/2)
        w[0] = f * vx
        w[1] = f * vy
        w[2] = f * vz
        return
    # near pi: (R + R^T)/2 - c I = (1 - c) a a^T
    k = 0
    best = R[0, 0] - c
    for j in range(1, 3):
        if R[j, j] - c > best:
            best = R[j, j] - c
            k = j
    nrm = 0.0
    for j in range(3):
        w[j] = 0.5 * (R[j, k] + R[k, j]) - (c if j == k else 0.0)
        nrm += w[j] * w[j]
    nrm = math.sqrt(max(nrm, 1e-300))
    sgn = 1.0 if (w[0] * vx + w[1] * vy + w[2] * vz) >= 0.0 else -1.0
    for j in range(3):
        w[j] = sgn * theta * w[j] / nrm


@njit(cache=True)
def error_twist(T_nom, T, e, R, w):
    """Error twist of ``T`` relative to ``T_nom`` (both (4, 4) world_from_tool) into ``e`` (6,):
    ``dp`` (m) and the rotation vector (rad) of ``R R_nom^T``, world frame.  ``R`` (3, 3) and
    ``w`` (3,) scratch."""
    for i in range(3):
        e[i] = T[i, 3] - T_nom[i, 3]
        for j in range(3):
            R[i, j] = T[i, 0] * T_nom[j, 0] + T[i, 1] * T_nom[j, 1] + T[i, 2] * T_nom[j, 2]
    so3_log(R, w)
    e[3] = w[0]
    e[4] = w[1]
    e[5] = w[2]


# ----------------------------------------------------------------------------- one sample


@njit(cache=True)
def draw_layout(pose_sig, leg_sig, joint_sig, n):
    """Random numbers per sample, by part: ``(n_leg, n_joint, n_pose)`` = (6N or 0, 36N or 0,
    6N or 0), laid out in that order (a part is absent when its sigma is 0)."""
    n_leg = 6 * n if leg_sig > 0.0 else 0
    n_joint = 36 * n if joint_sig > 0.0 else 0
    n_pose = 0
    for k in range(6 * n):
        if pose_sig[k] > 0.0:
            n_pose = 6 * n
    return n_leg, n_joint, n_pose


@njit(cache=True)
def perturb_scalar(z, b, t, Q, L_nom, pose_sig, leg_sig, joint_sig, tol, max_iter, Qp, Lp, bp,
                   tp):
    """The perturbed stack pose of one sample from its random numbers, with the Newton building
    block of :mod:`assemblers.fastkin` (``from_legs_platform``, started at the nominal pose).

    ``z`` (m,) the sample's random numbers, laid out ``[6N legs][36N joints: per platform 18
    base then 18 top coordinates][6N pose]`` (a part is absent when its sigma is 0).  Inputs:
    ``b``/``t`` (N, 6, 3) m joints; ``Q`` (6N,) nominal pose; ``L_nom`` (N, 6) m its legs;
    ``pose_sig`` (6N,) std (m, rad); ``leg_sig``, ``joint_sig`` m; ``tol`` m and ``max_iter`` for
    Newton.  Outputs: ``Qp`` (6N,) perturbed pose; ``Lp`` (N, 6) commanded legs; ``bp``/``tp``
    (N, 6, 3) perturbed joints (written only with joint errors).
    Returns False if a platform's Newton did not converge (the sample is then invalid).
    """
    n = b.shape[0]
    n_leg, n_joint, n_pose = draw_layout(pose_sig, leg_sig, joint_sig, n)
    for k in range(6 * n):
        Qp[k] = Q[k]
    ok = True
    for i in range(n):
        for k in range(6):
            Lp[i, k] = L_nom[i, k]
            if n_leg > 0:
                Lp[i, k] += leg_sig * z[6 * i + k]
        if n_joint > 0:
            o = n_leg + 36 * i
            for k in range(6):
                for r in range(3):
                    bp[i, k, r] = b[i, k, r] + joint_sig * z[o + 3 * k + r]
                    tp[i, k, r] = t[i, k, r] + joint_sig * z[o + 18 + 3 * k + r]
            err, _ = from_legs_platform(bp[i], tp[i], Lp[i], Qp, 6 * i, tol, max_iter)
        else:
            err, _ = from_legs_platform(b[i], t[i], Lp[i], Qp, 6 * i, tol, max_iter)
        if not err <= tol:
            ok = False
    if n_pose > 0:
        o = n_leg + n_joint
        for k in range(6 * n):
            Qp[k] += pose_sig[k] * z[o + k]
    return ok


# ----------------------------------------------------------------------------- blocks of samples

_SIN = (-1.0 / 6.0, 1.0 / 120.0, -1.0 / 5040.0, 1.0 / 362880.0, -1.0 / 39916800.0)
_COS = (-0.5, 1.0 / 24.0, -1.0 / 720.0, 1.0 / 40320.0, -1.0 / 3628800.0, 1.0 / 479001600.0)
_POLY_MAX = 0.125  # |angle error| up to which the Taylor polynomials are exact to rounding


@njit(cache=True, inline="always")
def _rotation_near(cr0, sr0, cp0, sp0, cy0, sy0, dr, dp, dy):
    """``R = Rz(yaw) Ry(pitch) Rx(roll)`` (as ``fastkin.rpy_matrix``), row-major 9-tuple, at
    the nominal angles (their cosines and sines given) plus the changes ``dr, dp, dy`` (rad):
    the perturbed cosines and sines from the addition theorems with Taylor polynomials of the
    change (degree 11 / 12: exact to rounding for ``|change| <= _POLY_MAX``)."""
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


@njit(cache=True, error_model="numpy")
def fk_block(T_mount, T_after, Q, trig, pose_sig, Zf, zoff, A, big):
    """Exact forward kinematics of ``Q + pose_sig * z`` for KB lanes: ``A[r * KB + k]`` gets
    row-major entry ``r`` (0..11) of the top 3 x 4 of world_from_tool of lane ``k``.

    The same product as :func:`assemblers.fastkin.forward`
    (``T_mount T(q_1) T_after_1 ... T(q_N) T_after_N``, SPEC), written over lanes so that LLVM
    vectorizes it: ``trig`` (N, 6) holds (cos, sin) of the nominal roll, pitch and yaw, and the
    perturbed angles' cosines and sines come from the addition theorems with Taylor polynomials
    of the angle error (degree 11 / 12: truncation below 1e-21 for ``|d| <= 1/8``).  Lanes with
    a larger angle error get ``big[k] = 1`` and must be recomputed (:func:`sample_scalar`).
    ``Zf``: random numbers, pose rows from ``zoff``; ``pose_sig`` (6N,) std (m, rad).
    Agreement with ``fastkin.forward`` and the JAX reference is tested sample by sample.
    """
    for k in range(KB):
        A[0 * KB + k] = T_mount[0, 0]
        A[1 * KB + k] = T_mount[0, 1]
        A[2 * KB + k] = T_mount[0, 2]
        A[3 * KB + k] = T_mount[0, 3]
        A[4 * KB + k] = T_mount[1, 0]
        A[5 * KB + k] = T_mount[1, 1]
        A[6 * KB + k] = T_mount[1, 2]
        A[7 * KB + k] = T_mount[1, 3]
        A[8 * KB + k] = T_mount[2, 0]
        A[9 * KB + k] = T_mount[2, 1]
        A[10 * KB + k] = T_mount[2, 2]
        A[11 * KB + k] = T_mount[2, 3]
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
            if max(abs(dr), abs(dp), abs(dy)) > _POLY_MAX:
                big[k] = 1
            # platform transform B: R = Rz(yaw) Ry(pitch) Rx(roll), p (as fastkin.rpy_matrix)
            b00, b01, b02, b10, b11, b12, b20, b21, b22 = _rotation_near(
                cr0, sr0, cp0, sp0, cy0, sy0, dr, dp, dy)
            b03 = q0 + g0 * Zf[zb + k]
            b13 = q1 + g1 * Zf[zb + KB + k]
            b23 = q2 + g2 * Zf[zb + 2 * KB + k]
            a00, a01, a02, a03 = A[k], A[KB + k], A[2 * KB + k], A[3 * KB + k]
            a10, a11, a12, a13 = A[4 * KB + k], A[5 * KB + k], A[6 * KB + k], A[7 * KB + k]
            a20, a21, a22, a23 = A[8 * KB + k], A[9 * KB + k], A[10 * KB + k], A[11 * KB + k]
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
def twist_block(A, T_nom, E, big):
    """Error twists of KB lanes of :func:`fk_block` output ``A`` against ``T_nom`` (4, 4) into
    ``E[r * KB + k]`` (r = 0..5: dp m, rotation vector rad; world frame).  The rotation uses the
    small-angle branch of :func:`so3_log` on every lane; lanes outside it get ``big[k] = 1``
    (to be redone with :func:`so3_log`)."""
    n00, n01, n02, n03 = T_nom[0, 0], T_nom[0, 1], T_nom[0, 2], T_nom[0, 3]
    n10, n11, n12, n13 = T_nom[1, 0], T_nom[1, 1], T_nom[1, 2], T_nom[1, 3]
    n20, n21, n22, n23 = T_nom[2, 0], T_nom[2, 1], T_nom[2, 2], T_nom[2, 3]
    for k in range(KB):
        a00, a01, a02, a03 = A[k], A[KB + k], A[2 * KB + k], A[3 * KB + k]
        a10, a11, a12, a13 = A[4 * KB + k], A[5 * KB + k], A[6 * KB + k], A[7 * KB + k]
        a20, a21, a22, a23 = A[8 * KB + k], A[9 * KB + k], A[10 * KB + k], A[11 * KB + k]
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
        if not (c > 0.0 and s2 < _SMALL_S2):
            big[k] = 1


CHORD_ITERS = 12  # chord steps of :func:`legs_newton_block` before a lane goes to scalar Newton


@njit(cache=True, error_model="numpy")
def legs_newton_block(b, t, Q, trig, L_nom, Jinv, leg_sig, Zf, tol, max_it, D, res, act, X, fb):
    """Actuator noise for KB lanes: every platform's pose recovered from its perturbed legs by a
    chord-Newton iteration vectorized over lanes (structure of arrays, rows of KB doubles).

    Lane ``k``, platform ``i``: commanded legs ``L_nom[i] + leg_sig * z`` with ``z`` the rows
    ``6 i .. 6 i + 5`` of ``Zf``.  From the nominal pose, ``d <- d - Jinv[i] r`` with ``r`` the
    leg residual (m) and ``Jinv[i]`` the inverse of ``dL/dq`` at the nominal pose (fixed: chord
    method; for 0.1 mm leg noise the residual falls by about 1e-3 a step, 3 to 4 steps to 1e-12
    m).  The legs come from the exact geometry (``|p + R t_j - b_j|``), the perturbed angles'
    cosines and sines from the addition theorems with the Taylor polynomials of
    :func:`fk_block`.  A lane stops moving once its largest ``|r| <= tol``, so its result does
    not depend on the other lanes of the block.

    Outputs: ``D[(6 i + c) * KB + k]`` the pose change ``q_i,c - Q_i,c`` (m, rad); ``fb[k] = 1``
    where lane ``k`` did not converge within ``max_it`` steps or an angle moved by more than
    the polynomials' range (NaN included): the caller redoes those lanes with the scalar,
    backtracking Newton (:func:`perturb_scalar`).  Scratch: ``res`` (6 KB), ``act`` (KB),
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
                if not max(abs(dr), abs(dp), abs(dy)) <= _POLY_MAX:
                    fb[k] = 1
                r00, r01, r02, r10, r11, r12, r20, r21, r22 = _rotation_near(
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


_P_ROWS = 31  # partial sums per lane: S1 (6), S2 upper (21), Sw, Sww, max |dp|, max |dtheta|


@njit(cache=True, error_model="numpy")
def stats_block(E, valid, shift, l2, P, MP, MR):
    """Add KB lanes of twists ``E`` (rows of KB) to per-lane partial sums ``P`` (_P_ROWS * KB):
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
def _finish_record(P, shift, rec):
    """Chunk record (:mod:`sims.stats` layout) from the per-lane partial sums, lanes in order."""
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


@njit(cache=True)
def run_chunk(start, stop, b, t, T_mount, T_after, Q, trig, L_nom, Jinv, T_nom, pose_sig,
              uniform, leg_sig, joint_sig, length_scale, tol, max_iter, key, rec, hist_p, hist_r,
              out_e, out_Q, out_L, out_b, out_t, out_ok):
    """Samples ``start .. stop - 1``, in blocks of KB lanes, into one chunk record; returns
    (valid, failed) sample counts.

    ``rec`` (CHUNK_FIELDS,) and ``hist_p``/``hist_r`` (HIST_BINS,) int64: the chunk's record and
    histograms (:mod:`sims.stats`), zeroed by the caller; ``length_scale`` m (``W_out``); ``key``
    the seed's stream key.  Debug outputs, used when ``out_e`` is not empty, for samples
    ``s < out_e.shape[0]``: ``out_e`` (n, 6) twists, ``out_Q`` (n, 6N) perturbed poses, ``out_L``
    (n, N, 6) commanded legs, ``out_b``/``out_t`` (n, N, 6, 3) perturbed joints, ``out_ok`` (n,).
    Other arguments: :func:`perturb_scalar`; ``trig`` (N, 6) cos/sin of the nominal angles;
    ``T_nom`` (4, 4) the nominal tool pose; ``uniform``: uniform pose noise.
    ``Jinv`` (N, 6, 6) the inverse leg Jacobians at ``Q``.  Actuator noise alone (with or without
    pose noise) goes through the lane-vectorized chord Newton (:func:`legs_newton_block`), its
    unsettled lanes and any joint errors lane by lane through Newton (:func:`perturb_scalar`); then the
    exact forward kinematics and error twists of all lanes are vectorized (:func:`fk_block`,
    :func:`twist_block`), with a per-lane fallback to ``fastkin.forward`` and :func:`so3_log`
    outside their polynomial ranges.  The statistics are accumulated per lane
    (:func:`stats_block`) and summed in lane order, so the record depends only on the samples.
    """
    n = b.shape[0]
    n_leg, n_joint, n_pose = draw_layout(pose_sig, leg_sig, joint_sig, n)
    m = n_leg + n_joint + n_pose
    first_uniform = n_leg + n_joint if uniform else m
    newton = n_leg + n_joint > 0
    l2 = length_scale * length_scale
    # private copies: a call that takes a slice of a shared array updates the shared refcount
    # atomically, which makes threads fight over one cache line
    bj = b.copy()
    tj = t.copy()
    Zf = np.zeros(max(m, 6 * n) * KB)  # rows not drawn stay 0 (no disturbance of that kind)
    Rj = np.zeros(max(m, 1) * KB, dtype=np.uint8)
    A = np.empty(12 * KB)
    E = np.empty(6 * KB)
    big = np.empty(KB, dtype=np.uint8)
    valid = np.empty(KB, dtype=np.uint8)
    P = np.zeros(_P_ROWS * KB)
    MP = np.empty(KB)
    MR = np.empty(KB)
    shift = np.zeros(7)
    st = np.empty(1, dtype=np.uint64)
    z = np.zeros(max(m, 6 * n))
    Qp = np.empty(6 * n)
    Lp = np.empty((n, 6))
    bp = bj.copy()
    tp = tj.copy()
    work = np.empty((2, 4, 4))
    Tp = np.empty((4, 4))
    R = np.empty((3, 3))
    w = np.empty(3)
    e = np.empty(6)
    n_store = out_e.shape[0]
    ones = np.ones(6 * n)
    D = np.zeros(6 * n * KB)  # Newton path: Qp - Q per lane, rows of KB
    chord = n_leg > 0 and n_joint == 0
    res = np.zeros(6 * KB)
    act = np.zeros(KB)
    X = np.zeros(13 * KB)
    fb = np.zeros(KB, dtype=np.uint8)
    have_shift = False
    cnt = 0
    bad = 0
    for s0 in range(start, stop, KB):
        kb = min(KB, stop - s0)
        random_block(key, s0, m, first_uniform, Zf, Rj)
        fix_rejections(key, s0, kb, m, first_uniform, Zf, Rj, st)
        for k in range(KB):
            valid[k] = 1 if k < kb else 0
        if newton:
            if chord:  # actuator noise only (and pose noise): Newton vectorized over lanes
                legs_newton_block(bj, tj, Q, trig, L_nom, Jinv, leg_sig, Zf, tol, CHORD_ITERS,
                                  D, res, act, X, fb)
            for k in range(kb):
                if chord and not fb[k]:
                    if n_pose > 0:  # compliance on top of the actuators (as perturb_scalar)
                        for j in range(6 * n):
                            D[j * KB + k] += pose_sig[j] * Zf[(n_leg + j) * KB + k]
                    if s0 + k < n_store:
                        for j in range(6 * n):
                            Qp[j] = Q[j] + D[j * KB + k]
                        for i in range(n):
                            for j in range(6):
                                Lp[i, j] = L_nom[i, j] + leg_sig * Zf[(6 * i + j) * KB + k]
                        _store_state(s0 + k, Qp, Lp, bp, tp, True, True, False, L_nom, bj, tj,
                                     out_Q, out_L, out_b, out_t, out_ok)
                    continue
                for j in range(m):
                    z[j] = Zf[j * KB + k]
                ok = perturb_scalar(z, bj, tj, Q, L_nom, pose_sig, leg_sig, joint_sig, tol,
                                    max_iter, Qp, Lp, bp, tp)
                for j in range(6 * n):
                    D[j * KB + k] = Qp[j] - Q[j]
                if not ok:
                    valid[k] = 0
                    for j in range(6 * n):
                        D[j * KB + k] = 0.0
                if s0 + k < n_store:
                    _store_state(s0 + k, Qp, Lp, bp, tp, ok, leg_sig > 0.0, joint_sig > 0.0,
                                 L_nom, bj, tj, out_Q, out_L, out_b, out_t, out_ok)
            for k in range(kb, KB):
                for j in range(6 * n):
                    D[j * KB + k] = 0.0
            src = D
            g = ones
        else:
            src = Zf
            g = pose_sig
        # exact forward kinematics of Q + g * src and the error twists, vectorized over lanes
        fk_block(T_mount, T_after, Q, trig, g, src, 0, A, big)
        twist_block(A, T_nom, E, big)
        for k in range(kb):
            s = s0 + k
            if big[k] or (s < n_store and not newton):
                for j in range(6 * n):
                    Qp[j] = Q[j] + g[j] * src[j * KB + k]
            if big[k] and valid[k]:
                # angle error beyond the polynomials or a large rotation error: the building
                # blocks (fastkin.forward, libm trig) and the full so3_log
                forward(T_mount, T_after, Qp, Tp, work)
                error_twist(T_nom, Tp, e, R, w)
                for r in range(6):
                    E[r * KB + k] = e[r]
            if s < n_store:
                if not newton:
                    _store_state(s, Qp, Lp, bp, tp, True, False, False, L_nom, bj, tj, out_Q,
                                 out_L, out_b, out_t, out_ok)
                for r in range(6):
                    out_e[s, r] = E[r * KB + k]
        if not have_shift:
            for k in range(kb):
                if valid[k]:
                    p2 = 0.0
                    r2 = 0.0
                    for r in range(3):
                        shift[r] = E[r * KB + k]
                        shift[r + 3] = E[(r + 3) * KB + k]
                        p2 += shift[r] * shift[r]
                        r2 += shift[r + 3] * shift[r + 3]
                    shift[6] = p2 + l2 * r2
                    have_shift = True
                    break
        for k in range(KB):
            if not valid[k]:  # finite values; their weight is 0
                for r in range(6):
                    E[r * KB + k] = shift[r]
        stats_block(E, valid, shift, l2, P, MP, MR)
        for k in range(kb):
            if valid[k]:
                hist_p[hist_index(MP[k])] += 1
                hist_r[hist_index(MR[k])] += 1
                cnt += 1
            else:
                bad += 1
    if cnt > 0:
        _finish_record(P, shift, rec)
    return cnt, bad


@njit(cache=True)
def _store_state(s, Qp, Lp, bp, tp, ok, has_legs, has_joints, L_nom, b, t, out_Q, out_L, out_b,
                 out_t, out_ok):
    """Debug outputs of sample ``s`` (see :func:`run_chunk`)."""
    n = b.shape[0]
    for j in range(6 * n):
        out_Q[s, j] = Qp[j]
    out_ok[s] = ok
    for i in range(n):
        for k in range(6):
            out_L[s, i, k] = Lp[i, k] if has_legs else L_nom[i, k]
            for r in range(3):
                out_b[s, i, k, r] = bp[i, k, r] if has_joints else b[i, k, r]
                out_t[s, i, k, r] = tp[i, k, r] if has_joints else t[i, k, r]


@njit(cache=True, parallel=True)
def mc_chunks(b, t, T_mount, T_after, Q, trig, L_nom, Jinv, T_nom, pose_sig, uniform, leg_sig,
              joint_sig, length_scale, tol, max_iter, key, chunk0, chunk_size, n_total,
              counts, recs, hists, failed, out_e, out_Q, out_L, out_b, out_t, out_ok):
    """Chunks ``chunk0 .. chunk0 + C - 1`` (samples ``c * chunk_size`` up to ``n_total``) in
    parallel, each chunk sequential (:func:`run_chunk`).

    Outputs (zeroed by the caller): ``counts`` (C,) int64 valid samples; ``recs``
    (C, CHUNK_FIELDS) chunk records; ``hists`` (C, 2, HIST_BINS) int64; ``failed`` (C,) int64
    samples whose Newton failed; the debug outputs of :func:`run_chunk` (empty arrays: none).
    """
    for j in prange(counts.shape[0]):
        start = (chunk0 + j) * chunk_size
        stop = min(start + chunk_size, n_total)
        cnt, bad = run_chunk(start, stop, b, t, T_mount, T_after, Q, trig, L_nom, Jinv, T_nom,
                             pose_sig, uniform, leg_sig, joint_sig, length_scale, tol, max_iter,
                             key, recs[j], hists[j, 0], hists[j, 1], out_e, out_Q, out_L, out_b,
                             out_t, out_ok)
        counts[j] = cnt
        failed[j] = bad


# ----------------------------------------------------------------------------- Python API

POSE_DISTS = ("gaussian", "uniform")


@dataclass(frozen=True, eq=False)
class Disturbance:
    """An internal disturbance model (any combination of the three; zero means off).

    Attributes:
        pose_sigma: (6,) std of every platform's pose error per component (x, y, z m; roll,
            pitch, yaw rad), or (6N,) one per platform parameter.
        pose_dist: "gaussian" or "uniform" (uniform on ``+-sqrt(3) sigma``: same std).
        leg_sigma: m, std of each actuator's length error (Gaussian).
        joint_sigma: m, std of each coordinate of each base and top joint (Gaussian, plate frame).
    """

    pose_sigma: tuple = (0.0,) * 6
    pose_dist: str = "gaussian"
    leg_sigma: float = 0.0
    joint_sigma: float = 0.0

    def __post_init__(self):
        try:
            ps = np.array(self.pose_sigma, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise InputError("Disturbance.pose_sigma: must be numbers") from None
        if ps.size == 0 or ps.size % 6:
            raise InputError(f"Disturbance.pose_sigma: 6 or 6N numbers, got {ps.size}")
        if not (np.isfinite(ps).all() and (ps >= 0).all()):
            raise InputError("Disturbance.pose_sigma: must be finite and >= 0")
        object.__setattr__(self, "pose_sigma", tuple(float(x) for x in ps))
        if self.pose_dist not in POSE_DISTS:
            raise InputError(f"Disturbance.pose_dist: one of {POSE_DISTS}, got {self.pose_dist!r}")
        for name in ("leg_sigma", "joint_sigma"):
            v = getattr(self, name)
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise InputError(f"Disturbance.{name}: must be a number") from None
            if not (math.isfinite(v) and v >= 0):
                raise InputError(f"Disturbance.{name}: must be finite and >= 0, got {v}")
            object.__setattr__(self, name, v)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The active models, among "pose", "legs", "joints"."""
        out = []
        if any(self.pose_sigma):
            out.append("pose")
        if self.leg_sigma > 0:
            out.append("legs")
        if self.joint_sigma > 0:
            out.append("joints")
        return tuple(out)

    def pose_std(self, n_platforms: int) -> np.ndarray:
        """(6N,) std of each pose parameter (m, rad)."""
        ps = np.asarray(self.pose_sigma)
        if ps.size == 6:
            return np.tile(ps, n_platforms)
        if ps.size != 6 * n_platforms:
            raise InputError(f"Disturbance.pose_sigma: {ps.size} numbers for {n_platforms} "
                             f"platforms (want 6 or {6 * n_platforms})")
        return ps.copy()

    def describe(self) -> str:
        """One line for people, with units."""
        parts = []
        if "pose" in self.kinds:
            ps = np.asarray(self.pose_sigma)
            if ps.size == 6:
                parts.append(f"pose ({self.pose_dist}) sigma xyz = "
                             f"{', '.join(f'{x:.3g}' for x in ps[:3])} m, rpy = "
                             f"{', '.join(f'{x:.3g}' for x in ps[3:])} rad")
            else:
                parts.append(f"pose ({self.pose_dist}) per-parameter sigma")
        if self.leg_sigma > 0:
            parts.append(f"legs sigma = {self.leg_sigma:.3g} m")
        if self.joint_sigma > 0:
            parts.append(f"joints sigma = {self.joint_sigma:.3g} m")
        return "; ".join(parts) if parts else "none"

    def to_dict(self) -> dict:
        return {"pose_sigma": list(self.pose_sigma), "pose_dist": self.pose_dist,
                "leg_sigma_m": self.leg_sigma, "joint_sigma_m": self.joint_sigma,
                "kinds": list(self.kinds)}


@dataclass(frozen=True, eq=False)
class Samples:
    """Individual samples (debug path, ``simulate(..., return_samples=True)``).

    ``errors`` (n, 6) twists (m, rad, world frame); ``Q`` (n, 6N) perturbed stack poses (m, rad);
    ``legs`` (n, N, 6) m commanded leg lengths; ``b``/``t`` (n, N, 6, 3) m perturbed joints
    (equal to the nominal ones without joint noise); ``ok`` (n,) bool Newton converged.
    """

    errors: np.ndarray
    Q: np.ndarray
    legs: np.ndarray
    b: np.ndarray
    t: np.ndarray
    ok: np.ndarray


MAX_RETURN_SAMPLES = 1_000_000


def _as_count(x, name: str, lo: int = 1) -> int:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise InputError(f"{name}: must be an integer, got {x!r}") from None
    if not (math.isfinite(v) and v == int(v) and v >= lo):
        raise InputError(f"{name}: must be an integer >= {lo}, got {x!r}")
    return int(v)


def _prepare(asm, Q, disturbance: Disturbance):
    from assemblers.api import as_array

    if not isinstance(disturbance, Disturbance):
        raise InputError("disturbance: must be a sims.montecarlo.Disturbance")
    n = asm.n_platforms
    Q = np.ascontiguousarray(as_array(Q, "Q", (6 * n,), batch=False))
    arrs = asm.arrays
    b = np.ascontiguousarray(arrs.b, dtype=np.float64)
    t = np.ascontiguousarray(arrs.t, dtype=np.float64)
    T_mount = np.ascontiguousarray(arrs.T_mount, dtype=np.float64)
    T_after = np.ascontiguousarray(arrs.T_after, dtype=np.float64)
    L_nom = np.empty((1, n, 6))
    fastkin.legs_batch(b, t, Q[None], L_nom)
    T_nom = np.empty((4, 4))
    fastkin.forward(T_mount, T_after, Q, T_nom, np.empty((2, 4, 4)))
    pose_sig = np.ascontiguousarray(disturbance.pose_std(n))
    ang = Q.reshape(n, 6)[:, 3:]
    trig = np.ascontiguousarray(np.stack([np.cos(ang), np.sin(ang)], axis=-1).reshape(n, 6))
    Jinv = np.zeros((n, 6, 6))  # inverse leg Jacobians at Q (chord Newton, legs_newton_block)
    Jl, R = np.empty((6, 6)), np.empty((3, 3))
    for i in range(n):
        fastkin.platform_leg_jacobian(b[i], t[i], Q, 6 * i, Jl, R)
        try:
            Jinv[i] = np.linalg.inv(Jl)
        except np.linalg.LinAlgError:  # singular: no chord steps, every lane goes scalar
            Jinv[i] = 0.0
    return (b, t, T_mount, T_after, Q, trig, L_nom[0], Jinv, T_nom, pose_sig,
            disturbance.pose_dist == "uniform", disturbance.leg_sigma, disturbance.joint_sigma)


def simulate(asm, Q, disturbance: Disturbance, n_samples, seed: int = 0, *,
             chunk_size: int = 16384, progress: bool | None = False, desc: str | None = None,
             return_samples: bool = False, tol: float = 1e-12, max_iter: int = 30):
    """Monte Carlo statistics of the tool's error twist at the stack pose ``Q``.

    Args:
        asm: the :class:`assemblers.Assembler`.
        Q: (6N,) nominal stack pose (m, rad), bottom platform first.
        disturbance: a :class:`Disturbance`.
        n_samples: number of samples (an integer; ``1e8`` is accepted); memory does not grow
            with it.
        seed: integer >= 0; the same seed gives the same numbers on any thread count.
        chunk_size: samples per chunk (the unit of parallel work and of the merge order).
        progress: a tqdm bar on stderr (None: only when stderr is a terminal).
        desc: label of the progress bar.
        return_samples: also return the individual :class:`Samples` (True: all, <= 1e6; an
            integer k: the first k) -- the very samples of the statistics (debugging, tests).
        tol: m, Newton tolerance on the leg lengths (legs / joints models); max_iter its cap.

    Returns:
        :class:`sims.stats.ErrorStats` (with ``length_scale`` from the config), or
        ``(ErrorStats, Samples)`` with ``return_samples``.
    """
    n_samples = _as_count(n_samples, "n_samples")
    chunk_size = _as_count(chunk_size, "chunk_size")
    seed = _as_count(seed, "seed", lo=0)
    if not (math.isfinite(tol) and tol > 0):
        raise InputError(f"tol: must be a positive number, got {tol}")
    max_iter = _as_count(max_iter, "max_iter")
    args = _prepare(asm, Q, disturbance)
    n_store = 0
    if return_samples:
        want = n_samples if return_samples is True else _as_count(return_samples,
                                                                   "return_samples")
        if want > MAX_RETURN_SAMPLES:
            raise InputError(f"return_samples: at most {MAX_RETURN_SAMPLES} samples can be "
                             f"returned, asked for {want}")
        n_store = min(want, n_samples)
    outs = _sample_outputs(n_store, asm.n_platforms)
    key = seed_key(seed)
    ls = float(asm.sensitivity.length_scale)
    acc = StreamingStats(ls)
    n_chunks = -(-n_samples // chunk_size)
    per_batch = min(n_chunks, max(8, 4 * numba.get_num_threads()))
    # batch buffers, reused: fresh pages cost a fault each (slow in some sandboxes)
    counts = np.zeros(per_batch, dtype=np.int64)
    recs = np.zeros((per_batch, CHUNK_FIELDS))
    hists = np.zeros((per_batch, 2, HIST_BINS), dtype=np.int64)
    failed = np.zeros(per_batch, dtype=np.int64)
    bar = None
    if progress is None or progress:
        from tqdm import tqdm

        bar = tqdm(total=n_samples, desc=desc or "Monte Carlo", unit="sample", unit_scale=True,
                   disable=None if progress is None else False, leave=False)
    try:
        for c0 in range(0, n_chunks, per_batch):
            c = min(per_batch, n_chunks - c0)
            for a in (counts, recs, hists, failed):
                a.fill(0)
            mc_chunks(*args, ls, float(tol), max_iter, key, c0,
                      chunk_size, n_samples, counts[:c], recs[:c], hists[:c], failed[:c], *outs)
            acc.merge(counts[:c], recs[:c], hists[:c], failed[:c])
            if bar is not None:
                bar.update(int(counts[:c].sum() + failed[:c].sum()))
    finally:
        if bar is not None:
            bar.close()
    stats = acc.result()
    if not return_samples:
        return stats
    e, Qs, L, bb, tt, ok = outs
    return stats, Samples(errors=e, Q=Qs, legs=L, b=bb, t=tt, ok=ok)


def _sample_outputs(n_store: int, n: int):
    return (np.empty((n_store, 6)), np.empty((n_store, 6 * n)), np.empty((n_store, n, 6)),
            np.empty((n_store, n, 6, 3)), np.empty((n_store, n, 6, 3)),
            np.empty(n_store, dtype=np.bool_))


def sample_errors(asm, Q, disturbance: Disturbance, n_samples, seed: int = 0, *,
                  tol: float = 1e-12, max_iter: int = 30) -> Samples:
    """The first ``n_samples`` (<= 1e6) samples one by one: the same numbers that
    :func:`simulate` with the same seed puts into its statistics.  See :class:`Samples`."""
    return simulate(asm, Q, disturbance, n_samples, seed, tol=tol, max_iter=max_iter,
                    return_samples=True)[1]


def first_order_mean_sq(asm, Q, disturbance: Disturbance) -> float:
    """First-order prediction (SPEC) of ``E || W_out e ||^2`` (m^2) for pose and leg noise:
    ``|| W_out J_Q W_pose ||_F^2 + || W_out J_L sigma_leg ||_F^2``, ``W_out`` from the config.
    Joint errors have no closed-form Jacobian here: NaN if ``joint_sigma > 0``."""
    import assemblers

    if disturbance.joint_sigma > 0:
        return float("nan")
    w_out = asm.sensitivity.w_out[:, None]
    total = 0.0
    if "pose" in disturbance.kinds:
        J = assemblers.jacobian(asm, Q, wrt="pose")
        total += float(np.sum((w_out * J * disturbance.pose_std(asm.n_platforms)[None, :]) ** 2))
    if disturbance.leg_sigma > 0:
        J = assemblers.jacobian(asm, Q, wrt="legs")
        total += float(np.sum((w_out * J * disturbance.leg_sigma) ** 2))
    return total


__all__ = ["Disturbance", "ErrorStats", "Samples", "first_order_mean_sq", "sample_errors",
           "seed_key", "simulate", "so3_log", "error_twist"]
