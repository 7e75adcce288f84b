"""What a trajectory asks of the actuators, measured the way the host's plan check measures it
(``hardware.plan.check_trajectory``): the :class:`ActuatorLimits` of a stack, the
:class:`LimitReport` of sampled legs (:func:`limit_report`) and of a trajectory resampled onto
the stream grid as the streamer does it (:func:`resample`, :func:`stream_report`).  The time
scaling (:mod:`.timescale`) plans against these; its names are also there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..model import Assembler

STROKE_TOL_M = 1e-9
"""A leg may lie this far past its soft stroke (the optimizer's round-off; the same tolerance
as the host's plan check, ``hardware.safety.STROKE_TOL_M``)."""
REL_TOL = 1e-9  # the plan check's relative tolerance on the velocity and acceleration limits


@dataclass(frozen=True, eq=False)
class ActuatorLimits:
    """The limits every leg must keep, all (N, 6) arrays: ``soft_min``/``soft_max`` m,
    ``max_velocity`` m/s, ``max_acceleration`` m/s^2 (leg-length space, platform i's row from
    ``asm.hardware.links[i].calibration``)."""

    soft_min: np.ndarray
    soft_max: np.ndarray
    max_velocity: np.ndarray
    max_acceleration: np.ndarray

    @classmethod
    def from_assembler(cls, asm: Assembler) -> ActuatorLimits:
        cals = [link.calibration for link in asm.hardware.links]
        return cls(*(np.stack([np.asarray(getattr(c, k), float) for c in cals])
                     for k in ("soft_min", "soft_max", "max_velocity", "max_acceleration")))


@dataclass(frozen=True)
class Peak:
    """The largest demand on one kind of limit: ``limit`` ("velocity", "acceleration" or
    "stroke"), where (``platform``, ``actuator``, 0-based; ``t_s`` s), ``value`` and ``bound``
    (m/s, m/s^2; for "stroke" the leg length and the soft limit it passed, m)."""

    limit: str
    platform: int
    actuator: int
    value: float
    bound: float
    t_s: float

    @property
    def fraction(self) -> float:
        """``value / bound`` (velocity, acceleration); 1 + the excursion in m for "stroke"."""
        if self.limit == "stroke":
            return 1.0 + abs(self.value - self.bound)
        return self.value / self.bound

    def describe(self) -> str:
        where = f"platform {self.platform} actuator {self.actuator}"
        if self.limit == "stroke":
            return (f"{where} at {self.value:.6g} m, past its soft stroke limit {self.bound:.6g} m "
                    f"at t = {self.t_s:.3f} s")
        unit = "m/s" if self.limit == "velocity" else "m/s^2"
        return (f"{where} {self.limit} {self.value:.4g} {unit} of {self.bound:.4g} "
                f"({self.fraction * 100:.1f} %) at t = {self.t_s:.3f} s")


@dataclass(frozen=True)
class LimitReport:
    """What a trajectory asks of the actuators at ``rate_hz``, the way the host's plan check
    measures it: the largest ``velocity`` and ``acceleration`` (finite differences, at rest
    before and after) and ``stroke``: the first sample past a soft stroke (None: none)."""

    rate_hz: float
    velocity: Peak
    acceleration: Peak
    stroke: Peak | None = None

    @property
    def feasible(self) -> bool:
        """True when the host's plan check passes (the same tolerances)."""
        return (self.stroke is None and self.velocity.fraction <= 1 + REL_TOL
                and self.acceleration.fraction <= 1 + REL_TOL)

    @property
    def binding(self) -> Peak:
        """The limit used the most (the velocity or the acceleration peak)."""
        return max(self.velocity, self.acceleration, key=lambda p: p.fraction)

    @property
    def slowdown(self) -> float:
        """The uniform slow-down (>= 1) that would bring both peaks within the limits."""
        return max(1.0, self.velocity.fraction, math.sqrt(self.acceleration.fraction))


def limit_report(legs, rate_hz: float, limits: ActuatorLimits, t0: float = 0.0) -> LimitReport:
    """Peaks of ``legs`` (K, N, 6) m sampled at ``rate_hz`` (sample k at ``t0 + k / rate``),
    by the host's rule (``hardware.safety.check_legs``): ``|L_k - L_{k-1}| / dt`` and
    ``|L_k - 2 L_{k-1} + L_{k-2}| / dt^2`` with the actuators at rest at ``legs[0]`` before and
    at ``legs[-1]`` after; the stroke to :data:`STROKE_TOL_M`."""
    L = np.asarray(legs, dtype=np.float64)
    K = L.shape[0]
    dt = 1.0 / rate_hz
    ext = np.concatenate([L[:1], L[:1], L, L[-1:], L[-1:]], axis=0)
    vel = np.abs(np.diff(ext, axis=0)) / dt  # vel[m]: the step onto sample m - 1
    acc = np.abs(np.diff(ext, 2, axis=0)) / dt**2  # acc[m]: centred on sample m - 1

    def peak(name, d, bound):
        m, i, j = np.unravel_index(int(np.argmax(d / bound[None])), d.shape)
        k = min(max(int(m) - 1, 0), K - 1)
        return Peak(name, int(i), int(j), float(d[m, i, j]), float(bound[i, j]), t0 + k * dt)

    stroke = None
    lo = L < limits.soft_min[None] - STROKE_TOL_M
    hi = L > limits.soft_max[None] + STROKE_TOL_M
    if lo.any() or hi.any():
        k, i, j = (int(x) for x in np.argwhere(lo | hi)[0])
        bound = limits.soft_min[i, j] if lo[k, i, j] else limits.soft_max[i, j]
        stroke = Peak("stroke", i, j, float(L[k, i, j]), float(bound), t0 + k * dt)
    return LimitReport(float(rate_hz), peak("velocity", vel, limits.max_velocity),
                       peak("acceleration", acc, limits.max_acceleration), stroke)


def resample(t, legs, rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """``(tg (K,), Lg (K, N, 6))``: ``legs`` (T, N, 6) m at times ``t`` (T,) s on the stream grid
    ``t[0] + k / rate_hz``, one tick past ``t[-1]`` when the duration is not whole ticks, PCHIP
    (linear for two samples): the resampling the streamer does (``hardware.plan.resample``)."""
    t = np.asarray(t, dtype=np.float64)
    legs = np.asarray(legs, dtype=np.float64)
    if t.shape[0] == 1:
        return t.copy(), legs.copy()
    K = math.ceil((t[-1] - t[0]) * rate_hz - 1e-9) + 1
    tg = t[0] + np.arange(K) / rate_hz
    te = np.minimum(tg, t[-1])
    flat = legs.reshape(legs.shape[0], -1)
    if t.shape[0] == 2:
        Lg = np.stack([np.interp(te, t, flat[:, c]) for c in range(flat.shape[1])], axis=1)
    else:
        from scipy.interpolate import PchipInterpolator

        Lg = PchipInterpolator(t, flat, axis=0)(te)
    return tg, Lg.reshape(K, *legs.shape[1:])


def stream_report(t, legs, limits: ActuatorLimits, rate_hz: float) -> LimitReport:
    """:func:`limit_report` of a trajectory (``t`` (T,) s, ``legs`` (T, N, 6) m) as the
    streamer sees it at ``rate_hz``: resampled onto its grid first (:func:`resample`)."""
    tg, Lg = resample(t, legs, rate_hz)
    return limit_report(Lg, rate_hz, limits, t0=float(tg[0]))
