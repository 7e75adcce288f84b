"""Pose <-> transform conversions in NumPy (vectorized over leading axes).

The JAX twins used inside jitted code are in :mod:`assemblers.lie`; tests check both agree.
Pose ``(x, y, z, roll, pitch, yaw)`` with ``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)`` (SPEC).
"""

from __future__ import annotations

import numpy as np


def transform_to_pose(T) -> np.ndarray:
    """(..., 4, 4) transforms -> (..., 6) poses (x, y, z, roll, pitch, yaw), NumPy."""
    T = np.asarray(T, dtype=np.float64)
    R = T[..., :3, :3]
    roll = np.arctan2(R[..., 2, 1], R[..., 2, 2])
    pitch = np.arctan2(-R[..., 2, 0], np.hypot(R[..., 2, 1], R[..., 2, 2]))
    yaw = np.arctan2(R[..., 1, 0], R[..., 0, 0])
    return np.concatenate([T[..., :3, 3], np.stack([roll, pitch, yaw], -1)], axis=-1)


def pose_to_transform(pose) -> np.ndarray:
    """(..., 6) poses (x, y, z, roll, pitch, yaw) -> (..., 4, 4) transforms, NumPy."""
    pose = np.asarray(pose, dtype=np.float64)
    r, p, y = pose[..., 3], pose[..., 4], pose[..., 5]
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    T = np.zeros(pose.shape[:-1] + (4, 4))
    T[..., 0, 0] = cy * cp
    T[..., 0, 1] = cy * sp * sr - sy * cr
    T[..., 0, 2] = cy * sp * cr + sy * sr
    T[..., 1, 0] = sy * cp
    T[..., 1, 1] = sy * sp * sr + cy * cr
    T[..., 1, 2] = sy * sp * cr - cy * sr
    T[..., 2, 0] = -sp
    T[..., 2, 1] = cp * sr
    T[..., 2, 2] = cp * cr
    T[..., :3, 3] = pose[..., :3]
    T[..., 3, 3] = 1.0
    return T
