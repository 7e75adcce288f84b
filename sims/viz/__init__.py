"""Pictures and physics of the Assembler in PyBullet (headless by default).

From a command to the code: ``assemblers show`` / ``animate`` / ``physics`` are :mod:`.cli`;
``show`` renders one pose (:func:`render_pose`, :mod:`.render`) or opens the GUI (:mod:`.gui`),
``animate`` renders a trajectory file to GIF (Pillow) or MP4 (``imageio_ffmpeg``), both through
:class:`AssemblerScene` (:mod:`.scene`: bodies posed from the frames of
``assemblers.kinematics.api.stack_frames``; shapes and colours in :mod:`.style`, the camera in
:mod:`.camera`); ``physics`` runs :func:`physics_check` (:mod:`.physics`) on the dynamic model of
:mod:`.dynamics`.  docs/visualization.md has the details and the numbers.

Names are loaded on first use (PyBullet is imported only when a scene or model is built).
"""

from __future__ import annotations

from sims._lazy import lazy_exports

_LAZY = {
    "camera": ("Camera", "frame_points"),
    "style": ("Style", "leg_parts", "platform_colors", "platform_hues", "value_colors"),
    "scene": ("AssemblerScene", "SceneIds", "StackPose", "scene_points", "stack_pose"),
    "render": ("animate", "default_workers", "ffmpeg_path", "render_frames", "render_pose",
               "save_image"),
    "dynamics": ("PhysicsModel", "PhysicsParams"),
    "physics": ("PhysicsReport", "leg_error_study", "physics_check"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _LAZY)
