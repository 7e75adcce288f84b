"""Shim: the JAX rotations and transforms moved to :mod:`assemblers.geometry.reference`."""

from .geometry.reference import *  # noqa: F401,F403
from .geometry.reference import (  # noqa: F401  (the names callers import from here)
    hat,
    inverse_transform,
    matrix_to_rpy,
    pose_to_transform,
    rpy_to_matrix,
    safe_norm,
    so3_exp,
    so3_log,
    transform_to_pose,
    twist_between,
)
