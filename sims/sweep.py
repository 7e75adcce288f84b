"""Sweeps: least-sensitive IK (and optionally a short Monte Carlo) over many tool targets.

A sweep is a :class:`SweepSpec`: one or more configs, a box of tool poses (x, y, z in m; roll,
pitch, yaw in rad) sampled on a grid or at random, the IK criterion, a seed and, optionally, the
number of Monte Carlo samples per solved target.  Every target has a global index
``i = config_index * n_per_config + target``; its pose and its result depend on the spec and on
``i`` only (randomness comes from ``seed`` and ``i``, never from global state), so results do not
depend on the executor, the number of workers or the batching.

Executors: the calling process (``executor=0``), local processes (an int: that many workers,
``spawn`` context, each warmed up once: JAX compilation and Numba caches are loaded the first
time a worker sees a spec), a :class:`concurrent.futures.Executor` from :func:`make_pool`, or a
Dask distributed cluster (a scheduler address ``"tcp://host:8786"`` or a
``distributed.Client``).  Targets travel in batches; each finished batch is written at once as a
*part* file, so an interrupted sweep resumes where it stopped.

Output directory layout (see docs/scaling.md)::

    sweep.json            the spec (checked on resume: another spec is an error)
    parts/part-<first index>.parquet|csv   one file per finished batch, written atomically
    results.parquet|csv   all rows sorted by index, written when the sweep is complete
    runs.jsonl            one line per run: executor, targets done, wall time, throughput

Columns of the results (one row per target): see :data:`COLUMNS` and :func:`columns`.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import json
import math
import os
import threading
import time
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from assemblers.errors import InputError

AXES = ("x", "y", "z", "roll", "pitch", "yaw")
AXIS_UNITS = ("m", "m", "m", "rad", "rad", "rad")
FRAMES = ("home", "world")
FORMATS = ("parquet", "csv")
MODES = ("grid", "random")
MAX_TARGETS = 10**9
MAX_BATCH = 4096
TASK_S = 2.0  # seconds of work per task that auto_batch aims at
# measured per-target costs that auto_batch sizes tasks by (benchmarks/ik.py, benchmarks/sweep.py,
# benchmarks/montecarlo.py on a 2-core VM): one IK solve, Monte Carlo samples per second
_SOLVE_S = 5e-4
_MC_RATE = 5e6
SCHEMA_VERSION = 1

#: columns of every sweep: name -> (arrow type name, unit / meaning)
COLUMNS = {
    "index": ("int64", "global target index = config_index * n_per_config + target"),
    "config": ("string", "the Assembler's name"),
    "config_index": ("int32", "position of the config in the spec"),
    "target": ("int64", "target index within the config"),
    "x": ("float64", "m, tool target in the world frame"),
    "y": ("float64", "m"),
    "z": ("float64", "m"),
    "roll": ("float64", "rad"),
    "pitch": ("float64", "rad"),
    "yaw": ("float64", "rad"),
    "success": ("bool", "the solver reached the target within every limit"),
    "reason": ("string", "empty on success, else the solver's reason (e.g. 'unreachable: stroke')"),
    "criterion": ("string", "the criterion optimized"),
    "cost": ("float64", "criterion at Q (the closest pose when not reached)"),
    "baseline_cost": ("float64", "criterion at the `even` baseline; null if infeasible"),
    "reduction": ("float64", "1 - cost / baseline_cost; null without baseline"),
    "tool_error_m": ("float64", "m, tool position error at Q"),
    "tool_error_rad": ("float64", "rad, tool rotation error at Q"),
    "max_violation": ("float64", "m or rad, largest limit violation at Q"),
    "iterations": ("int64", "solver iterations"),
    "time_s": ("float64", "s, wall time of the solve (the only column that varies run to run)"),
    "Q": ("list<float64>", "(6N,) stack pose, m and rad; a space-separated string in CSV"),
}
#: extra columns with ``mc_samples > 0`` (null when the target was not reached)
MC_COLUMNS = {
    "mc_rms_weighted_m": ("float64", "m, Monte Carlo RMS of |W_out e| at Q"),
    "mc_rms_position_m": ("float64", "m, RMS tool position error"),
    "mc_rms_rotation_rad": ("float64", "rad, RMS tool rotation error"),
    "mc_p99_position_m": ("float64", "m, 99th percentile of the position error"),
    "mc_even_rms_weighted_m": ("float64", "m, the same at the `even` baseline pose"),
    "mc_reduction": ("float64", "1 - mc_rms_weighted_m / mc_even_rms_weighted_m"),
}


class SweepError(InputError):
    """Bad sweep input (a range, a count, the output directory...): the message names the
    parameter (the CLI option) and says what is wrong; the CLI exits with status 2."""


class SweepFailed(RuntimeError):
    """The sweep ran but did not finish (worker errors or a lost worker); the rows finished so
    far are on disk and a rerun resumes.  ``run`` is the :class:`SweepRun` of what was done."""

    def __init__(self, message: str, run=None):
        super().__init__(message)
        self.run = run


# ----------------------------------------------------------------------------- the spec


@dataclass(frozen=True, eq=False)
class ConfigSource:
    """A config as read by the driver and shipped to workers (which need not see the file).

    ``label``: what the user gave (shipped name or path); ``data``: the parsed TOML;
    ``sha256``: of the file's bytes (a changed file is a different sweep).
    """

    label: str
    data: dict = field(repr=False)
    sha256: str
    name: str

    def assembler(self):
        """The :class:`assemblers.Assembler` (built on each call)."""
        from assemblers.config import config_from_dict

        return config_from_dict(self.data, self.label)


def read_config(name_or_path: str | os.PathLike | None) -> ConfigSource:
    """Read a config file or a shipped config's name (``None``: the default Assembler).

    Raises :class:`assemblers.ConfigError` (a bad or missing file) like ``load_config``.
    """
    from assemblers.config import ConfigError, config_from_dict, resolve_config_path, shipped_configs

    p = resolve_config_path(name_or_path)
    if not p.exists():
        raise ConfigError(str(p), "", f"no such config file (shipped configs: "
                                      f"{', '.join(shipped_configs())})")
    try:
        raw = p.read_bytes()
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(str(p), "", f"not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(str(p), "", f"cannot read: {exc.strerror}") from None
    asm = config_from_dict(data, str(p))  # validates now, in the driver
    label = str(name_or_path) if name_or_path is not None else "assembler"
    return ConfigSource(label=label, data=data, sha256=hashlib.sha256(raw).hexdigest(),
                        name=asm.name)


def _finite(v, name: str) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise SweepError(f"{name}: {v!r} is not a number") from None
    if not math.isfinite(x):
        raise SweepError(f"{name}: {x} is not finite")
    return x


def _count(v, name: str, lo: int = 1, hi: int | None = None) -> int:
    """An integer ``lo <= v <= hi`` (``1e6`` accepted) or a SweepError naming ``name``."""
    from .montecarlo import _as_count

    try:
        x = _as_count(v, name, lo)
    except InputError as exc:
        raise SweepError(str(exc)) from None
    if hi is not None and x > hi:
        raise SweepError(f"{name}: must be at most {hi}, got {v!r}")
    return x


@dataclass(frozen=True, eq=False)
class SweepSpec:
    """What to sweep (see the module docstring); validated on construction.

    Attributes:
        configs: the :class:`ConfigSource` s (at least one).
        lo, hi: (6,) box of target poses (x, y, z m; roll, pitch, yaw rad), ``lo <= hi``; with
            ``frame="home"`` they are offsets from each config's home tool pose (position added
            in the world frame, rotation ``R(roll, pitch, yaw) @ R_home``), with ``"world"``
            absolute tool poses.
        mode: "grid" (``counts`` points per axis, ``linspace(lo, hi)``; one point at the
            middle when the count is 1) or "random" (``n_random`` poses uniform in the box).
        counts: (6,) grid points per axis (forced to 1 on an axis with ``lo == hi``).
        n_random: number of random targets per config.
        criterion: IK criterion (``assemblers.ik.CRITERIA``); None: each config's default.
        seed: integer >= 0: random targets and the Monte Carlo.
        mc_samples: Monte Carlo samples per reached target (0: no Monte Carlo); the disturbance
            is ``sims.study.default_disturbance(asm, mc_noise)``, simulated with the same seed
            for every target (common random numbers) at the optimal and the ``even`` pose.
        mc_noise: disturbance kinds ("pose", "legs", "joints"); None: the config's default.
    """

    configs: tuple
    lo: tuple
    hi: tuple
    mode: str = "grid"
    counts: tuple = (1, 1, 1, 1, 1, 1)
    n_random: int = 0
    frame: str = "home"
    criterion: str | None = None
    seed: int = 0
    mc_samples: int = 0
    mc_noise: tuple | None = None

    def __post_init__(self):
        from assemblers.ik import CRITERIA

        configs = tuple(self.configs)
        if not configs or not all(isinstance(c, ConfigSource) for c in configs):
            raise SweepError("configs: give at least one config (ConfigSource from read_config)")
        names = [c.name for c in configs]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise SweepError(f"--config: {dup[0]!r} is given twice")
        object.__setattr__(self, "configs", configs)
        lo = tuple(_finite(v, f"--{a} (min)") for a, v in zip(AXES, _six(self.lo, "lo")))
        hi = tuple(_finite(v, f"--{a} (max)") for a, v in zip(AXES, _six(self.hi, "hi")))
        for a, u, lo_a, hi_a in zip(AXES, AXIS_UNITS, lo, hi):
            if lo_a > hi_a:
                raise SweepError(f"--{a}: min {lo_a:g} {u} is greater than max {hi_a:g} {u}")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)
        if self.mode not in MODES:
            raise SweepError(f"mode: one of {', '.join(MODES)}, got {self.mode!r}")
        if self.frame not in FRAMES:
            raise SweepError(f"--frame: one of {', '.join(FRAMES)}, got {self.frame!r}")
        if self.mode == "grid":
            counts = tuple(_count(c, "--grid") for c in _six(self.counts, "--grid"))
            for a, c, lo_a, hi_a in zip(AXES, counts, lo, hi):
                if lo_a == hi_a and c > 1:
                    raise SweepError(f"--grid: {c} points on axis {a}, whose range is the single "
                                     f"value {lo_a:g} (give --{a} \"MIN MAX\")")
            n = math.prod(counts)
            object.__setattr__(self, "counts", counts)
            object.__setattr__(self, "n_random", 0)
        else:
            n = _count(self.n_random, "--random")
            object.__setattr__(self, "n_random", n)
            object.__setattr__(self, "counts", (1,) * 6)
        if n * len(configs) > MAX_TARGETS:
            raise SweepError(f"--{self.mode}: {n * len(configs):.3g} targets is more than "
                             f"{MAX_TARGETS:.0e}; split the sweep")
        if self.criterion is not None and self.criterion not in CRITERIA:
            raise SweepError(f"--criterion: must be one of {', '.join(CRITERIA)}, got "
                             f"{self.criterion!r}")
        object.__setattr__(self, "seed", _count(self.seed, "--seed", 0, 2**63 - 1))
        object.__setattr__(self, "mc_samples", _count(self.mc_samples, "--mc-samples", 0,
                                                      10**9))
        if self.mc_noise is not None:
            kinds = tuple(self.mc_noise)
            bad = [k for k in kinds if k not in ("pose", "legs", "joints")]
            if not kinds or bad:
                raise SweepError(f"--mc-noise: {', '.join(bad) or 'nothing'} is not one of pose, "
                                 f"legs, joints")
            object.__setattr__(self, "mc_noise", kinds)

    @property
    def n_per_config(self) -> int:
        """Targets per config."""
        return self.n_random if self.mode == "random" else math.prod(self.counts)

    @property
    def n_total(self) -> int:
        """Targets in the sweep (all configs)."""
        return self.n_per_config * len(self.configs)

    def box_poses(self, targets) -> np.ndarray:
        """Poses in the box (offsets for ``frame="home"``) of target indices ``targets``
        (k,) -> (k, 6) (m, rad).  See :func:`box_poses`."""
        return box_poses(self.to_dict(), targets)

    def to_dict(self) -> dict:
        """The JSON form written to ``sweep.json`` (and compared on resume)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "configs": [{"label": c.label, "name": c.name, "sha256": c.sha256}
                        for c in self.configs],
            "frame": self.frame, "mode": self.mode,
            "axes": {a: {"min": lo, "max": hi, "count": n, "unit": u}
                     for a, u, lo, hi, n in zip(AXES, AXIS_UNITS, self.lo, self.hi, self.counts)},
            "n_random": self.n_random, "n_per_config": self.n_per_config,
            "n_total": self.n_total, "criterion": self.criterion, "seed": self.seed,
            "mc_samples": self.mc_samples,
            "mc_noise": list(self.mc_noise) if self.mc_noise else None,
        }

    @cached_property
    def key(self) -> str:
        """sha256 of :meth:`to_dict` (identifies the spec in worker caches)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def _six(v, name: str) -> tuple:
    try:
        t = tuple(np.asarray(v, dtype=object).reshape(-1))
    except (TypeError, ValueError):
        raise SweepError(f"{name}: give 6 values (x y z roll pitch yaw)") from None
    if len(t) != 6:
        raise SweepError(f"{name}: give 6 values (x y z roll pitch yaw), got {len(t)}")
    return t


def box_poses(spec_doc: dict, targets) -> np.ndarray:
    """Poses in the box of target indices ``targets`` (k,) -> (k, 6) (m, rad), from a spec's
    JSON form (:meth:`SweepSpec.to_dict`, as in ``sweep.json``).

    Grid: ``linspace(min, max, count)`` per axis (the middle when the count is 1), target ``k``
    at ``unravel_index(k, counts)`` (x slowest, yaw fastest).  Random: ``min + (max - min) * u``
    with ``u = default_rng([seed, k]).random(6)``: each target's pose depends on the seed and
    its index only.
    """
    ax = [spec_doc["axes"][a] for a in AXES]
    lo = np.array([a["min"] for a in ax])
    hi = np.array([a["max"] for a in ax])
    t = np.asarray(targets, dtype=np.int64).reshape(-1)
    out = np.empty((t.size, 6))
    if spec_doc["mode"] == "grid":
        counts = [a["count"] for a in ax]
        idx = np.unravel_index(t, counts)
        for a in range(6):
            vals = (np.linspace(lo[a], hi[a], counts[a]) if counts[a] > 1
                    else np.array([0.5 * (lo[a] + hi[a])]))
            out[:, a] = vals[idx[a]]
    else:
        for j, k in enumerate(t):
            out[j] = lo + (hi - lo) * np.random.default_rng([spec_doc["seed"], int(k)]).random(6)
    return out


def columns(spec: SweepSpec) -> dict:
    """name -> (arrow type name, meaning) of this spec's result columns."""
    return {**COLUMNS, **(MC_COLUMNS if spec.mc_samples else {})}


