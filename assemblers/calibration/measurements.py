"""Calibration measurement files (CSV): read, check against an Assembler, write.

One row per measured pose (docs/calibration.md): the commanded leg lengths ``leg_1_0 ...
leg_N_5`` (m; platform 1..N bottom first, leg k = 0..5), then the measured tool pose ``x, y, z,
roll, pitch, yaw`` (world frame, m and rad).  Optional columns: ``sigma_position`` (m) and
``sigma_rotation`` (rad), the row's standard deviations per component; ``weight`` (> 0, scales
the row's inverse variance); ``top_<i>_x ... top_<i>_yaw``, the measured pose of platform i's top
plate (world frame), all six or none; ``*_nominal`` columns (written by ``calibrate plan``) are
ignored.  A first line of numbers means no header: then exactly the contract's 6N + 6 columns.
Lines that are empty or start with ``#`` are skipped.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import numpy as np

from .. import files
from ..errors import InputError
from ..model import Assembler

POSE = ("x", "y", "z", "roll", "pitch", "yaw")
OPTIONAL = ("sigma_position", "sigma_rotation", "weight")
MAX_ROWS = 1_000_000


def leg_columns(n: int) -> list[str]:
    """``leg_1_0 ... leg_N_5``: platform i = 1..N, leg k = 0..5."""
    return [f"leg_{i}_{k}" for i in range(1, n + 1) for k in range(6)]


def plate_columns(i: int) -> list[str]:
    """``top_<i>_x ... top_<i>_yaw``: the measured pose of platform i's top plate."""
    return [f"top_{i}_{a}" for a in POSE]


@dataclass(frozen=True)
class Measurements:
    """A measurement campaign.

    ``legs`` (M, N, 6) m, commanded; ``tool`` (M, 6) measured tool poses (x, y, z, roll, pitch,
    yaw; world frame, m and rad); ``plates`` (M, N, 6) measured top-plate poses (NaN for a
    platform whose plate was not measured; None when none was); ``sigma_position`` (M,) m and
    ``sigma_rotation`` (M,) rad per component (NaN where the file gives none: the fit's
    defaults apply); ``weight`` (M,); ``lines`` (M,) the file's line of each row (for messages);
    ``source`` the file's name.
    """

    legs: np.ndarray
    tool: np.ndarray
    plates: np.ndarray | None = None
    sigma_position: np.ndarray | None = None
    sigma_rotation: np.ndarray | None = None
    weight: np.ndarray | None = None
    lines: np.ndarray | None = None
    source: str = "<measurements>"

    @property
    def n_rows(self) -> int:
        return int(self.legs.shape[0])

    @property
    def plates_measured(self) -> np.ndarray:
        """(N,) bool: which top plates the campaign measured."""
        if self.plates is None:
            return np.zeros(self.legs.shape[1], dtype=bool)
        return np.all(np.isfinite(self.plates), axis=(0, 2))

    def where(self, row: int) -> str:
        """``"FILE: line L"`` (or ``row R``) of row ``row``, for messages."""
        if self.lines is not None:
            return f"{self.source}: line {int(self.lines[row])}"
        return f"{self.source}: row {row}"

    def subset(self, rows) -> Measurements:
        rows = np.asarray(rows)

        def pick(a):
            return None if a is None else a[rows]

        return Measurements(self.legs[rows], self.tool[rows], pick(self.plates),
                            pick(self.sigma_position), pick(self.sigma_rotation),
                            pick(self.weight), pick(self.lines), self.source)


