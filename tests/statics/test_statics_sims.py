"""The loads in the simulations: the PyBullet physics check (an independent multibody model with
the config's masses) against assemblers.leg_forces, ``show`` colouring legs by load, the
robustness study comparing the criteria's poses with their load-induced deflection."""

import json

import numpy as np
import pytest

import assemblers as A
from assemblers.cli import main
from assemblers.geometry.api import pose_to_transform

TARGET = [0.03, 0.02, 1.06, 0.08, -0.05, 0.2]
TARGET_TEXT = " ".join(map(str, TARGET))


@pytest.fixture(scope="module")
def loaded():
    return A.load_config("assembler_loaded")


@pytest.mark.parametrize("crit", [None, "fn", "loads", "loads_max"])
def test_physics_leg_forces_match_the_statics(loaded, crit):
    """PyBullet's settled motor forces of every leg (rigid plates, prismatic legs closed by
    ball joints, the config's masses: plates at top_com, half of each leg at each joint, the
    payload) equal assemblers.leg_forces on the default robot with masses, well within 1 %, at
    the home pose and the poses of the criteria; the settled pose is the commanded one."""
    from sims.viz.physics import physics_check

    Q = A.home_pose(loaded) if crit is None else A.solve_ik(loaded, pose_to_transform(TARGET),
                                                             crit).Q
    rep = physics_check(loaded, Q, leg_error=0.0)
    F = A.leg_forces(loaded, Q)
    assert rep.settle["settled"] and rep.tool_error_m < 1e-9
    np.testing.assert_array_equal(rep.model_leg_forces_n, F)
    assert np.abs(rep.leg_forces_n - F).max() <= 0.01 * np.abs(F).max()  # the 1 %
    assert rep.leg_force_error < 1e-6  # what it is: rounding of PyBullet's direct solver
    # the weight the mount carries is the whole moving mass (platform 1's lower leg halves on it)
    assert rep.mount_force_n[2] == pytest.approx(rep.total_mass_kg * 9.81, rel=1e-9)


def test_physics_cli_compares_the_forces(capsys):
    assert main(["physics", "--config", "assembler_loaded", "--target", TARGET_TEXT,
                 "--leg-error", "0", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["pass"] and doc["leg_force_error"] < 0.01
    assert main(["physics", "--config", "assembler_loaded", "--leg-error", "0"]) == 0
    out = capsys.readouterr().out
    assert "the config's masses" in out and "leg_forces model [N]" in out
    assert main(["physics", "--config", "assembler_loaded", "--payload", "1.0"]) == 2
    assert "mass model" in capsys.readouterr().err
    # the default robot (no mass model) keeps the drawn masses and no comparison
    assert main(["physics", "--leg-error", "0", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["leg_force_error"] is None and doc["params"]["payload_kg"] == 0.5


def test_show_colours_legs_by_load(tmp_path, capsys, loaded):
    """``show`` colours the legs by |f| / rating on a config with a mass model (the colours are
    those of style.value_colors of the forces), by platform otherwise; ``--legs load`` without
    a mass model is bad input."""
    from PIL import Image

    from sims.viz.cli import load_colors
    from sims.viz.style import value_colors

    out = tmp_path / "pose.png"
    assert main(["show", "--config", "assembler_loaded", "--target", TARGET_TEXT, "--out",
                 str(out), "--width", "160", "--height", "120", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["leg_colors"]["by"] == "load" and Image.open(out).size == (160, 120)
    Q = np.array(doc["Q"])
    F = np.abs(A.leg_forces(loaded, Q))
    rgba, legend = load_colors(loaded, Q)
    np.testing.assert_allclose(rgba, value_colors(F / 150.0, 0.0, 1.0, cmap="plasma"))
    assert legend["max_force_n"] == pytest.approx(F.max())
    plain = tmp_path / "plain.png"
    assert main(["show", "--out", str(plain), "--width", "160", "--height", "120",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["leg_colors"] == {"by": "platform"}
    assert main(["show", "--out", str(plain), "--legs", "load"]) == 2
    assert "mass model" in capsys.readouterr().err
    # the colours reach the image: by load and by platform differ
    assert main(["show", "--config", "assembler_loaded", "--target", TARGET_TEXT, "--out",
                 str(plain), "--width", "160", "--height", "120", "--legs", "platform"]) == 0
    a, b = (np.asarray(Image.open(p), dtype=float) for p in (out, plain))
    assert np.abs(a - b).max() > 50


def test_robustness_study_compares_the_criteria(loaded, capsys):
    """With a mass model the study adds the poses of ``loads`` and the blend, and every pose
    reports its load-induced deflection (assemblers.deflection at its pose) and largest leg
    force; ``loads`` carries less than ``fn``."""
    from sims.robustness.study import run_study

    T = pose_to_transform(TARGET)
    study = run_study(loaded, T, n_samples=4096, n_random=1, progress=False)
    labels = [p.label for p in study.poses]
    assert labels[:4] == ["fn", "even", "nearest", "loads"] and "fn:1,loads:0.2" in labels
    for p in study.poses:
        np.testing.assert_allclose(p.deflection, A.deflection(loaded, p.Q), atol=1e-18)
        assert p.max_leg_force_n == pytest.approx(np.abs(A.leg_forces(loaded, p.Q)).max())
    assert study.pose("loads").max_leg_force_n < study.pose("fn").max_leg_force_n
    doc = study.to_dict()
    assert doc["poses"][3]["deflection_m"] == pytest.approx(study.pose("loads").deflection_m)
    assert main(["robustness", "--config", "assembler_loaded", "--target", TARGET_TEXT,
                 "--samples", "4096", "--random-poses", "0", "--compare", "margin",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "load deflection [mm]" in out and "max leg force [N]" in out and "margin" in out
    plain = run_study(A.load_config("assembler"), pose_to_transform([0.05, 0.03, 1.0, 0.1, -0.05,
                                                                      0.2]),
                      n_samples=1024, n_random=0, progress=False)
    assert [p.label for p in plain.poses] == ["fn", "even", "nearest"]
    assert all(p.deflection is None for p in plain.poses)
