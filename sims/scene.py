"""Old import path (docs/architecture.md, "Old import paths"): the scene moved to
:mod:`sims.viz.scene` (shapes and colours to :mod:`sims.viz.style`, the camera to
:mod:`sims.viz.camera`, quaternions to :mod:`assemblers.geometry.api`)."""

from assemblers.geometry.api import matrix_to_quaternion, quaternion_to_matrix  # noqa: F401
from sims.viz.camera import Camera, frame_points  # noqa: F401
from sims.viz.client import pybullet  # noqa: F401
from sims.viz.client import quiet_stdout as _quiet_stdout  # noqa: F401
from sims.viz.scene import (  # noqa: F401
    AssemblerScene,
    SceneIds,
    StackPose,
    scene_points,
    stack_pose,
    z_to_vector_quaternion,
)
from sims.viz.style import (  # noqa: F401
    AXIS_COLORS,
    GREY_JOINT,
    GREY_ROD,
    TOOL_COLOR,
    LegParts,
    Style,
    convex_hull_2d,
    housing_colors,
    leg_parts,
    plate_outline,
    plate_slab,
    platform_colors,
    platform_hues,
    prism_mesh,
)