def _number(text: str, where: str, column: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise InputError(f"{where}, column {column!r}: {text.strip()[:40]!r} is not a number") \
            from None
    if not math.isfinite(v):
        raise InputError(f"{where}, column {column!r}: not a finite number ({text.strip()!r})")
    return v


def _is_numeric(cells) -> bool:
    try:
        [float(c) for c in cells]
    except ValueError:
        return False
    return True


def parse_measurements(text: str, n: int, source: str = "<measurements>") -> Measurements:
    """Parse a measurement CSV for an N-platform stack (see the module docs).  Raises
    :class:`InputError` naming the file, line and column of the first problem."""
    rows = [(i + 1, r) for i, r in enumerate(csv.reader(io.StringIO(text)))
            if r and any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]
    if not rows:
        raise InputError(f"{source}: no rows (expected a header {', '.join(leg_columns(n)[:2])}, "
                         "..., x, y, z, roll, pitch, yaw and one row per measured pose)")
    contract = leg_columns(n) + list(POSE)
    first_line, first = rows[0]
    if _is_numeric(first):
        header, data = contract, rows
        if len(first) != len(contract):
            raise InputError(f"{source}: line {first_line}: {len(first)} columns without a header;"
                             f" a {n}-platform stack needs {len(contract)} (leg_1_0 ... leg_{n}_5,"
                             " x, y, z, roll, pitch, yaw), or a header line naming the columns")
    else:
        header, data = [c.strip() for c in first], rows[1:]
    _check_header(header, n, source)
    if not data:
        raise InputError(f"{source}: a header but no measured poses")
    if len(data) > MAX_ROWS:
        raise InputError(f"{source}: {len(data)} rows; at most {MAX_ROWS}")
    col = {c: j for j, c in enumerate(header)}
    plates_given = [i for i in range(1, n + 1) if plate_columns(i)[0] in col]
    M = len(data)
    legs, tool = np.empty((M, n * 6)), np.empty((M, 6))
    plates = np.full((M, n, 6), np.nan) if plates_given else None
    opt = {k: np.full(M, np.nan) for k in OPTIONAL if k in col}
    lines = np.array([ln for ln, _ in data])
    for m, (ln, cells) in enumerate(data):
        where = f"{source}: line {ln}"
        if len(cells) != len(header):
            raise InputError(f"{where}: {len(cells)} columns; the header has {len(header)}")
        for j, c in enumerate(leg_columns(n)):
            legs[m, j] = _number(cells[col[c]], where, c)
        for j, c in enumerate(POSE):
            tool[m, j] = _number(cells[col[c]], where, c)
        for i in plates_given:
            for j, c in enumerate(plate_columns(i)):
                plates[m, i - 1, j] = _number(cells[col[c]], where, c)
        for k, arr in opt.items():
            arr[m] = _number(cells[col[k]], where, k)
            if arr[m] <= 0:
                raise InputError(f"{where}, column {k!r}: must be positive, got {arr[m]}")
    return Measurements(legs.reshape(M, n, 6), tool, plates, opt.get("sigma_position"),
                        opt.get("sigma_rotation"), opt.get("weight"), lines, source)


def _check_header(header: list[str], n: int, source: str) -> None:
    seen = set()
    for c in header:
        if c in seen:
            raise InputError(f"{source}: column {c!r} appears twice in the header")
        seen.add(c)
    legs_in = sorted({c.split("_")[1] for c in header if c.startswith("leg_") and
                      c.count("_") == 2}, key=lambda s: (len(s), s))
    missing = [c for c in leg_columns(n) + list(POSE) if c not in seen]
    if missing:
        got = f" (the header has legs of platform(s) {', '.join(legs_in)})" if legs_in else ""
        raise InputError(f"{source}: missing column {missing[0]!r}{got}: a {n}-platform stack "
                         f"needs leg_1_0 ... leg_{n}_5 and x, y, z, roll, pitch, yaw")
    known = set(leg_columns(n)) | set(POSE) | set(OPTIONAL)
    known |= {c for i in range(1, n + 1) for c in plate_columns(i)}
    for c in header:
        if c not in known and not c.endswith("_nominal"):
            extra = ""
            if c.startswith("leg_"):
                extra = f" (this stack has {n} platform(s): leg_1_0 ... leg_{n}_5)"
            raise InputError(f"{source}: unknown column {c!r}{extra}; docs/calibration.md lists "
                             "the columns")
    for i in range(1, n + 1):
        cols = plate_columns(i)
        given = [c for c in cols if c in seen]
        if given and len(given) != 6:
            raise InputError(f"{source}: top plate {i}: give all six columns {', '.join(cols)} "
                             f"or none (missing {next(c for c in cols if c not in seen)!r})")


def read_measurements(path, n: int) -> Measurements:
    """Read a measurement CSV (a regular file of at most 256 MiB; ``assemblers.files``)."""
    return parse_measurements(files.read_text(path), n, str(path))


def check_measurements(asm: Assembler, meas: Measurements, margin: float = 0.0) -> None:
    """Every commanded leg inside its stroke (to ``margin`` m).  Raises :class:`InputError`
    naming the row, the leg and the stroke."""
    n = asm.n_platforms
    if meas.legs.ndim != 3 or meas.legs.shape[1:] != (n, 6):
        raise InputError(f"{meas.source}: legs of shape {meas.legs.shape[1:]}; the stack has "
                         f"{n} platforms, (N, 6) = ({n}, 6)")
    lo, hi = asm.leg_min[:, None] - margin, asm.leg_max[:, None] + margin
    bad = (meas.legs < lo) | (meas.legs > hi)
    if bad.any():
        m, i, k = (int(x) for x in np.argwhere(bad)[0])
        raise InputError(f"{meas.where(m)}: leg_{i + 1}_{k} = {meas.legs[m, i, k]:.6g} m is "
                         f"outside the stroke [{asm.leg_min[i]:g}, {asm.leg_max[i]:g}] of "
                         f"platform {i + 1}")


def _fmt(x: float) -> str:
    return repr(float(x) + 0.0)


def format_measurements(meas: Measurements) -> str:
    """CSV text of ``meas`` (the header, then one row per pose; shortest exact floats)."""
    n = meas.legs.shape[1]
    header = leg_columns(n) + list(POSE)
    plates = [i for i in range(n) if meas.plates_measured[i]]
    for i in plates:
        header += plate_columns(i + 1)
    opt = [(k, getattr(meas, k)) for k in OPTIONAL if getattr(meas, k) is not None]
    header += [k for k, _ in opt]
    out = [",".join(header)]
    for m in range(meas.n_rows):
        cells = [*meas.legs[m].ravel(), *meas.tool[m]]
        for i in plates:
            cells += list(meas.plates[m, i])
        cells += [a[m] for _, a in opt]
        out.append(",".join(_fmt(c) for c in cells))
    return "\n".join(out) + "\n"


def write_measurements(path, meas: Measurements, what: str = "") -> None:
    """Write ``meas`` as CSV, atomically (``assemblers.files``)."""
    files.write_text(path, format_measurements(meas), what)


def format_plan(legs: np.ndarray, tool_nominal: np.ndarray) -> str:
    """CSV of planned poses: the commanded legs (M, N, 6) m, then the nominal model's tool pose
    (M, 6) as ``x_nominal ... yaw_nominal`` (ignored when the file is read back as
    measurements: add the measured ``x ... yaw`` columns)."""
    n = legs.shape[1]
    header = leg_columns(n) + [f"{a}_nominal" for a in POSE]
    out = [",".join(header)]
    for m in range(legs.shape[0]):
        out.append(",".join(_fmt(c) for c in [*legs[m].ravel(), *tool_nominal[m]]))
    return "\n".join(out) + "\n"


def read_plan(path, n: int) -> np.ndarray:
    """The commanded legs (M, N, 6) m of a planned-poses CSV (:func:`format_plan`; any file with
    the ``leg_*`` columns: other columns are ignored)."""
    text = files.read_text(path)
    rows = [(i + 1, r) for i, r in enumerate(csv.reader(io.StringIO(text)))
            if r and any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]
    if len(rows) < 2:
        raise InputError(f"{path}: expected a header and at least one row of leg lengths")
    header = [c.strip() for c in rows[0][1]]
    col = {c: j for j, c in enumerate(header)}
    missing = [c for c in leg_columns(n) if c not in col]
    if missing:
        raise InputError(f"{path}: missing column {missing[0]!r}: a {n}-platform stack needs "
                         f"leg_1_0 ... leg_{n}_5")
    legs = np.empty((len(rows) - 1, 6 * n))
    for m, (ln, cells) in enumerate(rows[1:]):
        if len(cells) != len(header):
            raise InputError(f"{path}: line {ln}: {len(cells)} columns; the header has "
                             f"{len(header)}")
        for j, c in enumerate(leg_columns(n)):
            legs[m, j] = _number(cells[col[c]], f"{path}: line {ln}", c)
    return legs.reshape(-1, n, 6)
