"""Shim: the NumPy facade moved to :mod:`assemblers.kinematics.api`."""

from .kinematics.api import *  # noqa: F401,F403
from .kinematics.api import (  # noqa: F401  (the names callers import from here)
    PARALLEL_MIN,
    as_array,
    forward_kinematics,
    from_legs,
    home_pose,
    jacobian,
    joint_angles,
    leg_lengths,
    sensitivity,
    stack_arrays,
    stack_frames,
    tool_pose,
)
