"""The safety gate: the one producer of the SETPOINT bytes a link writes (``docs/hardware.md``).

For lag m = 1..M (M ticks = :data:`~hardware.safety.GATE_WINDOW_S`), with ``q`` one count and
``tau_m`` the *wall time* the frames took, never more than the nominal ``m dt``::

    |L_k - L_{k-m}|              <= v_max * tau_m        + q
    |L_k - 2 L_{k-m} + L_{k-2m}| <= a_max * tau2_m ** 2  + 2 q

    tau_m  = min(m dt, (t_k - t_{k-m}) + dt/2)
    tau2_m = min(tau_m, (t_{k-m} - t_{k-2m}) + dt/2)

``t_j`` is when frame j was last written (a retransmission moves it: the device may execute a
set-point when the retransmission arrives).  Frames that arrive late earn no extra allowance
(``tau`` is capped at the nominal time), frames sent early shrink it: set-points each within
one tick's allowance but sent back to back are refused after a few frames.  The half period is
the timing tolerance the streamer guarantees: it never starts a tick early, and a tick that
starts (or is last retransmitted) more than half a period late shifts the rest of the schedule,
so on-schedule frames always see ``tau_m = m dt`` and the rule is exactly the planner's.

States: "unset" (no position yet), "ready" (:meth:`SafetyGate.reset` gave the position at
rest), "moving" (set-points admitted since), "stopped" (its link wrote STOP or ESTOP: no
set-point passes until the next reset).  ``reset`` is refused while "moving".
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

import numpy as np

from assemblers.model import ActuatorCalibration

from . import protocol as P
from .safety import (
    _EPS,
    GATE_WINDOW_S,
    Limits,
    LimitViolation,
    _gate_violation,
    _violation,
    check_count_range,
    window_ticks,
)

_PAST_S = 1e9  # rest history stamps: this far apart in the past (every lag sees its nominal time)


class GateStateError(RuntimeError):
    """The gate was asked for something its state forbids (reset while moving, a set-point
    before the first reset or after a STOP)."""


class SafetyGate:
    """The single choke point for one platform's set-points (see the module docstring).

    ``calibration``: the platform's :class:`ActuatorCalibration` (refused with
    :class:`LimitViolation` if its counts leave int32 inside the stroke); ``period_s``: the
    stream period dt (s); ``clock``: seconds, monotonic (``time.perf_counter``).  Call
    :meth:`reset` with where the actuators are (at rest) before the first set-point;
    :meth:`encode` checks a set-point against the limits and the set-points admitted before it
    and returns the frame's bytes, or raises :class:`LimitViolation` and leaves its state
    unchanged.
    """

    def __init__(self, calibration: ActuatorCalibration, period_s: float, *, platform: int = 0,
                 window_s: float = GATE_WINDOW_S, clock: Callable[[], float] = time.perf_counter):
        if not period_s > 0:
            raise ValueError(f"period_s must be positive, got {period_s}")
        check_count_range(calibration, platform)
        self.cal = calibration
        self.period_s = float(period_s)
        self.platform = platform
        self.M = window_ticks(self.period_s, window_s)
        lim = Limits.from_calibration(calibration)
        self.limits = lim
        self._clock = clock
        mdt = np.arange(1, self.M + 1) * self.period_s
        self._mdt = mdt  # (M,) nominal time of each lag
        self._half = 0.5 * self.period_s
        self._vmax = lim.max_velocity
        self._amax = lim.max_acceleration
        self._q1 = lim.resolution + _EPS
        self._q2 = 2 * lim.resolution + _EPS
        # precomputed bounds for frames on schedule (the common case: no array work)
        self._vbound = lim.max_velocity[None] * mdt[:, None] + self._q1[None]  # (M, 6)
        self._abound = lim.max_acceleration[None] * mdt[:, None] ** 2 + self._q2[None]
        self._lo = lim.soft_min - _EPS
        self._hi = lim.soft_max + _EPS
        self._off = np.asarray(calibration.offset, float)
        self._div = np.asarray(calibration.sign, float) * np.asarray(calibration.scale, float)
        # history, newest first: window[r] = L_{k-1-r} (m), so L_{k-m} = window[m-1] and
        # L_{k-2m} = window[2m-1] are the slices [0:M] and [1:2M:2] (views, no copies).  The
        # window is _buf[_head:_head + 2M] of a doubled ring buffer: every value is stored at
        # p and p + 2M, so the window is always contiguous.  _tbuf holds the write times.
        self._buf: np.ndarray | None = None  # (4M, 6) m
        self._tbuf = np.zeros(4 * self.M)  # (4M,) s
        self._head = 0
        self._state = "unset"
        self.admitted = 0
        self.refused = 0
        self.last_counts: np.ndarray | None = None

    @property
    def state(self) -> str:
        return self._state

    @property
    def ready(self) -> bool:
        return self._state in ("ready", "moving")

    def reset(self, counts) -> None:
        """The actuators rest at ``counts`` (6,) (e.g. measured by a STATUS query).  Only from a
        stopped state: before the first set-point, after a STOP/ESTOP went out, or when no
        set-point was admitted since the last reset (else :class:`GateStateError`)."""
        if self._state == "moving":
            raise GateStateError(
                f"platform {self.platform}: SafetyGate.reset() refused while set-points are "
                "being streamed: reset only from a stopped state (send STOP first)")
        c = self._as_counts(counts, None)
        L = (c - self._off) / self._div
        self._buf = np.repeat(L[None], 4 * self.M, axis=0)
        past = -_PAST_S * np.arange(1, 2 * self.M + 1)
        self._tbuf = np.concatenate([past, past])
        self._head = 0
        self.last_counts = c
        self._state = "ready"

    def _as_counts(self, counts, tick) -> np.ndarray:
        a = np.asarray(counts)
        if a.shape != (6,):
            raise LimitViolation(f"platform {self.platform}: a set-point has 6 counts, got shape "
                                 f"{a.shape}", platform=self.platform, actuator=-1,
                                 limit="counts", value=float("nan"), bound=float("nan"),
                                 tick=tick)
        ok = a.dtype.kind in "iuf" and bool(np.all(np.isfinite(a)))
        if ok:
            ci = np.rint(a).astype(np.int64) if a.dtype.kind == "f" else a.astype(np.int64)
            ok = np.array_equal(ci, a) and not np.any((ci < P.INT32_MIN) | (ci > P.INT32_MAX))
        if not ok:
            raise LimitViolation(f"platform {self.platform}: set-point counts must be whole "
                                 f"int32 numbers, got {a.tolist()}", platform=self.platform,
                                 actuator=-1, limit="counts", value=float("nan"),
                                 bound=float("nan"), tick=tick)
        return ci

    def check(self, counts, tick: int | None = None, *, now: float | None = None) -> np.ndarray:
        """Raise :class:`LimitViolation` if ``counts`` (6,) may not be sent at ``now`` (default:
        the clock); return the set-point in metres (6,).  Does not change the gate's state."""
        return self._check(counts, tick, self._clock() if now is None else now)[0]

    def _check(self, counts, tick, now: float):
        if self._state not in ("ready", "moving"):
            if self._state == "stopped":
                raise GateStateError(f"platform {self.platform}: the platform was stopped (STOP "
                                     "sent): reset from its measured position before streaming")
            raise GateStateError(f"platform {self.platform}: SafetyGate.reset() must be called "
                                 "with the actuators' position before the first set-point")
        if type(counts) is np.ndarray and counts.dtype == np.int64 and counts.shape == (6,):
            c = counts  # the fast path of a streamed plan
        else:
            c = self._as_counts(counts, tick)
        L = (c - self._off) / self._div
        lim = self.limits
        bad = (L < self._lo) | (L > self._hi)
        if bad.any():
            j = int(np.argmax(bad))
            bound = lim.soft_min[j] if L[j] < lim.soft_min[j] else lim.soft_max[j]
            self.refused += 1
            raise _violation(self.platform, j, "position", L[j], bound, "m", tick=tick)
        M = self.M
        h = self._head
        H = self._buf[h:h + 2 * M]
        T = self._tbuf[h:h + 2 * M]
        A = H[:M]  # L_{k-m}, m = 1..M
        d1 = np.abs(L - A)  # (M, 6)
        d2 = np.abs(L - 2 * A + H[1:2 * M:2])
        # wall time per lag, capped at the nominal m dt (late frames earn nothing)
        tau = np.minimum(self._mdt, now - T[:M] + self._half)
        tau2 = np.minimum(tau, T[:M] - T[1:2 * M:2] + self._half)
        if np.array_equal(tau2, self._mdt):
            vb, ab = self._vbound, self._abound  # every lag on schedule
        else:
            vb = self._vmax[None] * tau[:, None] + self._q1[None]
            ab = self._amax[None] * tau2[:, None] ** 2 + self._q2[None]
        v_over = d1 > vb
        a_over = d2 > ab
        if v_over.any() or a_over.any():
            self.refused += 1
            if v_over.any():
                mi, j = (int(x) for x in np.argwhere(v_over)[0])
                m = mi + 1
                early = tau[mi] < self._mdt[mi]
                raise _gate_violation(self.platform, j, "velocity", d1[mi, j] / tau[mi],
                                      lim.max_velocity[j], "m/s", m, tick,
                                      now - T[mi] if early else None)
            mi, j = (int(x) for x in np.argwhere(a_over)[0])
            m = mi + 1
            early = tau2[mi] < self._mdt[mi]
            raise _gate_violation(self.platform, j, "acceleration", d2[mi, j] / tau2[mi] ** 2,
                                  lim.max_acceleration[j], "m/s^2", m, tick,
                                  now - T[2 * mi + 1] if early else None)
        return L, c

    def encode(self, seq: int, address: int, tick: int, counts, *, now: float | None = None
               ) -> bytes:
        """Check ``counts`` (6,) and, if admitted, return the SETPOINT frame's bytes and record
        it as sent at ``now`` (default: the clock; a dry run passes the plan's times).  Raises
        :class:`LimitViolation` (state unchanged) otherwise."""
        now = self._clock() if now is None else now
        L, c = self._check(counts, tick, now)
        try:
            payload = P.SETPOINT_STRUCT.pack(tick & 0xFFFFFFFF, *c.tolist())
        except struct.error:  # cannot happen inside a checked stroke; never a traceback
            self.refused += 1
            raise LimitViolation(f"platform {self.platform}: counts {c.tolist()} do not fit the "
                                 "frame", platform=self.platform, actuator=-1, limit="counts",
                                 value=float("nan"), bound=float("nan"), tick=tick) from None
        frame = P.encode_frame(P.MsgType.SETPOINT, address, seq, payload)
        n = 2 * self.M
        p = (self._head - 1) % n
        self._buf[p] = L
        self._buf[p + n] = L
        self._tbuf[p] = self._tbuf[p + n] = now
        self._head = p
        self.last_counts = c
        self.admitted += 1
        self._state = "moving"
        return frame

    # called by the link that owns this gate (hardware.link.DeviceLink), not by users
    def _retransmitted(self, now: float | None = None) -> None:
        """The newest set-point was written again at ``now``: the device may execute it then."""
        if self._state == "moving":
            t = self._clock() if now is None else now
            self._tbuf[self._head] = self._tbuf[self._head + 2 * self.M] = t

    def _stopped(self) -> None:
        """A STOP or ESTOP was written: nothing passes until the next :meth:`reset`."""
        if self._state != "unset":
            self._state = "stopped"
