"""Time-optimal time scaling of a solved path to the actuators' velocity and acceleration limits.

A path is solved first (IK at samples along it, :func:`~.trajectory.solve_trajectory`); its leg
lengths become a curve in leg space (PCHIP: no leg overshoots its samples, so the stroke is
kept), parameterized by chord length (the distance the 6N legs travel together, so dwells and
near-duplicate samples cost nothing), and TOPP-RA (``toppra``: time-optimal path
parameterization by reachability analysis) finds the fastest ``s(t)`` along it, from rest to
rest, with every leg's ``|dL/dt| <= SAFETY * max_velocity`` and ``|d2L/dt2| <= SAFETY *
max_acceleration`` (per leg, from ``asm.hardware.links[i].calibration``).  The result is
sampled at :data:`OVERSAMPLE` times the stream rate (plus its end time when that falls between
two samples) and checked the way the host's plan check does it (:func:`stream_report`:
resampled as the streamer does, finite differences at the stream rate, at rest before the
first and after the last sample), at the stream rate and at lower ones
(:data:`CHECK_FRACTIONS`); a profile that peaks above :data:`CHECK_MAX` of a limit there is
slowed down uniformly until it does not.

Why a safety factor (``docs/hardware.md``, "Streaming a planned move"): TOPP-RA enforces the
limits at its grid points (both sides of every knot of the path included: PCHIP's curvature
jumps there), and between them the profile can exceed them by a fraction of a percent; the
streamer checks finite differences, not derivatives, and rounds to whole counts (which its gate
allows for, one count); a plan streamed at a lower rate than it was made for is resampled by
PCHIP between its samples, which adds up to 7 % to a peak of a bang-bang profile at one sample
per tick, and under 0.5 % at four (:data:`OVERSAMPLE`).  Planning to 97 % of each limit and
checking to 99 % leaves room for all of that, so a time-scaled plan passes
``hardware.plan.check_trajectory`` and the gate at its own rate and any lower one
(tests/ik/test_timescale.py checks it on random moves and limits), while the binding limit is
still reached to within about 3 %: time-optimal, not just feasible.  Streaming *faster* than
the plan was made for is not covered (the interpolation can double an acceleration): plan at
the rate you stream (``assemblers trajectory --rate``).

The math core: no I/O, nothing printed; ``toppra`` is imported on first use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..model import Assembler
from .actuators import (
    REL_TOL,
    STROKE_TOL_M,
    ActuatorLimits,
    LimitReport,
    Peak,
    limit_report,
    resample,
    stream_report,
)

__all__ = ["CHECK_MAX", "SAFETY", "ActuatorLimits", "LimitReport", "Peak", "TimeScaled",
           "TimedMove", "limit_report", "path_targets", "quintic_min_duration", "resample",
           "stream_report", "time_optimal_move", "time_optimal_path", "time_scale"]

SAFETY = 0.97
"""Fraction of every velocity and acceleration limit the time-optimal profile is planned to."""
CHECK_MAX = 0.99
"""A time-scaled trajectory's finite-difference peaks at its own rate stay at or below this
fraction of each limit (slowed down uniformly if TOPP-RA's grid let them rise above it)."""
PATH_SAMPLES = 201
"""IK samples along a straight-line move (the tool's largest deviation from the line between
them, where the legs are interpolated, is reported: a few micrometres for these platforms)."""
OVERSAMPLE = 4
"""A time-scaled move is sampled at this many times its stream rate: the streamer's grid falls
on every OVERSAMPLE-th sample (exact), and streamed at a lower rate, its PCHIP resampling
between samples this close adds well under 1 % to a peak (at 1x it can add 7 %: a bang-bang
profile's acceleration jumps between two samples)."""
CHECK_FRACTIONS = (1.0, 0.98, 0.95, 0.9, 0.8, 0.6)
"""The stream rates (fractions of the planned one) a time-scaled move is checked at."""
GRIDPOINTS = 1001
"""TOPP-RA grid points along the path (more for long moves: at least 500 per second)."""
@dataclass(frozen=True, eq=False)
class TimeScaled:
    """A path's time-optimal timing, for streaming at ``rate_hz`` (or slower): ``t`` (K,) s,
    the grid ``k / sample_rate_hz`` (``OVERSAMPLE`` times the stream rate) and the end
    ``duration_s`` (the last sample, less than a sample after the one before when the move is
    not whole samples long), ``u`` (K,) path parameter of each
    sample (0 at the start, 1 at the end; chord length in leg space, normalized), ``legs``
    (K, N, 6) m; ``optimal_s`` (TOPP-RA's duration at ``safety`` of the limits), ``stretch``
    (``duration_s / optimal_s``: a uniform slow-down after TOPP-RA, 1 unless the check asked
    for one), ``report`` (:func:`stream_report` at ``rate_hz``; the move was also checked at
    the lower rates of :data:`CHECK_FRACTIONS`)."""

    t: np.ndarray
    u: np.ndarray
    legs: np.ndarray
    rate_hz: float
    sample_rate_hz: float
    duration_s: float
    optimal_s: float
    stretch: float
    safety: float
    report: LimitReport


def _chord(legs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(keep (M,) indices, u (M,) in [0, 1]): chord-length parameter of the samples, dropping
    those that do not move the legs (a dwell, a repeated target)."""
    flat = legs.reshape(legs.shape[0], -1)
    step = np.linalg.norm(np.diff(flat, axis=0), axis=1)
    total = float(step.sum())
    if total <= 1e-12:
        return np.array([0]), np.zeros(1)
    keep = [0]
    acc = [0.0]
    run = 0.0
    for j, d in enumerate(step, start=1):
        run += d
        if run - acc[-1] > 1e-9 * total:
            keep.append(j)
            acc.append(run)
    if keep[-1] != len(step):  # the last sample always ends the path
        keep[-1] = len(step)
        acc[-1] = run
    return np.array(keep), np.array(acc) / acc[-1]


def _leg_path(u_knots, knots):
    """A toppra geometric path through ``knots`` (M, 6N) m at ``u_knots`` (M,): PCHIP, so no leg
    overshoots its samples (a path with a leg at its stroke limit stays inside the stroke: the
    leg arrives there tangentially, and TOPP-RA slows it down to) and the legs between samples
    are what the streamer's own resampling would give."""
    from scipy.interpolate import PchipInterpolator
    from toppra.interpolator import AbstractGeometricPath

    class LegPath(AbstractGeometricPath):
        def __init__(self):
            self._f = PchipInterpolator(u_knots, knots, axis=0)
            self._d = [self._f, self._f.derivative(1), self._f.derivative(2)]

        def __call__(self, path_positions, order=0):
            return self._d[order](path_positions)

        @property
        def dof(self):
            return knots.shape[1]

        @property
        def path_interval(self):
            return np.array([u_knots[0], u_knots[-1]])

        @property
        def waypoints(self):
            return u_knots, knots

    return LegPath()


def time_scale(legs, limits: ActuatorLimits, rate_hz: float, *, safety: float = SAFETY,
               oversample: int = OVERSAMPLE) -> TimeScaled:
    """The fastest timing of the path through ``legs`` (M, N, 6) m (its samples in order), from
    rest to rest, within ``safety`` of every velocity and acceleration limit, for streaming at
    ``rate_hz`` or slower, sampled at ``oversample`` times that (see the module's
    docstring)."""
    import logging

    import toppra.algorithm
    import toppra.constraint

    logging.getLogger("toppra").setLevel(logging.WARNING)
    if not (0 < safety <= 1):
        raise InputError(f"safety: must be in (0, 1], got {safety}")
    if not (math.isfinite(rate_hz) and rate_hz > 0):
        raise InputError(f"rate_hz: must be a positive number, got {rate_hz}")
    if not (isinstance(oversample, int) and oversample >= 1):
        raise InputError(f"oversample: must be a whole number >= 1, got {oversample}")
    fs = rate_hz * oversample
    legs = np.asarray(legs, dtype=np.float64)
    M, N, _ = legs.shape
    keep, u_knots = _chord(legs)
    if keep.shape[0] == 1:  # nothing moves: one sample, at rest
        one = legs[:1].copy()
        return TimeScaled(np.zeros(1), np.zeros(1), one, float(rate_hz), float(fs), 0.0, 0.0,
                          1.0, safety, limit_report(one, rate_hz, limits))
    path = _leg_path(u_knots, legs[keep].reshape(keep.shape[0], -1))
    vmax = safety * limits.max_velocity.reshape(-1)
    amax = safety * limits.max_acceleration.reshape(-1)
    constraints = [toppra.constraint.JointVelocityConstraint(np.stack([-vmax, vmax], axis=1)),
                   toppra.constraint.JointAccelerationConstraint(np.stack([-amax, amax], axis=1))]

    # the path's second derivative jumps at its knots (PCHIP is C1): the grid holds both sides
    # of every knot, so each side's curvature is a constraint (between grid points the
    # constraints hold only approximately, and the jumps are where it would matter most)
    inner = u_knots[1:-1]
    gap = np.diff(u_knots).min() * 1e-6

    def solve(n_grid):
        grid = np.unique(np.concatenate([np.linspace(0.0, 1.0, n_grid), inner - gap,
                                         inner + gap]))
        algo = toppra.algorithm.TOPPRA(constraints, path, gridpoints=grid,
                                       parametrizer="ParametrizeConstAccel")
        sdd, sd, _ = algo.compute_parameterization(0.0, 0.0)
        if sd is None or not np.all(np.isfinite(sd)) or not np.all(np.isfinite(sdd)):
            raise InputError("time scaling failed: TOPP-RA found no parameterization of this "
                             "path (are the limits positive?)")
        seg = 2.0 * np.diff(grid) / np.maximum(sd[:-1] + sd[1:], 1e-300)
        return grid, sd, sdd, seg

    grid, sd, sdd, seg = solve(GRIDPOINTS)
    if seg.sum() > GRIDPOINTS / 500:  # long moves: keep the grid at >= 500 points a second
        grid, sd, sdd, seg = solve(min(20001, math.ceil(seg.sum() * 500) + 1))
    t_grid = np.concatenate([[0.0], np.cumsum(seg)])
    T_opt = float(t_grid[-1])

    def sample(T_out):
        # the stream grid k / rate up to T_out, and T_out itself when it falls between ticks
        # (the streamer then holds the end for the rest of that tick: at rest, within limits)
        n = math.floor(T_out * fs + 1e-6)
        t_out = np.arange(n + 1) / fs
        if T_out - t_out[-1] > 1e-6 / fs:
            t_out = np.append(t_out, T_out)
        else:
            t_out[-1] = T_out
        tau_all = t_out * (T_opt / T_out)  # a uniform slow-down when T_out > T_opt
        i = np.clip(np.searchsorted(t_grid, tau_all, side="right") - 1, 0, seg.shape[0] - 1)
        tau = tau_all - t_grid[i]
        u = np.clip(grid[i] + sd[i] * tau + 0.5 * sdd[i] * tau**2, 0.0, 1.0)
        u[0], u[-1] = 0.0, 1.0
        L = path(u).reshape(t_out.shape[0], N, 6)
        # PCHIP keeps the legs between their samples: this only undoes round-off (a path whose
        # own samples leave the soft stroke is left as it is, and reported)
        lo, hi = limits.soft_min[None], limits.soft_max[None]
        L = np.where((L < lo) & (L >= lo - STROKE_TOL_M), lo, L)
        return t_out, u, np.where((L > hi) & (L <= hi + STROKE_TOL_M), hi, L)

    T_out = T_opt
    for _ in range(20):
        t_out, u, L = sample(T_out)
        reps = [stream_report(t_out, L, limits, rate_hz * f) for f in CHECK_FRACTIONS]
        need = max(max(r.velocity.fraction, math.sqrt(r.acceleration.fraction))
                   for r in reps) / CHECK_MAX
        rep = reps[0]
        if need <= 1.0:
            break
        T_out *= need * 1.001
    else:  # pragma: no cover - the slow-down converges in one or two rounds
        raise InputError("time scaling failed to meet the limits")
    return TimeScaled(t_out, u, L, float(rate_hz), float(fs), float(T_out), T_opt,
                      float(T_out / T_opt), safety, rep)


def path_targets(u_keys, T_keys, u) -> np.ndarray:
    """Tool targets (K, 4, 4) at path parameters ``u`` (K,) on the path through the key poses
    ``T_keys`` (J, 4, 4) at ``u_keys`` (J,) increasing: positions linear and rotations SLERP
    between neighbouring keys (two keys: a straight line with SLERP)."""
    from scipy.spatial.transform import Rotation, Slerp

    u_keys = np.asarray(u_keys, dtype=np.float64)
    T_keys = np.asarray(T_keys, dtype=np.float64)
    u = np.clip(np.asarray(u, dtype=np.float64), u_keys[0], u_keys[-1])
    out = np.tile(np.eye(4), (u.shape[0], 1, 1))
    if u_keys.shape[0] == 1:
        out[:] = T_keys[0]
        return out
    out[:, :3, :3] = Slerp(u_keys, Rotation.from_matrix(T_keys[:, :3, :3]))(u).as_matrix()
    for c in range(3):
        out[:, c, 3] = np.interp(u, u_keys, T_keys[:, c, 3])
    return out


@dataclass(frozen=True, eq=False)
class TimedMove:
    """A time-optimal move: ``t`` (K,) s, ``Q`` (K, 6N) stack poses (from the legs, exactly),
    ``legs`` (K, N, 6) m, ``T_target`` (K, 4, 4) the path's tool poses at each sample;
    ``scaling`` (:class:`TimeScaled`), ``path`` (the IK along the path,
    :class:`~.trajectory.TrajectoryResult`), ``tool_error`` (m, rad): the largest distance of
    the tool (at ``Q``) from ``T_target`` (the spline between the IK samples)."""

    t: np.ndarray
    Q: np.ndarray
    legs: np.ndarray
    T_target: np.ndarray
    scaling: TimeScaled
    path: object
    tool_error: tuple[float, float]

    @property
    def duration_s(self) -> float:
        return self.scaling.duration_s

    @property
    def report(self) -> LimitReport:
        return self.scaling.report


def time_optimal_path(asm: Assembler, path, u_keys, T_keys, rate_hz: float, *,
                      safety: float = SAFETY) -> TimedMove:
    """Re-time a solved path: ``path`` (a :class:`~.trajectory.TrajectoryResult` whose targets
    lie on the key poses ``T_keys`` (J, 4, 4) at path parameters ``u_keys`` (J,), its ``t``
    read as the path parameter) -> the time-optimal :class:`TimedMove` at ``rate_hz``."""
    from scipy.interpolate import CubicSpline, PchipInterpolator

    from ..geometry.api import twist_between
    from ..kinematics.api import forward_kinematics, from_legs

    if not path.ok:
        k = min(path.messages)
        raise InputError(f"the path is not reachable at sample {k}: {path.messages[k]}")
    limits = ActuatorLimits.from_assembler(asm)
    sc = time_scale(path.legs, limits, rate_hz, safety=safety)
    keep, u_chord = _chord(np.asarray(path.legs))
    s = np.asarray(path.t, dtype=np.float64)
    if keep.shape[0] == 1:
        s_out = np.full(sc.t.shape[0], s[0])
        Q0 = np.repeat(path.Q[:1], sc.t.shape[0], axis=0)
    else:
        # the path parameter of the targets at each sample (monotone in the chord length)
        s_out = PchipInterpolator(u_chord, s[keep])(sc.u)
        Q0 = CubicSpline(u_chord, path.Q[keep], axis=0)(sc.u)
    Q = from_legs(asm, sc.legs, initial=Q0)
    T_target = path_targets(u_keys, T_keys, s_out)
    tw = twist_between(T_target, forward_kinematics(asm, Q))
    err = (float(np.linalg.norm(tw[:, :3], axis=1).max()),
           float(np.linalg.norm(tw[:, 3:], axis=1).max()))
    return TimedMove(sc.t, Q, sc.legs, T_target, sc, path, err)


def time_optimal_move(asm: Assembler, T_from, T_to, rate_hz: float, criterion: str | None = None,
                      *, samples: int = PATH_SAMPLES, safety: float = SAFETY,
                      progress=None) -> TimedMove:
    """A straight-line + SLERP move from ``T_from`` to ``T_to`` ((4, 4) tool poses), as fast as
    the actuators allow: IK at ``samples`` points evenly along the line (warm-started,
    :func:`~.trajectory.solve_trajectory`; ``progress(k)`` after each), then
    :func:`time_optimal_path` at ``rate_hz``."""
    from .report import as_target
    from .trajectory import solve_trajectory

    if samples < 3:
        raise InputError(f"samples: at least 3 along the path, got {samples}")
    keys = np.stack([as_target(T_from), as_target(T_to)])
    s = np.linspace(0.0, 1.0, samples)
    path = solve_trajectory(asm, s, path_targets([0.0, 1.0], keys, s), criterion,
                            progress=progress)
    return time_optimal_path(asm, path, [0.0, 1.0], keys, rate_hz, safety=safety)


def _quintic(x):
    return x**3 * (10 - 15 * x + 6 * x**2)


def quintic_min_duration(asm: Assembler, T_from, T_to, rate_hz: float, tried,
                         criterion: str | None = None, *, rounds: int = 4) -> float | None:
    """The shortest ``duration`` (s, to 10 ms) for which the smooth straight-line move of
    :func:`~.trajectory.straight_line` (quintic time law, IK at ``rate_hz`` samples) keeps the
    velocity and acceleration limits at ``rate_hz``, given ``tried``: its
    :class:`~.trajectory.TrajectoryResult` at a duration that was too short.  Estimated from
    ``tried``'s samples, then checked by solving the move again: slowed down by what each check
    asks until one passes, then bisected (``rounds`` solves each at most).  Returns the shortest
    duration that passed; None if none did (or the move was not reachable).  A leg that reaches
    its stroke limit mid-path bends the path sharply there, and a fixed time law must then be
    slow everywhere; the time-optimal timing (:func:`time_optimal_move`) slows down only
    there."""
    from .trajectory import solve_trajectory, straight_line

    limits = ActuatorLimits.from_assembler(asm)
    t = np.asarray(tried.t, dtype=np.float64)
    D0 = float(t[-1] - t[0])
    from scipy.interpolate import PchipInterpolator

    u = _quintic((t - t[0]) / D0)
    path = PchipInterpolator(u, np.asarray(tried.legs).reshape(t.shape[0], -1), axis=0)

    def estimate_fast(T):
        K = max(2, math.ceil(T * rate_hz - 1e-9) + 1)
        x = np.minimum(np.arange(K) / rate_hz / T, 1.0)
        rep = limit_report(path(_quintic(x)).reshape(K, *tried.legs.shape[1:]), rate_hz, limits)
        return rep.slowdown > 1 + REL_TOL

    lo, hi = D0, D0 * stream_report(t, tried.legs, limits, rate_hz).slowdown * 1.01
    while estimate_fast(hi):
        lo, hi = hi, hi * 1.5
    while hi - lo > 0.002:  # bisect the start of the (estimated) feasible durations
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if estimate_fast(mid) else (lo, mid)
    def checked_fast(T):  # the move solved again at that duration, checked; None: unreachable
        tt, Ts = straight_line(T_from, T_to, T, rate_hz)
        r = solve_trajectory(asm, tt, Ts, criterion)
        return None if not r.ok else stream_report(r.t, r.legs, limits, rate_hz).slowdown

    lo, D = D0, math.ceil(hi * 100 - 1e-9) / 100
    for _ in range(rounds):  # up until one passes
        need = checked_fast(D)
        if need is None:
            return None
        if need <= 1 + REL_TOL:
            break
        lo, D = D, math.ceil(D * need * 1.01 * 100) / 100
    else:
        return None
    for _ in range(rounds):  # then bisect between the last too-fast and the first passing one
        mid = math.ceil(50 * (lo + D) - 1e-9) / 100
        if mid >= D or mid <= lo:
            break
        need = checked_fast(mid)
        if need is None:
            return None
        lo, D = (mid, D) if need > 1 + REL_TOL else (lo, mid)
    return D
