"""Host-side safety: the limits of every actuator and the gate every set-point passes through.

Two checks, one rule (``docs/hardware.md``, "Safety model"):

* :func:`check_legs` checks a *continuous* plan (leg lengths in metres on the stream grid)
  against the calibration's exact limits: soft stroke (to :data:`STROKE_TOL_M`, solver
  round-off; the planner then rounds to counts clipped to the whole counts inside the stroke),
  velocity and acceleration by finite differences, with the actuators at rest before the first
  sample and after the last.  The planner runs it before anything is sent.
* :class:`~hardware.gate.SafetyGate` (``hardware/gate.py``) is the single choke point of the
  host: the only code that produces the SETPOINT bytes a link writes, and it refuses (raises
  :class:`LimitViolation`) any set-point that, converted back to metres, is outside the soft
  stroke or, together with the set-points sent before it, exceeds the velocity or
  acceleration limit, judged on the wall time between the frames.  Set-points are whole
  counts, so rounding a compliant trajectory moves a first difference by up to one count and a
  second difference by up to two; the gate allows exactly that resolution and nothing more,
  and checks the differences over every lag m = 1..M ticks (M ticks = :data:`GATE_WINDOW_S`),
  where the allowance shrinks as 1/m and 1/m^2: for lag m,

      |L_k - L_{k-m}|            <= v_max * m*dt     + q
      |L_k - 2 L_{k-m} + L_{k-2m}| <= a_max * (m*dt)^2 + 2 q        (q = 1/scale, one count)

  Every rounding of a plan that passes :func:`check_legs` passes the gate (the lag-m bounds are
  implied by the lag-1 ones), and a burst past a limit that lasts longer than a few ticks is
  refused whatever its size relative to one count.
* :func:`check_count_range`: every count the calibration can produce inside the stroke fits
  the wire's int32 (checked for every gate, every plan and every dry run).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from assemblers.errors import InputError
from assemblers.model import ActuatorCalibration

from . import protocol as P

GATE_WINDOW_S = 0.1
"""Look-back of the gate's multi-lag checks (s); the lags go up to ceil(window / dt) ticks."""
_EPS = 1e-12  # m: float round-off in the count <-> metre conversion
STROKE_TOL_M = 1e-9
"""A planned leg length may lie this far (m) past the soft stroke (an optimizer's round-off
at an active stroke constraint); its set-point is clipped to the last whole count inside, and
the counts sent are always checked exactly."""


INT32_MIN, INT32_MAX = P.INT32_MIN, P.INT32_MAX


class LimitViolation(InputError):
    """A set-point or a plan past a limit.  Attributes: ``platform``, ``actuator`` (0-based),
    ``limit`` ("stroke", "velocity", "acceleration", "counts"), ``value`` and ``bound`` (SI
    units), ``tick`` and ``time_s`` (None when not known)."""

    def __init__(self, message: str, *, platform: int, actuator: int, limit: str,
                 value: float, bound: float, tick: int | None = None,
                 time_s: float | None = None):
        super().__init__(message)
        self.platform, self.actuator, self.limit = platform, actuator, limit
        self.value, self.bound, self.tick, self.time_s = value, bound, tick, time_s


@dataclass(frozen=True, eq=False)
class Limits:
    """Limits of one platform's six actuators, all (6,) arrays in SI units.

    ``soft_min``/``soft_max`` m, ``max_velocity`` m/s, ``max_acceleration`` m/s^2,
    ``resolution`` m per count (1/scale).
    """

    soft_min: np.ndarray
    soft_max: np.ndarray
    max_velocity: np.ndarray
    max_acceleration: np.ndarray
    resolution: np.ndarray

    @classmethod
    def from_calibration(cls, cal: ActuatorCalibration) -> Limits:
        return cls(np.asarray(cal.soft_min, float), np.asarray(cal.soft_max, float),
                   np.asarray(cal.max_velocity, float), np.asarray(cal.max_acceleration, float),
                   1.0 / np.asarray(cal.scale, float))


