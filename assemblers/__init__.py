"""assemblers: stacked Stewart-platform manipulators (Assemblers).

Kinematics in JAX (float64) with autodiff-checked Jacobians, least-sensitive inverse kinematics,
and the entry points of the Monte Carlo, visualization and hardware layers (``sims``,
``hardware``).  The API follows docs/conventions.md::

    import assemblers
    asm = assemblers.load_config("configs/assembler.toml")
    Q = assemblers.home_pose(asm)
    T = assemblers.forward_kinematics(asm, Q)          # (4, 4) world_from_tool
    J = assemblers.jacobian(asm, Q, wrt="pose")        # (6, 6N)
"""

from . import _runtime  # noqa: F401  (environment for float64 JAX and the caches; first)
from .errors import ConvergenceError, InputError

__version__ = "0.1.0"

__all__ = [
    "Assembler", "ConfigError", "ConvergenceError", "InputError", "PlatformType", "Sensitivity",
    "Trajectory", "compliance", "config_from_dict", "deflection", "forward_kinematics",
    "from_legs", "home_pose", "jacobian", "joint_angles", "leg_forces", "leg_lengths",
    "load_config", "load_trajectory", "pose_to_transform",
    "save_trajectory", "sensitivity", "shipped_configs", "solve_ik", "solve_trajectory",
    "stack_arrays", "tool_pose", "transform_to_pose",
]

# Loaded on first use, so ``import assemblers`` (the CLI, configs, the hardware layer) does not
# import NumPy, JAX or SciPy's optimizers (``assemblers --help`` stays fast): name -> submodule.
_LAZY = {name: "model.config" for name in ("ConfigError", "config_from_dict", "load_config",
                                           "shipped_configs")}
_LAZY.update({name: "model.io" for name in ("Trajectory", "load_trajectory", "save_trajectory")})
_LAZY.update({name: "model" for name in ("Assembler", "PlatformType", "Sensitivity")})
_LAZY.update({name: "geometry.api" for name in ("pose_to_transform", "transform_to_pose")})
_LAZY.update({name: "kinematics.api" for name in (
    "forward_kinematics", "from_legs", "home_pose", "jacobian", "joint_angles", "leg_lengths",
    "sensitivity", "stack_arrays", "tool_pose")})
_LAZY.update({name: "statics.api" for name in ("compliance", "deflection", "leg_forces")})
_LAZY.update({name: "ik" for name in ("solve_ik", "IKResult", "solve_trajectory",
                                      "TrajectoryResult", "sample_solutions")})
_LAZY.update({name: "calibration" for name in ("calibrate", "CalibrationResult")})
_LAZY["write_config"] = "model.writer"
__all__ += ["CalibrationResult", "calibrate", "write_config"]
_SUBMODULES = ("calibration", "cli", "files", "geometry", "ik", "io", "kinematics", "model", "optim",
               "statics", "transforms")


def __getattr__(name):
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # resolved once: later lookups are plain (an import costs ~5 us)
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'assemblers' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))
