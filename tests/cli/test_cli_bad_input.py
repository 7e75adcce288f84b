"""Issue 13, bad input: every defect class found by the CLI fuzz run ends in one line on stderr
and exit 2 (or 1 where the job ran), never a traceback, a hang or a replaced device node.

Each test here failed on the code before the fix (tracebacks: UnicodeDecodeError, RecursionError,
OverflowError, ValueError, MemoryError, numba TypingError, NotADirectoryError, LinAlgError;
hangs: FIFO and /dev/zero configs, 10^9 starts; a FIFO replaced by a file; half a report).
"""

import json
import math
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
from support import DUO_TOML, stderr_lines, with_joints

import assemblers as A
from assemblers.cli import main

TARGET = "0.01 0 0.63 0.02 0 0.05"  # reachable by duo


def one_error_line(capsys, fragment: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert len(stderr_lines(err.strip())) == 1, err
    assert fragment in err, err
    return err


def strict_json(text: str):
    """Parse JSON refusing NaN/Infinity (what a strict reader, e.g. jq or JavaScript, does)."""
    def no_constant(c):
        raise ValueError(f"non-standard JSON constant {c}")

    return json.loads(text, parse_constant=no_constant)


# ------------------------------------------------------------------------ config contents

CONFIGS = [
    ("not UTF-8", b"\xff\xfe[stack]\n", "not UTF-8 text (byte 0xff at offset 0)"),
    ("nested TOML", ("a = " + "[" * 5000 + "]" * 5000 + "\n").encode(), "nested deeper than"),
    ("huge integer", DUO_TOML.replace("leg_min = 0.20", "leg_min = " + "1" * 400).encode(),
     "leg_min: must be a finite number"),
    ("200 platforms", DUO_TOML.replace('["p", "p"]', "[" + ", ".join(['"p"'] * 200) + "]").encode(),
     "stack.platforms: 200 platforms; at most 32"),
    ("coincident joints", with_joints([[0.1, 0, 0]] * 6, [[0.1, 0, 0]] * 6).encode(),
     "base_joints: the six joints span"),
    ("collinear joints", with_joints([[0.1 * k, 0, 0] for k in range(1, 7)],
                                   [[0.1 * k, 0, 0] for k in range(1, 7)]).encode(),
     "base_joints: the platform is singular at its home pose"),
    ("home past the joint limit", DUO_TOML.replace("leg_max = 0.32", "leg_max = 0.32\n"
                                                   "max_joint_angle_deg = 5.0").encode(),
     "max_joint_angle_deg: at the home pose (z = 0.233281 m) leg 0 makes 26.203 deg"),
    ("length of 1e300", DUO_TOML.replace("leg_max = 0.32", "leg_max = 1e300").encode(),
     "leg_max: must be at most 100"),
    ("tiny plate", DUO_TOML.replace("top_radius = 0.15", "top_radius = 1e-300").encode(),
     "top_radius: must be at least 0.001 m"),
    ("weight of 1e300", (DUO_TOML + "\n[sensitivity]\nsigma_leg = 1e300\n").encode(),
     "sensitivity.sigma_leg: must be at most 1000"),
]


@pytest.mark.parametrize("desc,data,fragment", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_bad_config_contents_exit_2(tmp_path, capsys, desc, data, fragment):
    path = tmp_path / "robot.toml"
    path.write_bytes(data)
    assert main(["info", "--config", str(path)]) == 2
    one_error_line(capsys, fragment)
    with pytest.raises(A.ConfigError, match="^" + str(path)):
        A.load_config(path)


def test_config_limits_accept_the_shipped_configs_and_their_jacobians_are_finite():
    for name in A.shipped_configs():
        asm = A.load_config(name)
        Q = A.home_pose(asm)
        for wrt in ("pose", "legs"):
            assert np.isfinite(A.jacobian(asm, Q, wrt)).all()


# ------------------------------------------------------------------------ JSON inputs

JSON_INPUTS = [
    ("nested", "[" * 100_000 + "]" * 100_000, "nested deeper than"),
    ("not UTF-8", b'{"pose": [0, 0, 0.6, 0, 0, 0\xff]}', "not UTF-8"),
    ("400-digit integer", '{"pose": [' + "1" * 400 + ', 0, 0.6, 0, 0, 0]}', "non-finite value"),
    ("5000-digit integer", '{"pose": [' + "1" * 5000 + ', 0, 0.6, 0, 0, 0]}', "non-finite value"),
]


@pytest.mark.parametrize("desc,text,fragment", JSON_INPUTS, ids=[c[0] for c in JSON_INPUTS])
def test_bad_target_file_exit_2(tmp_path, capsys, desc, text, fragment):
    path = tmp_path / "target.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert main(["solve", "--config", "duo", "--target-file", str(path)]) == 2
    one_error_line(capsys, fragment)


@pytest.mark.parametrize("desc,text,fragment", JSON_INPUTS[:2], ids=[c[0] for c in JSON_INPUTS[:2]])
def test_bad_targets_and_trajectory_files_exit_2(tmp_path, capsys, desc, text, fragment):
    path = tmp_path / "targets.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert main(["trajectory", "--config", "duo", "--targets", str(path),
                 "--out", str(tmp_path / "o.json")]) == 2
    one_error_line(capsys, fragment)
    with pytest.raises(A.InputError, match=fragment):
        A.load_trajectory(path)