def window_ticks(period_s: float, window_s: float = GATE_WINDOW_S) -> int:
    """Largest lag M (ticks) of the gate's checks at stream period ``period_s``."""
    return max(1, math.ceil(window_s / period_s - 1e-9))


def count_range(cal: ActuatorCalibration) -> tuple[np.ndarray, np.ndarray]:
    """(6,) lowest and highest whole counts whose lengths lie inside the soft stroke."""
    a = np.asarray(cal.offset) + np.asarray(cal.sign) * np.asarray(cal.scale) * cal.soft_min
    b = np.asarray(cal.offset) + np.asarray(cal.sign) * np.asarray(cal.scale) * cal.soft_max
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    return np.ceil(lo - 1e-9).astype(np.int64), np.floor(hi + 1e-9).astype(np.int64)


def check_count_range(cal: ActuatorCalibration, platform: int = 0, lengths=None) -> None:
    """Raise :class:`LimitViolation` (limit "counts") unless every count of ``cal`` between
    ``lengths`` = (lo (6,), hi (6,)) m (default the soft stroke), widened by one count, fits in
    int32: the wire carries int32 counts, so a calibration that leaves that range part-way
    through the stroke could not send some set-points the plan contains."""
    lo, hi = (cal.soft_min, cal.soft_max) if lengths is None else lengths
    off = np.asarray(cal.offset, float)
    ss = np.asarray(cal.sign, float) * np.asarray(cal.scale, float)
    ends = np.stack([off + ss * np.asarray(lo, float), off + ss * np.asarray(hi, float)])
    bad = ~np.isfinite(ends) | (ends - 1 < INT32_MIN) | (ends + 1 > INT32_MAX)
    if bad.any():
        e, j = (int(x) for x in np.argwhere(bad)[0])
        L = float(np.broadcast_to(np.asarray(lo if e == 0 else hi, float), (6,))[j])
        raise LimitViolation(
            f"platform {platform} actuator {j}: the calibration maps {L:.6g} m to "
            f"{ends[e, j]:.6g} counts, outside the controller's int32 range "
            f"[{INT32_MIN}, {INT32_MAX}]: fix scale/offset", platform=platform, actuator=j,
            limit="counts", value=float(ends[e, j]), bound=float(INT32_MAX))


def check_int32(counts: np.ndarray, platform: int = 0) -> None:
    """Raise :class:`LimitViolation` if any of ``counts`` (K, 6) is outside int32."""
    c = np.asarray(counts)
    bad = (c < INT32_MIN) | (c > INT32_MAX)
    if bad.any():
        k, j = (int(x) for x in np.argwhere(bad.reshape(-1, c.shape[-1]))[0])
        v = c.reshape(-1, c.shape[-1])[k, j]
        raise LimitViolation(f"platform {platform} actuator {j}: set-point {k} has {int(v)} "
                             f"counts, outside int32", platform=platform, actuator=j,
                             limit="counts", value=float(v), bound=float(INT32_MAX), tick=k)


def _fmt_t(time_s: float | None, tick: int | None) -> str:
    parts = []
    if time_s is not None:
        parts.append(f"t = {time_s:.4f} s")
    if tick is not None:
        parts.append(f"tick {tick}")
    return " at " + ", ".join(parts) if parts else ""


def _violation(platform, actuator, limit, value, bound, unit, tick=None, time_s=None,
               what="set-point", allowance="") -> LimitViolation:
    msg = (f"platform {platform} actuator {actuator}: {what} {limit} {value:.6g} {unit}"
           f"{_fmt_t(time_s, tick)} exceeds the limit {bound:.6g} {unit}{allowance}")
    return LimitViolation(msg, platform=platform, actuator=actuator, limit=limit, value=value,
                          bound=bound, tick=tick, time_s=time_s)


