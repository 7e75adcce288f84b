"""Shim: pose <-> transform in NumPy moved to :mod:`assemblers.geometry.api`."""

from .geometry.api import *  # noqa: F401,F403
from .geometry.api import pose_to_transform, transform_to_pose  # noqa: F401
