"""What a worker does with a task: solve the targets of a batch and return their result rows.

A worker process keeps the compiled state of one spec (the Assemblers, their home tool poses and
Monte Carlo disturbances, every solve path warmed up once); :func:`evaluate_batch` is the task,
whatever the executor.  Only the driver writes files.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import os
import threading
import time
from dataclasses import dataclass

import numpy as np

from .spec import AXES, MC_COLUMNS, SweepError, SweepSpec, columns, parse_count

_STATE: dict = {}
_STATE_LOCK = threading.Lock()
_MC_LOCK = threading.Lock()  # Numba's workqueue layer must not be entered by two threads


@dataclass
class _WorkerState:
    spec: SweepSpec
    asms: list
    T_home: list
    disturbances: list


def _state(spec: SweepSpec) -> _WorkerState:
    """This process's compiled state for ``spec`` (built and warmed up once per process)."""
    st = _STATE.get(spec.key)
    if st is not None:
        return st
    with _STATE_LOCK:
        st = _STATE.get(spec.key)
        if st is None:
            st = _build_state(spec)
            _STATE.clear()  # one spec at a time per worker
            _STATE[spec.key] = st
    return st


def _build_state(spec: SweepSpec) -> _WorkerState:
    import assemblers
    from assemblers import ik

    asms = [c.assembler() for c in spec.configs]
    T_home = [np.asarray(assemblers.forward_kinematics(a, assemblers.home_pose(a))) for a in asms]
    dists = [None] * len(asms)
    if spec.mc_samples:
        from sims.robustness.study import default_disturbance

        dists = [default_disturbance(a, spec.mc_noise) for a in asms]
    for a, d in zip(asms, dists):  # warm-up: JIT / Numba caches loaded here, once
        ik.warmup(a, spec.criterion)  # every solve path, the closest-pose search included
        if d is not None:
            _mc(a, assemblers.home_pose(a), d, 64, 0)
    return _WorkerState(spec=spec, asms=asms, T_home=T_home, disturbances=dists)


def _mc(asm, Q, disturbance, n: int, seed: int):
    from sims.robustness.montecarlo import simulate

    with _MC_LOCK:
        return simulate(asm, Q, disturbance, n, seed, progress=False)


def target_transforms(spec: SweepSpec, indices, T_home=None) -> tuple[np.ndarray, np.ndarray]:
    """Tool targets of global indices ``indices`` (k,): ``(T_world_tool (k, 4, 4), config index
    (k,))``.

    ``T_home``: list of (4, 4) home tool poses T_world_tool per config (computed when not given).
    """
    import assemblers

    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= spec.n_total):
        raise SweepError(f"indices: must be in [0, {spec.n_total})")
    cfg, tgt = np.divmod(idx, spec.n_per_config)
    T = np.asarray(assemblers.pose_to_transform(spec.box_poses(tgt))).reshape(-1, 4, 4).copy()
    if spec.frame == "home":
        if T_home is None:
            asms = [c.assembler() for c in spec.configs]
            T_home = [np.asarray(assemblers.forward_kinematics(a, assemblers.home_pose(a)))
                      for a in asms]
        Th = np.asarray(T_home)[cfg]  # (k, 4, 4)
        T[:, :3, 3] += Th[:, :3, 3]
        T[:, :3, :3] = T[:, :3, :3] @ Th[:, :3, :3]
    return T, cfg


def evaluate_batch(spec: SweepSpec, indices) -> dict:
    """Solve the targets ``indices`` (k,) of ``spec``: ``{"rows": {column: list}, "errors":
    [(index, message)]}``.  A target whose evaluation raised is reported in ``errors`` and has
    no row (a rerun retries it)."""
    import assemblers

    st = _state(spec)
    idx = [int(i) for i in np.asarray(indices, dtype=np.int64).reshape(-1)]
    T_all, cfg_all = target_transforms(spec, idx, st.T_home)
    # (k, 6) world-frame tool poses in one NumPy pass: per-target bookkeeping is a measurable
    # share of a worker's time at ~0.2 ms per solve
    poses = assemblers.transform_to_pose(T_all).tolist() if len(idx) else []
    cols = {k: [] for k in columns(spec)}
    errors = []
    for i, T, c, pose in zip(idx, T_all, cfg_all, poses):
        asm = st.asms[c]
        try:
            r = assemblers.solve_ik(asm, T, criterion=spec.criterion,
                                        restarts=spec.restarts)
            row = {
                "index": i, "config": asm.name, "config_index": int(c),
                "target": i - int(c) * spec.n_per_config,
                **dict(zip(AXES, pose)),
                "success": bool(r.success), "reason": r.reason or "", "criterion": r.criterion,
                "cost": float(r.cost), "baseline_cost": _opt(r.baseline_cost),
                "reduction": _opt(r.reduction), "tool_error_m": float(r.tool_error[0]),
                "tool_error_rad": float(r.tool_error[1]),
                "max_violation": float(r.max_violation), "iterations": int(r.iterations),
                "time_s": float(r.time_s), "Q": r.Q.tolist(), **_force_row(asm, r.Q),
            }
            if spec.mc_samples:
                row.update(_mc_row(spec, asm, st.disturbances[c], T, r))
        except Exception as exc:  # noqa: BLE001 - reported per target, the sweep goes on
            errors.append((i, f"{type(exc).__name__}: {exc}"))
            continue
        for k in cols:
            cols[k].append(row[k])
    return {"rows": cols, "errors": errors}