def check_legs(legs: np.ndarray, limits: list[Limits] | tuple[Limits, ...], period_s: float,
               *, times: np.ndarray | None = None, labels: list[str] | None = None,
               rest_before: np.ndarray | None = None, margin_counts: float = 0.0) -> None:
    """Check a continuous plan against the exact limits; raise :class:`LimitViolation` on the
    earliest violation (naming platform, actuator, time and limit).

    ``legs``: (K, N, 6) m on a grid of period ``period_s`` s; the actuators are taken to be at
    rest at ``rest_before`` (N, 6) m (default ``legs[0]``; its stroke is checked without the
    margin) before it and at ``legs[-1]`` after it.  ``times``: (K,) s used in the
    message (default ``k * period_s``); ``labels``: (K,) optional phrase per sample (e.g.
    "during the approach ramp").  The stroke is checked to :data:`STROKE_TOL_M`, shrunk by
    ``margin_counts`` counts if given.
    """
    legs = np.asarray(legs, dtype=np.float64)
    K, N, _ = legs.shape
    if not np.all(np.isfinite(legs)):
        k, i, j = (int(x) for x in np.argwhere(~np.isfinite(legs))[0])
        raise LimitViolation(f"platform {i} actuator {j}: non-finite leg length at sample {k}",
                             platform=i, actuator=j, limit="stroke", value=float("nan"),
                             bound=float("nan"), tick=k)
    dt = float(period_s)
    t = np.arange(K) * dt if times is None else np.asarray(times, float)
    smin = np.stack([lim.soft_min + margin_counts * lim.resolution for lim in limits])
    smax = np.stack([lim.soft_max - margin_counts * lim.resolution for lim in limits])
    vmax = np.stack([lim.max_velocity for lim in limits])
    amax = np.stack([lim.max_acceleration for lim in limits])
    rb = legs[:1] if rest_before is None else np.asarray(rest_before, float)[None]
    if rest_before is not None:
        lo = np.stack([lim.soft_min for lim in limits])
        hi = np.stack([lim.soft_max for lim in limits])
        out = (rb[0] < lo - STROKE_TOL_M) | (rb[0] > hi + STROKE_TOL_M)
        if out.any():
            i, j = (int(x) for x in np.argwhere(out)[0])
            v = rb[0, i, j]
            raise LimitViolation(
                f"platform {i} actuator {j}: the actuator is at {v:.6g} m, outside its soft "
                f"stroke [{lo[i, j]:.6g}, {hi[i, j]:.6g}] m: move it back inside by other means "
                "before streaming", platform=i, actuator=j, limit="stroke", value=float(v),
                bound=float(lo[i, j] if v < lo[i, j] else hi[i, j]), tick=None)
    ext = np.concatenate([rb, rb, legs, legs[-1:], legs[-1:]], axis=0)  # at rest before/after
    vel = np.diff(ext, axis=0) / dt  # (K+3, N, 6): vel[i] between ext[i] and ext[i+1]
    acc = np.diff(ext, 2, axis=0) / dt**2  # (K+2, N, 6): centred on ext[i+1]
    candidates = []  # (sample index, violation)

    def label(k):
        return "" if labels is None or not labels[k] else f" ({labels[k]})"

    lo_bad = legs < smin[None] - STROKE_TOL_M
    hi_bad = legs > smax[None] + STROKE_TOL_M
    if lo_bad.any() or hi_bad.any():
        bad = lo_bad | hi_bad
        k, i, j = (int(x) for x in np.argwhere(bad)[0])
        lim = smin[i, j] if lo_bad[k, i, j] else smax[i, j]
        side = "soft_min" if lo_bad[k, i, j] else "soft_max"
        v = legs[k, i, j]
        e = LimitViolation(
            f"platform {i} actuator {j}: leg length {v:.9g} m at t = {t[k]:.4f} s{label(k)} is "
            f"outside the soft stroke ({side} {lim:.9g} m)",
            platform=i, actuator=j, limit="stroke", value=float(v), bound=float(lim), tick=k,
            time_s=float(t[k]))
        candidates.append((k, 0, e))
    vbad = np.abs(vel) > vmax[None] * (1 + 1e-9)
    if vbad.any():
        m, i, j = (int(x) for x in np.argwhere(vbad)[0])
        k = min(max(m - 1, 0), K - 1)  # the sample the step arrives at
        e = _violation(i, j, "velocity", abs(vel[m, i, j]), vmax[i, j], "m/s",
                       time_s=float(t[k]), what="plan" + label(k))
        candidates.append((k, 1, e))
    abad = np.abs(acc) > amax[None] * (1 + 1e-9)
    if abad.any():
        m, i, j = (int(x) for x in np.argwhere(abad)[0])
        k = min(m, K - 1)  # the latest sample involved: the set-point that causes it
        where = (" (starting from rest)" if m == 0 else
                 " (the plan ends moving: stopping after the last sample)" if m == K else "")
        e = _violation(i, j, "acceleration", abs(acc[m, i, j]), amax[i, j], "m/s^2",
                       time_s=float(t[k]), what="plan" + label(k) + where)
        candidates.append((k, 2, e))
    if candidates:
        raise min(candidates, key=lambda c: (c[0], c[1]))[2]


