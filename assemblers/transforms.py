"""Old import path (docs/architecture.md, "Old import paths"): pose <-> transform in NumPy lives
in :mod:`assemblers.geometry.api`; the documented names stay importable from here."""

from .geometry.api import pose_to_transform, transform_to_pose  # noqa: F401
