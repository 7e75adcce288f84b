"""The driver: one loop over ``concurrent.futures`` that serves every executor.

Local process pools are ``concurrent.futures.ProcessPoolExecutor``; a Dask cluster comes in as
``distributed.Client.get_executor()`` (the spec scattered once to every worker); ``executor=0``
runs each task at once in this process.  The driver keeps 2 tasks per worker slot in flight and
writes each finished task as a part file at once (memory stays flat, a crash loses at most the
tasks in flight); workers only return rows.
"""

from __future__ import annotations

import concurrent.futures as cf
import concurrent.futures.process  # noqa: F401  (cf.process.BrokenProcessPool, below)
import contextlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .output import SweepOutput
from .spec import SweepError, SweepFailed, SweepSpec, parse_count
from .storage import batches_of
from .workers import dask_task, evaluate_batch, make_pool, max_workers

MAX_BATCH = 4096
TASK_S = 2.0  # seconds of work per task that auto_batch aims at
# measured per-target costs that auto_batch sizes tasks by (benchmarks/ik.py, benchmarks/sweep.py,
# benchmarks/montecarlo.py on a 2-core VM): one IK solve, Monte Carlo samples per second
_SOLVE_S = 5e-4
_MC_RATE = 5e6


@dataclass
class SweepRun:
    """What one call of :func:`run_sweep` did.

    ``n_total``: targets in the sweep; ``n_before``: already on disk (in verified parts) at the
    start; ``new``: solved by this run; ``errors``: (index, message) of targets that raised (no
    row written); ``repaired``: (part file, reason) of parts that failed their checks or were
    missing, whose targets were pending again; ``wall_s``: s; ``throughput``: new targets per
    second of wall time (start-up included); ``executor``: "in-process", "local processes" or
    "dask"; ``workers``: processes/threads; ``batch``: targets per task; ``results``: the
    merged results file (None if incomplete).
    """

    out: str
    n_total: int
    n_before: int
    new: int = 0
    errors: list = field(default_factory=list)
    repaired: list = field(default_factory=list)
    wall_s: float = 0.0
    executor: str = ""
    workers: int = 0
    batch: int = 0
    results: str | None = None

    @property
    def throughput(self) -> float:
        return self.new / self.wall_s if self.wall_s > 0 else math.nan

    @property
    def complete(self) -> bool:
        return self.results is not None

    def to_dict(self) -> dict:
        return {"out": self.out, "n_total": self.n_total, "n_before": self.n_before,
                "new": self.new, "errors": len(self.errors), "wall_s": self.wall_s,
                "throughput_per_s": None if math.isnan(self.throughput) else self.throughput,
                "executor": self.executor, "workers": self.workers, "batch": self.batch,
                "repaired": [list(r) for r in self.repaired],
                "results": self.results, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}


def last_run(out) -> dict | None:
    """The latest run of the sweep in directory ``out`` that solved targets (a line of
    ``runs.jsonl`` as :meth:`SweepRun.to_dict`), or None."""
    path = Path(out) / "runs.jsonl"
    if not path.is_file():
        return None
    found = None
    for line in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError, AttributeError):
            d = json.loads(line)
            if d.get("new", 0) > 0:
                found = d
    return found


def auto_batch(n_remaining: int, slots: int, mc_samples: int = 0) -> int:
    """Targets per task: about 8 tasks per worker slot (load balance, a progress bar that
    moves), and no more than about :data:`TASK_S` seconds of work per task at the measured
    per-target cost (an IK solve, plus two Monte Carlo runs of ``mc_samples`` when asked): a
    part file per task, and a crash loses only the tasks in flight.  Between 16 and
    :data:`MAX_BATCH`."""
    per_target = _SOLVE_S + 2.0 * mc_samples / _MC_RATE
    cap = max(16, min(MAX_BATCH, int(TASK_S / per_target)))
    return int(min(cap, max(1, math.ceil(n_remaining / (8 * max(1, slots))))))


