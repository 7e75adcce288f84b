"""A workspace sweep: the least-sensitive IK over a grid of tool targets, with reachability and
sensitivity maps.

    python examples/sweep_maps.py [--out DIR] [--small]

Writes sweep/ (results.parquet, summary.md, maps/*.png; rerunning resumes or only redraws):
the same as ``assemblers sweep --config duo --x "-0.15 0.15" --y "-0.15 0.15" --z 0 --grid 9
--out DIR`` (docs/scaling.md: executors, Dask, the output folder).
"""

from pathlib import Path

from _common import example_args

from sims.sweeps import SweepSpec, read_config, report, run_sweep


def main() -> None:
    out, small = example_args(__doc__, "sweep")

    n = 5 if small else 9
    # an x-y slice of targets around the home tool pose of the 2-platform stack: +-15 cm, fixed z
    # and orientation (offsets from home: frame="home"; m and rad)
    spec = SweepSpec(configs=[read_config("duo")], lo=(-0.15, -0.15, 0, 0, 0, 0),
                     hi=(0.15, 0.15, 0, 0, 0, 0), mode="grid", counts=(n, n, 1, 1, 1, 1),
                     frame="home")
    run = run_sweep(spec, out, executor=0 if small else None)    # 0: in this process
    print(f"{run.new} targets solved in {run.wall_s:.1f} s ({run.throughput:.0f} targets/s)")

    doc = report(out)                                     # summary.md and maps/*.png from disk
    print(doc["table"])
    print("maps:", ", ".join(Path(f).name for f in doc["files"] if str(f).endswith(".png")))


if __name__ == "__main__":  # worker processes (sweeps, rendering) import this file
    main()