def arrow_schema(spec: SweepSpec, fmt: str = "parquet"):
    """The ``pyarrow.Schema`` of the result files (``Q`` is a string in CSV)."""
    return _schema({k: t for k, (t, _) in columns(spec).items()}, fmt)


def _schema(types: dict, fmt: str):
    """column -> arrow type name (as in :data:`COLUMNS`) -> ``pyarrow.Schema``."""
    import pyarrow as pa

    names = {"int64": pa.int64(), "int32": pa.int32(), "float64": pa.float64(),
             "string": pa.string(), "bool": pa.bool_(),
             "list<float64>": pa.list_(pa.float64()) if fmt == "parquet" else pa.string()}
    return pa.schema([(k, names[t]) for k, t in types.items()])


# ----------------------------------------------------------------------------- workers

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

    asms = [c.assembler() for c in spec.configs]
    T_home = [np.asarray(assemblers.forward_kinematics(a, assemblers.home_pose(a))) for a in asms]
    dists = [None] * len(asms)
    if spec.mc_samples:
        from .study import default_disturbance

        dists = [default_disturbance(a, spec.mc_noise) for a in asms]
    from assemblers import ik

    for a, T, d in zip(asms, T_home, dists):  # warm-up: JIT / Numba caches loaded here, once
        if hasattr(ik, "warmup"):  # every solve path, the closest-pose search included
            ik.warmup(a, spec.criterion)
        else:
            assemblers.solve_ik(a, T, criterion=spec.criterion)
        if d is not None:
            _mc(a, assemblers.home_pose(a), d, 64, 0)
    return _WorkerState(spec=spec, asms=asms, T_home=T_home, disturbances=dists)


