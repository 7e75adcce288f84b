"""Kinematics of the stack: forward kinematics, legs, joint angles, J_Q, J_L, pose from legs.

* :mod:`.reference`: the JAX model (autodiff-checked; the reference of the tests);
* :mod:`.kernels`: the Numba twins (serial ``*_rows`` and threaded ``*_batch`` drivers);
* :mod:`.api`: the NumPy facade behind ``assemblers.forward_kinematics`` & co., with its one
  backend rule.

The JAX functions are also reachable here (``assemblers.kinematics.forward``, as before the
package split), loaded on first use so that importing the facade does not import JAX.
"""

_REFERENCE = ("forward", "from_legs_platform", "from_legs_stack", "jacobian", "jacobian_legs",
              "jacobian_pose", "jacobian_pose_autodiff", "joint_angles_platform", "leg_vectors",
              "platform_leg_jacobian", "platform_legs", "sensitivity", "stack_frames",
              "stack_joint_angles", "stack_legs", "angular_basis")


def __getattr__(name):
    if name in _REFERENCE:
        from . import reference

        return getattr(reference, name)
    raise AttributeError(f"module 'assemblers.kinematics' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_REFERENCE))
