"""Core command ``bench``: run a script of ``benchmarks/`` in this process."""

from __future__ import annotations

import sys
from pathlib import Path

from .args import CLIError

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


def available() -> list[str]:
    """Names of the benchmark scripts (``benchmarks/<name>.py``)."""
    return sorted(p.stem for p in BENCH_DIR.glob("*.py") if not p.name.startswith("_"))


def configure_bench(p):
    p.add_argument("name", help="benchmark: kinematics, ik, montecarlo, render, stream, sweep")
    p.add_argument("rest", nargs="*", help="arguments passed to the benchmark script")


def run_bench(args) -> int:
    import runpy

    names = available()
    if args.name not in names:  # a name, never a path: nothing outside benchmarks/ runs
        raise CLIError(f"no benchmark {args.name!r} (available: {', '.join(names) or 'none'}; "
                       f"looked in {BENCH_DIR})")
    script = BENCH_DIR / f"{args.name}.py"
    sys.argv = [str(script), *args.rest]
    runpy.run_path(str(script), run_name="__main__")
    return 0
