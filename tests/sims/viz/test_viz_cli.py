"""``assemblers show``, ``animate`` and ``physics`` bad input, the ``--gui`` guard without a
display, and the math core never importing PyBullet or the views."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from support import stderr_lines

import assemblers as A
from assemblers.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_show_cli_png(tmp_path, capsys, default_asm, near_home):
    from PIL import Image

    Q = near_home(default_asm, 5)
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
    assert fragment in err and "Traceback" not in err and len(stderr_lines(err.strip())) == 1


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
    from sims.viz.gui import display_available

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


VIEW_MODULES = ("pybullet", "sims.viz", "sims.scene", "sims.render", "sims.physics")


def test_math_core_never_imports_pybullet():
    """The drawing code lives apart: no module of ``assemblers`` (sub-packages included) imports
    pybullet or the view modules, and kinematics, IK and ``assemblers info`` run without loading
    them."""
    from pathlib import Path

    core = Path(A.__file__).resolve().parent
    for f in core.rglob("*.py"):
        for line in f.read_text().splitlines():
            s = line.strip()
            for m in VIEW_MODULES:
                assert not s.startswith((f"import {m}", f"from {m}")), (f, s)
    code = ("import sys, io, contextlib, numpy as np, assemblers as A\n"
            "from assemblers.cli import main\n"
            "asm = A.load_config('assembler'); Q = A.home_pose(asm)\n"
            "A.forward_kinematics(asm, Q); A.jacobian(asm, Q); A.from_legs(asm, A.leg_lengths(asm, Q))\n"
            "with contextlib.redirect_stdout(io.StringIO()): assert main(['info']) == 0\n"
            f"bad = [m for m in sys.modules if m.startswith({VIEW_MODULES!r})]\n"
            "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
