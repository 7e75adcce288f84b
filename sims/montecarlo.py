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
  each platform's pose is recovered from its six legs by Newton (``fastkin.from_legs_platform``,
  started at the nominal pose);
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
    HIST_BINS,
    ErrorStats,
    StreamingStats,
    chunk_add,
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
_INV53 = 1.0 / 9007199254740992.0  # 2^-53


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
def _next_u64(st):
    """SplitMix64: advance ``st[0]`` (uint64 state) and return 64 random bits."""
    z = st[0] + _GAMMA
    st[0] = z
    z = (z ^ (z >> _U30)) * _MIX1
    z = (z ^ (z >> _U27)) * _MIX2
    return z ^ (z >> _U31)


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


@njit(cache=True, inline="always")
def _normal(st):
    """Standard normal from the stream ``st`` (ziggurat, about 4 ns; ~98.5 % of draws take the
    fast path).  The tail beyond ``r`` uses Marsaglia's exponential method.  One flat loop on
    purpose: a nested loop or a call for the tail made LLVM's code five times slower."""
    x = 0.0
    tail = False
    neg = False
    while True:
        if tail:
            xx = -math.log1p(-_uniform(st)) / _ZIG_R
            yy = -math.log1p(-_uniform(st))
            if yy + yy > xx * xx:
                x = -(_ZIG_R + xx) if neg else _ZIG_R + xx
                break
            continue
        u = _next_u64(st)
        i = int(u & _MASK8)
        u = u >> _U8
        neg = (u & _U1) != 0
        rabs = (u >> _U1) & _MASK52
        x = float(rabs) * ZIG_WI[i]
        if neg:
            x = -x
        if rabs < ZIG_KI[i]:
            break
        if i == 0:
            tail = True
        elif ZIG_FI[i] + _uniform(st) * (ZIG_FI[i - 1] - ZIG_FI[i]) < math.exp(-0.5 * x * x):
            break
    return x


@njit(cache=True)
def normals_kernel(seed_key_, n, out):
    """``out`` (n,) standard normals of stream ``seed_key_`` (tests of the generator)."""
    st = np.empty(1, dtype=np.uint64)
    st[0] = seed_key_
    for k in range(n):
        out[k] = _normal(st)


# ----------------------------------------------------------------------------- SO(3) log

# asin(s) / s = sum_k c_k s^(2k): used below s = 0.03 (truncation < 1e-20 relative)
_AS1, _AS2, _AS3, _AS4, _AS5 = 1.0 / 6.0, 3.0 / 40.0, 5.0 / 112.0, 35.0 / 1152.0, 63.0 / 2816.0


@njit(cache=True, inline="always")
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
    if c > 0.0 and s2 < 0.0009:
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


@njit(cache=True, inline="always")
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


@njit(cache=True, inline="always")
def _sincos(d):
    """``(sin d, cos d)``: Taylor polynomials for ``|d| <= 1/8`` (truncation below 1e-21,
    rounding within 2 ulp of libm, 2.5x faster), libm otherwise."""
    if abs(d) <= 0.125:
        z = d * d
        sn = d * (1.0 + z * (-1.0 / 6.0 + z * (1.0 / 120.0 + z * (-1.0 / 5040.0 + z * (
            1.0 / 362880.0 + z * (-1.0 / 39916800.0))))))
        cs = 1.0 + z * (-0.5 + z * (1.0 / 24.0 + z * (-1.0 / 720.0 + z * (1.0 / 40320.0 + z * (
            -1.0 / 3628800.0 + z * (1.0 / 479001600.0))))))
        return sn, cs
    return math.sin(d), math.cos(d)


