"""Counter-based random numbers of the Monte Carlo (Numba): SplitMix64 counters, a ziggurat.

Draw ``j`` of sample ``s`` under seed ``seed`` is SplitMix64's output function of the counter
``key(seed) + (s * 2^20 + j + 1) * gamma``: at most 2^20 draws per sample, and the streams of
different samples never overlap.  A sample is therefore a pure function of ``(seed, s)``,
whatever the chunk size, thread count or batching, and the first ``k`` samples of a long run
are the ``k`` samples of a short one.  Normals come from a 256-layer ziggurat (Marsaglia &
Tsang, the tables NumPy uses): :func:`random_block` draws the fast path for a block of
:data:`~sims.robustness.lanes.KB` lanes (vectorized), :func:`fix_rejections` finishes the ~1.5 %
of draws that leave it, with uniforms from the same sample's stream at offset 2^19.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from assemblers import _runtime  # noqa: F401  (NUMBA_CACHE_DIR in the user's cache)

from .lanes import KB

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
