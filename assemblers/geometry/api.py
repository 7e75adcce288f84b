"""Rotations and rigid transforms in NumPy, vectorized over leading axes.

The NumPy backend of :mod:`assemblers.geometry` (names as in :mod:`.reference`, the JAX
reference they are tested against).  The rpy <-> matrix pair is written out (it *is* the
convention, and the config's transforms must be the same bits in every backend); the log and
exp maps and quaternions use SciPy's ``Rotation``.  Pose ``(x, y, z, roll, pitch, yaw)`` with
``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)``; ``T_a_b`` (4, 4) maps frame-b points into frame a.
"""

from __future__ import annotations

import numpy as np


def rpy_to_matrix(rpy) -> np.ndarray:
    """(..., 3) rad (roll, pitch, yaw) -> (..., 3, 3) ``Rz(yaw) @ Ry(pitch) @ Rx(roll)``."""
    rpy = np.asarray(rpy, dtype=np.float64)
    r, p, y = rpy[..., 0], rpy[..., 1], rpy[..., 2]
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    R = np.empty(rpy.shape[:-1] + (3, 3))
    R[..., 0, 0] = cy * cp
    R[..., 0, 1] = cy * sp * sr - sy * cr
    R[..., 0, 2] = cy * sp * cr + sy * sr
    R[..., 1, 0] = sy * cp
    R[..., 1, 1] = sy * sp * sr + cy * cr
    R[..., 1, 2] = sy * sp * cr - cy * sr
    R[..., 2, 0] = -sp
    R[..., 2, 1] = cp * sr
    R[..., 2, 2] = cp * cr
    return R


def matrix_to_rpy(R) -> np.ndarray:
    """(..., 3, 3) rotations -> (..., 3) rad (roll, pitch, yaw), pitch in [-pi/2, pi/2]."""
    R = np.asarray(R, dtype=np.float64)
    roll = np.arctan2(R[..., 2, 1], R[..., 2, 2])
    pitch = np.arctan2(-R[..., 2, 0], np.hypot(R[..., 2, 1], R[..., 2, 2]))
    yaw = np.arctan2(R[..., 1, 0], R[..., 0, 0])
    return np.stack([roll, pitch, yaw], -1)


def angular_basis(rpy) -> np.ndarray:
    """(..., 3) rad -> (..., 3, 3) E with ``omega = E @ d(rpy)`` (parent frame)."""
    rpy = np.asarray(rpy, dtype=np.float64)
    cp, sp = np.cos(rpy[..., 1]), np.sin(rpy[..., 1])
    cy, sy = np.cos(rpy[..., 2]), np.sin(rpy[..., 2])
    E = np.zeros(rpy.shape[:-1] + (3, 3))
    E[..., 0, 0], E[..., 1, 0], E[..., 2, 0] = cp * cy, cp * sy, -sp
    E[..., 0, 1], E[..., 1, 1] = -sy, cy
    E[..., 2, 2] = 1.0
    return E


def pose_to_transform(pose) -> np.ndarray:
    """(..., 6) poses (x, y, z, roll, pitch, yaw) -> (..., 4, 4) transforms parent_from_child."""
    pose = np.asarray(pose, dtype=np.float64)
    T = np.zeros(pose.shape[:-1] + (4, 4))
    T[..., :3, :3] = rpy_to_matrix(pose[..., 3:6])
    T[..., :3, 3] = pose[..., :3]
    T[..., 3, 3] = 1.0
    return T


def transform_to_pose(T) -> np.ndarray:
    """(..., 4, 4) transforms -> (..., 6) poses (x, y, z, roll, pitch, yaw)."""
    T = np.asarray(T, dtype=np.float64)
    return np.concatenate([T[..., :3, 3], matrix_to_rpy(T[..., :3, :3])], axis=-1)


def inverse_transform(T) -> np.ndarray:
    """(..., 4, 4) rigid transforms -> their inverses (no general matrix inverse)."""
    T = np.asarray(T, dtype=np.float64)
    Rt = np.swapaxes(T[..., :3, :3], -1, -2)
    out = np.zeros(T.shape)
    out[..., :3, :3] = Rt
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", Rt, T[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def so3_exp(w) -> np.ndarray:
    """(..., 3) rotation vectors (rad) -> (..., 3, 3) rotations."""
    from scipy.spatial.transform import Rotation

    w = np.asarray(w, dtype=np.float64)
    return Rotation.from_rotvec(w.reshape(-1, 3)).as_matrix().reshape(w.shape[:-1] + (3, 3))


def so3_log(R) -> np.ndarray:
    """(..., 3, 3) rotations -> (..., 3) rotation vectors (rad), angle in [0, pi]."""
    from scipy.spatial.transform import Rotation

    R = np.asarray(R, dtype=np.float64)
    return Rotation.from_matrix(R.reshape(-1, 3, 3)).as_rotvec().reshape(R.shape[:-2] + (3,))


def twist_between(T_nominal, T_actual) -> np.ndarray:
    """(..., 6) error twist of ``T_actual`` relative to ``T_nominal`` ((..., 4, 4) each,
    broadcast): ``dp`` (m, world) and the rotation vector of ``R_actual R_nominal^T`` (rad,
    world)."""
    T_nominal = np.asarray(T_nominal, dtype=np.float64)
    T_actual = np.asarray(T_actual, dtype=np.float64)
    R = T_actual[..., :3, :3] @ np.swapaxes(T_nominal[..., :3, :3], -1, -2)
    return np.concatenate([T_actual[..., :3, 3] - T_nominal[..., :3, 3], so3_log(R)], axis=-1)


def matrix_to_quaternion(R) -> np.ndarray:
    """(..., 3, 3) rotations -> (..., 4) unit quaternions (x, y, z, w), PyBullet's order."""
    from scipy.spatial.transform import Rotation

    R = np.asarray(R, dtype=np.float64)
    return Rotation.from_matrix(R.reshape(-1, 3, 3)).as_quat().reshape(R.shape[:-2] + (4,))


def quaternion_to_matrix(q) -> np.ndarray:
    """(..., 4) quaternions (x, y, z, w), normalized here -> (..., 3, 3) rotations."""
    from scipy.spatial.transform import Rotation

    q = np.asarray(q, dtype=np.float64)
    return Rotation.from_quat(q.reshape(-1, 4)).as_matrix().reshape(q.shape[:-1] + (3, 3))