def _mc(asm, Q, disturbance, n: int, seed: int):
    from .montecarlo import simulate

    with _MC_LOCK:
        return simulate(asm, Q, disturbance, n, seed, progress=False)


def target_transforms(spec: SweepSpec, indices, T_home=None) -> tuple[np.ndarray, np.ndarray]:
    """Tool targets of global indices ``indices`` (k,): ``(T (k, 4, 4), config index (k,))``.

    ``T_home``: list of (4, 4) home tool poses per config (computed when not given).
    """
    from assemblers.transforms import pose_to_transform

    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= spec.n_total):
        raise SweepError(f"indices: must be in [0, {spec.n_total})")
    cfg, tgt = np.divmod(idx, spec.n_per_config)
    T = np.asarray(pose_to_transform(spec.box_poses(tgt))).reshape(-1, 4, 4).copy()
    if spec.frame == "home":
        if T_home is None:
            import assemblers

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
    from assemblers.transforms import transform_to_pose

    st = _state(spec)
    idx = [int(i) for i in np.asarray(indices, dtype=np.int64).reshape(-1)]
    T_all, cfg_all = target_transforms(spec, idx, st.T_home)
    poses = transform_to_pose(T_all).tolist() if len(idx) else []  # (k, 6), one NumPy pass
    cols = {k: [] for k in columns(spec)}
    errors = []
    for i, T, c, pose in zip(idx, T_all, cfg_all, poses):
        asm = st.asms[c]
        try:
            r = assemblers.solve_ik(asm, T, criterion=spec.criterion)
            row = {
                "index": i, "config": asm.name, "config_index": int(c),
                "target": i - int(c) * spec.n_per_config,
                **dict(zip(AXES, pose)),
                "success": bool(r.success), "reason": r.reason or "", "criterion": r.criterion,
                "cost": float(r.cost), "baseline_cost": _opt(r.baseline_cost),
                "reduction": _opt(r.reduction), "tool_error_m": float(r.tool_error[0]),
                "tool_error_rad": float(r.tool_error[1]),
                "max_violation": float(r.max_violation), "iterations": int(r.iterations),
                "time_s": float(r.time_s), "Q": r.Q.tolist(),
            }
            if spec.mc_samples:
                row.update(_mc_row(spec, asm, st.disturbances[c], T, r))
        except Exception as exc:  # noqa: BLE001 - reported per target, the sweep goes on
            errors.append((i, f"{type(exc).__name__}: {exc}"))
            continue
        for k in cols:
            cols[k].append(row[k])
    return {"rows": cols, "errors": errors}


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


