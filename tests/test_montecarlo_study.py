"""Robustness study (sims.study), report (sims.report) and the ``assemblers robustness`` CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import assemblers
from assemblers.cli import main as cli_main
from assemblers.errors import InputError
from assemblers.transforms import pose_to_transform
from sims import montecarlo as M
from sims.report import FIGURES, write_report
from sims.study import TargetUnreachable, default_disturbance, run_study

TARGET_DEFAULT = [0.05, 0.03, 1.0, 0.1, -0.05, 0.2]  # reachable by the default Assembler
TARGET_DUO = "0.02 -0.01 0.55 0.05 0.0 0.1"  # reachable by duo


@pytest.fixture(scope="module")
def default():
    return assemblers.load_config("assembler")


@pytest.fixture(scope="module")
def duo():
    return assemblers.load_config("duo")


def test_fn_pose_beats_even_baseline_on_default_robot(default):
    """The fn-optimal pose has a lower Monte Carlo RMS error than the even baseline, by more than
    the statistical error of the (paired, common random numbers) difference."""
    T = pose_to_transform(TARGET_DEFAULT)
    fn = assemblers.solve_ik(default, T, criterion="fn")
    even = assemblers.solve_ik(default, T, criterion="even")
    assert fn.success and even.success
    d = default_disturbance(default)  # pose noise, 0.1 mm / 0.1 mrad
    n = 100_000
    s_fn, x_fn = M.simulate(default, fn.Q, d, n, seed=21, return_samples=True)
    s_ev, x_ev = M.simulate(default, even.Q, d, n, seed=21, return_samples=True)
    assert s_fn.rms_weighted < s_ev.rms_weighted
    assert s_fn.rms_position < s_ev.rms_position
    # paired difference of the squared weighted errors, sample by sample
    l2 = default.sensitivity.length_scale**2

    def w(e):
        return np.sum(e[:, :3] ** 2, 1) + l2 * np.sum(e[:, 3:] ** 2, 1)

    diff = w(x_fn.errors) - w(x_ev.errors)
    assert diff.mean() < -5 * diff.std(ddof=1) / math.sqrt(n)
    # and the size of the gain is what the costs predict (first order)
    gain_mc = 1 - s_fn.rms_weighted / s_ev.rms_weighted
    gain_cost = 1 - fn.cost / even.cost
    assert gain_mc == pytest.approx(gain_cost, abs=0.2 * gain_cost)


@pytest.fixture(scope="module")
def duo_study(duo):
    return run_study(duo, pose_to_transform([float(x) for x in TARGET_DUO.split()]),
                     n_samples=20_000, seed=3, n_random=2, n_scatter=500, progress=False)


def test_study_result(duo, duo_study):
    st = duo_study
    labels = [p.label for p in st.poses]
    assert labels[0] == "fn" and "even" in labels and "nearest" in labels
    assert sum(p.kind == "random" for p in st.poses) == 2
    assert st.criterion == "fn" and st.disturbance.kinds == ("pose",)
    T = st.target
    for p in st.poses:
        assert p.stats.n == 20_000 and p.scatter.shape == (500, 6)
        np.testing.assert_allclose(assemblers.forward_kinematics(duo, p.Q), T, atol=1e-9)
        # first order holds at 0.1 mm / 0.1 mrad
        assert p.stats.mean_sq_weighted == pytest.approx(p.predicted_mean_sq, rel=0.05)
    # the optimum has the lowest cost; reductions are consistent with the stats
    assert st.optimal.cost <= min(p.cost for p in st.poses) + 1e-12
    red = st.reductions()
    assert set(red) == set(labels[1:])
    e = st.pose("even").stats
    assert red["even"]["rms_weighted"] == pytest.approx(1 - st.optimal.stats.rms_weighted
                                                        / e.rms_weighted)
    doc = json.loads(json.dumps(st.to_dict(histograms=True), allow_nan=False))
    assert doc["poses"][0]["stats"]["n"] == 20_000
    assert doc["disturbance"]["kinds"] == ["pose"]


def test_report_files(duo_study, tmp_path):
    out = tmp_path / "rep"
    paths = write_report(duo_study, out)
    names = {p.name for p in paths}
    assert names == {"report.md", "stats.json", *FIGURES}
    for p in paths:
        assert p.stat().st_size > 1000, p
    for name in FIGURES:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    assert "| fn |" in md and "even" in md and "![" in md
    doc = json.loads((out / "stats.json").read_text())
    assert len(doc["poses"]) == len(duo_study.poses)
    assert "hist_position_m" in doc["poses"][0]["stats"]
    # writing again into the existing directory replaces the files, leaves nothing else
    write_report(duo_study, out, figures=False)
    assert {p.name for p in out.iterdir()} == names
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rep")]


def test_study_bad_input(duo):
    T = np.eye(4)
    with pytest.raises(InputError):
        run_study(duo, T, M.Disturbance(), n_samples=10)  # nothing to simulate
    with pytest.raises(InputError):
        run_study(duo, T, n_samples=0)
    with pytest.raises(InputError):
        run_study(duo, T, criterion="even")
    with pytest.raises(InputError):
        run_study(duo, np.full((4, 4), np.nan))


def test_default_disturbance(duo):
    trio = assemblers.load_config("trio")
    d = default_disturbance(trio)  # wrt = legs, sigma_leg = 1e-4 (physical): used as is
    assert d.kinds == ("legs",) and d.leg_sigma == 1e-4
    d = default_disturbance(duo)  # unit weights: scaled to 1e-4
    assert d.kinds == ("pose",) and max(d.pose_sigma) == pytest.approx(1e-4)
    d = default_disturbance(duo, ("pose", "joints"))
    assert d.kinds == ("pose", "joints")


# ----------------------------------------------------------------------------- CLI


def _run(argv, capsys):
    code = cli_main(["robustness", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_and_report(tmp_path, capsys):
    out = tmp_path / "r"
    code, stdout, err = _run(["--config", "duo", "--target", TARGET_DUO, "--samples", "1e4",
                              "--random-poses", "1", "--out", str(out), "--no-progress",
                              "--json", "--seed", "4"], capsys)
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["n_samples"] == 10_000 and doc["seed"] == 4
    assert [p["label"] for p in doc["poses"]][:3] == ["fn", "even", "nearest"]
    assert (out / "report.md").exists() and (out / "cost_vs_rms.png").exists()


def test_cli_several_targets(tmp_path, capsys):
    """Repeated --target: a study per target, DIR/target-k reports and DIR/index.md; an
    unreachable one is reported, the others still run, exit 1."""
    out = tmp_path / "many"
    code, stdout, err = _run(["--config", "duo", "--target", TARGET_DUO, "--target",
                              "0 0 3.0 0 0 0", "--target", TARGET_DUO, "--samples", "2000",
                              "--random-poses", "0", "--out", str(out), "--no-progress",
                              "--json", "--no-figures"], capsys)
    assert code == 1 and "target-2" in err and "not reached" in err
    docs = json.loads(stdout)["studies"]
    assert [d["target"] for d in docs] == ["target-1", "target-2", "target-3"]
    assert docs[1]["success"] is False and docs[0]["n_samples"] == 2000
    assert docs[0]["poses"][0]["stats"] == docs[2]["poses"][0]["stats"]  # same seed
    assert (out / "target-1" / "report.md").exists() and (out / "target-3" / "stats.json").exists()
    assert not (out / "target-2").exists()
    index = (out / "index.md").read_text()
    assert "target-1/report.md" in index and "not reached" in index


def test_cli_table_with_leg_noise(capsys):
    code, stdout, err = _run(["-c", "duo", "--target", TARGET_DUO, "--samples", "2000",
                              "--noise", "legs", "--sigma-leg", "5e-5", "--random-poses", "0",
                              "--no-progress"], capsys)
    assert code == 0, err
    assert "legs sigma = 5e-05 m" in stdout and "fn_legs" in stdout
    assert "RMS pos [" in stdout


@pytest.mark.parametrize("argv, msg", [
    (["--samples", "0"], "--samples"),
    (["--samples", "abc"], "--samples"),
    (["--target", "0 0 nan 0 0 0"], "--target"),
    (["--target", "0 0 1"], "--target"),
    (["--noise", "pose,wind"], "--noise"),
    (["--noise", "pose", "--sigma-leg", "1e-4"], "--sigma-leg"),
    (["--sigma-xyz", "-1"], "--sigma-xyz"),
    (["--seed", "-3"], "--seed"),
    (["--random-poses", "1.5"], "--random-poses"),
    (["--config", "no_such_config_name"], "no_such_config_name"),
])
def test_cli_bad_input(tmp_path, capsys, argv, msg):
    out = tmp_path / "never"
    base = {"--target": "0.0 0.0 0.5 0 0 0", "--samples": "1000"}
    args = ["--out", str(out), "--no-progress", "-c", "duo"]
    for k, v in base.items():
        if k not in argv:
            args += [k, v]
    code, stdout, err = _run(args + argv, capsys)
    assert code == 2
    assert msg in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "file.txt"
    f.write_text("x")
    code, _, err = _run(["-c", "duo", "--target", TARGET_DUO, "--out", str(f)], capsys)
    assert code == 2 and "not a directory" in err
    assert f.read_text() == "x"


def test_cli_unreachable_target(tmp_path, capsys):
    out = tmp_path / "never"
    code, _, err = _run(["-c", "duo", "--target", "0 0 3.0 0 0 0", "--samples", "1000",
                         "--out", str(out), "--no-progress"], capsys)
    assert code == 1
    assert "not reached" in err and "unreachable" in err
    assert not out.exists()


def test_unreachable_raises(duo):
    with pytest.raises(TargetUnreachable) as info:
        run_study(duo, pose_to_transform([0, 0, 3.0, 0, 0, 0]), n_samples=100, progress=False)
    assert not info.value.ik_result.success