def verify_counts(counts: np.ndarray, start_counts: np.ndarray, cal: ActuatorCalibration,
                  period_s: float, *, platform: int = 0, window_s: float = GATE_WINDOW_S) -> None:
    """Run a whole set-point sequence through the gate's rule at once (vectorised); raise
    :class:`LimitViolation` at the first set-point the gate would refuse.

    ``counts``: (K, 6) integer counts, sent after the actuators rested at ``start_counts`` (6,).
    """
    counts = np.asarray(counts)
    check_count_range(cal, platform)
    check_int32(counts, platform)
    M = window_ticks(period_s, window_s)
    lim = Limits.from_calibration(cal)
    hist = np.repeat(np.asarray(start_counts)[None], 2 * M, axis=0)
    X = cal.to_length(np.concatenate([hist, counts], axis=0))  # (2M + K, 6)
    K = counts.shape[0]
    if K == 0:
        return
    L = X[2 * M:]
    first: list[tuple[int, LimitViolation]] = []
    bad = (L < lim.soft_min - _EPS) | (L > lim.soft_max + _EPS)
    if bad.any():
        k, j = (int(x) for x in np.argwhere(bad)[0])
        bound = lim.soft_min[j] if L[k, j] < lim.soft_min[j] else lim.soft_max[j]
        first.append((k, _violation(platform, j, "position", L[k, j], bound, "m", tick=k)))
    dt = period_s
    for m in range(1, M + 1):
        d1 = np.abs(L - X[2 * M - m:2 * M - m + K])
        b1 = lim.max_velocity * m * dt + lim.resolution + _EPS
        d2 = np.abs(L - 2 * X[2 * M - m:2 * M - m + K] + X[2 * M - 2 * m:2 * M - 2 * m + K])
        b2 = lim.max_acceleration * (m * dt) ** 2 + 2 * lim.resolution + _EPS
        for d, b, name in ((d1, b1, "velocity"), (d2, b2, "acceleration")):
            over = d > b
            if over.any():
                k, j = (int(x) for x in np.argwhere(over)[0])
                if name == "velocity":
                    e = _gate_violation(platform, j, name, d[k, j] / (m * dt),
                                        lim.max_velocity[j], "m/s", m, k)
                else:
                    e = _gate_violation(platform, j, name, d[k, j] / (m * dt) ** 2,
                                        lim.max_acceleration[j], "m/s^2", m, k)
                first.append((k, e))
    if first:
        raise min(first, key=lambda c: c[0])[1]


def _gate_violation(platform, actuator, name, value, bound, unit, lag, tick, over_s=None):
    wall = "" if over_s is None else f" sent within {over_s * 1e3:.3g} ms"
    allow = f" (+ one count of resolution, over {lag} tick{'s' if lag > 1 else ''}{wall})"
    return _violation(platform, actuator, name, value, bound, unit, tick=tick,
                      allowance=allow)


def __getattr__(name):  # hardware.safety.SafetyGate lives in hardware.gate (imported lazily:
    if name == "SafetyGate":  # gate imports this module)
        from .gate import SafetyGate

        return SafetyGate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
