"""The one default tool target of the commands that take ``--target`` (issue 19).

``assemblers demo`` has always used ``"0.02 0.01 1.07 0.05 0.0 0.1"``: 2 cm and 1 cm sideways,
2.3 cm down and (0.05, 0, 0.1) rad away from the default Assembler's home tool pose.  That pose
only suits the default Assembler (a shorter stack cannot reach z = 1.07 m), so the default of a
config is the same *move from its own home tool pose* (:func:`default_target`): for the
default Assembler exactly the demo's target, and every shipped config reaches its own.
Standard library only at import time.
"""

from __future__ import annotations

#: The default Assembler's default target: x, y, z (m), roll, pitch, yaw (rad), world frame.
DEFAULT_TARGET = (0.02, 0.01, 1.07, 0.05, 0.0, 0.1)
#: The same, as the command line writes it.
DEFAULT_TARGET_TEXT = " ".join(f"{v:g}" for v in DEFAULT_TARGET)
#: How ``--target``'s help states the default.
TARGET_HELP = ("tool target in the world frame, m and rad (default: the config's default target, "
               f"for the default Assembler {DEFAULT_TARGET_TEXT!r}; see assemblers.cli.defaults)")


def default_target(asm):
    """(4, 4) ``T_world_tool``: the default target of ``asm``.  The default Assembler's is
    :data:`DEFAULT_TARGET`; any other's is the same move from its home tool pose (position
    offset added in the world frame, rotation ``R_offset @ R_home``)."""
    import numpy as np

    from ..geometry.api import pose_to_transform
    from ..kinematics.api import forward_kinematics, home_pose
    from ..model.config import DEFAULT_CONFIG, load_config

    ref = load_config(DEFAULT_CONFIG)
    T_ref_home = forward_kinematics(ref, home_pose(ref))
    T_ref = pose_to_transform(DEFAULT_TARGET)
    dp = T_ref[:3, 3] - T_ref_home[:3, 3]  # m, world frame
    dR = T_ref[:3, :3] @ T_ref_home[:3, :3].T
    T_home = forward_kinematics(asm, home_pose(asm))
    T = np.eye(4)
    T[:3, :3] = dR @ T_home[:3, :3]
    T[:3, 3] = T_home[:3, 3] + dp
    if asm.name == ref.name and np.allclose(T_home, T_ref_home, atol=1e-15):
        return T_ref  # the default Assembler: the demo's target, bit for bit
    return T


def target_text(T) -> str:
    """A target ``T`` (4, 4) as ``--target`` writes it: x y z (m) roll pitch yaw (rad);
    :data:`DEFAULT_TARGET_TEXT` for the default Assembler's default target."""
    import numpy as np

    from ..geometry.api import pose_to_transform, transform_to_pose

    if np.array_equal(T, pose_to_transform(DEFAULT_TARGET)):
        return DEFAULT_TARGET_TEXT
    return " ".join(f"{v:.12g}" for v in transform_to_pose(T))


def target_or_default(args, asm, name: str = "target"):
    """``(T (4, 4), text)``: the ``--target`` of ``args`` (parsed by
    :func:`assemblers.cli.args.parse_target`), or the config's :func:`default_target` when
    it was not given (``text`` then says so)."""
    from .args import parse_target

    value = getattr(args, name, None)
    if value is not None:
        return parse_target(value, f"--{name.replace('_', '-')}"), value
    T = default_target(asm)
    return T, target_text(T) + " (default)"
