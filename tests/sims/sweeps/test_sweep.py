"""Sweeps (sims.sweeps): executors agree exactly, an interrupted sweep resumes with no duplicate
and no missing row, bad input is one clear line (exit 2, nothing written), maps and summary."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from support import named_in_error, stderr_lines

from assemblers.cli import main
from sims import sweeps as S
from sims.sweeps import report

ROOT = Path(__file__).resolve().parents[3]

# every target of these boxes is reachable (an unreachable one costs a closest-pose search)
BOX_LO = (-0.03, -0.03, 0.0, 0.0, 0.0, 0.0)
BOX_HI = (0.03, 0.03, 0.0, 0.0, 0.0, 0.05)


def _spec(configs=("single", "duo"), **kw):
    kw.setdefault("mode", "grid")
    kw.setdefault("counts", (3, 3, 1, 1, 1, 2))
    return S.SweepSpec(configs=[S.read_config(c) for c in configs], lo=kw.pop("lo", BOX_LO),
                       hi=kw.pop("hi", BOX_HI), **kw)


def _table(out):
    """Results without the wall-time column (the only one that differs run to run)."""
    return S.load_results(out).drop_columns(["time_s"])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The 2-config grid (36 targets) solved in this process: (spec, out dir)."""
    spec = _spec()
    out = tmp_path_factory.mktemp("sweep") / "ref"
    run = S.run_sweep(spec, out, executor=0)
    assert run.complete and run.new == spec.n_total == 36
    return spec, out


def test_reference_rows(reference):
    spec, out = reference
    t = S.load_results(out)
    assert t.column("index").to_pylist() == list(range(spec.n_total))
    d = t.to_pydict()
    assert all(d["success"])
    assert set(d["config"]) == {"single", "duo"}
    assert max(d["tool_error_m"]) < 1e-9 and max(d["tool_error_rad"]) < 1e-9
    duo = [r for c, r in zip(d["config"], d["reduction"]) if c == "duo"]
    assert min(duo) >= -1e-9  # the optimum is never worse than the even baseline
    assert all(len(q) == 6 * (1 if c == "single" else 2) for c, q in zip(d["config"], d["Q"]))
    # targets: offsets from home on the grid (yaw fastest)
    poses = spec.box_poses(range(18))
    np.testing.assert_allclose(poses[:2, 5], [0.0, 0.05])
    np.testing.assert_allclose(poses[-1, :2], [0.03, 0.03])