def make_pool(workers: int, spec: SweepSpec | None = None) -> cf.ProcessPoolExecutor:
    """A pool of ``workers`` processes (``spawn`` context: no fork of a process that runs JAX
    threads) for :func:`run_sweep`; reuse it across sweeps to keep workers warm.  With a
    ``spec``, each worker compiles for it in its initializer (else at its first task)."""
    import multiprocessing as mp

    workers = _count(workers, "--workers")
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                  initializer=_init_worker, initargs=(os.getpid(), spec))


# ----------------------------------------------------------------------------- output files


def _part_name(first: int, fmt: str) -> str:
    return f"part-{first:012d}.{fmt}"


def _to_table(spec: SweepSpec, cols: dict, fmt: str):
    import pyarrow as pa

    if fmt == "csv":
        cols = dict(cols, Q=[" ".join(repr(q) for q in Q) for Q in cols["Q"]])
    return pa.table(cols, schema=arrow_schema(spec, fmt))


def _write_table(table, path: Path, fmt: str) -> None:
    """Write ``table`` to ``path`` atomically (temporary file in the same folder, fsync,
    rename): a reader never sees half a file."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        if fmt == "parquet":
            pq.write_table(table, tmp)
        else:
            pcsv.write_csv(table, tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def read_table(path, schema=None, columns=None):
    """Read a part or results file (format from its suffix) -> ``pyarrow.Table``; a CSV file
    is read with the column types of ``schema`` (:func:`arrow_schema` with ``fmt="csv"``)."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    path = Path(path)
    if path.suffix == ".parquet":
        return pq.read_table(path, columns=columns)
    types = {f.name: f.type for f in schema} if schema is not None else None
    conv = pcsv.ConvertOptions(column_types=types, include_columns=columns,
                               strings_can_be_null=False, quoted_strings_can_be_null=False)
    return pcsv.read_csv(path, convert_options=conv)


