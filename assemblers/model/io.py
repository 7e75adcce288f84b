"""File formats shared by the solver, the visualizer and the hardware streamer.

Trajectory files are JSON (``docs/formats.md``)::

    {"format": "assemblers-trajectory", "version": 1,
     "config": "configs/assembler.toml", "n_platforms": 4,
     "t": [T floats, s],  "Q": [T rows of 6N floats],  "legs": [T x N x 6 floats, m],
     "T_target": [T 4x4 matrices] or null,  "meta": {...}}

This module is the I/O layer: the kinematics and solver modules never import it.  Reading and
writing go through :mod:`assemblers.files` (regular files only, size cap, atomic writes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import files
from ..errors import InputError

__all__ = ["FORMAT", "VERSION", "FileFormatError", "Trajectory", "load_trajectory",
           "save_trajectory", "validate_trajectory", "write_json_atomic"]

FORMAT = "assemblers-trajectory"
VERSION = 1


class FileFormatError(InputError):
    """A bad input file: names the file, the field and the problem."""

    def __init__(self, path, field: str, problem: str):
        self.path, self.field, self.problem = str(path), field, problem
        super().__init__(f"{path}: {field}: {problem}" if field else f"{path}: {problem}")


@dataclass(frozen=True, eq=False)
class Trajectory:
    """A timed list of stack poses.

    ``t``: (T,) s, strictly increasing; ``Q``: (T, 6N) stack poses (``docs/conventions.md``
    order);
    ``legs``: (T, N, 6) m, leg lengths; ``T_target``: (T, 4, 4) world_from_tool targets or None;
    ``config``: the config the poses belong to (path or shipped name); ``meta``: free-form info
    (criterion, largest leg step, ...).
    """

    t: np.ndarray
    Q: np.ndarray
    legs: np.ndarray
    config: str | None = None
    T_target: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @property
    def n_steps(self) -> int:
        return int(self.t.shape[0])

    @property
    def n_platforms(self) -> int:
        return int(self.legs.shape[1])


def _finite(path, name, a, shape):
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise FileFormatError(path, name, "must be an array of numbers") from None
    if arr.shape != shape:
        raise FileFormatError(path, name, f"must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        idx = np.argwhere(~np.isfinite(arr))[0]
        raise FileFormatError(path, name, f"non-finite value at index {tuple(int(i) for i in idx)}")
    return arr


def validate_trajectory(tr: Trajectory, path="<trajectory>") -> Trajectory:
    """Check shapes, finiteness and monotonic time; return ``tr``.  Raises FileFormatError."""
    T = tr.t.shape[0] if np.ndim(tr.t) == 1 else -1
    if T < 1:
        raise FileFormatError(path, "t", "must be a non-empty list of times")
    n = tr.legs.shape[1] if np.ndim(tr.legs) == 3 else -1
    if n < 1:
        raise FileFormatError(path, "legs", "must be a T x N x 6 array")
    t = _finite(path, "t", tr.t, (T,))
    _finite(path, "Q", tr.Q, (T, 6 * n))
    _finite(path, "legs", tr.legs, (T, n, 6))
    if tr.T_target is not None:
        _finite(path, "T_target", tr.T_target, (T, 4, 4))
    if T > 1 and np.any(np.diff(t) <= 0):
        k = int(np.nonzero(np.diff(t) <= 0)[0][0])
        raise FileFormatError(path, "t", f"times must increase strictly (t[{k + 1}] = "
                              f"{t[k + 1]} after t[{k}] = {t[k]})")
    return tr


def save_trajectory(path: str | os.PathLike, tr: Trajectory) -> Path:
    """Write ``tr`` as JSON, atomically (a temporary file renamed into place); only a regular
    file is ever replaced.  Raises FileFormatError for a bad trajectory, FileError for a path
    that cannot be written."""
    validate_trajectory(tr, path)
    if not isinstance(tr.meta, dict):
        raise FileFormatError(path, "meta", "must be a dict")
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "config": tr.config,
        "n_platforms": tr.n_platforms,
        "t": np.asarray(tr.t).tolist(),
        "Q": np.asarray(tr.Q).tolist(),
        "legs": np.asarray(tr.legs).tolist(),
        "T_target": None if tr.T_target is None else np.asarray(tr.T_target).tolist(),
        "meta": tr.meta,
    }
    return write_json_atomic(path, doc)


def write_json_atomic(path: str | os.PathLike, doc) -> Path:
    """Write ``doc`` as JSON to ``path`` via a temporary file, so nothing is half-written
    (:func:`assemblers.files.write_json`; non-finite numbers are written as null)."""
    return files.write_json(path, doc)


def load_trajectory(path: str | os.PathLike) -> Trajectory:
    """Read a trajectory file (a regular file of at most 256 MiB).  Raises FileFormatError
    naming the file and field."""
    path = Path(path)
    try:
        doc = files.read_json(path)
    except files.FileError as exc:
        raise FileFormatError(path, "", exc.problem) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise FileFormatError(path, "format", f"not an {FORMAT} file")
    if doc.get("version") != VERSION:
        raise FileFormatError(path, "version", f"unsupported version {doc.get('version')!r}")
    for key in ("t", "Q", "legs"):
        if key not in doc:
            raise FileFormatError(path, key, "missing")
    config, meta = doc.get("config"), doc.get("meta")
    if config is not None and not isinstance(config, str):
        raise FileFormatError(path, "config", "must be a string (a config path or name) or null")
    if meta is not None and not isinstance(meta, dict):
        raise FileFormatError(path, "meta", "must be an object")

    def arr(key):
        try:
            return np.asarray(doc[key], dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise FileFormatError(path, key, "must be an array of numbers") from None

    tr = Trajectory(
        t=arr("t"), Q=arr("Q"), legs=arr("legs"), config=config,
        T_target=None if doc.get("T_target") is None else arr("T_target"),
        meta=meta or {},
    )
    return validate_trajectory(tr, path)