def dask_task(spec: SweepSpec, indices) -> dict:
    """:func:`evaluate_batch` as a Dask task: one Numba thread per task (a Dask worker runs
    several tasks at once in threads; a process pool sets this in its initializer)."""
    import numba

    if spec.mc_samples:
        numba.set_num_threads(1)
    return evaluate_batch(spec, indices)


def _force_row(asm, Q) -> dict:
    """The largest |leg force| at ``Q`` (N) and over its rating (null without a load /
    without ratings)."""
    from assemblers.statics import leg_forces
    from assemblers.statics.loads import has_load, load_arrays

    if not has_load(load_arrays(asm)):
        return {"max_leg_force_N": None, "max_leg_force_rating": None}
    F = np.abs(leg_forces(asm, Q))
    rating = np.array([np.nan if p.max_leg_force is None else p.max_leg_force
                       for p in asm.platforms])[:, None]
    frac = F / rating
    return {"max_leg_force_N": _opt(float(F.max())),
            "max_leg_force_rating": _opt(float(np.nanmax(frac))) if np.isfinite(frac).any()
            else None}


def _opt(x):
    return None if x is None or not math.isfinite(x) else float(x)


def _mc_row(spec, asm, disturbance, T, r) -> dict:
    import assemblers

    out = dict.fromkeys(MC_COLUMNS)
    if not r.success:
        return out
    s = _mc(asm, r.Q, disturbance, spec.mc_samples, spec.seed)
    out.update(mc_rms_weighted_m=float(s.rms_weighted), mc_rms_position_m=float(s.rms_position),
               mc_rms_rotation_rad=float(s.rms_rotation), mc_p99_position_m=float(s.p99_position))
    even = r if r.criterion == "even" else assemblers.solve_ik(asm, T, criterion="even")
    if even.success:
        se = _mc(asm, even.Q, disturbance, spec.mc_samples, spec.seed)
        out["mc_even_rms_weighted_m"] = float(se.rms_weighted)
        if se.rms_weighted > 0:
            out["mc_reduction"] = 1.0 - float(s.rms_weighted) / float(se.rms_weighted)
    return out


def _init_worker(parent_pid: int, spec: SweepSpec | None = None) -> None:
    """Process-pool initializer: Ctrl-C is the driver's business; exit if the driver dies (so a
    killed sweep leaves no worker behind); one Numba thread (the parallelism is the workers);
    with a ``spec``, build and warm up its state (JIT / Numba caches) now, once per worker."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch():
        while True:
            if os.getppid() != parent_pid:
                os._exit(0)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True, name="sweep-parent-watch").start()
    import numba

    numba.set_num_threads(1)
    if spec is not None:
        _state(spec)


def max_workers() -> int:
    """The most local worker processes a sweep starts: 4 per CPU (each holds JAX and the
    compiled solver, 0.3-0.7 GB; more processes than that only thrash)."""
    return 4 * (os.cpu_count() or 1)


def make_pool(workers: int, spec: SweepSpec | None = None) -> cf.ProcessPoolExecutor:
    """A pool of ``workers`` processes (``spawn`` context: no fork of a process that runs JAX
    threads) for :func:`~sims.sweeps.driver.run_sweep`; reuse it across sweeps to keep workers
    warm.  With a ``spec``, each worker compiles for it in its initializer (else at its first
    task)."""
    import multiprocessing as mp

    workers = parse_count(workers, "--workers", 1, max_workers())
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                  initializer=_init_worker, initargs=(os.getpid(), spec))
