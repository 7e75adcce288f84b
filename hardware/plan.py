"""Stream plans: a trajectory resampled onto the stream grid, an approach ramp from where the
actuators are, converted to counts and checked against every limit before anything is sent.

A :class:`Plan` holds, for K ticks at ``rate_hz``, the set-points of N platforms: ``legs``
(K, N, 6) m and ``counts`` (K, N, 6) int64.  Its first ``n_ramp`` ticks are the approach ramp
(a quintic, minimum-jerk move from rest at the measured position to rest at the trajectory's
first point, synchronised over all 6N actuators, slow enough for the tightest velocity and
acceleration limit); the rest is the trajectory.  The actuators are taken to rest before the
first tick and to stop at the last one, and the plan is checked that way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from assemblers.errors import InputError
from assemblers.model import ActuatorCalibration, Assembler

from .safety import Limits, LimitViolation, check_count_range, check_legs, count_range, verify_counts

RAMP_MARGIN = 1.05
"""The approach ramp's duration is this much longer than the limits allow at the least."""
INTERPOLATIONS = ("pchip", "linear")
MAX_PLAN_SETPOINTS = 2_000_000
"""The most set-points (ticks x platforms) a plan may hold: 33 min at 1 kHz for one platform,
11 min for three, 5.5 h at 100 Hz for one.  It bounds the memory (a few arrays of
set-points x 6 float64) and the time of the plan check (a few microseconds per tick at 1 kHz);
a longer motion is streamed in parts."""


def check_plan_size(ticks: int, n_platforms: int, rate_hz: float) -> None:
    """Raise :class:`~assemblers.errors.InputError` if a plan of ``ticks`` ticks for
    ``n_platforms`` platforms exceeds :data:`MAX_PLAN_SETPOINTS`."""
    if ticks * n_platforms > MAX_PLAN_SETPOINTS:
        raise InputError(f"the plan would hold {ticks} ticks x {n_platforms} platform(s) = "
                         f"{ticks * n_platforms} set-points ({ticks / rate_hz:.6g} s at "
                         f"{rate_hz:g} Hz), more than the {MAX_PLAN_SETPOINTS} a plan may hold: "
                         "stream the motion in parts, or at a lower rate")


@dataclass(frozen=True, eq=False)
class Plan:
    """A checked stream plan.

    ``rate_hz``: stream rate; ``legs``: (K, N, 6) m; ``counts``: (K, N, 6) int64 set-points;
    ``t``: (K,) s, trajectory time of each tick (``t0 + (k - n_ramp) / rate``; the ramp has
    negative times); ``n_ramp``: ticks of approach ramp at the start; ``start_counts``:
    (N, 6) int64, where the actuators rest before tick 0; ``source``: what was planned.
    """

    rate_hz: float
    legs: np.ndarray
    counts: np.ndarray
    t: np.ndarray
    n_ramp: int
    start_counts: np.ndarray
    source: str = ""

    @property
    def n_ticks(self) -> int:
        return int(self.counts.shape[0])

    @property
    def n_platforms(self) -> int:
        return int(self.counts.shape[1])

    @property
    def period_s(self) -> float:
        return 1.0 / self.rate_hz

    @property
    def duration_s(self) -> float:
        return self.n_ticks / self.rate_hz


def home_legs(asm: Assembler) -> np.ndarray:
    """(N, 6) m, commanded leg lengths of every platform at its home pose (x = y = 0, no
    rotation, z = home_height), computed directly from the joints with NumPy."""
    out = []
    for p in asm.platforms:
        top = np.asarray(p.top_joints) + np.array([0.0, 0.0, p.home_height])
        out.append(np.linalg.norm(top - np.asarray(p.base_joints), axis=1))
    return asm.commanded_lengths(np.array(out))  # geometric -> what the actuators report


def calibrations(asm: Assembler) -> list[ActuatorCalibration]:
    return [link.calibration for link in asm.hardware.links]