@njit(cache=True, inline="always")
def forward_perturbed(T_mount, T_after, Q, dQ, trig, T):
    """Exact forward kinematics of ``Q + dQ`` (6N,) (m, rad) into ``T`` (4, 4) world_from_tool.

    The same product as :func:`assemblers.fastkin.forward`
    (``T_mount T(q_1) T_after_1 ... T(q_N) T_after_N``, SPEC), fused for the pose-noise hot loop:
    ``trig`` (N, 6) holds (cos, sin) of the nominal roll, pitch and yaw of each platform, so the
    perturbed angles' cosines and sines come from the addition theorems with :func:`_sincos` (no
    libm call), and the running 3 x 4 product stays in registers (``fastkin.matmul4`` on arrays is
    1.7x slower here).  Agreement with ``fastkin.forward`` and with the JAX reference is tested
    sample by sample (tests/test_montecarlo.py).
    """
    a00, a01, a02, a03 = T_mount[0, 0], T_mount[0, 1], T_mount[0, 2], T_mount[0, 3]
    a10, a11, a12, a13 = T_mount[1, 0], T_mount[1, 1], T_mount[1, 2], T_mount[1, 3]
    a20, a21, a22, a23 = T_mount[2, 0], T_mount[2, 1], T_mount[2, 2], T_mount[2, 3]
    for i in range(T_after.shape[0]):
        o = 6 * i
        sn, cs = _sincos(dQ[o + 3])
        cr = trig[i, 0] * cs - trig[i, 1] * sn
        sr = trig[i, 1] * cs + trig[i, 0] * sn
        sn, cs = _sincos(dQ[o + 4])
        cp = trig[i, 2] * cs - trig[i, 3] * sn
        sp = trig[i, 3] * cs + trig[i, 2] * sn
        sn, cs = _sincos(dQ[o + 5])
        cy = trig[i, 4] * cs - trig[i, 5] * sn
        sy = trig[i, 5] * cs + trig[i, 4] * sn
        # pose transform: R = Rz(yaw) Ry(pitch) Rx(roll), p
        b00 = cy * cp
        b01 = cy * sp * sr - sy * cr
        b02 = cy * sp * cr + sy * sr
        b10 = sy * cp
        b11 = sy * sp * sr + cy * cr
        b12 = sy * sp * cr - cy * sr
        b20 = -sp
        b21 = cp * sr
        b22 = cp * cr
        b03 = Q[o] + dQ[o]
        b13 = Q[o + 1] + dQ[o + 1]
        b23 = Q[o + 2] + dQ[o + 2]
        # C = A @ B
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
        # A = C @ T_after[i]
        F = T_after[i]
        a00 = c00 * F[0, 0] + c01 * F[1, 0] + c02 * F[2, 0]
        a01 = c00 * F[0, 1] + c01 * F[1, 1] + c02 * F[2, 1]
        a02 = c00 * F[0, 2] + c01 * F[1, 2] + c02 * F[2, 2]
        a03 = c00 * F[0, 3] + c01 * F[1, 3] + c02 * F[2, 3] + c03
        a10 = c10 * F[0, 0] + c11 * F[1, 0] + c12 * F[2, 0]
        a11 = c10 * F[0, 1] + c11 * F[1, 1] + c12 * F[2, 1]
        a12 = c10 * F[0, 2] + c11 * F[1, 2] + c12 * F[2, 2]
        a13 = c10 * F[0, 3] + c11 * F[1, 3] + c12 * F[2, 3] + c13
        a20 = c20 * F[0, 0] + c21 * F[1, 0] + c22 * F[2, 0]
        a21 = c20 * F[0, 1] + c21 * F[1, 1] + c22 * F[2, 1]
        a22 = c20 * F[0, 2] + c21 * F[1, 2] + c22 * F[2, 2]
        a23 = c20 * F[0, 3] + c21 * F[1, 3] + c22 * F[2, 3] + c23
    T[0, 0], T[0, 1], T[0, 2], T[0, 3] = a00, a01, a02, a03
    T[1, 0], T[1, 1], T[1, 2], T[1, 3] = a10, a11, a12, a13
    T[2, 0], T[2, 1], T[2, 2], T[2, 3] = a20, a21, a22, a23
    T[3, 0], T[3, 1], T[3, 2], T[3, 3] = 0.0, 0.0, 0.0, 1.0


@njit(cache=True, inline="always")
def draw_sample(s, key, b, t, T_mount, T_after, Q, trig, L_nom, T_nom, pose_sig, pose_any,
                uniform, leg_sig, joint_sig, tol, max_iter, st, z, Qp, dQ, Lp, bp, tp,
                work, Tp, R, w, e):
    """Sample ``s``: perturb, solve, exact forward kinematics, error twist.

    Inputs: ``b``/``t`` (N, 6, 3) m joints; ``T_mount`` (4, 4); ``T_after`` (N, 4, 4); ``Q`` (6N,)
    nominal pose; ``trig`` (N, 6) cos/sin of its angles; ``L_nom`` (N, 6) m its legs; ``T_nom``
    (4, 4) its tool pose; ``pose_sig`` (6N,) std (m, rad); ``pose_any``: any of them > 0;
    ``uniform``: uniform instead of Gaussian pose noise; ``leg_sig``, ``joint_sig`` m; ``tol`` m
    and ``max_iter`` for Newton.
    Scratch/outputs: ``st`` (1,) uint64; ``z`` (48N,) the sample's random numbers; ``Qp`` (6N,)
    perturbed pose; ``dQ`` (6N,) pose noise;
    ``Lp`` (N, 6) commanded legs; ``bp``/``tp`` (N, 6, 3) perturbed joints (written only with
    joint noise); ``work`` (2, 4, 4); ``Tp`` (4, 4) perturbed tool pose; ``R`` (3, 3); ``w`` (3,);
    ``e`` (6,) the error twist.
    Returns False if a platform's Newton did not converge (the sample is then invalid).
    """
    n = b.shape[0]
    st[0] = key + np.uint64(s) * _STRIDE
    # all random numbers of the sample first, in a fixed layout:
    # [6N leg errors][18N base-joint, 18N top-joint errors][6N pose errors]; one call site of
    # the (inlined) generator keeps the compiled code small
    n_leg = 6 * n if leg_sig > 0.0 else 0
    n_joint = 36 * n if joint_sig > 0.0 else 0
    n_pose = 6 * n if pose_any else 0
    m = n_leg + n_joint + n_pose
    first_uniform = n_leg + n_joint if uniform else m
    for k in range(m):
        if k >= first_uniform:
            z[k] = 1.7320508075688772 * (2.0 * _uniform(st) - 1.0)  # std 1
        else:
            z[k] = _normal(st)
    ok = True
    newton = n_leg + n_joint > 0
    if newton:
        for k in range(6 * n):
            Qp[k] = Q[k]
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
    o = n_leg + n_joint
    for k in range(6 * n):
        dQ[k] = 0.0
        if n_pose > 0:
            dQ[k] = pose_sig[k] * z[o + k]
    if newton:
        for k in range(6 * n):
            Qp[k] += dQ[k]
        forward(T_mount, T_after, Qp, Tp, work)
    else:
        forward_perturbed(T_mount, T_after, Q, dQ, trig, Tp)
        for k in range(6 * n):
            Qp[k] = Q[k] + dQ[k]
    error_twist(T_nom, Tp, e, R, w)
    return ok


