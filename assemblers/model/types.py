"""Frozen dataclasses describing an Assembler: platform types, the stack, weights, hardware.

Pure data (NumPy arrays, read-only).  :mod:`assemblers.model.config` builds them from TOML;
:mod:`assemblers.kinematics` turns them into JAX arrays once per Assembler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

import numpy as np


def _frozen(a) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class PlatformType:
    """One Stewart platform (6-6 hexapod).

    Attributes:
        name: the type's name in the config.
        base_joints: (6, 3) m, base-plate frame; leg k starts at ``base_joints[k]``.
        top_joints: (6, 3) m, top-plate frame; leg k ends at ``top_joints[k]``.
        leg_min, leg_max: m, actuator stroke limits (``leg_min < leg_max``).
        max_joint_angle: rad or None; limit on the angle between a leg and its plate's normal,
            at both ends.
        home_height: m; z of the home pose (top frame in base frame, no rotation).
        pose_lower, pose_upper: (6,) (m, rad); optional per-platform pose bounds (+-inf if none).
        leg_offset: (6,) m, leg_scale: (6,); the actuators' calibration (``leg_offset`` and
            ``leg_scale`` in the config, docs/calibration.md): leg k's geometric length, joint
            to joint, is ``leg_scale[k] * commanded + leg_offset[k]``, where the commanded
            length is what the actuator reports and what ``leg_min``/``leg_max`` bound.
            Zeros and ones (the default) make the two the same.
    """

    name: str
    base_joints: np.ndarray
    top_joints: np.ndarray
    leg_min: float
    leg_max: float
    max_joint_angle: float | None
    home_height: float
    pose_lower: np.ndarray = field(default_factory=lambda: _frozen(np.full(6, -np.inf)))
    pose_upper: np.ndarray = field(default_factory=lambda: _frozen(np.full(6, np.inf)))
    leg_offset: np.ndarray = field(default_factory=lambda: _frozen(np.zeros(6)))
    leg_scale: np.ndarray = field(default_factory=lambda: _frozen(np.ones(6)))

    @property
    def home_pose(self) -> np.ndarray:
        """(6,) the home pose: x = y = 0, no rotation, z = home_height."""
        return np.array([0.0, 0.0, self.home_height, 0.0, 0.0, 0.0])


@dataclass(frozen=True, eq=False)
class Sensitivity:
    """Weights of the sensitivity cost ``|| W_out J W_in ||_F`` (docs/conventions.md).

    ``wrt``: "pose" (J_Q) or "legs" (J_L); ``length_scale``: m, the l in
    ``W_out = diag(1, 1, 1, l, l, l)``; sigmas: standard deviations of the disturbance per input
    (m for translations and legs, rad for rotations).
    """

    wrt: str = "pose"
    length_scale: float = 1.0
    sigma_translation: float = 1.0
    sigma_rotation: float = 1.0
    sigma_leg: float = 1.0

    @property
    def w_out(self) -> np.ndarray:
        """(6,) diagonal of W_out."""
        l = self.length_scale
        return np.array([1.0, 1.0, 1.0, l, l, l])

    def w_in(self, n_platforms: int, wrt: str | None = None) -> np.ndarray:
        """(6N,) diagonal of W_in for ``wrt`` ("pose" or "legs"; default: the config's)."""
        wrt = wrt or self.wrt
        if wrt == "legs":
            return np.full(6 * n_platforms, self.sigma_leg)
        st, sr = self.sigma_translation, self.sigma_rotation
        return np.tile([st, st, st, sr, sr, sr], n_platforms).astype(np.float64)


@dataclass(frozen=True, eq=False)
class ActuatorCalibration:
    """Six actuators of one platform: leg length (m) <-> controller counts, and limits.

    ``counts = offset + sign * scale * L``.  All attributes are (6,) arrays, one per leg:
    ``scale`` counts/m, ``offset`` counts, ``sign`` +-1, ``soft_min``/``soft_max`` m (inside the
    stroke), ``max_velocity`` m/s, ``max_acceleration`` m/s^2.
    """

    scale: np.ndarray
    offset: np.ndarray
    sign: np.ndarray
    soft_min: np.ndarray
    soft_max: np.ndarray
    max_velocity: np.ndarray
    max_acceleration: np.ndarray

    def to_counts(self, legs: np.ndarray) -> np.ndarray:
        """``legs``: (..., 6) m -> (..., 6) int64 controller counts (rounded to nearest)."""
        return np.rint(self.offset + self.sign * self.scale * np.asarray(legs)).astype(np.int64)

    def to_length(self, counts: np.ndarray) -> np.ndarray:
        """``counts``: (..., 6) controller counts -> (..., 6) m."""
        return (np.asarray(counts, dtype=np.float64) - self.offset) / (self.sign * self.scale)


@dataclass(frozen=True, eq=False)
class PlatformLink:
    """Serial link of one platform's controller: any pyserial URL (``/dev/ttyUSB0``,
    ``loop://``, ``socket://host:port``) or None when not configured."""

    port: str | None
    baudrate: int
    address: int
    calibration: ActuatorCalibration


@dataclass(frozen=True, eq=False)
class HardwareConfig:
    """Streaming settings (``[hardware]``) and one :class:`PlatformLink` per platform.

    Stream quality limits (``docs/hardware.md``): ``max_gap_s`` s, the longest a set-point may
    come later than its period after the previous one (beyond it the stream is stopped);
    ``max_lag_s`` s, how far behind its schedule a stream may end; ``max_retry_rate``, the
    fraction of set-points that may be retransmitted (beyond either, a completed stream is
    "degraded")."""

    rate_hz: float
    ack_timeout_s: float
    max_retries: int
    heartbeat_s: float
    watchdog_s: float
    links: tuple[PlatformLink, ...]
    max_gap_s: float = 0.25
    max_lag_s: float = 0.5
    max_retry_rate: float = 0.05


class StackArrays(NamedTuple):
    """The stack's geometry as arrays (a JAX pytree when built with jnp arrays).

    ``b``: (N, 6, 3) m, base joints in each platform's base frame; ``t``: (N, 6, 3) m, top joints
    in each top frame; ``T_mount``: (4, 4) world_from_base1; ``T_after``: (N, 4, 4), the fixed
    transform after each platform's top frame (interfaces, then the tool for the last one).
    """

    b: object
    t: object
    T_mount: object
    T_after: object


@dataclass(frozen=True, eq=False)
class Assembler:
    """A stack of N Stewart platforms, bottom to top, with its mount, interfaces and tool.

    ``T_mount``: (4, 4) world_from_base1; ``T_interfaces``: (N-1, 4, 4) top_i_from_base_{i+1};
    ``T_tool``: (4, 4) topN_from_tool.
    """

    name: str
    platforms: tuple[PlatformType, ...]
    T_mount: np.ndarray
    T_interfaces: np.ndarray
    T_tool: np.ndarray
    sensitivity: Sensitivity
    hardware: HardwareConfig
    source: str | None = None
    description: str = ""

    @property
    def n_platforms(self) -> int:
        return len(self.platforms)

    @cached_property
    def arrays(self) -> StackArrays:
        """NumPy :class:`StackArrays` of this stack (built once)."""
        T_after = np.concatenate([self.T_interfaces.reshape(-1, 4, 4), self.T_tool[None]], axis=0)
        return StackArrays(
            b=_frozen([p.base_joints for p in self.platforms]),
            t=_frozen([p.top_joints for p in self.platforms]),
            T_mount=_frozen(self.T_mount),
            T_after=_frozen(T_after),
        )

    @cached_property
    def leg_min(self) -> np.ndarray:
        """(N,) m, stroke minimum of each platform's legs."""
        return _frozen([p.leg_min for p in self.platforms])

    @cached_property
    def leg_max(self) -> np.ndarray:
        """(N,) m, stroke maximum of each platform's legs."""
        return _frozen([p.leg_max for p in self.platforms])

    @cached_property
    def leg_offset(self) -> np.ndarray:
        """(N, 6) m, each leg's offset: geometric length = ``leg_scale * commanded + leg_offset``."""
        return _frozen([p.leg_offset for p in self.platforms])

    @cached_property
    def leg_scale(self) -> np.ndarray:
        """(N, 6), each leg's scale (see :attr:`leg_offset`)."""
        return _frozen([p.leg_scale for p in self.platforms])

    @cached_property
    def legs_calibrated(self) -> bool:
        """Whether any leg has an offset or a scale: commanded and geometric lengths differ."""
        return bool(np.any(self.leg_offset != 0.0) or np.any(self.leg_scale != 1.0))

    def geometric_lengths(self, legs) -> np.ndarray:
        """Commanded leg lengths (..., N, 6) m (what the actuators report, what the strokes
        bound) -> geometric lengths, joint to joint (..., N, 6) m, the kinematics' lengths.
        The identity (the same array) for a stack without leg calibration."""
        if not self.legs_calibrated:
            return legs
        return self.leg_scale * np.asarray(legs, dtype=np.float64) + self.leg_offset

    def commanded_lengths(self, legs) -> np.ndarray:
        """Geometric leg lengths (..., N, 6) m -> commanded lengths (..., N, 6) m; the inverse
        of :meth:`geometric_lengths`."""
        if not self.legs_calibrated:
            return legs
        return (np.asarray(legs, dtype=np.float64) - self.leg_offset) / self.leg_scale

    @cached_property
    def max_joint_angle(self) -> np.ndarray:
        """(N,) rad, joint-angle limit per platform (inf where the config gives none)."""
        return _frozen(
            [np.inf if p.max_joint_angle is None else p.max_joint_angle for p in self.platforms]
        )

    @cached_property
    def pose_lower(self) -> np.ndarray:
        """(6N,) lower pose bounds, stacked (``-inf`` where none)."""
        return _frozen(np.concatenate([p.pose_lower for p in self.platforms]))

    @cached_property
    def pose_upper(self) -> np.ndarray:
        """(6N,) upper pose bounds, stacked (``+inf`` where none)."""
        return _frozen(np.concatenate([p.pose_upper for p in self.platforms]))