def resample(t: np.ndarray, legs: np.ndarray, rate_hz: float, interp: str = "pchip"
             ) -> tuple[np.ndarray, np.ndarray]:
    """Resample a trajectory onto the stream grid.

    ``t``: (T,) s, strictly increasing; ``legs``: (T, N, 6) m.  Returns ``(tg, Lg)``: the grid
    ``tg = t[0] + k / rate_hz`` (K,) s, extended by one tick past ``t[-1]`` when the duration is
    not a whole number of ticks (that last sample is ``legs[-1]``), and ``Lg`` (K, N, 6) m.
    ``interp``: "pchip" (shape-preserving cubic: continuous velocity, no overshoot beyond the
    samples) or "linear".
    """
    t = np.asarray(t, dtype=np.float64)
    legs = np.asarray(legs, dtype=np.float64)
    if interp not in INTERPOLATIONS:
        raise ValueError(f"interp must be one of {INTERPOLATIONS}, got {interp!r}")
    if t.shape[0] == 1:
        return t.copy(), legs.copy()
    dur = t[-1] - t[0]
    K = math.ceil(dur * rate_hz - 1e-9) + 1
    check_plan_size(K, int(np.prod(legs.shape[1:-1])) if legs.ndim > 2 else 1, rate_hz)
    tg = t[0] + np.arange(K) / rate_hz
    te = np.minimum(tg, t[-1])
    flat = legs.reshape(legs.shape[0], -1)
    if interp == "linear" or t.shape[0] == 2:
        Lg = np.stack([np.interp(te, t, flat[:, c]) for c in range(flat.shape[1])], axis=1)
    else:
        from scipy.interpolate import PchipInterpolator

        Lg = PchipInterpolator(t, flat, axis=0)(te)
    return tg, Lg.reshape(K, *legs.shape[1:])


def quintic_ramp(start: np.ndarray, end: np.ndarray, limits: list[Limits], rate_hz: float,
                 margin: float = RAMP_MARGIN) -> np.ndarray:
    """Samples (R, N, 6) m of a synchronised quintic (minimum-jerk) move from rest at
    ``start`` (N, 6) m to rest at ``end`` (N, 6) m, ending exactly at ``end``; R = 0 when they
    are equal.

    The shape s(u) = 10u^3 - 15u^4 + 6u^5 has peak speed 1.875 D/T and peak acceleration
    (10/sqrt(3)) D/T^2 for a distance D in time T, so T is the largest over the actuators of
    max(1.875 D / v_max, sqrt(5.7735 D / a_max)), times ``margin``, rounded up to whole ticks.
    """
    start = np.asarray(start, float)
    end = np.asarray(end, float)
    D = np.abs(end - start)
    if not np.any(D > 0):
        return np.zeros((0, *start.shape))
    vmax = np.stack([lim.max_velocity for lim in limits])
    amax = np.stack([lim.max_acceleration for lim in limits])
    T = float(np.max(np.maximum(1.875 * D / vmax, np.sqrt(10 / math.sqrt(3) * D / amax))))
    R = max(1, math.ceil(T * margin * rate_hz))
    check_plan_size(R, start.shape[0] if start.ndim > 1 else 1, rate_hz)
    u = np.arange(1, R + 1) / R
    s = u**3 * (10 - 15 * u + 6 * u**2)
    out = start[None] + s[:, None, None] * (end - start)[None]
    out[-1] = end
    return out


def to_counts(legs: np.ndarray, cals: list[ActuatorCalibration]) -> np.ndarray:
    """``legs``: (K, N, 6) m -> (K, N, 6) int64 counts (each platform's calibration), rounded
    to the nearest count and clipped to the whole counts inside the soft stroke (so a leg at
    the stroke limit, or within :data:`~hardware.safety.STROKE_TOL_M` past it, gets the last
    count inside)."""
    out = []
    for i, cal in enumerate(cals):
        lo, hi = count_range(cal)
        out.append(np.clip(cal.to_counts(legs[:, i]), lo, hi))
    return np.stack(out, axis=1)