@njit(cache=True)
def run_chunk(start, stop, b, t, T_mount, T_after, Q, trig, L_nom, T_nom, pose_sig, uniform,
              leg_sig, joint_sig, length_scale, tol, max_iter, key, rec, hist_p,
              hist_r, out_e, out_Q, out_L, out_b, out_t, out_ok):
    """Samples ``start .. stop - 1`` in order into one chunk record; returns (valid, failed).

    ``rec`` (CHUNK_FIELDS,) zeroed chunk record and ``hist_p``/``hist_r`` (HIST_BINS,) its
    histograms (:mod:`sims.stats`); ``length_scale`` m (``W_out``).  Debug outputs, used when
    ``out_e`` is not empty, for samples ``s < out_e.shape[0]``: ``out_e`` (n, 6) twists, ``out_Q``
    (n, 6N) perturbed poses, ``out_L`` (n, N, 6) commanded legs, ``out_b``/``out_t`` (n, N, 6, 3)
    perturbed joints, ``out_ok`` (n,).  Other arguments: :func:`draw_sample`.
    The one heavy function (everything inlined into it), compiled once for both kernels.
    """
    n = b.shape[0]
    l2 = length_scale * length_scale
    # private copies: a call that takes a slice of a shared array updates the shared refcount
    # atomically, which makes threads fight over one cache line
    bj = b.copy()
    tj = t.copy()
    Qj = Q.copy()
    st = np.empty(1, dtype=np.uint64)
    z = np.empty(48 * n)
    pose_any = False
    for k in range(pose_sig.shape[0]):
        if pose_sig[k] > 0.0:
            pose_any = True
    Qp = np.empty(6 * n)
    dQ = np.empty(6 * n)
    Lp = np.empty((n, 6))
    bp = bj.copy()
    tp = tj.copy()
    work = np.empty((2, 4, 4))
    Tp = np.empty((4, 4))
    R = np.empty((3, 3))
    w = np.empty(3)
    e = np.empty(6)
    d = np.empty(6)
    n_store = out_e.shape[0]
    cnt = 0
    bad = 0
    for s in range(start, stop):
        ok = draw_sample(s, key, bj, tj, T_mount, T_after, Qj, trig, L_nom, T_nom, pose_sig,
                         pose_any, uniform, leg_sig, joint_sig, tol, max_iter, st, z,
                         Qp, dQ, Lp, bp, tp, work, Tp, R, w, e)
        if ok:
            wsq = (e[0] * e[0] + e[1] * e[1] + e[2] * e[2]
                   + l2 * (e[3] * e[3] + e[4] * e[4] + e[5] * e[5]))
            chunk_add(e, wsq, cnt, rec, hist_p, hist_r, d)
            cnt += 1
        else:
            bad += 1
        if s < n_store:
            out_e[s] = e
            out_Q[s] = Qp
            out_ok[s] = ok
            if leg_sig > 0.0 or joint_sig > 0.0:
                out_L[s] = Lp
            else:
                out_L[s] = L_nom
            if joint_sig > 0.0:
                out_b[s] = bp
                out_t[s] = tp
            else:
                out_b[s] = bj
                out_t[s] = tj
    return cnt, bad


@njit(cache=True, parallel=True)
def mc_chunks(b, t, T_mount, T_after, Q, trig, L_nom, T_nom, pose_sig, uniform, leg_sig,
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
        cnt, bad = run_chunk(start, stop, b, t, T_mount, T_after, Q, trig, L_nom, T_nom,
                             pose_sig, uniform, leg_sig, joint_sig, length_scale, tol, max_iter,
                             key, recs[j], hists[j, 0], hists[j, 1], out_e, out_Q,
                             out_L, out_b, out_t, out_ok)
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
    return (b, t, T_mount, T_after, Q, trig, L_nom[0], T_nom, pose_sig,
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
        n_store = n_samples if return_samples is True else _as_count(return_samples,
                                                                     "return_samples")
        n_store = min(n_store, n_samples)
        if n_store > MAX_RETURN_SAMPLES:
            raise InputError(f"return_samples: at most {MAX_RETURN_SAMPLES} samples can be "
                             "returned")
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
