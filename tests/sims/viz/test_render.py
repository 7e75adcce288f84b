"""Animations (sims.viz.render): GIF with Pillow, MP4 with imageio-ffmpeg, in one or several
worker processes."""

import json
import subprocess

import numpy as np
import pytest

import assemblers as A
from assemblers.cli import main
from assemblers.model.io import Trajectory, save_trajectory
from sims.viz import render as R
from sims.viz.render import animate

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def trajectory(default_asm, near_home):
    """``trajectory(n)``: ``n`` samples over 0.5 s from home to a pose near it, with targets."""
    Q1 = near_home(default_asm, 11)
    return lambda n=6: _trajectory(default_asm, Q1, n)


def _trajectory(asm, Q1, n):
    Q0 = A.home_pose(asm)
    s = np.linspace(0, 1, n)[:, None]
    Q = Q0 + s * (Q1 - Q0)
    return Trajectory(t=np.linspace(0, 0.5, n), Q=Q, legs=A.leg_lengths(asm, Q),
                      config="assembler", T_target=A.forward_kinematics(asm, Q))


def test_animate_gif(tmp_path, capsys, trajectory):
    from PIL import Image

    path = save_trajectory(tmp_path / "tr.json", trajectory())
    out = tmp_path / "tr.gif"
    assert main(["animate", "--trajectory", str(path), "--out", str(out), "--width", "64",
                 "--height", "48", "--stride", "2", "--fps", "10", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    im = Image.open(out)
    assert doc["frames"] == im.n_frames == 4  # samples 0, 2, 4 and the last one
    assert im.size == (64, 48) and im.info["duration"] == 100


def test_animate_real_time_and_parallel(tmp_path, default_asm, trajectory):
    """Two worker processes give the same frames as one; real-time durations follow t."""
    from PIL import Image

    tr = trajectory(n=4)
    a = animate(default_asm, tr, tmp_path / "a.gif", width=48, height=36, workers=1)
    b = animate(default_asm, tr, tmp_path / "b.gif", width=48, height=36, workers=2)
    assert a["frames"] == b["frames"] == 4 and b["workers"] == 2
    ia, ib = Image.open(tmp_path / "a.gif"), Image.open(tmp_path / "b.gif")
    for k in range(4):
        ia.seek(k)
        ib.seek(k)
        assert np.array_equal(np.asarray(ia.convert("RGB")), np.asarray(ib.convert("RGB")))
    assert ia.info["duration"] == 170  # 1000 * 0.5 / 3 ms, in GIF's 10 ms steps


def test_animate_rejects_mismatch_and_mp4_without_ffmpeg(tmp_path, default_asm, monkeypatch,
                                                          trajectory):
    path = save_trajectory(tmp_path / "tr.json", trajectory(n=2))
    duo = A.load_config("duo")
    with pytest.raises(A.InputError, match="4 platform"):
        animate(duo, path, tmp_path / "x.gif")
    with pytest.raises(A.InputError, match="gif or .mp4"):
        animate(default_asm, path, tmp_path / "x.avi")
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg here, and none bundled:
    monkeypatch.setattr("sims.viz.render._bundled_ffmpeg", lambda: None)
    with pytest.raises(A.InputError, match="MP4 needs ffmpeg.*imageio-ffmpeg"):
        animate(default_asm, path, tmp_path / "x.mp4")


def test_animate_mp4(tmp_path, default_asm, trajectory):
    """MP4 works from a plain ``pip install`` (the imageio-ffmpeg wheel's ffmpeg when none is on
    PATH): decode it back and check the codec, the size (odd sizes cropped to even for
    yuv420p), the frame count and that the first frame is the GIF's first frame."""
    from PIL import Image

    tr = trajectory(n=5)
    info = animate(default_asm, tr, tmp_path / "a.mp4", fps=10, width=65, height=49, workers=1)
    assert info["frames"] == 5 and (tmp_path / "a.mp4").stat().st_size > 1000
    animate(default_asm, tr, tmp_path / "a.gif", fps=10, width=65, height=49, workers=1)
    # decode it back to raw RGB (close_fds=False: posix_spawn, no fork of this JAX process)
    r = subprocess.run([R.ffmpeg_path(), "-hide_banner", "-i", str(tmp_path / "a.mp4"), "-f",
                        "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True,
                       close_fds=False, timeout=60)
    assert r.returncode == 0
    err = r.stderr.decode(errors="replace")
    assert "Video: h264" in err and "64x48" in err
    raw = np.frombuffer(r.stdout, np.uint8)
    assert raw.size == 5 * 48 * 64 * 3
    frames = raw.reshape(5, 48, 64, 3).astype(float)
    gif = Image.open(tmp_path / "a.gif")
    first = np.asarray(gif.convert("RGB"), dtype=float)[:48, :64]
    gif.seek(4)
    last = np.asarray(gif.convert("RGB"), dtype=float)[:48, :64]
    err_first = np.abs(frames[0] - first).mean()
    assert err_first < 8.0  # H.264 + yuv420p chroma subsampling on a 64 x 48 frame
    assert np.abs(frames[4] - last).mean() < 8.0


def test_mp4_uses_bundled_ffmpeg_without_one_on_path(tmp_path, monkeypatch):
    import imageio_ffmpeg

    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg here
    assert R.ffmpeg_path() == imageio_ffmpeg.get_ffmpeg_exe()


def test_mp4_when_ffmpeg_fails(tmp_path, default_asm, monkeypatch, trajectory):
    """An ffmpeg that dies is bad input with one clear message, and leaves no file behind."""
    monkeypatch.setattr("sims.viz.render.ffmpeg_path", lambda: "/bin/false")
    with pytest.raises(A.InputError, match="ffmpeg failed"):
        animate(default_asm, trajectory(n=3), tmp_path / "x.mp4", fps=10, width=48, height=36,
                workers=1)
    assert not list(tmp_path.iterdir())