def test_trajectory_file_of_wrong_types(tmp_path):
    good = {"format": "assemblers-trajectory", "version": 1, "t": [0.0], "Q": [[0.0] * 12],
            "legs": [[[0.25] * 6] * 2]}
    for key, value, fragment in (("config", 5, "config: must be a string"),
                                 ("meta", [1], "meta: must be an object"),
                                 ("t", {"a": 1}, "t: must be an array of numbers")):
        path = tmp_path / f"{key}.json"
        path.write_text(json.dumps({**good, key: value}))
        with pytest.raises(A.InputError, match=fragment):
            A.load_trajectory(path)


# ------------------------------------------------------------------------ sizes and counts

SIZES = [
    (["trajectory", "--config", "duo", "--to", TARGET, "--duration", "1e9", "--rate", "1e4",
      "--out", "o.json"], "samples; at most 1000000"),
    (["robustness", "--config", "duo", "--target", TARGET, "--samples", "1e30"],
     "--samples: at most 1e+10"),
    (["robustness", "--config", "duo", "--target", TARGET, "--random-poses", "1e30"],
     "--random-poses: at most 1e+03"),
    (["fk", "--config", "single", "--Q", "1e300 0 0 1e300 0 0", "--json"],
     "--Q: value 0 is 1e+300; at most 1000 in size"),
]


@pytest.mark.parametrize("argv,fragment", SIZES, ids=[a[0] + " " + a[-2] for a, _ in SIZES])
def test_huge_sizes_exit_2(tmp_path, monkeypatch, capsys, argv, fragment):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    one_error_line(capsys, fragment)


# ------------------------------------------------------------------------ non-finite output

def test_non_finite_json_output_is_null_and_the_job_fails(capsys):
    # every leg horizontal (z = 0): J_L does not exist there (the old code died in np.linalg.cond)
    Q = "0 0 0 0 0 0 0 0 0.25 0 0 0"
    assert main(["jacobian", "--config", "duo", "--wrt", "legs", "--Q", Q, "--json"]) == 1
    out, err = capsys.readouterr()
    doc = strict_json(out)
    assert doc["condition_number"] is None
    assert any(v is None or not math.isfinite(v) for row in doc["J"] for v in row)
    assert "not finite at this pose" in err and "Traceback" not in err


def test_json_output_is_strict_everywhere(capsys):
    # unreachable: the reduction against the baseline is undefined; still strict JSON
    assert main(["solve", "--config", "duo", "--target", "0 0 1.6 0 0 0", "--json"]) == 1
    doc = strict_json(capsys.readouterr().out)
    assert doc["success"] is False


# ------------------------------------------------------------------------ output paths

def test_out_whose_parent_is_a_file_fails_before_any_work(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "o.json"
    assert main(["trajectory", "--config", "duo", "--to", TARGET, "--duration", "0.05",
                 "--out", str(out)]) == 2
    one_error_line(capsys, f"error: --out {out}: {out.parent} is not a directory")


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_out_never_replaces_anything_but_a_regular_file(tmp_path, capsys, kind):
    out = tmp_path / "o.json"
    if kind == "fifo":
        os.mkfifo(out)
    else:
        out.mkdir()
    assert main(["trajectory", "--config", "duo", "--to", TARGET, "--duration", "0.05",
                 "--out", str(out)]) == 2
    one_error_line(capsys, "only a regular file is ever replaced")
    mode = os.lstat(out).st_mode
    assert stat.S_ISFIFO(mode) if kind == "fifo" else stat.S_ISDIR(mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    out = tmp_path / "t.json"
    out.write_text("old")
    tr = A.Trajectory(t=np.array([0.0]), Q=np.zeros((1, 12)), legs=np.full((1, 2, 6), 0.25),
                      meta={"not json": object()})
    with pytest.raises(TypeError):
        A.save_trajectory(out, tr)
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]


def test_a_report_is_written_whole_or_not_at_all(tmp_path, capsys):
    out = tmp_path / "rep"
    (out / "report.md").mkdir(parents=True)  # the last file of the report cannot be written
    assert main(["robustness", "--config", "duo", "--target", TARGET, "--samples", "1e3",
                 "--random-poses", "0", "--no-figures", "--no-progress",
                 "--out", str(out)]) == 2
    one_error_line(capsys, "report.md")
    assert sorted(p.name for p in out.iterdir()) == ["report.md"]  # no stats.json either
    assert not [p for p in tmp_path.iterdir() if p.name != "rep"]


def test_bench_runs_only_benchmarks(capsys):
    assert main(["bench", "../tests/conftest"]) == 2
    one_error_line(capsys, "no benchmark '../tests/conftest'")


# ------------------------------------------------------------------------ hangs (subprocess)

def _cli(args, timeout=90):
    return subprocess.run([sys.executable, "-m", "assemblers.cli", *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("what", ["fifo", "/dev/zero"])
def test_configs_that_are_not_regular_files_fail_fast(tmp_path, what):
    path = "/dev/zero" if what == "/dev/zero" else str(tmp_path / "fifo.toml")
    if what == "fifo":
        os.mkfifo(path)
    r = _cli(["info", "--config", path])
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "not a regular file" in r.stderr and len(stderr_lines(r.stderr.strip())) == 1


def test_a_billion_starts_fail_fast():
    r = _cli(["solve", "--config", "duo", "--target", TARGET, "--starts", "1000000000"])
    assert r.returncode == 2 and "--starts: at most 1000" in r.stderr
    assert "Traceback" not in r.stderr
