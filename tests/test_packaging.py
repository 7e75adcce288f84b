"""Packaging hygiene: the SPDX license, every imported package declared, ``python -m
assemblers`` and ``assemblers --version``, the ``warmup`` command registered."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: third-party modules imported only where an extra is installed: module -> extra
OPTIONAL = {"distributed": "cluster"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _dist_names(reqs) -> set[str]:
    return {_norm(re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0]) for r in reqs}


def test_license_is_an_spdx_expression_with_its_file():
    assert PYPROJECT["project"]["license"] == "MIT"  # PEP 639; a table is deprecated
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    meta = md.metadata("assemblers")
    assert meta["License-Expression"] == "MIT"
    assert "LICENSE" in (meta.get_all("License-File") or [])


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_every_imported_package_is_declared():
    ours = {"assemblers", "sims", "hardware"}
    stdlib = set(sys.stdlib_module_names)
    base = _dist_names(PYPROJECT["project"]["dependencies"])
    extras = {k: _dist_names(v) for k, v in PYPROJECT["project"]["optional-dependencies"].items()}
    dists = md.packages_distributions()
    missing = []
    files = [p for d in ("assemblers", "sims", "hardware", "examples")
             for p in (ROOT / d).rglob("*.py")]
    assert len(files) > 50
    for path in files:
        local = {f.stem for f in path.parent.glob("*.py")}  # e.g. examples/_common.py
        for mod in sorted(_imports(path) - ours - stdlib - local - {"__future__"}):
            names = {_norm(d) for d in dists.get(mod, [mod])}
            if mod in OPTIONAL:
                ok = names & extras[OPTIONAL[mod]]
            else:
                ok = names & base
            if not ok:
                missing.append(f"{path.relative_to(ROOT)}: {mod} ({', '.join(sorted(names))})")
    assert not missing, "imported but not declared in pyproject.toml:\n" + "\n".join(missing)


def test_test_extra_brings_the_docs_and_notebook_tools():
    test = _dist_names(PYPROJECT["project"]["optional-dependencies"]["test"])
    assert "assemblers" in test  # assemblers[docs]: mkdocs, material, mkdocstrings
    assert {"nbclient", "ipykernel", "jupytext"} <= test
    docs = _dist_names(PYPROJECT["project"]["optional-dependencies"]["docs"])
    assert {"mkdocs", "mkdocs-material", "mkdocstrings"} <= docs


def _run(*argv):
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_python_m_assemblers_and_version():
    version = PYPROJECT["project"]["version"]
    import assemblers

    assert assemblers.__version__ == version == md.version("assemblers")
    r = _run(sys.executable, "-m", "assemblers", "--version")
    assert r.returncode == 0 and r.stdout.strip() == version, r.stderr
    r = _run(sys.executable, "-m", "assemblers", "--help")
    assert r.returncode == 0 and "warmup" in r.stdout and "solve" in r.stdout
    script = Path(sys.executable).with_name("assemblers")
    if script.exists():  # the console script of this environment
        r = _run(str(script), "--version")
        assert r.returncode == 0 and r.stdout.strip() == version