class SweepOutput:
    """The output directory of one sweep: manifest, part files, merged results, run log."""

    def __init__(self, out, spec: SweepSpec, fmt: str = "parquet"):
        if fmt not in FORMATS:
            raise SweepError(f"--format: one of {', '.join(FORMATS)}, got {fmt!r}")
        self.dir = Path(out)
        self.spec = spec
        self.fmt = fmt
        self.parts = self.dir / "parts"
        self.manifest = self.dir / "sweep.json"
        self.results = self.dir / f"results.{fmt}"
        self.runs = self.dir / "runs.jsonl"
        self.schema = arrow_schema(spec, fmt)
        self._lock = None

    def manifest_doc(self) -> dict:
        return {"spec": self.spec.to_dict(), "format": self.fmt,
                "columns": {k: {"type": t, "meaning": m} for k, (t, m) in columns(self.spec).items()}}

    def check(self) -> None:
        """Fail (SweepError naming ``--out``) if the directory cannot hold this sweep: not a
        folder, not writable, or another sweep's manifest.  Writes nothing."""
        d = self.dir
        if d.exists() and not d.is_dir():
            raise SweepError(f"--out {d}: exists and is not a directory")
        anc = d
        while not anc.exists():
            anc = anc.parent
        if not anc.is_dir():
            raise SweepError(f"--out {d}: {anc} is not a directory")
        if not os.access(anc, os.W_OK | os.X_OK):
            raise SweepError(f"--out {d}: {anc} is not writable")
        if self.manifest.exists():
            try:
                old = json.loads(self.manifest.read_text())
            except (OSError, ValueError) as exc:
                raise SweepError(f"--out {d}: unreadable sweep.json ({exc}); use a new --out") \
                    from None
            self._compare(old)
        elif d.exists() and any(p.name != "sweep.lock" for p in d.iterdir()):
            raise SweepError(f"--out {d}: not empty and holds no sweep (sweep.json); use a new "
                             f"or empty directory")

    def _compare(self, old: dict) -> None:
        new = self.manifest_doc()
        if old.get("format") != new["format"]:
            raise SweepError(f"--out {self.dir}: holds a {old.get('format')} sweep; resume with "
                             f"--format {old.get('format')} or use a new --out")
        a, b = old.get("spec", {}), new["spec"]
        diff = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        if diff:
            raise SweepError(f"--out {self.dir}: holds a different sweep (differs in "
                             f"{', '.join(diff)}); repeat its options to resume, or use a new "
                             f"--out")

    def open(self) -> None:
        """Create the directory and manifest (or check the existing one), lock it against a
        second concurrent sweep and drop temporary files of an interrupted run."""
        self.check()
        created = []
        p = self.dir
        while not p.exists():
            created.append(p)
            p = p.parent
        try:
            self.parts.mkdir(parents=True, exist_ok=True)
            self._acquire_lock()
            if not self.manifest.exists():
                tmp = self.manifest.with_name(".tmp-sweep.json")
                tmp.write_text(json.dumps(self.manifest_doc(), indent=2) + "\n")
                os.replace(tmp, self.manifest)
        except OSError as exc:
            self.close()
            for c in [self.parts, *created]:
                with contextlib.suppress(OSError):
                    (c / "sweep.lock").unlink(missing_ok=True)
                    c.rmdir()
            raise SweepError(f"--out {self.dir}: cannot write ({exc.strerror or exc})") from None
        for tmp in self.parts.glob(".tmp-*"):
            with contextlib.suppress(OSError):
                tmp.unlink()

    def _acquire_lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # not on POSIX: no lock
            return
        fh = open(self.dir / "sweep.lock", "a")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise SweepError(f"--out {self.dir}: another sweep is writing there") from None
        self._lock = fh

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def part_files(self) -> list[Path]:
        return sorted(self.parts.glob(f"part-*.{self.fmt}"))

    def done_indices(self) -> np.ndarray:
        """Sorted indices already on disk (parts); a duplicate or a foreign index is an
        error."""
        got = []
        for p in self.part_files():
            try:
                t = read_table(p, self.schema, columns=["index"])
            except Exception as exc:  # noqa: BLE001 - a damaged file: say which
                raise SweepError(f"--out {self.dir}: cannot read {p.name} ({exc}); delete it to "
                                 f"recompute its targets") from None
            got.append(np.asarray(t.column("index").to_numpy(), dtype=np.int64))
        idx = np.sort(np.concatenate(got)) if got else np.zeros(0, dtype=np.int64)
        if idx.size and (idx[0] < 0 or idx[-1] >= self.spec.n_total):
            raise SweepError(f"--out {self.dir}: part files hold indices outside this sweep")
        if idx.size > 1 and (np.diff(idx) == 0).any():
            raise SweepError(f"--out {self.dir}: part files hold duplicate rows")
        return idx

    def write_part(self, cols: dict) -> Path:
        first = min(cols["index"])
        path = self.parts / _part_name(first, self.fmt)
        _write_table(_to_table(self.spec, cols, self.fmt), path, self.fmt)
        return path

    def merge(self) -> Path:
        """All parts, sorted by index, into ``results.<fmt>`` (atomic); requires every row."""
        import pyarrow as pa

        tables = [read_table(p, self.schema) for p in self.part_files()]
        table = pa.concat_tables(tables).sort_by("index")
        idx = table.column("index").to_numpy()
        if len(idx) != self.spec.n_total or (len(idx) and (idx != np.arange(len(idx))).any()):
            raise SweepFailed(f"{self.dir}: {len(idx)} rows of {self.spec.n_total}; cannot merge")
        _write_table(table, self.results, self.fmt)
        return self.results

    def log_run(self, run: SweepRun) -> None:
        with open(self.runs, "a") as fh:
            fh.write(json.dumps(run.to_dict()) + "\n")


