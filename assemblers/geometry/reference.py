"""Rotations and rigid transforms in JAX (float64), gradient-safe at singular points.

The reference backend of :mod:`assemblers.geometry` (the Numba kernels and the NumPy functions
of the same names are tested against it).  Conventions: docs/conventions.md.
"""

from __future__ import annotations

import jax.numpy as jnp

from .. import _runtime

_runtime.configure_jax()

_SMALL = 1e-8  # below this angle (rad) the exp map uses its Taylor series


def rpy_to_matrix(rpy):
    """``rpy``: (3,) rad, (roll, pitch, yaw) -> (3, 3) rotation ``Rz(yaw) @ Ry(pitch) @ Rx(roll)``."""
    cr, cp, cy = jnp.cos(rpy[0]), jnp.cos(rpy[1]), jnp.cos(rpy[2])
    sr, sp, sy = jnp.sin(rpy[0]), jnp.sin(rpy[1]), jnp.sin(rpy[2])
    return jnp.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def matrix_to_rpy(R):
    """(3, 3) rotation -> (3,) rad (roll, pitch, yaw), pitch in [-pi/2, pi/2].

    Exact inverse of :func:`rpy_to_matrix` away from pitch = +-pi/2 (gimbal lock), which no
    Stewart platform reaches.
    """
    roll = jnp.arctan2(R[2, 1], R[2, 2])
    pitch = jnp.arctan2(-R[2, 0], jnp.sqrt(R[2, 1] ** 2 + R[2, 2] ** 2))
    yaw = jnp.arctan2(R[1, 0], R[0, 0])
    return jnp.stack([roll, pitch, yaw])


def angular_basis(rpy):
    """``rpy``: (3,) rad -> (3, 3) E whose columns are the angular velocity (parent frame) per
    unit rate of roll, pitch and yaw: ``omega = E @ d(rpy)`` for ``R = Rz(yaw) Ry(pitch) Rx(roll)``."""
    cp, sp = jnp.cos(rpy[1]), jnp.sin(rpy[1])
    cy, sy = jnp.cos(rpy[2]), jnp.sin(rpy[2])
    zero = jnp.zeros_like(cp)
    one = jnp.ones_like(cp)
    return jnp.array([[cp * cy, -sy, zero], [cp * sy, cy, zero], [-sp, zero, one]])


def pose_to_transform(q):
    """``q``: (6,) (m, m, m, rad, rad, rad) -> (4, 4) homogeneous transform parent_from_child."""
    R = rpy_to_matrix(q[3:6])
    top = jnp.concatenate([R, q[0:3, None]], axis=1)
    return jnp.concatenate([top, jnp.array([[0.0, 0.0, 0.0, 1.0]])], axis=0)


def transform_to_pose(T):
    """(4, 4) transform -> (6,) pose (x, y, z, roll, pitch, yaw)."""
    return jnp.concatenate([T[0:3, 3], matrix_to_rpy(T[0:3, 0:3])])


def inverse_transform(T):
    """(4, 4) rigid transform -> its inverse, without a general matrix inverse."""
    R = T[0:3, 0:3]
    p = T[0:3, 3]
    top = jnp.concatenate([R.T, (-R.T @ p)[:, None]], axis=1)
    return jnp.concatenate([top, jnp.array([[0.0, 0.0, 0.0, 1.0]])], axis=0)


def hat(w):
    """(3,) -> (3, 3) skew matrix with ``hat(w) @ v == cross(w, v)``."""
    return jnp.array([[0.0, -w[2], w[1]], [w[2], 0.0, -w[0]], [-w[1], w[0], 0.0]])


def safe_norm(v, axis=-1):
    """Euclidean norm whose gradient is zero (not NaN) at v = 0."""
    n2 = jnp.sum(v * v, axis=axis)
    pos = n2 > 0.0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, n2, 1.0)), 0.0)


def so3_exp(w):
    """Rotation vector (3,) rad -> (3, 3) rotation matrix (Rodrigues), smooth at w = 0."""
    th2 = jnp.dot(w, w)
    small = th2 < _SMALL**2
    th = jnp.sqrt(jnp.where(small, 1.0, th2))
    a = jnp.where(small, 1.0 - th2 / 6.0, jnp.sin(th) / th)
    b = jnp.where(small, 0.5 - th2 / 24.0, (1.0 - jnp.cos(th)) / jnp.where(small, 1.0, th2))
    K = hat(w)
    return jnp.eye(3) + a * K + b * (K @ K)


def so3_log(R):
    """(3, 3) rotation -> rotation vector (3,) rad, angle in [0, pi].

    ``theta = atan2(|v| / 2, (tr R - 1) / 2)`` with ``v = vee(R - R^T)``; a Taylor branch near 0
    keeps autodiff finite, and a branch near pi reads the axis from the symmetric part.
    """
    v = jnp.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    c = jnp.clip((jnp.trace(R) - 1.0) / 2.0, -1.0, 1.0)
    s = safe_norm(v) / 2.0
    theta = jnp.arctan2(s, c)
    small = theta < 1e-6
    s_safe = jnp.where(small, 1.0, s)
    # theta / (2 sin theta) -> 1/2 + theta^2 / 12 near 0
    factor = jnp.where(small, 0.5 + theta**2 / 12.0, theta / (2.0 * s_safe))
    w_regular = factor * v
    # Near pi: R + R^T = 2 cos(th) I + 2 (1 - cos th) a a^T
    near_pi = c < -0.99
    # The branch not taken must stay finite (else 0 * inf = NaN leaks into gradients): feed it a
    # benign matrix unless it is the one selected (the "double where").
    B = jnp.where(near_pi, (R + R.T) / 2.0 - c * jnp.eye(3), jnp.diag(jnp.array([1.0, 0.0, 0.0])))
    i = jnp.argmax(jnp.diag(B))
    col = B[:, i]
    axis = col / jnp.sqrt(jnp.maximum(col[i], 1e-30))
    axis = axis / jnp.maximum(safe_norm(axis), 1e-30)
    axis = jnp.where(jnp.dot(axis, v) < 0.0, -axis, axis)
    return jnp.where(near_pi, theta * axis, w_regular)


def twist_between(T_nominal, T_actual):
    """Error twist (6,) of ``T_actual`` relative to ``T_nominal``, both (4, 4) world_from_tool.

    ``(dp, dtheta)``: ``dp`` (m, world frame) the position change; ``dtheta`` (rad, world frame)
    the rotation vector of ``R_actual @ R_nominal^T`` (docs/conventions.md).
    """
    dp = T_actual[0:3, 3] - T_nominal[0:3, 3]
    dth = so3_log(T_actual[0:3, 0:3] @ T_nominal[0:3, 0:3].T)
    return jnp.concatenate([dp, dth])
