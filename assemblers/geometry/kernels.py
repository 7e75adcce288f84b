"""Rotations and rigid transforms as Numba kernels (scalar loops into preallocated outputs).

The Numba backend of :mod:`assemblers.geometry`, for other kernels (kinematics, the IK, the
Monte Carlo); the names are those of :mod:`.reference` (JAX), which the tests compare them
with (``tests/twins``).  Outputs are the last arguments; a pose inside a longer vector is
addressed by an offset (``q[off:off+6]``).  Kernel-only helpers: :func:`compose` (the product
of two rigid transforms) and :func:`rigid_last_row`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .. import _runtime  # (sets NUMBA_CACHE_DIR to the user's cache)

_runtime.gc_off_while_compiling()


@njit(cache=True, inline="always")
def rpy_to_matrix(roll, pitch, yaw, R):
    """Write ``Rz(yaw) Ry(pitch) Rx(roll)`` (rad) into ``R`` (3, 3)."""
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    R[0, 0] = cy * cp
    R[0, 1] = cy * sp * sr - sy * cr
    R[0, 2] = cy * sp * cr + sy * sr
    R[1, 0] = sy * cp
    R[1, 1] = sy * sp * sr + cy * cr
    R[1, 2] = sy * sp * cr - cy * sr
    R[2, 0] = -sp
    R[2, 1] = cp * sr
    R[2, 2] = cp * cr


@njit(cache=True)
def matrix_to_rpy(R, rpy):
    """(roll, pitch, yaw) rad of the rotation ``R`` (3, 3) into ``rpy`` (3,), pitch in
    [-pi/2, pi/2]."""
    rpy[0] = math.atan2(R[2, 1], R[2, 2])
    rpy[1] = math.atan2(-R[2, 0], math.sqrt(R[2, 1] ** 2 + R[2, 2] ** 2))
    rpy[2] = math.atan2(R[1, 0], R[0, 0])


@njit(cache=True, inline="always")
def angular_basis(pitch, yaw, E, dE):
    """``E`` (3, 3): columns d(omega)/d(roll, pitch, yaw) (parent frame); ``dE`` (3, 3, 3):
    ``dE[a]`` = dE/d(rpy_a) (roll: zero)."""
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    E[0, 0], E[1, 0], E[2, 0] = cp * cy, cp * sy, -sp
    E[0, 1], E[1, 1], E[2, 1] = -sy, cy, 0.0
    E[0, 2], E[1, 2], E[2, 2] = 0.0, 0.0, 1.0
    dE[:, :, :] = 0.0
    dE[1, 0, 0], dE[1, 1, 0], dE[1, 2, 0] = -sp * cy, -sp * sy, -cp
    dE[2, 0, 0], dE[2, 1, 0] = -cp * sy, cp * cy
    dE[2, 0, 1], dE[2, 1, 1] = -cy, -sy


@njit(cache=True, inline="always")
def rigid_last_row(T):
    """Set the last row of the (4, 4) transform ``T`` to 0 0 0 1."""
    T[3, 0] = 0.0
    T[3, 1] = 0.0
    T[3, 2] = 0.0
    T[3, 3] = 1.0


@njit(cache=True, inline="always")
def pose_to_transform(q, off, T):
    """Write the (4, 4) transform of pose ``q[off:off+6]`` (m, rad) into ``T``."""
    rpy_to_matrix(q[off + 3], q[off + 4], q[off + 5], T)
    T[0, 3] = q[off]
    T[1, 3] = q[off + 1]
    T[2, 3] = q[off + 2]
    rigid_last_row(T)


@njit(cache=True, inline="always")
def transform_to_pose(T, Q, off):
    """Pose (x, y, z, roll, pitch, yaw) of ``T`` (4, 4) into ``Q[off:off+6]``."""
    Q[off] = T[0, 3]
    Q[off + 1] = T[1, 3]
    Q[off + 2] = T[2, 3]
    Q[off + 3] = math.atan2(T[2, 1], T[2, 2])
    Q[off + 4] = math.atan2(-T[2, 0], math.sqrt(T[2, 1] ** 2 + T[2, 2] ** 2))
    Q[off + 5] = math.atan2(T[1, 0], T[0, 0])


@njit(cache=True, inline="always")
def compose(A, B, C):
    """``C = A @ B`` for rigid (4, 4) transforms (last row assumed 0 0 0 1)."""
    for i in range(3):
        for j in range(4):
            C[i, j] = A[i, 0] * B[0, j] + A[i, 1] * B[1, j] + A[i, 2] * B[2, j]
        C[i, 3] += A[i, 3]
    rigid_last_row(C)


@njit(cache=True, inline="always")
def inverse_transform(T, out):
    """``out = T^-1`` for a rigid (4, 4) transform."""
    for i in range(3):
        for j in range(3):
            out[i, j] = T[j, i]
        out[i, 3] = -(T[0, i] * T[0, 3] + T[1, i] * T[1, 3] + T[2, i] * T[2, 3])
    rigid_last_row(out)


@njit(cache=True)
def so3_log(R, w):
    """Rotation vector of ``R`` (3, 3) into ``w`` (3,), angle in [0, pi]: ``atan2`` of the
    half-norm of ``vee(R - R^T)`` and ``(tr R - 1) / 2``, a series below 1e-6 rad, and the axis
    from the symmetric part near pi."""
    vx, vy, vz = R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]
    c = min(1.0, max(-1.0, (R[0, 0] + R[1, 1] + R[2, 2] - 1.0) / 2.0))
    s = math.sqrt(vx * vx + vy * vy + vz * vz) / 2.0
    theta = math.atan2(s, c)
    if c >= -0.99:
        fct = 0.5 + theta * theta / 12.0 if theta < 1e-6 else theta / (2.0 * s)
        w[0], w[1], w[2] = fct * vx, fct * vy, fct * vz
        return
    # near pi: the axis from the symmetric part R + R^T = 2 c I + 2 (1 - c) a a^T
    B = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            B[i, j] = (R[i, j] + R[j, i]) / 2.0 - (c if i == j else 0.0)
    i = 0
    for j in range(1, 3):
        if B[j, j] > B[i, i]:
            i = j
    d = math.sqrt(max(B[i, i], 1e-30))
    ax, ay, az = B[0, i] / d, B[1, i] / d, B[2, i] / d
    nrm = max(math.sqrt(ax * ax + ay * ay + az * az), 1e-30)
    sgn = -1.0 if ax * vx + ay * vy + az * vz < 0.0 else 1.0
    w[0], w[1], w[2] = sgn * theta * ax / nrm, sgn * theta * ay / nrm, sgn * theta * az / nrm


@njit(cache=True)
def so3_exp(w, R):
    """Rodrigues: rotation vector ``w`` (3,) rad -> ``R`` (3, 3) = ``I + a K + b K^2``, ``K``
    the cross-product matrix of ``w``, written out with ``K^2 = w w^T - |w|^2 I``: scalars only
    (``K @ K`` was an allocation and a BLAS call, whose glue was compiled into every kernel above
    this one)."""
    x, y, z = w[0], w[1], w[2]
    th2 = x * x + y * y + z * z
    if th2 < 1e-16:
        a, b = 1.0 - th2 / 6.0, 0.5 - th2 / 24.0
    else:
        th = math.sqrt(th2)
        a, b = math.sin(th) / th, (1.0 - math.cos(th)) / th2
    R[0, 0] = 1.0 + b * (x * x - th2)
    R[1, 1] = 1.0 + b * (y * y - th2)
    R[2, 2] = 1.0 + b * (z * z - th2)
    R[0, 1] = b * x * y - a * z
    R[1, 0] = b * x * y + a * z
    R[0, 2] = b * x * z + a * y
    R[2, 0] = b * x * z - a * y
    R[1, 2] = b * y * z - a * x
    R[2, 1] = b * y * z + a * x


@njit(cache=True)
def twist_between(T_nominal, T_actual, twist):
    """Error twist (6,) of ``T_actual`` relative to ``T_nominal`` (both (4, 4)) into ``twist``:
    position difference (m, world) and the rotation vector of ``R_actual R_nominal^T`` (rad,
    world)."""
    for a in range(3):
        twist[a] = T_actual[a, 3] - T_nominal[a, 3]
    Rd = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            Rd[i, j] = (T_actual[i, 0] * T_nominal[j, 0] + T_actual[i, 1] * T_nominal[j, 1]
                        + T_actual[i, 2] * T_nominal[j, 2])
    w = np.empty(3)
    so3_log(Rd, w)
    twist[3], twist[4], twist[5] = w[0], w[1], w[2]