# ----------------------------------------------------------------------------- driver


@dataclass
class SweepRun:
    """What one call of :func:`run_sweep` did.

    ``n_total``: targets in the sweep; ``n_before``: already on disk at the start; ``new``:
    solved by this run; ``errors``: (index, message) of targets that raised (no row written);
    ``wall_s``: s; ``throughput``: new targets per second of wall time (start-up included);
    ``executor``: "in-process", "local processes" or "dask"; ``workers``: processes/threads;
    ``batch``: targets per task; ``results``: the merged results file (None if incomplete).
    """

    out: str
    n_total: int
    n_before: int
    new: int = 0
    errors: list = field(default_factory=list)
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
                "results": self.results, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}


def last_run(out) -> dict | None:
    """The latest run of the sweep in directory ``out`` that solved targets (a line of
    ``runs.jsonl`` as :meth:`SweepRun.to_dict`), or None."""
    path = Path(out) / "runs.jsonl"
    if not path.exists():
        return None
    found = None
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
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


class _InProcess:
    """A stand-in executor that runs each batch at once in this process."""

    def submit(self, fn, *args):
        f = cf.Future()
        try:
            f.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - delivered through the future
            f.set_exception(exc)
        return f


def run_sweep(spec: SweepSpec, out, *, fmt: str = "parquet", executor=None,
              batch: int | None = None, progress: bool | None = False) -> SweepRun:
    """Run (or resume) ``spec`` into the directory ``out``.

    Args:
        spec: the :class:`SweepSpec`.
        out: output directory (created; an existing one must hold the same spec and format).
        fmt: "parquet" or "csv".
        executor: None (local processes, one per core), 0 (this process), an int (that many
            local processes), a ``concurrent.futures.Executor`` (e.g. :func:`make_pool`; not
            shut down here), a Dask scheduler address ``"tcp://host:8786"`` or a
            ``distributed.Client`` (not closed here).
        batch: targets per task (default :func:`auto_batch`).
        progress: tqdm bar on stderr (None: only on a terminal).

    Returns a :class:`SweepRun`.  Raises :class:`SweepError` for bad input (before anything
    is written) and :class:`SweepFailed` when targets raised or a worker was lost (finished
    rows stay on disk; rerun to resume).  KeyboardInterrupt stops after cancelling pending
    tasks; finished batches are kept.
    """
    if batch is not None:
        batch = _count(batch, "--batch")
    if executor is not None and not isinstance(executor, (int, str, cf.Executor)) and \
            not hasattr(executor, "scheduler_info"):
        raise SweepError("executor: None, an int, an address, an Executor or a dask Client")
    if isinstance(executor, int) and not isinstance(executor, bool):
        executor = _count(executor, "--workers", 0)
    output = SweepOutput(out, spec, fmt)
    output.check()
    client = own = None
    if isinstance(executor, str):
        client = _connect_dask(executor)
        own = client
    elif hasattr(executor, "scheduler_info"):
        client = executor
    t0 = time.perf_counter()
    try:
        output.open()
        try:
            return _run(spec, output, executor, client, batch, progress, t0)
        finally:
            output.close()
    finally:
        if own is not None:
            own.close()


