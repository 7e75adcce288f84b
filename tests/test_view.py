"""PyBullet scene, headless rendering and the view CLI (DIRECT mode only; no display needed)."""

import colorsys
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import assemblers as A
from assemblers import kinematics as K
from assemblers.cli import main
from assemblers.io import Trajectory, save_trajectory
from sims import scene as S
from sims.render import animate, render_pose

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _near_home(asm, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    lim = np.tile([0.02, 0.02, 0.015, 0.08, 0.08, 0.1], asm.n_platforms) * scale
    Q = A.home_pose(asm) + rng.uniform(-lim, lim)
    L = A.leg_lengths(asm, Q)
    assert np.all(L > asm.leg_min[:, None]) and np.all(L < asm.leg_max[:, None])
    return Q


@pytest.fixture(scope="module")
def scene(default_asm):
    with S.AssemblerScene(default_asm) as sc:
        yield sc


# ----------------------------------------------------------------------------- body poses


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_body_poses_equal_kinematic_model(default_asm, scene, seed):
    """Plates and tool as PyBullet stores them equal the model's frames (JAX stack_frames and
    forward_kinematics) to 1e-12: PyBullet keeps poses in float64."""
    asm = default_asm
    Q = _near_home(asm, seed)
    T = A.pose_to_transform(A.tool_pose(asm, Q)) if seed == 2 else None
    scene.set_pose(Q, T)
    T_base, T_top, T_tool = (np.asarray(x) for x in K.stack_frames(A.stack_arrays(asm), Q))
    for i in range(asm.n_platforms):
        np.testing.assert_allclose(scene.body_pose(scene.ids.plates[i, 0]), T_base[i], atol=1e-12)
        np.testing.assert_allclose(scene.body_pose(scene.ids.plates[i, 1]), T_top[i], atol=1e-12)
    np.testing.assert_allclose(scene.body_pose(scene.ids.tool), T_tool, atol=1e-12)
    np.testing.assert_allclose(scene.body_pose(scene.ids.tool), A.forward_kinematics(asm, Q),
                               atol=1e-12)
    # raw read-back of what was set: the position is bit-identical, the quaternion within an ulp
    set_T = scene.pose.T_tool
    pos, quat = scene.pb.getBasePositionAndOrientation(int(scene.ids.tool))
    assert np.array_equal(pos, set_T[:3, 3])
    np.testing.assert_allclose(quat, S.matrix_to_quaternion(set_T[:3, :3]), atol=2e-16)


def test_legs_span_their_joints(default_asm, scene):
    """Housing starts at the base joint, rod ends at the top joint, along the leg; joint spheres
    sit on the joints; leg lengths equal the model's."""
    asm = default_asm
    Q = _near_home(asm, 7)
    sp = scene.set_pose(Q)
    L = A.leg_lengths(asm, Q)
    for i in range(asm.n_platforms):
        parts = S.leg_parts(asm.platforms[i].leg_min, asm.platforms[i].leg_max)
        assert parts.housing + parts.rod > asm.platforms[i].leg_max  # overlap over the stroke
        for k in range(6):
            Th = scene.body_pose(scene.ids.housings[i, k])
            Tr = scene.body_pose(scene.ids.rods[i, k])
            a = Th[:3, 3] - 0.5 * parts.housing * Th[:3, 2]
            b = Tr[:3, 3] + 0.5 * parts.rod * Tr[:3, 2]
            np.testing.assert_allclose(a, sp.base_joints[i, k], atol=1e-12)
            np.testing.assert_allclose(b, sp.top_joints[i, k], atol=1e-12)
            assert np.linalg.norm(b - a) == pytest.approx(L[i, k], abs=1e-12)
            np.testing.assert_allclose(scene.body_pose(scene.ids.joints[i, 1, k])[:3, 3],
                                       sp.top_joints[i, k], atol=1e-15)


def test_target_marker_axes(default_asm, scene):
    T = A.pose_to_transform([0.1, -0.05, 1.0, 0.3, -0.2, 0.5])
    scene.set_pose(A.home_pose(default_asm), T)
    L = scene.style.marker_length
    for axis, body in enumerate(scene.ids.target):
        Tb = scene.body_pose(body)
        np.testing.assert_allclose(Tb[:3, 2], T[:3, axis], atol=1e-12)  # cylinder z = the axis
        np.testing.assert_allclose(Tb[:3, 3], T[:3, 3] + 0.5 * L * T[:3, axis], atol=1e-12)


def test_quaternion_helpers():
    rng = np.random.default_rng(3)
    for _ in range(50):
        R = A.pose_to_transform(np.r_[0, 0, 0, rng.uniform(-3, 3, 3)])[:3, :3]
        np.testing.assert_allclose(S.quaternion_to_matrix(S.matrix_to_quaternion(R)), R, atol=1e-14)
        u = rng.normal(size=3)
        u /= np.linalg.norm(u)
        np.testing.assert_allclose(S.quaternion_to_matrix(S.z_to_vector_quaternion(u))[:, 2], u,
                                   atol=1e-14)
    np.testing.assert_allclose(S.quaternion_to_matrix(S.z_to_vector_quaternion([0, 0, -1]))[:, 2],
                               [0, 0, -1], atol=1e-15)


# ----------------------------------------------------------------------------- rendering


def _hue_mask(img, hue, tol=0.035):
    hsv = np.array([colorsys.rgb_to_hsv(*(px / 255.0)) for px in img.reshape(-1, 3)])
    dh = np.abs((hsv[:, 0] - hue + 0.5) % 1.0 - 0.5)
    return ((dh < tol) & (hsv[:, 1] > 0.35) & (hsv[:, 2] > 0.15)).reshape(img.shape[:2])


def _project(points, view, proj, w, h):
    V = np.array(view).reshape(4, 4).T
    P = np.array(proj).reshape(4, 4).T
    X = P @ V @ np.c_[points, np.ones(len(points))].T
    ndc = X[:2] / X[3]
    return np.c_[(ndc[0] + 1) / 2 * w, (1 - ndc[1]) / 2 * h]


def test_render_shows_the_robot(default_asm, scene):
    """Against the empty scene (floor only) from the same camera, the robot changes the pixels
    inside its projected bounding box and almost none outside; every platform's hue is there."""
    asm = default_asm
    Q = _near_home(asm, 4)
    w, h = 200, 150
    scene.set_pose(Q)
    view, proj = scene.view_projection(w, h)
    cam_points = scene.scene_points()
    img = scene.render(w, h, points=cam_points)
    saved = {b: scene.pb.getBasePositionAndOrientation(b) for b in scene.ids.robot()}
    for b in saved:
        scene.pb.resetBasePositionAndOrientation(b, [0, 0, -1000], [0, 0, 0, 1])
    empty = scene.render(w, h, points=cam_points)
    for b, (p, q) in saved.items():
        scene.pb.resetBasePositionAndOrientation(b, p, q)
    assert img.shape == (h, w, 3) and img.dtype == np.uint8
    diff = np.abs(img.astype(int) - empty.astype(int)).sum(axis=2) > 30
    uv = _project(cam_points, view, proj, w, h)
    (u0, v0), (u1, v1) = uv.min(0) - 3, uv.max(0) + 3
    assert 0 <= u0 and u1 <= w and 0 <= v0 and v1 <= h  # auto-framing keeps it all in view
    inside = np.zeros_like(diff)
    inside[int(v0):int(np.ceil(v1)), int(u0):int(np.ceil(u1))] = True
    assert diff[inside].mean() > 0.2  # the robot covers a good part of its box
    # outside the box only the shadow may differ
    assert diff[~inside].sum() < 0.15 * diff[inside].sum()
    for hue in S.platform_hues(asm.n_platforms):
        assert _hue_mask(img, hue).sum() > 40, f"platform hue {hue:.2f} missing"
        assert _hue_mask(empty, hue).sum() == 0


def test_render_pose_api_and_camera(default_asm):
    Q = A.home_pose(default_asm)
    a = render_pose(default_asm, Q, width=96, height=72)
    b = render_pose(default_asm, Q, width=96, height=72, camera=S.Camera(yaw_deg=130))
    c = render_pose(default_asm, Q, width=96, height=72,
                    style=S.Style(plate="round", floor=False))
    assert a.shape == (72, 96, 3) and not np.array_equal(a, b) and not np.array_equal(a, c)
    with pytest.raises(A.InputError, match="width"):
        render_pose(default_asm, Q, width=4, height=72)


# ----------------------------------------------------------------------------- CLI


def test_show_cli_png(tmp_path, capsys, default_asm):
    from PIL import Image

    Q = _near_home(default_asm, 5)
    out = tmp_path / "pose.png"
    argv = ["show", "--pose", " ".join(map(repr, Q.tolist())), "--out", str(out),
            "--width", "120", "--height", "90", "--yaw", "70", "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert Image.open(out).size == (120, 90)
    np.testing.assert_allclose(doc["tool_pose"], A.tool_pose(default_asm, Q), atol=1e-12)
    assert doc["source"] == "pose"


def test_show_cli_target_uses_ik(tmp_path, capsys, default_asm):
    target = [0.02, 0.01, 1.15, 0.05, 0.0, 0.1]
    out = tmp_path / "t.png"
    assert main(["show", "--target", " ".join(map(str, target)), "--out", str(out),
                 "--width", "80", "--height", "60", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ik"]["success"] and out.exists()
    np.testing.assert_allclose(doc["tool_pose"], target, atol=1e-9)
    T = A.forward_kinematics(default_asm, np.array(doc["Q"]))
    np.testing.assert_allclose(T, A.pose_to_transform(target), atol=1e-9)


@pytest.mark.parametrize("argv,fragment", [
    (["show"], "give --out FILE.png to render an image, or --gui"),
    (["show", "--pose", "1 2 3", "--out", "x.png"], "--pose: expected 24 numbers, got 3"),
    (["show", "--out", "x.png", "--width", "3"], "width: must be an integer pixel count"),
    (["show", "--out", "x.png", "--pose", "0 " * 24, "--target", "0 0 1 0 0 0"],
     "give only one of"),
    (["show", "--out", "x.png", "--fov", "200"], "--fov: must be in 5..150"),
    (["animate", "--trajectory", "missing.json", "--out", "x.gif"], "missing.json: no such file"),
    (["physics", "--payload", "-1"], "--payload: must be in"),
])
def test_view_cli_bad_input_exits_2(argv, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def _trajectory(asm, n=6):
    Q0, Q1 = A.home_pose(asm), _near_home(asm, 11)
    s = np.linspace(0, 1, n)[:, None]
    Q = Q0 + s * (Q1 - Q0)
    return Trajectory(t=np.linspace(0, 0.5, n), Q=Q, legs=A.leg_lengths(asm, Q),
                      config="assembler", T_target=A.forward_kinematics(asm, Q))


def test_animate_gif(tmp_path, capsys, default_asm):
    from PIL import Image

    path = save_trajectory(tmp_path / "tr.json", _trajectory(default_asm))
    out = tmp_path / "tr.gif"
    assert main(["animate", "--trajectory", str(path), "--out", str(out), "--width", "64",
                 "--height", "48", "--stride", "2", "--fps", "10", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    im = Image.open(out)
    assert doc["frames"] == im.n_frames == 4  # samples 0, 2, 4 and the last one
    assert im.size == (64, 48) and im.info["duration"] == 100


def test_animate_real_time_and_parallel(tmp_path, default_asm):
    """Two worker processes give the same frames as one; real-time durations follow t."""
    from PIL import Image

    tr = _trajectory(default_asm, n=4)
    a = animate(default_asm, tr, tmp_path / "a.gif", width=48, height=36, workers=1)
    b = animate(default_asm, tr, tmp_path / "b.gif", width=48, height=36, workers=2)
    assert a["frames"] == b["frames"] == 4 and b["workers"] == 2
    ia, ib = Image.open(tmp_path / "a.gif"), Image.open(tmp_path / "b.gif")
    for k in range(4):
        ia.seek(k)
        ib.seek(k)
        assert np.array_equal(np.asarray(ia.convert("RGB")), np.asarray(ib.convert("RGB")))
    assert ia.info["duration"] == 170  # 1000 * 0.5 / 3 ms, in GIF's 10 ms steps


def test_animate_rejects_mismatch_and_mp4_without_ffmpeg(tmp_path, default_asm, monkeypatch):
    path = save_trajectory(tmp_path / "tr.json", _trajectory(default_asm, n=2))
    duo = A.load_config("duo")
    with pytest.raises(A.InputError, match="4 platform"):
        animate(duo, path, tmp_path / "x.gif")
    with pytest.raises(A.InputError, match="gif or .mp4"):
        animate(default_asm, path, tmp_path / "x.avi")
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg here, and none bundled:
    monkeypatch.setattr("sims.render._bundled_ffmpeg", lambda: None)
    with pytest.raises(A.InputError, match="MP4 needs ffmpeg.*imageio-ffmpeg"):
        animate(default_asm, path, tmp_path / "x.mp4")


# ----------------------------------------------------------------------------- GUI guard


def _run_cli(args, env_updates, unset=()):
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(env_updates)
    # the console script's entry point (``python -m assemblers.cli`` would run cli.py as
    # __main__, a second copy whose CLIError class the command modules do not raise)
    code = "import sys; from assemblers.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("display", [None, ":97"])
def test_gui_without_display_exits_2(display):
    """``show --gui`` with no X server: a clear one-line error and exit 2, never a dead process
    (PyBullet's GUI connect would abort it)."""
    env = {} if display is None else {"DISPLAY": display}
    r = _run_cli(["show", "--gui"], env, unset=("DISPLAY", "WAYLAND_DISPLAY"))
    assert r.returncode == 2, r.stderr
    assert "--gui needs a display" in r.stderr
    assert ("DISPLAY is not set" in r.stderr) if display is None else (":97" in r.stderr)
    assert "Traceback" not in r.stderr


def test_display_check_unit(monkeypatch):
    from sims.view_cli import display_available

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    ok, why = display_available()
    assert not ok and "WAYLAND_DISPLAY" in why
    monkeypatch.setenv("DISPLAY", "nonsense")
    assert not display_available()[0]
    monkeypatch.setenv("DISPLAY", ":96")
    monkeypatch.setenv("PATH", "/nonexistent")  # no xdpyinfo: the socket check decides
    ok, why = display_available()
    assert not ok and "X96" in why


def test_show_unreachable_target_draws_closest_and_exits_1(tmp_path, capsys):
    out = tmp_path / "u.png"
    assert main(["show", "--target", "2 0 1 0 0 0", "--out", str(out), "--width", "64",
                 "--height", "48"]) == 1
    assert out.exists() and "target NOT reached" in capsys.readouterr().out
    assert main(["physics", "--target", "2 0 1 0 0 0"]) == 1
    assert "target not reached" in capsys.readouterr().err


def test_animate_mp4(tmp_path, default_asm):
    """MP4 works from a plain ``pip install`` (the imageio-ffmpeg wheel's ffmpeg when none is on
    PATH): decode it back and check the codec, the size (odd sizes cropped to even for
    yuv420p), the frame count and that the first frame is the GIF's first frame."""
    from PIL import Image

    from sims.render import ffmpeg_path

    tr = _trajectory(default_asm, n=5)
    info = animate(default_asm, tr, tmp_path / "a.mp4", fps=10, width=65, height=49, workers=1)
    assert info["frames"] == 5 and (tmp_path / "a.mp4").stat().st_size > 1000
    animate(default_asm, tr, tmp_path / "a.gif", fps=10, width=65, height=49, workers=1)
    # decode it back to raw RGB (close_fds=False: posix_spawn, no fork of this JAX process)
    r = subprocess.run([ffmpeg_path(), "-hide_banner", "-i", str(tmp_path / "a.mp4"), "-f",
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

    from sims import render as R

    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg here
    assert R.ffmpeg_path() == imageio_ffmpeg.get_ffmpeg_exe()


def test_math_core_never_imports_pybullet():
    """The drawing code lives apart: no module of ``assemblers`` imports pybullet or the view
    modules, and kinematics, IK and ``assemblers info`` run without loading them."""
    from pathlib import Path

    core = Path(A.__file__).resolve().parent
    for f in core.glob("*.py"):
        for line in f.read_text().splitlines():
            s = line.strip()
            assert not (s.startswith(("import pybullet", "from pybullet"))
                        or s.startswith(("from sims.scene", "from sims.render",
                                         "from sims.physics", "import sims.scene"))), (f, s)
    code = ("import sys, io, contextlib, numpy as np, assemblers as A\n"
            "from assemblers.cli import main\n"
            "asm = A.load_config('assembler'); Q = A.home_pose(asm)\n"
            "A.forward_kinematics(asm, Q); A.jacobian(asm, Q); A.from_legs(asm, A.leg_lengths(asm, Q))\n"
            "with contextlib.redirect_stdout(io.StringIO()): assert main(['info']) == 0\n"
            "bad = [m for m in sys.modules if m.startswith(('pybullet', 'sims.scene', "
            "'sims.render', 'sims.physics'))]\n"
            "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
