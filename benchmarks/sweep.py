"""Sweep throughput: targets/s of ``sims.sweeps.run_sweep`` with 1 and 2 local processes and
through a Dask LocalCluster (2 worker processes, 1 thread each), and the scaling efficiency.

    python benchmarks/sweep.py [--config duo] [--targets 10000] [--batch N] [--mc-samples 0]
                               [--no-dask] [--json]

Each executor is started once and warmed up with a small sweep (worker start, imports, JIT and
Numba caches), then timed on ``--targets`` random targets (offsets of +-3 cm and +-0.05 rad from
the home tool pose, all reachable for the shipped configs) written to a temporary Parquet
directory; the warm-up time is printed too (what a short sweep pays on top).  Scaling efficiency
= rate(executor) / (workers x rate(1 process)), all measured in this run, next to the machine's
own ceiling: the efficiency of 2 processes of pure CPU-bound Python (``sum(range(n))``), which is
far below 100 % on VMs whose vCPUs share physical cores.  On a shared machine
the wall time also counts other processes' use of these cores: repeat, and compare the CPU load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _spec(config: str, n: int, seed: int, mc: int):
    from sims.sweeps import SweepSpec, read_config

    return SweepSpec(configs=[read_config(config)], lo=(-0.03, -0.03, -0.03, -0.05, -0.05, -0.05),
                     hi=(0.03, 0.03, 0.03, 0.05, 0.05, 0.05), mode="random", n_random=n,
                     seed=seed, mc_samples=mc)


def _measure(name: str, executor, workers: int, args, tmp: Path) -> dict:
    from sims.sweeps import run_sweep

    t0 = time.perf_counter()
    run_sweep(_spec(args.config, 2 * workers, 99, args.mc_samples), tmp / f"{name}-warm",
              executor=executor, batch=1)
    warm = time.perf_counter() - t0
    spec = _spec(args.config, args.targets, 0, args.mc_samples)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    run = run_sweep(spec, tmp / name, executor=executor, batch=args.batch)
    wall = time.perf_counter() - t0
    ok = run.complete and run.new == args.targets
    from sims.sweeps import load_results

    solve = load_results(tmp / name).column("time_s").to_numpy()
    return {"solve_ms_median": float(np.median(solve) * 1e3),
            "solver_busy": float(solve.sum() / (wall * workers)),
            "executor": name, "workers": workers, "targets": run.new, "wall_s": wall,
            "rate_per_s": run.new / wall, "warmup_s": warm, "batch": run.batch, "complete": ok,
            "load_before": load0, "load_after": os.getloadavg()[0]}


def _ceiling(workers: int, n: int = 30_000_000) -> float:
    """The machine's own scaling for CPU-bound work: ``workers`` spawned processes each summing
    ``range(n)`` at once -> total rate / (workers x the rate of one such process alone)."""
    import concurrent.futures as cf
    import multiprocessing as mp

    with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as ex:
        list(ex.map(abs, range(workers)))  # start the processes

        def timed(k):
            t0 = time.perf_counter()
            list(ex.map(sum, [range(n)] * k))
            return time.perf_counter() - t0

        one = timed(1)
        return one * workers / (workers * timed(workers))


def print_table(info: dict) -> None:
    """The measurements of :func:`main` as a text table."""
    print(f"sweep throughput: config {info['config']}, {info['targets']} random reachable "
          f"targets, criterion = config default, Monte Carlo samples {info['mc_samples']}, "
          f"{info['cpus']} CPUs")
    print(f"{'executor':<24} {'workers':>7} {'batch':>5} {'targets/s':>10} {'per worker':>10} "
          f"{'speedup':>8} {'efficiency':>10} {'solve ms':>8} {'busy':>5} {'warm-up s':>9} "
          f"{'load':>9}")
    for r in info["results"]:
        print(f"{r['executor']:<24} {r['workers']:>7} {r['batch']:>5} {r['rate_per_s']:>10.2f} "
              f"{r['rate_per_s'] / r['workers']:>10.2f} {r['speedup']:>8.2f} "
              f"{r['efficiency']:>9.0%} {r['solve_ms_median']:>8.2f} {r['solver_busy']:>5.0%} "
              f"{r['warmup_s']:>9.1f} "
              f"{r['load_before']:>4.1f}/{r['load_after']:<4.1f}")
    print("efficiency = rate / (workers x rate with 1 process), measured in this run; solve ms = "
          "median solve_ik wall time per target; busy = share of the workers' wall time spent "
          "in solve_ik; load = 1-min load average before/after the timed sweep")
    print("this machine's own ceiling: 2 processes of pure CPU-bound work run at "
          f"{info['machine_efficiency_2']:.0%} efficiency (vs 1 process alone), measured just after")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="duo")
    ap.add_argument("--targets", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=None, help="targets per task (default: auto)")
    ap.add_argument("--mc-samples", type=int, default=0)
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from sims.sweeps import make_pool

    results = []
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as d:
        tmp = Path(d)
        for w in (1, 2):
            with make_pool(w) as pool:
                results.append(_measure(f"local {w} process{'es' if w > 1 else ''}", pool, w,
                                        args, tmp))
        if not args.no_dask:
            from distributed import Client, LocalCluster

            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster, Client(cluster) as client:
                results.append(_measure("dask LocalCluster 2x1", client, 2, args, tmp))
    ceiling = _ceiling(2)
    base = results[0]["rate_per_s"]
    for r in results:
        r["speedup"] = r["rate_per_s"] / base
        r["efficiency"] = r["speedup"] / r["workers"]
    info = {"config": args.config, "targets": args.targets, "mc_samples": args.mc_samples,
            "cpus": os.cpu_count(), "machine_efficiency_2": ceiling, "results": results}
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print_table(info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
