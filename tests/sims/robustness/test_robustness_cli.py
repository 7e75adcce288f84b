"""``assemblers robustness`` (sims.robustness.cli): JSON and reports, several targets, tables,
bad input (exit 2, one line, nothing written) and unreachable targets (exit 1)."""

from __future__ import annotations

import json

import pytest
from support import named_in_error, stderr_lines

from assemblers.cli import main as cli_main

TARGET_DUO = "0.02 -0.01 0.55 0.05 0.0 0.1"  # reachable by duo


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


@pytest.mark.parametrize("argv, msg", named_in_error(
    "--samples 0", "--samples abc", '--target "0 0 nan 0 0 0"', '--target "0 0 1"',
    "--noise pose,wind", "--sigma-xyz -1", "--seed -3", "--random-poses 1.5") + [
    (["--noise", "pose", "--sigma-leg", "1e-4"], "--sigma-leg"),
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
    assert msg in err and "Traceback" not in err and len(stderr_lines(err.strip())) == 1
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
