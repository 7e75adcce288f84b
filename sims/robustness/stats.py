"""Streaming statistics of end-effector error twists, in fixed memory and a deterministic order.

The Monte Carlo kernels (:mod:`.chunks`, :mod:`.lanes`) cut the sample index range into fixed-size
*chunks*.  Each chunk fills a small record (see :data:`CHUNK_FIELDS`): its count, shifted sums of
the error twist ``e = (dp, dtheta)`` and of its outer products, shifted sums of the weighted
squared error ``w = |W_out e|^2``, the maxima of ``|dp|`` and ``|dtheta|`` and two fixed-size
histograms of those magnitudes.  :class:`StreamingStats` merges the chunk records **in chunk
order** (Chan, Golub & LeVeque's pairwise update for mean and co-moments), so the result depends
only on the samples and the chunk size, never on the thread count or the batching.

Histogram (for percentiles): log-linear bins, like HdrHistogram.  A magnitude ``x`` in octave
``[2^o, 2^(o+1))`` (``o`` from :data:`HIST_OCT_MIN` to :data:`HIST_OCT_MAX`) falls into one of
:data:`HIST_SUB` = 128 equal sub-bins of that octave, so every bin's width is at most
``1/128 = 0.78 %`` of its lower edge.  Percentiles interpolate linearly inside the bin, so their
error is below one bin width (0.78 %, relative) and in practice far smaller.  Bin 0 holds
``x < 2^-50`` m or rad (about 9e-16, including exact zeros); the last bin holds ``x >= 2^10``
and non-finite values.  Two such histograms (2 x 7682 int64) are 123 kB, whatever the sample
count.

Units: positions in m, rotations in rad (rotation vector, world frame; docs/conventions.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from assemblers import _runtime  # noqa: F401  (NUMBA_CACHE_DIR in the user's cache)
from assemblers.optim.linalg import copy_into

# ----------------------------------------------------------------------------- histogram layout

HIST_SUB = 128  # sub-bins per octave: relative bin width <= 1/128
HIST_OCT_MIN = -50  # lowest octave: [2^-50, 2^-49)
HIST_OCT_MAX = 9  # highest octave: [2^9, 2^10)
HIST_BINS = 2 + (HIST_OCT_MAX - HIST_OCT_MIN + 1) * HIST_SUB  # + underflow and overflow bins
HIST_RESOLUTION = 1.0 / HIST_SUB  # relative width of a bin (upper bound on percentile error)

# Per-chunk float record: shift (6), S1 (6), S2 (36), w shift, Sw, Sww, max |dp|, max |dtheta|.
F_SHIFT, F_S1, F_S2 = 0, 6, 12
F_W0, F_SW, F_SWW, F_MAXP, F_MAXR = 48, 49, 50, 51, 52
CHUNK_FIELDS = 53


def hist_edges() -> np.ndarray:
    """(HIST_BINS + 1,) bin edges (m or rad); edge 0 is 0 and the last edge is ``inf``."""
    octs = np.arange(HIST_OCT_MIN, HIST_OCT_MAX + 1, dtype=np.float64)
    sub = np.arange(HIST_SUB, dtype=np.float64) / HIST_SUB
    inner = (np.exp2(octs)[:, None] * (1.0 + sub[None, :])).ravel()
    return np.concatenate([[0.0], inner, [2.0 ** (HIST_OCT_MAX + 1), np.inf]])


_HIST_SHIFT = 52 - 7  # keep the exponent and the top 7 mantissa bits (HIST_SUB = 2^7)
_HIST_BASE = (1023 + HIST_OCT_MIN) * HIST_SUB - 1
assert HIST_SUB == 1 << (52 - _HIST_SHIFT)


@njit(cache=True, inline="always")
def hist_index(x):
    """Bin of a magnitude ``x >= 0`` (see the module docstring): the IEEE-754 bits of a positive
    double, exponent and top mantissa bits, are monotone in ``x``, so the bin is a shift."""
    if x != x:  # nan
        return HIST_BINS - 1
    i = (np.float64(x).view(np.int64) >> _HIST_SHIFT) - _HIST_BASE
    if i < 1:
        return 0
    if i > HIST_BINS - 1:
        return HIST_BINS - 1
    return i


@njit(cache=True, inline="always")
def chunk_add(e, wsq, n_in_chunk, rec, hist_p, hist_r, d):
    """Add one error twist ``e`` (6,) (m, rad) with weighted squared error ``wsq`` (m^2) to a
    chunk record ``rec`` (CHUNK_FIELDS,) and its histograms ``hist_p``/``hist_r`` (HIST_BINS,).
    ``n_in_chunk``: samples already in the chunk (the first one sets the shift); ``d`` (6,)
    scratch."""
    if n_in_chunk == 0:
        for k in range(6):
            rec[F_SHIFT + k] = e[k]
        rec[F_W0] = wsq
    for k in range(6):
        d[k] = e[k] - rec[F_SHIFT + k]
        rec[F_S1 + k] += d[k]
    for i in range(6):
        for j in range(i, 6):
            rec[F_S2 + 6 * i + j] += d[i] * d[j]
    dw = wsq - rec[F_W0]
    rec[F_SW] += dw
    rec[F_SWW] += dw * dw
    mp = math.sqrt(e[0] * e[0] + e[1] * e[1] + e[2] * e[2])
    mr = math.sqrt(e[3] * e[3] + e[4] * e[4] + e[5] * e[5])
    if mp > rec[F_MAXP]:
        rec[F_MAXP] = mp
    if mr > rec[F_MAXR]:
        rec[F_MAXR] = mr
    hist_p[hist_index(mp)] += 1
    hist_r[hist_index(mr)] += 1


@njit(cache=True)
def _merge_chunks(counts, recs, tot_n, tot_mean, tot_m2, tot_w):
    """Chan's pairwise merge of chunk records into running totals, in chunk order.

    ``counts`` (C,) int64; ``recs`` (C, CHUNK_FIELDS); ``tot_mean`` (6,), ``tot_m2`` (6, 6) and
    ``tot_w`` (4,) = (mean w, M2 w, max |dp|, max |dtheta|) updated in place.  Returns the new
    total count.
    """
    n_a = tot_n
    mean_b = np.empty(6)
    m2_b = np.empty((6, 6))
    for c in range(counts.shape[0]):
        n_b = counts[c]
        if n_b == 0:
            continue
        rec = recs[c]
        for k in range(6):
            mean_b[k] = rec[F_SHIFT + k] + rec[F_S1 + k] / n_b
        for i in range(6):
            for j in range(i, 6):
                v = rec[F_S2 + 6 * i + j] - rec[F_S1 + i] * rec[F_S1 + j] / n_b
                m2_b[i, j] = v
                m2_b[j, i] = v
        wmean_b = rec[F_W0] + rec[F_SW] / n_b
        wm2_b = rec[F_SWW] - rec[F_SW] * rec[F_SW] / n_b
        n = n_a + n_b
        if n_a == 0:
            copy_into(tot_mean, mean_b)
            copy_into(tot_m2, m2_b)
            tot_w[0] = wmean_b
            tot_w[1] = wm2_b
        else:
            f = n_b / n
            g = n_a * n_b / n
            for i in range(6):
                di = mean_b[i] - tot_mean[i]
                for j in range(6):
                    dj = mean_b[j] - tot_mean[j]
                    tot_m2[i, j] += m2_b[i, j] + di * dj * g
            for i in range(6):
                tot_mean[i] += (mean_b[i] - tot_mean[i]) * f
            dw = wmean_b - tot_w[0]
            tot_w[1] += wm2_b + dw * dw * g
            tot_w[0] += dw * f
        tot_w[2] = max(tot_w[2], rec[F_MAXP])
        tot_w[3] = max(tot_w[3], rec[F_MAXR])
        n_a = n
    return n_a


@njit(cache=True)
def fill_chunk_records(errors, length_scale, chunk_size, counts, recs, hists):
    """Chunk records of stored samples ``errors`` (n, 6) (m, rad): the same arithmetic as the
    kernels, for samples computed elsewhere (tests, the NumPy baseline).  ``counts`` (C,),
    ``recs`` (C, CHUNK_FIELDS) and ``hists`` (C, 2, HIST_BINS) must be zeroed,
    ``C = ceil(n / chunk_size)``."""
    l2 = length_scale * length_scale
    d = np.empty(6)
    for c in range(counts.shape[0]):
        start = c * chunk_size
        stop = min(start + chunk_size, errors.shape[0])
        for s in range(start, stop):
            e = errors[s]
            wsq = (e[0] * e[0] + e[1] * e[1] + e[2] * e[2]
                   + l2 * (e[3] * e[3] + e[4] * e[4] + e[5] * e[5]))
            chunk_add(e, wsq, counts[c], recs[c], hists[c, 0], hists[c, 1], d)
            counts[c] += 1


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class ErrorStats:
    """Statistics of the tool's error twist ``e = (dp, dtheta)`` over Monte Carlo samples.

    Frames and units (docs/conventions.md): ``dp`` (m) position error, world frame; ``dtheta`` (rad) rotation
    vector of ``R_perturbed R_nominal^T``, world frame.

    Attributes:
        n: samples in the statistics (successful ones).
        n_failed: samples whose perturbed pose could not be computed (a platform's Newton did not
            converge: the perturbed legs/joints have no nearby assembly); left out of everything.
        mean: (6,) mean twist (m, m, m, rad, rad, rad).
        cov: (6, 6) covariance of the twist (unbiased, ``n - 1``).
        rms_position: m, ``sqrt(E |dp|^2)``.
        rms_rotation: rad, ``sqrt(E |dtheta|^2)``.
        mean_sq_weighted: m^2, ``E || W_out e ||^2`` with ``W_out = diag(1,1,1,l,l,l)``; to first
            order it equals the squared sensitivity cost ``|| W_out J W_in ||_F^2`` (docs/conventions.md).
        sem_sq_weighted: m^2, standard error of ``mean_sq_weighted``.
        length_scale: m, the ``l`` of ``W_out``.
        p50_position, p95_position, p99_position: m, percentiles of ``|dp|`` (histogram, relative
            resolution :data:`HIST_RESOLUTION`).
        p50_rotation, p95_rotation, p99_rotation: rad, percentiles of ``|dtheta|``.
        max_position: m; max_rotation: rad (exact).
        hist_position, hist_rotation: (HIST_BINS,) int64 counts of ``|dp|`` / ``|dtheta|`` over
            :func:`hist_edges`.
    """

    n: int
    n_failed: int
    mean: np.ndarray
    cov: np.ndarray
    rms_position: float
    rms_rotation: float
    mean_sq_weighted: float
    sem_sq_weighted: float
    length_scale: float
    p50_position: float
    p95_position: float
    p99_position: float
    p50_rotation: float
    p95_rotation: float
    p99_rotation: float
    max_position: float
    max_rotation: float
    hist_position: np.ndarray = field(repr=False)
    hist_rotation: np.ndarray = field(repr=False)

    @property
    def rms_weighted(self) -> float:
        """m, ``sqrt(E || W_out e ||^2)``: compare with the sensitivity cost."""
        return math.sqrt(self.mean_sq_weighted)

    def percentile(self, q: float, which: str = "position") -> float:
        """Percentile ``q`` (0..100) of ``|dp|`` (which="position", m) or ``|dtheta|``
        ("rotation", rad), from the histogram."""
        if which not in ("position", "rotation"):
            raise ValueError(f"which: 'position' or 'rotation', got {which!r}")
        h = self.hist_position if which == "position" else self.hist_rotation
        top = self.max_position if which == "position" else self.max_rotation
        return hist_percentile(h, q, top)

    def to_dict(self, histograms: bool = False) -> dict:
        """JSON-ready dict (floats and lists).  With ``histograms``, the non-empty bins as
        ``{"lower": [...], "upper": [...], "count": [...]}`` per magnitude."""
        d = {
            "n": self.n, "n_failed": self.n_failed,
            "mean": self.mean.tolist(), "cov": self.cov.tolist(),
            "rms_position_m": self.rms_position, "rms_rotation_rad": self.rms_rotation,
            "mean_sq_weighted_m2": self.mean_sq_weighted,
            "sem_sq_weighted_m2": self.sem_sq_weighted,
            "rms_weighted_m": self.rms_weighted, "length_scale_m": self.length_scale,
            "p50_position_m": self.p50_position, "p95_position_m": self.p95_position,
            "p99_position_m": self.p99_position, "p50_rotation_rad": self.p50_rotation,
            "p95_rotation_rad": self.p95_rotation, "p99_rotation_rad": self.p99_rotation,
            "max_position_m": self.max_position, "max_rotation_rad": self.max_rotation,
            "percentile_resolution_rel": HIST_RESOLUTION,
        }
        d = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
             for k, v in d.items()}
        if self.n == 0:
            d["mean"] = d["cov"] = None
        elif self.n == 1:
            d["cov"] = None
        if histograms:
            edges = hist_edges()
            for name, h in (("hist_position_m", self.hist_position),
                            ("hist_rotation_rad", self.hist_rotation)):
                nz = np.flatnonzero(h)
                d[name] = {"lower": edges[nz].tolist(),
                           "upper": [float(x) if np.isfinite(x) else None for x in edges[nz + 1]],
                           "count": h[nz].tolist()}
        return d


def hist_percentile(hist: np.ndarray, q: float, top: float = np.inf) -> float:
    """Percentile ``q`` (0..100) from a :func:`hist_edges` histogram, linear inside the bin
    (clamped to ``top``, the exact maximum when known).  NaN for an empty histogram."""
    total = int(hist.sum())
    if total == 0:
        return float("nan")
    target = q / 100.0 * total
    cum = np.cumsum(hist)
    i = int(np.searchsorted(cum, target, side="left"))
    i = min(i, hist.size - 1)
    edges = hist_edges()
    lo, hi = edges[i], edges[i + 1]
    if not np.isfinite(hi):
        return float(top)
    before = cum[i] - hist[i]
    frac = (target - before) / hist[i] if hist[i] else 0.0
    return float(min(lo + frac * (hi - lo), top))


class StreamingStats:
    """Running merge of chunk records (fixed memory): feed batches of chunks **in chunk order**
    with :meth:`merge`, read the result with :meth:`result`.

    ``length_scale``: m, the ``l`` of ``W_out`` (kept in the result).
    """

    def __init__(self, length_scale: float = 1.0):
        self.length_scale = float(length_scale)
        self.n = 0
        self.n_failed = 0
        self.mean = np.zeros(6)
        self.m2 = np.zeros((6, 6))
        self.w = np.zeros(4)  # mean w, M2 w, max |dp|, max |dtheta|
        self.hist = np.zeros((2, HIST_BINS), dtype=np.int64)

    def merge(self, counts: np.ndarray, recs: np.ndarray, hists: np.ndarray,
              failed: np.ndarray | int = 0) -> None:
        """Merge chunk records: ``counts`` (C,) int64, ``recs`` (C, CHUNK_FIELDS),
        ``hists`` (C, 2, HIST_BINS) int64, ``failed`` failed-sample counts (C,) or a total."""
        self.n = int(_merge_chunks(np.ascontiguousarray(counts, dtype=np.int64),
                                   np.ascontiguousarray(recs), self.n, self.mean, self.m2, self.w))
        self.hist += hists.sum(axis=0)
        self.n_failed += int(np.sum(failed))

    def add_samples(self, errors: np.ndarray, chunk_size: int = 16384) -> None:
        """Merge stored error twists ``errors`` (n, 6) (m, rad), as chunks of ``chunk_size``."""
        errors = np.ascontiguousarray(errors, dtype=np.float64).reshape(-1, 6)
        c = max(1, -(-errors.shape[0] // chunk_size))
        counts = np.zeros(c, dtype=np.int64)
        recs = np.zeros((c, CHUNK_FIELDS))
        hists = np.zeros((c, 2, HIST_BINS), dtype=np.int64)
        fill_chunk_records(errors, self.length_scale, chunk_size, counts, recs, hists)
        self.merge(counts, recs, hists)

    def result(self) -> ErrorStats:
        """The :class:`ErrorStats` of everything merged so far."""
        n = self.n
        cov = self.m2 / (n - 1) if n > 1 else np.full((6, 6), np.nan)
        if n > 0:
            second = np.diag(self.m2) / n + self.mean**2  # E[e_k^2], exact from the merge
            msp = float(second[:3].sum())
            msr = float(second[3:].sum())
        else:
            msp = msr = float("nan")
        l2 = self.length_scale**2
        msw = msp + l2 * msr
        sem = math.sqrt(self.w[1] / (n - 1) / n) if n > 1 else float("nan")
        hp, hr = self.hist[0].copy(), self.hist[1].copy()
        mp, mr = float(self.w[2]), float(self.w[3])
        pc = {f"p{q}_{w}": hist_percentile(h, q, top)
              for q in (50, 95, 99) for w, h, top in (("position", hp, mp), ("rotation", hr, mr))}
        mean, cov = self.mean.copy(), cov.copy()
        for a in (mean, cov, hp, hr):
            a.setflags(write=False)
        return ErrorStats(
            n=n, n_failed=self.n_failed, mean=mean, cov=cov,
            rms_position=math.sqrt(msp) if n else float("nan"),
            rms_rotation=math.sqrt(msr) if n else float("nan"),
            mean_sq_weighted=msw, sem_sq_weighted=sem, length_scale=self.length_scale,
            max_position=mp if n else float("nan"), max_rotation=mr if n else float("nan"),
            hist_position=hp, hist_rotation=hr, **pc)


def stats_from_samples(errors: np.ndarray, length_scale: float = 1.0,
                       chunk_size: int = 16384) -> ErrorStats:
    """:class:`ErrorStats` of stored error twists ``errors`` (n, 6) (m, rad)."""
    acc = StreamingStats(length_scale)
    acc.add_samples(errors, chunk_size)
    return acc.result()