def _run(spec, output, executor, client, batch, progress, t0) -> SweepRun:
    done = output.done_indices()
    todo = np.setdiff1d(np.arange(spec.n_total, dtype=np.int64), done, assume_unique=True)
    run = SweepRun(out=str(output.dir), n_total=spec.n_total, n_before=int(done.size))
    pool = own_pool = None
    if client is not None:
        run.executor = "dask"
        run.workers = max(1, sum(client.nthreads().values()))
    elif isinstance(executor, cf.Executor):
        pool, run.executor = executor, "local processes"
        run.workers = getattr(executor, "_max_workers", os.cpu_count() or 1)
    elif executor == 0:
        pool, run.executor, run.workers = _InProcess(), "in-process", 1
    else:
        run.executor = "local processes"
        run.workers = executor or os.cpu_count() or 1
    run.batch = batch or auto_batch(todo.size, run.workers, spec.mc_samples)
    batches = [todo[i:i + run.batch] for i in range(0, todo.size, run.batch)]
    if batches and run.executor == "local processes" and pool is None:
        pool = own_pool = make_pool(min(run.workers, len(batches)), spec)
    bar = None
    if progress is None or progress:
        from tqdm import tqdm

        bar = tqdm(total=spec.n_total, initial=run.n_before, unit="target", desc="sweep",
                   disable=None if progress is None else False, dynamic_ncols=True)
    try:
        if client is not None:
            _drive_dask(client, spec, batches, output, run, bar)
        elif batches:
            _drive(pool, spec, batches, output, run, bar)
    except KeyboardInterrupt:
        if own_pool is not None:
            _kill_pool(own_pool)
            own_pool = None
        raise
    except Exception as exc:  # noqa: BLE001 - a lost worker, a task that failed as a whole
        run.wall_s = time.perf_counter() - t0
        output.log_run(run)
        what = ("a worker process died" if isinstance(exc, cf.process.BrokenProcessPool)
                else "a task failed")
        raise SweepFailed(f"{what} ({type(exc).__name__}: {exc}); {run.n_before + run.new} of "
                          f"{run.n_total} rows are saved, rerun to resume", run) from exc
    finally:
        if bar is not None:
            bar.close()
        if own_pool is not None:
            own_pool.shutdown(wait=True, cancel_futures=True)
    if not run.errors:
        fresh = run.new == 0 and output.results.exists()
        run.results = str(output.results if fresh else output.merge())
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


