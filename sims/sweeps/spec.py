"""What a sweep is: the :class:`SweepSpec` (configs, a box of tool targets on a grid or at random,
criterion, seed, Monte Carlo), its target poses and the columns of its results.

Every target has a global index ``i = config_index * n_per_config + target``; its pose and its
result depend on the spec and on ``i`` only (randomness comes from ``seed`` and ``i``, never from
global state), so results do not depend on the executor, the number of workers or the batching.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import tomllib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from assemblers.errors import InputError

AXES = ("x", "y", "z", "roll", "pitch", "yaw")
AXIS_UNITS = ("m", "m", "m", "rad", "rad", "rad")
FRAMES = ("home", "world")
FORMATS = ("parquet", "csv")
MODES = ("grid", "random")
# Targets per sweep (all configs).  What bounds it is the disk and the report, not the driver
# (which tracks finished targets as index ranges): ~0.5 kB per row of parts plus as much again
# for the merged file (1e8 rows: ~100 GB), and the summary holds its columns of every row.
MAX_TARGETS = 10**8
MAX_MC_SAMPLES = 10**9
MAX_CONFIG_BYTES = 1 << 20  # a config is a few kB; refuse /dev/zero and friends
SCHEMA_VERSION = 2  # 2: the leg force columns

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
    "max_leg_force_N": ("float64", "N, the largest |leg force| at Q under the config's loads "
                        "(docs/statics.md); null when nothing loads the legs"),
    "max_leg_force_rating": ("float64", "the largest |leg force| / max_leg_force at Q; null "
                             "without ratings"),
}
#: extra columns with ``mc_samples > 0``, every one float64 (null when the target was not
#: reached)
MC_COLUMNS = {name: ("float64", meaning) for name, meaning in (
    ("mc_rms_weighted_m", "m, Monte Carlo RMS of |W_out e| at Q"),
    ("mc_rms_position_m", "m, RMS tool position error"),
    ("mc_rms_rotation_rad", "rad, RMS tool rotation error"),
    ("mc_p99_position_m", "m, 99th percentile of the position error"),
    ("mc_even_rms_weighted_m", "m, the same at the `even` baseline pose"),
    ("mc_reduction", "1 - mc_rms_weighted_m / mc_even_rms_weighted_m"),
)}


class SweepError(InputError):
    """Bad sweep input (a range, a count, the output directory...): the message names the
    parameter (the CLI option) and says what is wrong; the CLI exits with status 2."""


class SweepFailed(RuntimeError):
    """The sweep ran but did not finish (worker errors, a lost worker, a write that failed);
    the rows finished so far are on disk and a rerun resumes.  ``run`` is the
    :class:`~sims.sweeps.driver.SweepRun` of what was done."""

    def __init__(self, message: str, run=None):
        super().__init__(message)
        self.run = run


def parse_count(v, name: str, lo: int = 1, hi: int | None = None) -> int:
    """An integer ``lo <= v <= hi`` from an int, ``"12"`` or ``"1e6"`` (exact for integer text
    of any size), or a :class:`SweepError` naming ``name``."""
    if isinstance(v, bool):
        raise SweepError(f"{name}: must be an integer, got {v!r}")
    x = None
    if isinstance(v, int | np.integer):
        x = int(v)
    else:
        text = str(v).strip()
        try:
            x = int(text)
        except ValueError:
            try:
                f = float(text)
            except ValueError:
                raise SweepError(f"{name}: must be an integer, got {v!r}") from None
            if math.isfinite(f) and f == int(f):
                x = int(f)
    if x is None or x < lo:
        raise SweepError(f"{name}: must be an integer >= {lo}, got {v!r}")
    if hi is not None and x > hi:
        raise SweepError(f"{name}: must be at most {hi}, got {v!r}")
    return x


def _finite(v, name: str) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError, OverflowError):
        raise SweepError(f"{name}: {v!r} is not a number") from None
    if not math.isfinite(x):
        raise SweepError(f"{name}: {x} is not finite")
    return x


# ----------------------------------------------------------------------------- configs


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
        from assemblers import config_from_dict

        return config_from_dict(self.data, self.label)


def read_config(name_or_path: str | os.PathLike | None) -> ConfigSource:
    """Read a config file or a shipped config's name (``None``: the default Assembler).

    Raises :class:`assemblers.ConfigError` (a bad, missing, non-regular or oversized file)
    like ``load_config``.
    """
    from assemblers import ConfigError, config_from_dict, shipped_configs
    from assemblers.model.config import resolve_config_path

    p = resolve_config_path(name_or_path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise ConfigError(str(p), "", f"no such config file (shipped configs: "
                                      f"{', '.join(shipped_configs())})") from None
    except OSError as exc:
        raise ConfigError(str(p), "", f"cannot read: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):  # a FIFO or /dev/zero would block or never end
        raise ConfigError(str(p), "", "not a regular file")
    try:
        with open(p, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(str(p), "", f"cannot read: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(str(p), "", f"larger than {MAX_CONFIG_BYTES >> 20} MiB; not a config")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(str(p), "", f"not UTF-8 text ({exc.reason} at byte {exc.start})") \
            from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(p), "", f"not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(str(p), "", "not valid TOML: nested too deeply") from None
    asm = config_from_dict(data, str(p))  # validates now, in the driver
    label = str(name_or_path) if name_or_path is not None else "assembler"
    return ConfigSource(label=label, data=data, sha256=hashlib.sha256(raw).hexdigest(),
                        name=asm.name)


# ----------------------------------------------------------------------------- the spec


def _six(v, name: str) -> tuple:
    try:
        t = tuple(np.asarray(v, dtype=object).reshape(-1))
    except (TypeError, ValueError):
        raise SweepError(f"{name}: give 6 values (x y z roll pitch yaw)") from None
    if len(t) != 6:
        raise SweepError(f"{name}: give 6 values (x y z roll pitch yaw), got {len(t)}")
    return t


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
            is ``sims.robustness.default_disturbance(asm, mc_noise)``, simulated with the same seed
            for every target (common random numbers) at the optimal and the ``even`` pose.
        mc_noise: disturbance kinds ("pose", "legs", "joints"); None: the config's default.
        restarts: ``solve_ik``'s global layer per target (basin steps after the first start);
            default 0: one start per target, the maps' throughput (10 000 duo targets ran
            about 1.6x faster than with 4, ``solve_ik``'s default from 4 platforms; on the
            default Assembler one start's cost is at or below IPOPT's on about 96 % of targets
            instead of 99 %: docs/ik.md).
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
    restarts: int = 0

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
            counts = tuple(parse_count(c, "--grid") for c in _six(self.counts, "--grid"))
            for a, c, lo_a, hi_a in zip(AXES, counts, lo, hi):
                if lo_a == hi_a and c > 1:
                    raise SweepError(f"--grid: {c} points on axis {a}, whose range is the single "
                                     f"value {lo_a:g} (give --{a} \"MIN MAX\")")
            n = math.prod(counts)
            object.__setattr__(self, "counts", counts)
            object.__setattr__(self, "n_random", 0)
        else:
            n = parse_count(self.n_random, "--random")
            object.__setattr__(self, "n_random", n)
            object.__setattr__(self, "counts", (1,) * 6)
        if n * len(configs) > MAX_TARGETS:
            raise SweepError(f"--{self.mode}: {n * len(configs):.3g} targets is more than "
                             f"{MAX_TARGETS:.0e}; split the sweep")
        if self.criterion is not None and self.criterion not in CRITERIA:
            from assemblers.ik.custom import resolve  # a blend such as "fn:1,loads:0.2"

            try:
                resolve(str(self.criterion))
            except InputError as exc:
                raise SweepError(f"--criterion: {exc}".replace("criterion: ", "", 1)) from None
        object.__setattr__(self, "seed", parse_count(self.seed, "--seed", 0, 2**63 - 1))
        object.__setattr__(self, "restarts", parse_count(self.restarts, "--restarts", 0, 100))
        object.__setattr__(self, "mc_samples", parse_count(self.mc_samples, "--mc-samples", 0,
                                                           MAX_MC_SAMPLES))
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
            # only when set: a sweep written before the option (one start) resumes unchanged
            **({"restarts": self.restarts} if self.restarts else {}),
        }

    @cached_property
    def key(self) -> str:
        """sha256 of :meth:`to_dict` (identifies the spec in worker caches)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


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
    return schema_of({k: t for k, (t, _) in columns(spec).items()}, fmt)


def schema_of(types: dict, fmt: str):
    """column -> arrow type name (as in :data:`COLUMNS`) -> ``pyarrow.Schema``."""
    import pyarrow as pa

    names = {"int64": pa.int64(), "int32": pa.int32(), "float64": pa.float64(),
             "string": pa.string(), "bool": pa.bool_(),
             "list<float64>": pa.list_(pa.float64()) if fmt == "parquet" else pa.string()}
    return pa.schema([(k, names[t]) for k, t in types.items()])