def check_trajectory(t: np.ndarray, legs: np.ndarray, cals: list[ActuatorCalibration],
                     rate_hz: float, interp: str = "pchip") -> tuple[np.ndarray, np.ndarray]:
    """Resample a trajectory and check it on its own (starting and ending at rest); no I/O.

    Returns the grid ``(tg (K,) s, legs (K, N, 6) m)``; raises :class:`LimitViolation` (a
    limit, legs of the wrong shape, a calibration whose counts leave int32 inside the stroke)
    or :class:`~assemblers.errors.InputError` (a ``ValueError``: non-finite values, times that
    are not strictly increasing or do not match the legs, a plan too long).
    """
    for i, cal in enumerate(cals):
        check_count_range(cal, i)
    legs = np.asarray(legs, float)
    if legs.ndim != 3 or legs.shape[2] != 6 or legs.shape[1] != len(cals):
        raise LimitViolation(f"trajectory legs must have shape (T, {len(cals)}, 6) for this "
                             f"config's {len(cals)} platforms, got {legs.shape}", platform=-1,
                             actuator=-1, limit="shape", value=float("nan"),
                             bound=float("nan"))
    finite_legs(legs, "trajectory legs")
    t = np.asarray(t, float)
    if t.ndim != 1 or t.shape[0] != legs.shape[0]:
        raise InputError(f"trajectory times must have shape ({legs.shape[0]},) like the legs, "
                         f"got {t.shape}")
    if not np.isfinite(t).all():
        raise InputError(f"trajectory times: non-finite value at index "
                         f"{int(np.flatnonzero(~np.isfinite(t))[0])}")
    if t.shape[0] > 1 and not (np.diff(t) > 0).all():
        raise InputError(f"trajectory times must be strictly increasing (index "
                         f"{int(np.flatnonzero(np.diff(t) <= 0)[0]) + 1})")
    tg, Lg = resample(t, legs, rate_hz, interp)
    check_legs(Lg, [Limits.from_calibration(c) for c in cals], 1.0 / rate_hz, times=tg)
    return tg, Lg


def finite_legs(legs: np.ndarray, what: str = "legs") -> np.ndarray:
    """``legs`` as float64, or ``ValueError`` naming the first non-finite entry (m)."""
    legs = np.asarray(legs, float)
    bad = ~np.isfinite(legs)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(f"{what}: non-finite value {legs[idx]} at index {idx}")
    return legs


def build_plan(tg: np.ndarray, Lg: np.ndarray, cals: list[ActuatorCalibration], rate_hz: float,
               start_counts: np.ndarray | None = None, source: str = "") -> Plan:
    """Prepend the approach ramp from ``start_counts`` (N, 6) (None: start at ``Lg[0]``), check
    the whole plan (continuous limits, then every rounded set-point through the gate's rule)
    and return it.  ``tg``: (K,) s, ``Lg``: (K, N, 6) m on the stream grid.
    """
    N = len(cals)
    limits = [Limits.from_calibration(c) for c in cals]
    dt = 1.0 / rate_hz
    if start_counts is None:
        start_counts = to_counts(Lg[:1], cals)[0]
    start_counts = np.asarray(start_counts, dtype=np.int64)
    start = np.stack([cals[i].to_length(start_counts[i]) for i in range(N)])
    for i in range(N):
        check_count_range(cals[i], i)
    ramp = quintic_ramp(start, Lg[0], limits, rate_hz)
    R = ramp.shape[0]
    check_plan_size(R + Lg.shape[0], N, rate_hz)
    legs = np.concatenate([ramp, Lg], axis=0)
    times = np.concatenate([tg[0] - (R - np.arange(R)) * dt, tg])
    labels = ["approach ramp"] * R + [""] * Lg.shape[0]
    # the actuators rest at ``start`` before tick 0: check from there
    check_legs(legs, limits, dt, times=times, labels=labels, rest_before=start)
    counts = to_counts(legs, cals)
    for i in range(N):
        verify_counts(counts[:, i], start_counts[i], cals[i], dt, platform=i)
    for a in (legs, counts, times, start_counts):
        a.setflags(write=False)
    return Plan(float(rate_hz), legs, counts, times, R, start_counts, source)


def plan_trajectory(t, legs, cals, rate_hz, start_counts=None, interp="pchip",
                    source="") -> Plan:
    """:func:`check_trajectory` then :func:`build_plan`: a trajectory (``t`` (T,) s, ``legs``
    (T, N, 6) m) streamed from ``start_counts`` (N, 6) counts (None: from its first point)."""
    tg, Lg = check_trajectory(t, legs, cals, rate_hz, interp)
    return build_plan(tg, Lg, cals, rate_hz, start_counts, source)


def plan_target(legs: np.ndarray, cals, rate_hz, start_counts, source="target") -> Plan:
    """A move to one set of leg lengths ``legs`` (N, 6) m from rest at ``start_counts``."""
    legs = np.asarray(legs, float)[None]
    return plan_trajectory(np.zeros(1), legs, cals, rate_hz, start_counts, source=source)