def _drive(pool, spec, batches, output, run, bar) -> None:
    """Keep ``2 x workers`` batches in flight; write each result as it comes."""
    it = iter(batches)
    inflight = 2 * run.workers
    pending = set()
    try:
        while True:
            while len(pending) < inflight:
                b = next(it, None)
                if b is None:
                    break
                pending.add(pool.submit(evaluate_batch, spec, b))
            if not pending:
                return
            finished, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for f in finished:
                _collect(f.result(), output, run, bar)
    finally:
        for f in pending:
            f.cancel()


def _dask_batch(spec: SweepSpec, indices) -> dict:
    """The Dask task: :func:`evaluate_batch` with one Numba thread per task."""
    import numba

    if spec.mc_samples:
        numba.set_num_threads(1)
    return evaluate_batch(spec, indices)


def _drive_dask(client, spec, batches, output, run, bar) -> None:
    """Dask: the spec is scattered once to every worker; ``2 x threads`` tasks in flight."""
    from distributed import as_completed

    if not batches:
        return
    [spec_f] = client.scatter([spec], broadcast=True, hash=False)
    it = iter(batches)
    pending = set()

    def submit():
        b = next(it, None)
        if b is not None:
            f = client.submit(_dask_batch, spec_f, b, pure=False)
            pending.add(f)
            return f
        return None

    for _ in range(2 * run.workers):
        submit()
    ac = as_completed(list(pending))
    try:
        for f in ac:
            pending.discard(f)
            _collect(f.result(), output, run, bar)
            f.release()
            nxt = submit()
            if nxt is not None:
                ac.add(nxt)
    finally:
        if pending:
            client.cancel(list(pending))


def _kill_pool(pool) -> None:
    """Stop a pool now (Ctrl-C): cancel what waits, terminate the workers."""
    pool.shutdown(wait=False, cancel_futures=True)
    for p in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):
            p.terminate()


def load_results(out):
    """The results of the sweep in directory ``out`` -> ``pyarrow.Table`` sorted by index: the
    merged file of a finished sweep, else the rows finished so far."""
    import pyarrow as pa

    d = Path(out)
    try:
        man = json.loads((d / "sweep.json").read_text())
    except (OSError, ValueError) as exc:
        raise SweepError(f"--out {d}: no readable sweep.json ({exc})") from None
    fmt = man.get("format", "parquet")
    schema = _schema({k: v["type"] for k, v in man["columns"].items()}, fmt)
    res = d / f"results.{fmt}"
    if res.exists():
        return read_table(res, schema)
    parts = sorted((d / "parts").glob(f"part-*.{fmt}"))
    if not parts:
        raise SweepError(f"--out {d}: no results yet")
    return pa.concat_tables([read_table(p, schema) for p in parts]).sort_by("index")


__all__ = ["AXES", "COLUMNS", "ConfigSource", "MC_COLUMNS", "SweepError", "SweepFailed",
           "SweepOutput", "SweepRun", "SweepSpec", "auto_batch", "box_poses", "columns",
           "evaluate_batch", "last_run", "load_results", "make_pool", "read_config", "run_sweep",
           "target_transforms"]