def test_local_processes_and_dask_give_the_same_results(reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    spec, ref = reference
    run = S.run_sweep(spec, tmp_path / "local", executor=2, batch=5)
    assert run.executor == "local processes" and run.workers == 2 and run.complete
    local = _table(tmp_path / "local")
    assert local.equals(_table(ref))
    # threads in this process: robust on a 2-core box (no second JAX start-up per worker)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        run = S.run_sweep(spec, tmp_path / "dask", executor=client, batch=4)
    assert run.executor == "dask" and run.workers == 2 and run.complete
    assert _table(tmp_path / "dask").equals(local)


def test_random_targets_do_not_depend_on_batching():
    spec = _spec(configs=("single",), mode="random", n_random=50, seed=7,
                 lo=(-0.03, -0.03, -0.01, -0.05, -0.05, -0.1), hi=(0.03, 0.03, 0.01, 0.05, 0.05, 0.1))
    all_ = spec.box_poses(np.arange(50))
    np.testing.assert_array_equal(all_[[3, 17, 42]], spec.box_poses([42, 3, 17])[[1, 2, 0]])
    assert (all_ >= np.array(spec.lo)).all() and (all_ <= np.array(spec.hi)).all()
    other = _spec(configs=("single",), mode="random", n_random=50, seed=8, lo=spec.lo, hi=spec.hi)
    assert not np.allclose(all_, other.box_poses(np.arange(50)))


def _cmd(out, *extra):
    return [sys.executable, "-m", "assemblers.cli", "sweep", "--config", "single", "--out",
            str(out), "--x", "-0.03 0.03", "--y", "-0.03 0.03", "--z", "0", "--random", "40",
            "--seed", "3", "--mc-samples", "2e5", "--workers", "0", "--batch", "2",
            "--no-progress", "--no-maps", *extra]


def _run_until(cmd, parts: Path, n_parts: int, sig, timeout=120):
    """Start ``cmd``, wait until ``parts`` holds ``n_parts`` part files, send ``sig``."""
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    while len(list(parts.glob("part-*"))) < n_parts:
        if proc.poll() is not None or time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail(f"sweep ended or stalled before {n_parts} parts: {proc.communicate()}")
        time.sleep(0.01)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def test_killed_sweep_resumes_without_duplicates_or_gaps(tmp_path):
    out = tmp_path / "killed"
    parts = out / "parts"
    rc, _, _ = _run_until(_cmd(out), parts, 3, signal.SIGKILL)
    assert rc == -signal.SIGKILL
    n_killed = len(list(parts.glob("part-*.parquet")))
    assert 3 <= n_killed < 20 and not (out / "results.parquet").exists()
    # a second interruption, by SIGTERM: a clean exit 130 and a hint, no traceback
    rc, _, err = _run_until(_cmd(out), parts, n_killed + 2, signal.SIGTERM)
    assert rc == 130, err
    assert "rerun the same command to resume" in err and "Traceback" not in err
    # rerun to completion: only the missing targets are solved
    done = subprocess.run(_cmd(out, "--json"), cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["complete"] and doc["run"]["n_before"] >= n_killed * 2 + 4
    assert doc["run"]["new"] == 40 - doc["run"]["n_before"]
    assert not list(parts.glob(".tmp-*"))
    resumed = _table(out)
    assert resumed.column("index").to_pylist() == list(range(40))
    # the same rows as an uninterrupted run
    spec = S.SweepSpec(configs=[S.read_config("single")], lo=(-0.03, -0.03, 0, 0, 0, 0),
                       hi=(0.03, 0.03, 0, 0, 0, 0), mode="random", n_random=40, seed=3,
                       mc_samples=200_000)
    S.run_sweep(spec, tmp_path / "whole", executor=0)
    assert resumed.equals(_table(tmp_path / "whole"))
    assert all(x is not None and x > 0 for x in resumed.column("mc_rms_weighted_m").to_pylist())


def test_csv_output_matches_parquet(tmp_path):
    spec = _spec(configs=("single",))
    S.run_sweep(spec, tmp_path / "pq", executor=0)
    S.run_sweep(spec, tmp_path / "csv", fmt="csv", executor=0, batch=4)
    assert (tmp_path / "csv" / "results.csv").exists()
    a, b = _table(tmp_path / "pq"), _table(tmp_path / "csv")
    assert a.drop_columns(["Q"]).equals(b.drop_columns(["Q"]))
    qa = a.column("Q").to_pylist()
    qb = [[float(x) for x in s.split()] for s in b.column("Q").to_pylist()]
    assert qa == qb
    # resuming a finished sweep solves nothing and keeps the file
    run = S.run_sweep(spec, tmp_path / "csv", fmt="csv", executor=0)
    assert run.new == 0 and run.n_before == spec.n_total and run.complete


def test_maps_and_summary(reference, tmp_path):
    _, out = reference
    doc = report(out)
    names = {Path(f).name for f in doc["files"]}
    assert {"summary.md", "summary.json", "reachability.png", "sensitivity.png",
            "reduction_hist.png"} <= names
    for f in doc["files"]:
        if f.endswith(".png"):
            assert Path(f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    s = doc["summary"]["configs"]
    assert s["duo"]["targets"] == s["duo"]["reached"] == 18
    assert s["duo"]["reduction_q"][0] <= s["duo"]["reduction_q"][1] <= s["duo"]["reduction_q"][2]
    assert "| duo |" in doc["table"] and "throughput" in doc["table"]
    assert "| duo |" in (Path(out) / "summary.md").read_text()


def test_cli_small_sweep_prints_table(tmp_path, capsys):
    out = tmp_path / "cli"
    rc = main(["sweep", "--config", "single", "--out", str(out), "--x", "-0.02 0.3", "--y", "0",
               "--z", "0", "--grid", "3", "--workers", "0", "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err  # unreachable targets are results, not failures
    assert "| single |" in cap.out and "1 (33.33 %)" in cap.out
    assert "single: not reached: unreachable" in cap.out
    t = S.load_results(out).to_pydict()
    assert t["success"] == [True, False, False] and min(t["tool_error_m"][1:]) > 0.01
    assert (out / "results.parquet").exists() and (out / "maps" / "reachability.png").exists()


BAD = named_in_error(
    '--y "nan 0.1"', '--z "0 inf"', '--roll "1 2 3"', "--grid 0", '--grid "2 2"', "--random 0",
    "--criterion smallest", "--format xml", "--workers -1", "--batch 0", "--seed -3",
    "--mc-samples 1.5", "--mc-noise wind", "--frame tool", "--grid 1e400", "--batch 1e400",
    "--seed 1e400") + [
    (["--x", "0.1 -0.1"], "--x: min 0.1 m is greater than max -0.1 m"),
    (["--grid", "3", "--random", "5"], "--grid and --random"),
    (["--frame", "world", "--x", "0 0.1"], "--frame world: give --y, --z"),
    (["--config", "nosuch"], "nosuch"),
    (["--workers", "1", "--dask", "tcp://127.0.0.1:8786"], "--dask and --workers"),
    # huge sizes and counts: refused before anything is allocated or written
    (["--grid", "100000"], "--grid: 1e+15 targets is more than 1e+08"),
    (["--random", "1e12"], "--random: 1e+12 targets is more than 1e+08"),
    (["--random", "200000000"], "--random: 2e+08 targets is more than 1e+08"),
    (["--mc-samples", "1e12"], "--mc-samples: must be at most"),
    (["--workers", "1e6"], "--workers: at most"),
]


@pytest.mark.parametrize("extra,message", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, capsys, extra, message):
    out = tmp_path / "never"
    rc = main(["sweep", "--config", "single", "--out", str(out), "--workers", "0",
               "--no-progress", *extra])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and "Traceback" not in err
    assert len(stderr_lines(err.strip())) == 1
    assert not out.exists()


def test_unwritable_output_and_mismatching_resume(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    base = ["sweep", "--config", "single", "--x", "0", "--y", "0", "--z", "0", "--workers", "0",
            "--no-progress", "--no-maps"]
    assert main([*base, "--out", str(blocker / "sub")]) == 2
    assert "--out" in capsys.readouterr().err
    assert main([*base, "--out", str(blocker)]) == 2
    assert "not a directory" in capsys.readouterr().err
    out = tmp_path / "one"
    assert main([*base, "--out", str(out)]) == 0
    capsys.readouterr()
    before = sorted(p.name for p in out.rglob("*"))
    assert main([*base, "--out", str(out), "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert "holds a different sweep (differs in seed)" in err and len(stderr_lines(err)) == 1
    assert main([*base, "--out", str(out), "--format", "csv"]) == 2
    assert "resume with --format parquet" in capsys.readouterr().err
    assert sorted(p.name for p in out.rglob("*")) == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main([*base, "--out", str(other)]) == 2
    assert "not empty" in capsys.readouterr().err


def test_spec_validation_names_the_parameter():
    with pytest.raises(S.SweepError, match="--yaw: min"):
        _spec(lo=(0, 0, 0, 0, 0, 0.2), hi=(0, 0, 0, 0, 0, 0.1))
    with pytest.raises(S.SweepError, match="--grid: 3 points on axis z"):
        _spec(counts=(1, 1, 3, 1, 1, 1))
    with pytest.raises(S.SweepError, match="--config: 'single' is given twice"):
        _spec(configs=("single", "single"))
    with pytest.raises(S.SweepError, match="more than"):
        _spec(counts=(10**5, 10**5, 1, 1, 1, 1), lo=(0, 0, 0, 0, 0, 0), hi=(1, 1, 0, 0, 0, 0))
    with pytest.raises(S.SweepError, match="--workers"):
        S.run_sweep(_spec(configs=("single",)), "/nonexistent-never", executor=-2)


def test_failing_targets_are_retried_on_rerun(tmp_path, monkeypatch):
    import assemblers

    spec = _spec(configs=("single",))
    real = assemblers.ik.solve_ik
    calls = {"n": 0}

    def flaky(asm, T, **kw):
        calls["n"] += 1
        if calls["n"] in (4, 9):
            raise RuntimeError("injected failure")
        return real(asm, T, **kw)

    monkeypatch.setattr(assemblers, "solve_ik", flaky)
    with pytest.raises(S.SweepFailed, match="2 target\\(s\\) raised.*injected failure") as ei:
        S.run_sweep(spec, tmp_path / "f", executor=0, batch=3)
    assert ei.value.run.new == spec.n_total - 2 and not (tmp_path / "f" / "results.parquet").exists()
    monkeypatch.setattr(assemblers, "solve_ik", real)
    run = S.run_sweep(spec, tmp_path / "f", executor=0, batch=3)
    assert run.new == 2 and run.complete
    assert _table(tmp_path / "f").column("index").to_pylist() == list(range(spec.n_total))


def test_auto_batch_sizes_tasks_by_their_work():
    """About 8 tasks per worker slot; tasks of at most ~TASK_S seconds at the per-target cost
    (so Monte Carlo sweeps get small tasks); always 16..MAX_BATCH for big sweeps, >= 1."""
    from sims.sweeps import MAX_BATCH, TASK_S, auto_batch

    assert auto_batch(1000, 2) == 63  # ceil(1000 / 16)
    big = auto_batch(10**7, 2)  # IK alone (~0.5 ms a target): tasks of thousands, <= ~TASK_S
    assert 1000 <= big <= MAX_BATCH and big * 5e-4 <= TASK_S * 1.05
    mc = auto_batch(10**7, 2, mc_samples=100_000)  # two 1e5-sample runs per target
    assert 16 <= mc <= MAX_BATCH and mc * 2 * 100_000 / 5e6 <= TASK_S * 1.05
    assert auto_batch(10**7, 2, mc_samples=10**8) == 16  # never below 16 for big sweeps
    assert auto_batch(3, 8) == 1


def _cells_by_loop(pos, values, plane, eh, ev, sel, agg):
    """The binning the maps used before scipy: each cell's values by a mask, cell by cell."""
    k = {"x": 0, "y": 1, "z": 2}
    h, v = k[plane[0]], k[plane[1]]
    ih = np.clip(np.searchsorted(eh, pos[sel, h], side="right") - 1, 0, len(eh) - 2)
    iv = np.clip(np.searchsorted(ev, pos[sel, v], side="right") - 1, 0, len(ev) - 2)
    img = np.full((len(ev) - 1, len(eh) - 1), np.nan)
    for a in range(img.shape[1]):
        for b in range(img.shape[0]):
            m = (ih == a) & (iv == b)
            if m.any():
                img[b, a] = agg(values[sel][m])
    return img


@pytest.mark.parametrize("grid", [True, False])
def test_map_cells_match_a_cell_by_cell_binning(grid):
    from sims.sweeps import slice_grid

    rng = np.random.default_rng(5)
    if grid:  # 7 x 5 x 3 levels, 2 orientations each
        lv = [np.linspace(-0.1, 0.1, 7), np.linspace(-0.05, 0.05, 5), np.linspace(0, 0.02, 3)]
        pos = np.array([(x, y, z) for x in lv[0] for y in lv[1] for z in lv[2] for _ in (0, 1)])
    else:
        pos = rng.uniform([-0.1, -0.05, 0.0], [0.1, 0.05, 0.02], size=(900, 3))
    values = rng.normal(size=len(pos))
    use = rng.random(len(pos)) < 0.6
    for plane in (("x", "y", "z"), ("x", "z", "y")):
        eh, ev, img, level = slice_grid(pos, values, plane, grid, "median", use)
        s = {"x": 0, "y": 1, "z": 2}[plane[2]]
        sv = np.round(pos[:, s], 12)
        sel = (sv == level) if grid else (sv >= level[0]) & (sv <= level[1])
        ref = _cells_by_loop(pos, values, plane, eh, ev, sel & use, np.median)
        np.testing.assert_array_equal(np.isnan(img), np.isnan(ref))
        np.testing.assert_allclose(img[~np.isnan(img)], ref[~np.isnan(ref)], rtol=0, atol=1e-15)
        assert np.isfinite(img).sum() >= 10  # the comparison covers filled cells
        mean = slice_grid(pos, use.astype(float), plane, grid, "mean")[2]
        ref = _cells_by_loop(pos, use.astype(float), plane, eh, ev, sel, np.mean)
        np.testing.assert_allclose(mean, ref, rtol=0, atol=1e-15)


def test_old_module_names_still_work():
    """The documented old paths (docs/architecture.md, "Old import paths") keep their names."""
    import sims.sweep
    import sims.sweep_maps

    for name in sims.sweeps.__all__:
        assert getattr(sims.sweep, name) is getattr(S, name)
    assert sims.sweep_maps.report is S.report
