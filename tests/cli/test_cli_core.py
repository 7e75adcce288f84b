"""The core CLI commands: output, JSON, exit codes."""

import json

import numpy as np
import pytest

import assemblers as A
from assemblers.cli import main


def run_json(capsys, argv):
    assert main(argv + ["--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_info_json_matches_api(capsys):
    doc = run_json(capsys, ["info"])
    asm = A.load_config("assembler")
    assert doc["n_platforms"] == 4
    np.testing.assert_allclose(doc["home_pose_Q"], A.home_pose(asm))
    assert doc["sensitivity"]["cost"] == pytest.approx(A.sensitivity(asm, A.home_pose(asm)))
    assert doc["sensitivity"]["fro_J_Q"] == pytest.approx(
        np.linalg.norm(A.jacobian(asm, A.home_pose(asm))))


def test_info_table(capsys):
    assert main(["info", "--config", "trio"]) == 0
    out = capsys.readouterr().out
    assert "trio: 3 platform(s)" in out and "Leg lengths at home" in out and "large" in out


def test_fk_and_jacobian(capsys):
    asm = A.load_config("duo")
    Q = A.home_pose(asm) + 0.01
    qs = " ".join(map(str, Q.tolist()))
    doc = run_json(capsys, ["fk", "--config", "duo", "--Q", qs])
    np.testing.assert_allclose(doc["T_world_tool"], A.forward_kinematics(asm, Q), atol=1e-15)
    np.testing.assert_allclose(doc["legs"], A.leg_lengths(asm, Q), atol=1e-15)
    doc = run_json(capsys, ["jacobian", "--config", "duo", "--Q", qs, "--wrt", "legs"])
    np.testing.assert_allclose(doc["J"], A.jacobian(asm, Q, "legs"), atol=1e-14)
    assert doc["frobenius_norm"] == pytest.approx(np.linalg.norm(A.jacobian(asm, Q, "legs")))


def test_legs_command_round_trip(capsys):
    asm = A.load_config("duo")
    Q = A.home_pose(asm) + 0.005
    L = A.leg_lengths(asm, Q).reshape(-1)
    doc = run_json(capsys, ["legs", "--config", "duo", "--legs", ",".join(map(str, L.tolist()))])
    np.testing.assert_allclose(doc["Q"], Q, atol=1e-10)


@pytest.mark.parametrize("argv,fragment", [
    (["fk", "--Q", "1 2 3"], "--Q: expected 24 numbers, got 3"),
    (["fk", "--Q", "0 " * 23 + "nan"], "--Q: value 23 is nan"),
    (["fk", "--Q", "0 " * 23 + "abc"], "'abc' is not a number"),
    (["jacobian", "--config", "missing.toml"], "missing.toml: no such config file"),
    (["legs", "--config", "single", "--legs", "1 1 1 1 1 inf"], "value 5 is inf"),
    (["frobnicate"], "unknown command 'frobnicate'"),
])
def test_bad_input_exit_2(capsys, argv, fragment):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_unconverged_legs_exit_1(capsys):
    assert main(["legs", "--config", "single", "--legs", "0.01 0.01 0.01 0.01 0.01 0.01"]) == 1
    assert "did not converge" in capsys.readouterr().err


def test_top_level_help(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for cmd in ("info", "fk", "jacobian", "solve", "robustness", "show", "stream"):
        assert f"  {cmd}" in out


def test_help_lists_the_registered_commands_without_loading_them():
    """``assemblers --help`` lists every entry point of ``assemblers.commands`` (the core's, sims'
    and hardware's) importing no command module, NumPy or JAX; ``python -m assemblers`` and
    ``--version`` work."""
    import subprocess
    import sys
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="assemblers.commands")}
    assert {"info", "solve", "robustness", "show", "stream", "emulate", "sweep", "bench",
            "demo"} <= names
    code = ("import sys\n"
            "from assemblers.cli import main\n"
            "assert main(['--help']) == 0\n"
            "heavy = [m for m in ('numpy', 'jax', 'scipy', 'numba', 'serial', 'pybullet',\n"
            "         'sims.robustness.cli', 'sims.viz.cli', 'hardware.cli',\n"
            "         'assemblers.cli.kinematics') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    for n in names:
        assert f"\n  {n} " in r.stdout
    r = subprocess.run([sys.executable, "-m", "assemblers", "--version"], capture_output=True,
                       text=True, check=True)
    assert r.stdout.strip() == A.__version__
    r = subprocess.run([sys.executable, "-m", "assemblers", "info", "--config", "duo", "--json"],
                       capture_output=True, text=True, check=True)
    assert json.loads(r.stdout)["n_platforms"] == 2


def test_old_module_paths_keep_their_names():
    """The documented module paths that moved (docs/architecture.md, "Old import paths") keep
    their public names, as the very objects of the new homes; the CLI keeps the names its
    command modules import."""
    import assemblers.cli as cli
    import assemblers.io as io
    import assemblers.model as model
    import assemblers.transforms as transforms
    from assemblers.geometry import api as geometry
    from assemblers.model import io as model_io

    for name in ("CLIError", "add_config_arg", "add_json_arg", "parse_numbers", "parse_target",
                 "load_assembler", "main"):
        assert callable(getattr(cli, name))
    assert cli.COMMANDS["info"] == ("assemblers.cli.kinematics",
                                    "summary of an Assembler: platforms, strokes, home pose, legs")
    assert list(cli.COMMANDS)[:2] == ["demo", "info"] and list(cli.COMMANDS)[-1] == "bench"
    for name in ("Trajectory", "load_trajectory", "save_trajectory", "validate_trajectory",
                 "FileFormatError", "FORMAT", "VERSION"):
        assert getattr(io, name) is getattr(model_io, name), name
    for name in ("pose_to_transform", "transform_to_pose"):
        assert getattr(transforms, name) is getattr(geometry, name), name
    for name in ("Assembler", "PlatformType", "Sensitivity", "ActuatorCalibration",
                 "HardwareConfig", "PlatformLink", "_frozen", "StackArrays"):
        assert hasattr(model, name), name
    assert A.Trajectory is io.Trajectory and A.pose_to_transform is transforms.pose_to_transform


def test_import_and_cli_help_do_not_load_jax():
    """``import assemblers`` and the CLI's dispatch stay light (JAX loads on first use), and the
    first use still gets float64 and the persistent cache."""
    import subprocess
    import sys

    code = ("import sys, assemblers, assemblers.cli, assemblers.model.config\n"
            "assert 'jax' not in sys.modules and 'scipy.optimize' not in sys.modules\n"
            "asm = assemblers.load_config('duo')\n"
            "assert 'jax' not in sys.modules\n"
            "T = assemblers.forward_kinematics(asm, assemblers.home_pose(asm))\n"
            "import jax\n"
            "assert T.dtype.name == 'float64' and jax.config.jax_enable_x64\n"
            "assert jax.config.jax_compilation_cache_dir\n"
            "assert jax.numpy.ones(1).dtype.name == 'float64'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_numba_cache_is_per_version_of_the_kernel_sources(tmp_path):
    """Numba checks only the timestamp of a kernel's own file, so the cache directory is keyed
    by a hash of every kernel source: editing any kernel file (not just the caller's) moves to
    a fresh cache; editing a file without kernels does not."""
    import os
    import shutil
    from pathlib import Path

    from assemblers import _runtime

    here = Path(_runtime.__file__).resolve().parent.parent
    for pkg in ("assemblers", "sims"):
        shutil.copytree(here / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    s0 = _runtime.kernel_stamp(tmp_path)
    assert s0 == _runtime.kernel_stamp(here)
    assert os.environ["NUMBA_CACHE_DIR"].endswith(os.path.join("numba", s0))
    with open(tmp_path / "assemblers" / "cli" / "main.py", "a") as f:
        f.write("# no kernels here\n")
    assert _runtime.kernel_stamp(tmp_path) == s0
    with open(tmp_path / "assemblers" / "ik" / "evaluate.py", "a") as f:
        f.write("# a changed kernel file\n")
    assert _runtime.kernel_stamp(tmp_path) != s0


def test_stale_kernel_caches_are_pruned(tmp_path):
    """Caches of other kernel versions go once untouched for 30 days; the current one, recent
    ones and anything outside the Numba cache folder stay."""
    import os
    import time

    from assemblers import _runtime

    root = tmp_path / "numba"
    for name in ("current", "recent", "old", "old_file"):
        p = root / name
        if name.endswith("file"):
            root.mkdir(exist_ok=True)
            p.write_text("x")
        else:
            (p / "sub").mkdir(parents=True)
            (p / "sub" / "f.nbi").write_text("x")
    old = time.time() - 40 * 86400
    for name in ("current", "old", "old_file"):
        os.utime(root / name, (old, old))
    removed = _runtime.prune_stale_kernel_caches(root, keep="current")
    assert sorted(removed) == ["old", "old_file"]
    assert sorted(os.listdir(root)) == ["current", "recent"]
    assert _runtime.prune_stale_kernel_caches(tmp_path / "missing", keep="x") == []
