"""The layers of the package, checked: the import-linter contracts of pyproject.toml
(``[tool.importlinter]``: geometry/optim -> model -> kinematics -> ik -> sims/hardware -> cli,
nothing imports upwards; the math core never imports sims or hardware).  The same command:
``lint-imports`` from the repository root."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_import_linter_contracts_hold():
    exe = shutil.which("lint-imports", path=os.path.dirname(sys.executable)) or shutil.which(
        "lint-imports")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("lint-imports is not installed (the test extra has import-linter)")
        pytest.skip("lint-imports is not installed (pip install -e '.[test]')")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, env=env,
                         timeout=300)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
