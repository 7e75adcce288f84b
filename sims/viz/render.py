"""Headless pictures of the Assembler: one pose to PNG, a trajectory to GIF or MP4.

Everything runs in PyBullet's ``DIRECT`` mode with the CPU tiny renderer, so it works on machines
without a display or GPU.  Frames come from :class:`.scene.AssemblerScene` (bodies posed from
the kinematic model); GIFs are written with Pillow, MP4 with ``imageio_ffmpeg.write_frames``
(H.264): through the ``ffmpeg`` on PATH, else the static build that the ``imageio-ffmpeg`` wheel
(a core dependency) ships.

Python entry points::

    from sims.viz import render_pose, save_image, animate
    img = render_pose(asm, Q, T_target=None, width=640, height=480)   # (480, 640, 3) uint8
    save_image(img, "pose.png")
    info = animate(asm, "path.json", "path.gif", fps=None, stride=None)  # dict: frames, seconds...
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

import numpy as np

from assemblers.errors import InputError
from assemblers.model import Assembler

from .camera import Camera, frame_points
from .scene import AssemblerScene, scene_points, stack_pose
from .style import Style

ANIMATION_SUFFIXES = (".gif", ".mp4")
_NO_FFMPEG = ("{path}: MP4 needs ffmpeg (none on PATH and the imageio-ffmpeg package's binary is "
              "missing: pip install imageio-ffmpeg); write a .gif instead")


def _check_size(width: int, height: int) -> None:
    for name, v in (("width", width), ("height", height)):
        if not (isinstance(v, (int, np.integer)) and 16 <= v <= 4096):
            raise InputError(f"{name}: must be an integer pixel count in 16..4096, got {v!r}")


def render_pose(asm: Assembler, Q, T_target=None, width: int = 640, height: int = 480,
                camera: Camera | None = None, style: Style | None = None,
                leg_colors=None) -> np.ndarray:
    """Render the Assembler at stack pose ``Q`` (6N,) with an optional target marker ``T_target``
    (4, 4, world_from_target); ``leg_colors``: (N, 6, 3|4) RGBA per leg or None (the style's;
    :meth:`.scene.AssemblerScene.set_leg_colors`).  Returns a (height, width, 3) uint8 image."""
    _check_size(width, height)
    with AssemblerScene(asm, style=style) as scene:
        scene.set_pose(Q, T_target)
        if leg_colors is not None:
            scene.set_leg_colors(leg_colors)
        return scene.render(width, height, camera)


def save_image(img: np.ndarray, path: str | os.PathLike) -> Path:
    """Write an (H, W, 3) uint8 image; the format follows the suffix (PNG, JPEG...)."""
    from PIL import Image

    from assemblers import files

    path = Path(path)
    try:
        with files.atomic_path(path) as tmp:  # same suffix: Pillow picks the format from it
            Image.fromarray(np.asarray(img, dtype=np.uint8)).save(tmp)
    except InputError:  # the path cannot be written (assemblers.files says why)
        raise
    except (ValueError, KeyError) as exc:  # unknown suffix
        raise InputError(f"{path}: cannot write this image format ({exc}); use .png") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc})") from None
    return path


def caption(img: np.ndarray, text: str) -> np.ndarray:
    """A copy of ``img`` (H, W, 3) with ``text`` in its top-left corner (Pillow's default font)."""
    from PIL import Image, ImageDraw

    im = Image.fromarray(img)
    d = ImageDraw.Draw(im)
    x, y = 8, 6
    box = d.textbbox((x, y), text)
    d.rectangle((box[0] - 3, box[1] - 2, box[2] + 3, box[3] + 2), fill=(255, 255, 255))
    d.text((x, y), text, fill=(20, 20, 20))
    return np.asarray(im)


def trajectory_camera(asm: Assembler, Q, T_target, camera: Camera | None, style: Style,
                      aspect: float) -> Camera:
    """One fixed camera for a whole animation: ``camera`` with its target/distance (where None)
    framed on the union of every frame's points.  ``Q``: (T, 6N); ``T_target``: (T, 4, 4) or None."""
    cam = camera or Camera()
    if cam.target is not None and cam.distance is not None:
        return cam
    idx = np.unique(np.linspace(0, len(Q) - 1, min(len(Q), 60)).round().astype(int))
    pts = np.concatenate([scene_points(asm, stack_pose(asm, Q[i]), style,
                                       None if T_target is None else T_target[i]) for i in idx])
    target, dist = frame_points(pts, cam, aspect)
    return Camera(cam.yaw_deg, cam.pitch_deg, cam.fov_deg,
                  tuple(float(x) for x in (cam.target if cam.target is not None else target)),
                  float(cam.distance if cam.distance is not None else dist), cam.margin)


def _render_chunk(job) -> list[np.ndarray]:
    """Render frames ``lo..hi-1`` in this process (its own PyBullet client); see render_frames."""
    asm, Q, T_target, times, lo, hi, width, height, cam, style, show_caption = job
    out = []
    with AssemblerScene(asm, style=style) as scene:
        for i in range(lo, hi):
            scene.set_pose(Q[i], None if T_target is None else T_target[i])
            img = scene.render(width, height, cam)
            if show_caption and times is not None:
                img = caption(img, f"t = {times[i]:.2f} s   frame {i + 1}/{len(Q)}")
            out.append(img)
    return out


def default_workers(n_frames: int) -> int:
    """Worker processes for ``n_frames``: 1 below 24 frames (start-up, ~1 s each, would not pay),
    else one per CPU core, at most 8."""
    return 1 if n_frames < 24 else max(1, min(8, os.cpu_count() or 1))


def render_frames(asm: Assembler, Q, T_target=None, times=None, width: int = 640, height: int = 480,
                  camera: Camera | None = None, style: Style | None = None,
                  show_caption: bool = True, workers: int | None = None):
    """Yield one (height, width, 3) uint8 frame per row of ``Q`` (T, 6N), in order, all from the
    same camera (see :func:`trajectory_camera`).  ``T_target``: (T, 4, 4) marker per frame or
    None; ``times``: (T,) s, written in the corner when ``show_caption``; ``workers``: processes
    rendering contiguous chunks in parallel (the tiny renderer is single-threaded; default
    :func:`default_workers`)."""
    _check_size(width, height)
    style = style or Style()
    Q = np.asarray(Q, dtype=np.float64)
    cam = trajectory_camera(asm, Q, T_target, camera, style, width / height)
    n = len(Q)
    workers = default_workers(n) if workers is None else max(1, min(int(workers), n))
    bounds = np.linspace(0, n, workers + 1).round().astype(int)
    jobs = [(asm, Q, T_target, times, int(lo), int(hi), width, height, cam, style, show_caption)
            for lo, hi in zip(bounds[:-1], bounds[1:])]
    if workers == 1:
        yield from _render_chunk(jobs[0])
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: the parent may hold JAX's threads, which fork would copy mid-flight
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as ex:
        for chunk in ex.map(_render_chunk, jobs):
            yield from chunk


def write_gif(frames, path: str | os.PathLike, durations_ms) -> Path:
    """Write frames ((H, W, 3) uint8 each) as a looping GIF; ``durations_ms``: one per frame,
    rounded to the format's 10 ms steps."""
    from PIL import Image

    ims = [Image.fromarray(f).quantize(colors=255, method=Image.Quantize.FASTOCTREE,
                                       dither=Image.Dither.NONE) for f in frames]
    if not ims:
        raise InputError("no frames to write")
    path = Path(path)
    ims[0].save(path, save_all=True, append_images=ims[1:], loop=0,
                duration=[10 * max(1, int(round(d / 10))) for d in durations_ms], optimize=False,
                disposal=1)
    return path


def _bundled_ffmpeg() -> str | None:
    """The ffmpeg executable shipped in the ``imageio-ffmpeg`` wheel, or None."""
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except (RuntimeError, OSError):
        return None
    return exe if exe and os.access(exe, os.X_OK) else None


def ffmpeg_path() -> str | None:
    """Path of ``ffmpeg``: the one on PATH, else the ``imageio-ffmpeg`` wheel's; None if neither."""
    return shutil.which("ffmpeg") or _bundled_ffmpeg()


@contextlib.contextmanager
def _ffmpeg_env(exe: str):
    """``imageio_ffmpeg.write_frames`` takes its executable from ``IMAGEIO_FFMPEG_EXE`` (it has no
    argument for it): point it at ``exe`` (:func:`ffmpeg_path`'s choice) for the block.  Also
    ``IMAGEIO_FFMPEG_NO_PREVENT_SIGINT``: without a ``preexec_fn`` the child is spawned without
    running the at-fork handlers, which JAX warns about in a multithreaded process."""
    keys = ("IMAGEIO_FFMPEG_EXE", "IMAGEIO_FFMPEG_NO_PREVENT_SIGINT")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update({keys[0]: exe, keys[1]: "1"})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def write_mp4(frames, path: str | os.PathLike, fps: float, width: int, height: int) -> Path:
    """Encode frames ((height, width, 3) uint8 each) as H.264 MP4 (yuv420p; an odd size is
    cropped by one pixel) with ``imageio_ffmpeg.write_frames``.  Raises InputError when ffmpeg is
    missing or fails."""
    import imageio_ffmpeg

    exe = ffmpeg_path()
    if exe is None:
        raise InputError(_NO_FFMPEG.format(path=path))
    w2, h2 = width - width % 2, height - height % 2  # yuv420p needs even sizes
    path = Path(path)
    with _ffmpeg_env(exe):
        writer = imageio_ffmpeg.write_frames(
            str(path), (width, height), fps=fps, codec="libx264", quality=None,
            macro_block_size=1, ffmpeg_log_level="error",
            output_params=["-vf", f"crop={w2}:{h2}:0:0"])
        try:
            writer.send(None)  # start ffmpeg
            for f in frames:
                writer.send(np.ascontiguousarray(f, dtype=np.uint8).tobytes())
        except OSError as exc:  # ffmpeg died (its message is on stderr)
            raise InputError(f"{path}: ffmpeg failed: {str(exc).strip().splitlines()[0][:300]}") \
                from None
        finally:
            writer.close()  # waits for ffmpeg to finish the file
    if not path.is_file() or path.stat().st_size == 0:
        raise InputError(f"{path}: ffmpeg failed: no video was written")
    return path


def animate(asm: Assembler, trajectory, out: str | os.PathLike, fps: float | None = None,
            stride: int | None = None, width: int = 640, height: int = 480, camera: Camera | None = None,
            style: Style | None = None, show_target: bool = True, show_caption: bool = True,
            workers: int | None = None) -> dict:
    """Animate a trajectory (a path or an :class:`assemblers.model.io.Trajectory`) to ``out``.

    ``out``: ``.gif`` (Pillow) or ``.mp4`` (:func:`ffmpeg_path`); ``stride``: use every stride-th sample
    (default: 1 with ``fps``; in real time, the stride giving about 25 frames per second);
    ``fps``: frames per second, or None for real time (frame durations from the trajectory's
    ``t``; GIF delays are kept >= 20 ms, which is what viewers honour); ``show_target``: draw the
    trajectory's ``T_target`` (when it has one) as RGB axes; ``workers``: rendering processes
    (default :func:`default_workers`).  Returns a dict with ``out``,
    ``frames``, ``duration_s`` (of the animation), ``render_s`` (wall time) and ``camera``.
    """
    from assemblers.model.io import Trajectory, load_trajectory

    t0 = time.perf_counter()
    out = Path(out)
    if out.suffix.lower() not in ANIMATION_SUFFIXES:
        raise InputError(f"{out}: animation must be .gif or .mp4")
    if out.suffix.lower() == ".mp4" and ffmpeg_path() is None:
        raise InputError(_NO_FFMPEG.format(path=out))
    if stride is not None and not (isinstance(stride, (int, np.integer)) and stride >= 1):
        raise InputError(f"stride: must be a positive integer, got {stride!r}")
    if fps is not None and not (np.isfinite(fps) and 0 < fps <= 100):
        raise InputError(f"fps: must be in (0, 100], got {fps!r}")
    tr = trajectory if isinstance(trajectory, Trajectory) else load_trajectory(trajectory)
    if tr.n_platforms != asm.n_platforms:
        raise InputError(f"trajectory has {tr.n_platforms} platform(s) but the Assembler "
                         f"'{asm.name}' has {asm.n_platforms}; pass the matching --config")
    if stride is None:
        dt_med = float(np.median(np.diff(tr.t))) if tr.n_steps > 1 else 1.0
        stride = 1 if fps is not None else max(1, int(round(0.04 / dt_med)))
    idx = np.arange(0, tr.n_steps, stride)
    if idx[-1] != tr.n_steps - 1:
        idx = np.append(idx, tr.n_steps - 1)  # always end on the last pose
    Q, t = tr.Q[idx], tr.t[idx]
    T_target = tr.T_target[idx] if (show_target and tr.T_target is not None) else None
    if fps is None:
        dt = np.diff(t, append=t[-1] + (t[-1] - t[-2] if len(t) > 1 else 0.04))
        durations = np.maximum(dt * 1e3, 20.0)
        fps_eff = 1e3 / float(np.mean(durations))
    else:
        durations = np.full(len(idx), 1e3 / fps)
        fps_eff = float(fps)
    style = style or Style()
    cam = trajectory_camera(asm, Q, T_target, camera, style, width / height)
    from assemblers import files

    workers = default_workers(len(idx)) if workers is None else workers
    with files.atomic_path(out) as tmp:  # a whole animation or none (same suffix as out)
        frames = render_frames(asm, Q, T_target, t, width, height, cam, style, show_caption,
                               workers)
        if out.suffix.lower() == ".gif":
            write_gif(list(frames), tmp, durations)
        else:
            write_mp4(frames, tmp, fps_eff, width, height)
    return {"out": str(out), "frames": int(len(idx)), "duration_s": float(np.sum(durations) / 1e3),
            "fps": fps_eff, "stride": int(stride), "render_s": time.perf_counter() - t0,
            "workers": int(workers),
            "camera": {"yaw_deg": cam.yaw_deg, "pitch_deg": cam.pitch_deg, "fov_deg": cam.fov_deg,
                       "target": list(cam.target), "distance": cam.distance}}