class InProcessExecutor(cf.Executor):
    """An executor that runs each task at once in the calling thread (``executor=0``)."""

    _max_workers = 1

    def submit(self, fn, /, *args, **kwargs):
        f = cf.Future()
        try:
            f.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - delivered through the future
            f.set_exception(exc)
        return f


def _connect_dask(address: str):
    try:
        from distributed import Client
    except ImportError:
        raise SweepError("--dask: needs dask.distributed (pip install 'assemblers[cluster]')") \
            from None
    try:
        return Client(address, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise SweepError(f"--dask {address}: cannot connect to the scheduler ({exc})") from None


def _is_dask(x) -> bool:
    return type(x).__module__.split(".")[0] == "distributed"


@dataclass
class _Plan:
    """How tasks run: ``pool.submit(fn, spec_arg, indices)``; ``own``: shut down here."""

    pool: cf.Executor | None
    fn: object
    label: str
    workers: int
    client: object = None
    own_pool: bool = False


def _plan(executor, spec) -> _Plan:
    if _is_dask(executor):  # a Client, or a ClientExecutor from client.get_executor()
        client = getattr(executor, "_client", executor)
        workers = max(1, sum(client.nthreads().values()))
        return _Plan(client.get_executor(pure=False), dask_task, "dask", workers, client)
    if isinstance(executor, cf.Executor):
        return _Plan(executor, evaluate_batch, "local processes",
                     getattr(executor, "_max_workers", None) or os.cpu_count() or 1)
    if executor == 0:
        return _Plan(InProcessExecutor(), evaluate_batch, "in-process", 1)
    return _Plan(None, evaluate_batch, "local processes", executor or os.cpu_count() or 1,
                 own_pool=True)


def run_sweep(spec: SweepSpec, out, *, fmt: str = "parquet", executor=None,
              batch: int | None = None, progress: bool | None = False) -> SweepRun:
    """Run (or resume) ``spec`` into the directory ``out``.

    Args:
        spec: the :class:`SweepSpec`.
        out: output directory (created; an existing one must hold the same spec and format).
        fmt: "parquet" or "csv".
        executor: None (local processes, one per core), 0 (this process), an int (that many
            local processes), a ``concurrent.futures.Executor`` (e.g. :func:`make_pool`; not
            shut down here), a Dask scheduler address ``"tcp://host:8786"``, a
            ``distributed.Client`` or its ``get_executor()`` (not closed here).
        batch: targets per task (default :func:`auto_batch`).
        progress: tqdm bar on stderr (None: only on a terminal).

    Returns a :class:`SweepRun`.  Raises :class:`SweepError` for bad input (before anything
    is written) and :class:`SweepFailed` when targets raised, a worker was lost or a write
    failed (finished rows stay on disk; rerun to resume).  KeyboardInterrupt stops after
    cancelling pending tasks; finished batches are kept.  Parts that fail their checksums are
    moved to ``corrupt/`` and solved again (``SweepRun.repaired``).
    """
    if batch is not None:
        batch = parse_count(batch, "--batch")
    if executor is not None and not isinstance(executor, int | str | cf.Executor) and \
            not _is_dask(executor):
        raise SweepError("executor: None, an int, an address, an Executor or a dask Client")
    if isinstance(executor, int) and not isinstance(executor, bool):
        executor = parse_count(executor, "--workers", 0, max_workers())
    output = SweepOutput(out, spec, fmt)
    output.check()
    own_client = _connect_dask(executor) if isinstance(executor, str) else None
    t0 = time.perf_counter()
    try:
        output.open()
        try:
            return _run(spec, output, _plan(own_client or executor, spec), batch, progress, t0)
        finally:
            output.close()
    finally:
        if own_client is not None:
            own_client.close()


def _run(spec, output: SweepOutput, plan: _Plan, batch, progress, t0) -> SweepRun:
    todo = output.todo()
    n_todo = sum(b - a for a, b in todo)
    run = SweepRun(out=str(output.dir), n_total=spec.n_total, n_before=output.n_done,
                   repaired=list(output.repaired), executor=plan.label, workers=plan.workers)
    run.batch = min(batch, max(n_todo, 1)) if batch else auto_batch(n_todo, run.workers,
                                                                    spec.mc_samples)
    n_tasks = math.ceil(n_todo / run.batch)
    if n_tasks and plan.pool is None:
        plan.pool = make_pool(min(run.workers, n_tasks), spec)
    spec_arg = spec
    if n_tasks and plan.client is not None:  # shipped once, not with every task
        spec_arg = plan.client.scatter(spec, broadcast=True, hash=False)
    bar = None
    if progress is None or progress:
        from tqdm import tqdm

        bar = tqdm(total=spec.n_total, initial=run.n_before, unit="target", desc="sweep",
                   disable=None if progress is None else False, dynamic_ncols=True)
    try:
        if n_tasks:
            _drive(plan, spec_arg, batches_of(todo, run.batch), output, run, bar)
    except KeyboardInterrupt:
        if plan.own_pool and plan.pool is not None:
            _kill_pool(plan.pool)
            plan.pool = None
        raise
    except Exception as exc:  # noqa: BLE001 - a lost worker, a task that failed, a write
        run.wall_s = time.perf_counter() - t0
        with contextlib.suppress(OSError, SweepError):
            output.log_run(run)
        if isinstance(exc, OSError):
            what = f"cannot write in {output.dir} ({exc.strerror or exc})"
        elif isinstance(exc, cf.process.BrokenProcessPool):  # (a task failing in-process too)
            what = f"a worker process died ({exc})"
        else:
            what = f"a task failed ({type(exc).__name__}: {exc})"
        raise SweepFailed(f"{what}; {run.n_before + run.new} of {run.n_total} rows are saved, "
                          f"rerun to resume", run) from exc
    finally:
        if bar is not None:
            bar.close()
        if plan.own_pool and plan.pool is not None:
            plan.pool.shutdown(wait=True, cancel_futures=True)
    if not run.errors:
        try:
            fresh = run.new == 0 and not run.repaired and output.results_ok()
            run.results = str(output.results if fresh else output.merge())
        except OSError as exc:
            raise SweepFailed(f"cannot write {output.results} ({exc.strerror or exc}); the parts "
                              f"are saved, rerun to merge them", run) from None
        except SweepFailed as exc:
            exc.run = run
            raise
    run.wall_s = time.perf_counter() - t0
    output.log_run(run)
    if run.errors:
        i, msg = run.errors[0]
        raise SweepFailed(f"{len(run.errors)} target(s) raised, e.g. target {i}: {msg}; their "
                          f"rows are missing, rerun to retry them", run)
    return run


def _collect(res: dict, output: SweepOutput, run: SweepRun, bar) -> None:
    rows = res["rows"]
    if rows["index"]:
        output.write_part(rows)
    run.new += len(rows["index"])
    run.errors.extend(res["errors"])
    if bar is not None:
        bar.update(len(rows["index"]) + len(res["errors"]))


def _drive(plan: _Plan, spec_arg, batches, output, run, bar) -> None:
    """Keep ``2 x workers`` tasks in flight; write each result as it comes."""
    inflight = 2 * run.workers
    pending = set()
    try:
        while True:
            while len(pending) < inflight:
                b = next(batches, None)
                if b is None:
                    break
                pending.add(plan.pool.submit(plan.fn, spec_arg, b))
            if not pending:
                return
            finished, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for f in finished:
                _collect(f.result(), output, run, bar)
    finally:
        for f in pending:
            f.cancel()


def _kill_pool(pool) -> None:
    """Stop a pool now (Ctrl-C): cancel what waits, terminate the workers."""
    pool.shutdown(wait=False, cancel_futures=True)
    for p in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):
            p.terminate()
