"""The loads where a user looks: ``solve`` prints leg forces beside the legs, ``statics`` for a
pose or a target, the config keys (bad values exit 2 with one line naming file and key)."""

import json

import numpy as np
import pytest
from support import stderr_lines

import assemblers as A
from assemblers.cli import main

TARGET = "0.02 0.01 1.07 0.05 0.0 0.1"


def run_json(capsys, argv, code=0):
    assert main(argv + ["--json"]) == code
    return json.loads(capsys.readouterr().out)


def test_solve_reports_forces_beside_the_legs(capsys):
    doc = run_json(capsys, ["solve", "--config", "assembler_loaded", "--target", TARGET,
                            "--criterion", "loads"])
    asm = A.load_config("assembler_loaded")
    np.testing.assert_allclose(doc["leg_forces_N"], A.leg_forces(asm, np.array(doc["Q"])),
                               rtol=1e-12)
    assert doc["max_leg_force_N"] == [150.0] * 4 and doc["criterion"] == "loads"
    np.testing.assert_allclose(doc["fraction_of_rating"], np.abs(doc["leg_forces_N"]) / 150.0)
    assert main(["solve", "--config", "assembler_loaded", "--target", TARGET, "--criterion",
                 "fn:1,loads:0.2"]) == 0
    out = capsys.readouterr().out
    assert "force [N]" in out and "rating [%]" in out and "fn:1,loads:0.2" in out
    # no load, no force columns
    assert main(["solve", "--target", TARGET]) == 0
    assert "force [N]" not in capsys.readouterr().out


