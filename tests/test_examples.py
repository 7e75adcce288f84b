"""Every script in examples/ runs (small sizes: ``--small``) and writes what it says, and the
tutorial notebook executes (nbclient) and is in sync with its jupytext twin
(``examples/tutorial.py``).  Under ``CI=true`` nothing here skips."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

#: script -> files it must write under --out (a new example adds its row here)
OUTPUTS = {
    "solve_criteria.py": ["criteria.png"],
    "trajectory_animation.py": ["trajectory.json", "trajectory.gif", "legs.png"],
    "robustness_report.py": ["robustness/report.md", "robustness/stats.json",
                             "robustness/hist_position.png"],
    "sweep_maps.py": ["sweep/summary.md", "sweep/maps/reachability.png"],
    "stream_to_emulator.py": ["stream/trajectory.json", "stream/run.jsonl"],
    "loads_criteria.py": ["forces.png"],
    "calibrate_simulated.py": ["calibration/report.md", "calibration/result.json",
                               "calibration/calibrated.toml"],
}


def _env(tmp_path) -> dict:
    """What the examples and the notebook run under: small sizes, output in ``tmp_path``, Agg."""
    return {"ASSEMBLERS_EXAMPLE_SMALL": "1", "MPLBACKEND": "Agg",
            "ASSEMBLERS_EXAMPLE_OUT": str(tmp_path)}


def test_every_example_is_tested():
    scripts = {p.name for p in EXAMPLES.glob("[!_]*.py")} - {"tutorial.py"}  # _common.py: shared
    assert scripts == set(OUTPUTS), "add the new example to OUTPUTS with the files it writes"


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(OUTPUTS))
def test_example_runs(script, tmp_path):
    r = subprocess.run([sys.executable, str(EXAMPLES / script), "--out", str(tmp_path),
                        "--small"], cwd=tmp_path, env=dict(os.environ, **_env(tmp_path)), capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, f"{script}:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    for name in OUTPUTS[script]:
        path = tmp_path / name
        assert path.is_file() and path.stat().st_size > 0, f"{script} did not write {name}"
    if script == "trajectory_animation.py":  # the file is a trajectory the library reads back
        import assemblers

        tr = assemblers.load_trajectory(tmp_path / "trajectory.json")
        assert tr.n_platforms == 4 and tr.n_steps >= 2
    if script == "stream_to_emulator.py":  # every set-point was acknowledged by the devices
        records = [json.loads(x) for x in (tmp_path / "stream/run.jsonl").read_text().splitlines()]
        assert records
        assert "status            completed" in r.stdout or "status            degraded" in r.stdout


def _notebook_pair():
    jupytext = pytest.importorskip("jupytext") if os.environ.get("CI") != "true" else \
        __import__("jupytext")
    return jupytext, jupytext.read(EXAMPLES / "tutorial.py"), jupytext.read(
        EXAMPLES / "tutorial.ipynb")


def test_notebook_matches_its_jupytext_twin():
    _, from_py, ipynb = _notebook_pair()
    src = [(c.cell_type, c.source) for c in from_py.cells]
    assert src == [(c.cell_type, c.source) for c in ipynb.cells], (
        "examples/tutorial.ipynb differs from examples/tutorial.py: run "
        "`jupytext --to ipynb examples/tutorial.py -o examples/tutorial.ipynb`")


@pytest.mark.slow
def test_notebook_executes(tmp_path, monkeypatch):
    if os.environ.get("CI") == "true":
        import nbclient
    else:
        nbclient = pytest.importorskip("nbclient")
        pytest.importorskip("ipykernel")
    _, nb, _ = _notebook_pair()
    # the kernel inherits this process's environment; figures inline, as in Jupyter
    for k, v in dict(_env(tmp_path), MPLBACKEND="module://matplotlib_inline.backend_inline").items():
        monkeypatch.setenv(k, v)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    assert "lower" in outputs and "fn vs even" in outputs
    assert (tmp_path / "tutorial" / "report.md").is_file()
    images = [o for c in nb.cells for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert images, "the notebook's figure was not rendered"
