"""Old import path (docs/architecture.md, "Old import paths"): rendering moved to
:mod:`sims.viz.render`."""

from sims.viz.render import (  # noqa: F401
    ANIMATION_SUFFIXES,
    animate,
    caption,
    default_workers,
    ffmpeg_path,
    render_frames,
    render_pose,
    save_image,
    trajectory_camera,
    write_gif,
    write_mp4,
)