@pytest.mark.parametrize("crit", ["loadz", "fn:1,loads:x", "loads"])
def test_solve_bad_criterion_is_one_line(capsys, crit):
    """A bad criterion (unknown, a bad blend, a criterion of the loads on a config without
    masses) exits 2 with one line naming it."""
    assert main(["solve", "--target", TARGET, "--criterion", crit]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "criterion" in err[0], err


def test_statics_command(capsys):
    asm = A.load_config("assembler_loaded")
    Q = A.home_pose(asm) + 0.005
    qs = " ".join(map(str, Q.tolist()))
    doc = run_json(capsys, ["statics", "--config", "assembler_loaded", "--Q", qs,
                            "--payload", "2.0 0 0 0.01", "--wrench", "1 2 3 0.1 0.2 0.3"])
    F = A.leg_forces(asm, Q, payload={"mass": 2.0, "com": [0, 0, 0.01]},
                     wrench=[1, 2, 3, 0.1, 0.2, 0.3])
    np.testing.assert_allclose(doc["leg_forces_N"], F, rtol=1e-12)
    np.testing.assert_allclose(doc["compliance"], A.compliance(asm, Q), rtol=1e-12)
    assert main(["statics", "--config", "assembler_loaded", "--target", TARGET, "--criterion",
                 "loads_max"]) == 0
    out = capsys.readouterr().out
    assert "Leg forces [N]" in out and "tool deflection" in out and "solved (loads_max)" in out
    assert main(["statics"]) == 0  # the default Assembler has no masses
    assert "no load" in capsys.readouterr().out
    for bad in (["--Q", qs, "--target", TARGET], ["--payload", "-1"], ["--wrench", "1 2"],
                ["--criterion", "loads"]):
        assert main(["statics", "--config", "assembler_loaded"] + bad) == 2
        assert len(stderr_lines(capsys.readouterr().err)) == 1


@pytest.mark.parametrize("key,value,what", [
    ("top_mass", "-1.0", "must not be negative"), ("leg_mass", "1e9", "at most"),
    ("max_leg_force", "0.0", "must be in"), ("leg_stiffness", "0.1", "must be in"),
    ("top_com", "[0, 0]", "list of 3"), ("top_mas", "1.0", "unknown key")])
def test_bad_mass_keys_exit_2(tmp_path, capsys, key, value, what):
    import re

    text = (A.model.config.CONFIG_DIR / "assembler_loaded.toml").read_text()
    if re.search(rf"^{key} = ", text, flags=re.M):  # the first platform type's value
        text = re.sub(rf"^{key} = [^#\n]*", f"{key} = {value} ", text, count=1, flags=re.M)
    else:
        text = text.replace("top_mass = 3.3 ", f"{key} = {value}\ntop_mass = 3.3 ", 1)
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["info", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(stderr_lines(err)) == 1 and what in err and "platforms.hexapod" in err, err


@pytest.mark.parametrize("extra,what", [
    ("[ik]\nstroke_margin = 0.5\n", "ik.stroke_margin"),
    ("[ik]\nstroke_margin = 0.3\n", "outside the stroke kept free"),
    ("[ik]\nmargin = 0.1\n", "unknown key"),
])
def test_bad_ik_table_exits_2(tmp_path, capsys, extra, what):
    path = tmp_path / "bad.toml"
    text = (A.model.config.CONFIG_DIR / "assembler_loaded.toml").read_text().replace(
        "[sensitivity]", extra + "\n[sensitivity]")
    # legs of 0.30 m at home (stroke 0.20-0.32 m): outside a margin of 0.3 (0.236-0.284 m)
    text = text.replace("leg_max = 0.32\n", "leg_max = 0.32\nhome_height = 0.277\n")
    path.write_text(text)
    assert main(["info", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(stderr_lines(err)) == 1 and what in err, err


def test_gravity_and_payload_keys(tmp_path, capsys):
    text = (A.model.config.CONFIG_DIR / "assembler_loaded.toml").read_text()
    for old, new, what in (("gravity = [0.0, 0.0, -9.81]", "gravity = [0.0, 0.0, -200.0]",
                            "stack.gravity"),
                           ("payload = { mass = 1.2,", "payload = { mass = -1.2,",
                            "stack.payload.mass"),
                           ("com = [0.0, 0.0, -0.04] }", "com = [0.0, 0.0, -0.04], m = 1 }",
                            "stack.payload.m")):
        path = tmp_path / "bad.toml"
        path.write_text(text.replace(old, new))
        assert main(["info", "--config", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(stderr_lines(err)) == 1 and what in err, err
    path.write_text(text.replace("gravity = [0.0, 0.0, -9.81]", "gravity = [0.0, 0.0, 0.0]"))
    asm = A.load_config(str(path))
    assert np.abs(A.leg_forces(asm, A.home_pose(asm))).max() == 0.0


def test_sweep_maps_the_largest_leg_force(tmp_path):
    """A sweep of a config with a mass model (with a blend) records the largest leg force (and
    over its rating) of every solved pose, equal to leg_forces there, and draws leg_force.png; a
    config without masses leaves them null and draws no such map."""
    from sims import sweeps as S
    from sims.sweeps import report

    box = {"lo": (-0.02, -0.02, 0.0, 0.0, 0.0, 0.0), "hi": (0.02, 0.02, 0.0, 0.0, 0.0, 0.0),
           "mode": "grid", "counts": (2, 2, 1, 1, 1, 1)}
    spec = S.SweepSpec(configs=[S.read_config("assembler_loaded")], criterion="fn:1,loads:0.2",
                       **box)
    assert S.run_sweep(spec, tmp_path / "loaded", executor=0).complete
    d = S.load_results(tmp_path / "loaded").to_pydict()
    asm = A.load_config("assembler_loaded")
    for q, f, frac, crit in zip(d["Q"], d["max_leg_force_N"], d["max_leg_force_rating"],
                                d["criterion"]):
        F = np.abs(A.leg_forces(asm, np.array(q)))
        assert crit == "fn:1,loads:0.2"
        assert f == pytest.approx(F.max(), rel=1e-12)
        assert frac == pytest.approx(F.max() / 150.0, rel=1e-12)
    assert any(f.endswith("leg_force.png") for f in report(tmp_path / "loaded")["files"])
    plain = S.SweepSpec(configs=[S.read_config("duo")], **box)
    assert S.run_sweep(plain, tmp_path / "plain", executor=0).complete
    d = S.load_results(tmp_path / "plain").to_pydict()
    assert set(d["max_leg_force_N"]) == {None} and set(d["max_leg_force_rating"]) == {None}
    assert not any(f.endswith("leg_force.png") for f in report(tmp_path / "plain")["files"])
    with pytest.raises(S.SweepError, match="--criterion"):
        S.SweepSpec(configs=[S.read_config("duo")], criterion="fn:1,loadz:1", **box)
