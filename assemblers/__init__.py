"""assemblers: stacked Stewart-platform manipulators (Assemblers).

Kinematics in JAX (float64) with autodiff-checked Jacobians, least-sensitive inverse kinematics,
and the entry points of the Monte Carlo, visualization and hardware layers (``sims``,
``hardware``).  The API follows SPEC (docs/conventions.md)::

    import assemblers
    asm = assemblers.load_config("configs/assembler.toml")
    Q = assemblers.home_pose(asm)
    T = assemblers.forward_kinematics(asm, Q)          # (4, 4) world_from_tool
    J = assemblers.jacobian(asm, Q, wrt="pose")        # (6, 6N)
"""

from . import _runtime  # noqa: F401  (float64 JAX, persistent caches; must come first)
from .api import (
    forward_kinematics,
    from_legs,
    home_pose,
    jacobian,
    joint_angles,
    leg_lengths,
    sensitivity,
    stack_arrays,
    tool_pose,
)
from .config import ConfigError, config_from_dict, load_config, shipped_configs
from .errors import ConvergenceError, InputError
from .io import Trajectory, load_trajectory, save_trajectory
from .model import Assembler, PlatformType, Sensitivity
from .transforms import pose_to_transform, transform_to_pose

__version__ = "0.1.0"

__all__ = [
    "Assembler", "ConfigError", "ConvergenceError", "InputError", "PlatformType", "Sensitivity",
    "Trajectory", "config_from_dict", "forward_kinematics", "from_legs", "home_pose", "jacobian",
    "joint_angles", "leg_lengths", "load_config", "load_trajectory", "pose_to_transform",
    "save_trajectory", "sensitivity", "shipped_configs", "solve_ik", "solve_trajectory",
    "stack_arrays", "tool_pose", "transform_to_pose",
]


def __getattr__(name):
    # The solver pulls in scipy.optimize: load it on first use so ``import assemblers`` stays fast.
    if name in ("solve_ik", "IKResult", "solve_trajectory", "TrajectoryResult", "sample_solutions"):
        from . import ik

        return getattr(ik, name)
    raise AttributeError(f"module 'assemblers' has no attribute {name!r}")
