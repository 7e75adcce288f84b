"""Shim: the Numba kinematics moved to :mod:`assemblers.kinematics.kernels` (and the rotation
and transform kernels to :mod:`assemblers.geometry.kernels`); the old names stay here."""

from .geometry.kernels import compose as matmul4  # noqa: F401
from .geometry.kernels import pose_to_transform as pose_transform  # noqa: F401
from .geometry.kernels import rigid_last_row  # noqa: F401
from .geometry.kernels import rpy_to_matrix as rpy_matrix  # noqa: F401
from .kinematics.kernels import *  # noqa: F401,F403
from .kinematics.kernels import (  # noqa: F401  (the names callers import from here)
    forward,
    forward_batch,
    from_legs_batch,
    from_legs_platform,
    from_legs_stack,
    jacobian_pose,
    jacobian_pose_batch,
    legs_batch,
    platform_leg_jacobian,
    platform_legs,
    stack_frames,
)
from .optim.linalg import pivot_rows, solve6  # noqa: F401
