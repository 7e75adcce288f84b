"""Files of a sweep: atomic writes, checksums, the part manifest, reading parts with
``pyarrow.dataset``.

Integrity model (see docs/scaling.md): each part file is written to a temporary name and fsynced;
then its record (SHA-256 of those bytes, size, row count, first and last index) is appended to
the part manifest ``parts.jsonl`` and fsynced; then the file is renamed to its final name.  Each
manifest line carries a checksum of itself, so a line torn by a crash or damaged later reads as
absent.  A part is
merged only if its bytes match its record; a part without a valid record, or whose bytes or
indices disagree with it, is moved to ``corrupt/`` and its targets are solved again.  The merged
results file has a record of its own and is rebuilt from verified parts when it fails it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .spec import SweepError, arrow_schema

LEDGER = "parts.jsonl"
#: written into sweep.json: a sweep without it was written before part records existed
STORAGE = {"version": 2, "part_manifest": LEDGER, "checksum": "sha256"}
_PART_RE = re.compile(r"^part-(\d{12,})\.(parquet|csv)$")
_CHUNK = 1 << 20


def part_name(first: int, fmt: str) -> str:
    return f"part-{first:012d}.{fmt}"


def part_first(name: str) -> int | None:
    """The first index a part's file name declares (None: not a part's name)."""
    m = _PART_RE.match(name)
    return int(m.group(1)) if m else None


def regular_or_absent(path: Path, out: Path) -> bool:
    """True if ``path`` is a regular file, False if absent; a SweepError naming ``--out`` if it
    is anything else (a directory, a device node, a FIFO, a symlink): the sweep writes, reads
    and replaces regular files only."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise SweepError(f"--out {out}: cannot inspect {path.name} ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise SweepError(f"--out {out}: {path.relative_to(out) if path.is_relative_to(out) else path}"
                         f" exists and is not a regular file; move it away or use a new --out")
    return True


def sha256_file(path: Path) -> tuple[str, int]:
    """(hex SHA-256, size in bytes) of a file's contents."""
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def _tmp(path: Path) -> Path:
    return path.with_name(f".tmp-{os.getpid()}-{path.name}")


def _fsync_replace(tmp: Path, path: Path, out: Path) -> None:
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    regular_or_absent(path, out)  # never replace a device node, a FIFO or a directory
    os.replace(tmp, path)


def write_bytes_atomic(path: Path, data: bytes, out: Path) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    tmp = _tmp(path)
    try:
        tmp.write_bytes(data)
        _fsync_replace(tmp, path, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path


def to_table(spec, cols: dict, fmt: str):
    """Result rows ``{column: list}`` -> ``pyarrow.Table`` of the spec's schema."""
    import pyarrow as pa

    if fmt == "csv":
        cols = dict(cols, Q=[" ".join(repr(q) for q in Q) for Q in cols["Q"]])
    return pa.table(cols, schema=arrow_schema(spec, fmt))


def write_table_atomic(tables, path: Path, fmt: str, out: Path, on_durable=None) -> tuple[str, int]:
    """Write ``tables`` (a ``pyarrow.Table`` or an iterable of them, one schema) to ``path``
    atomically: temporary file in the same folder, fsync, checksum of the bytes on disk,
    ``on_durable(sha256, size)`` (the record), rename.  A reader never sees half a file, and a
    file under its final name always has its record (a crash before the rename leaves a record
    whose file is missing: its targets are solved again).  Returns (hex SHA-256, size)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    if isinstance(tables, pa.Table):
        tables = [tables]
    tmp = _tmp(path)
    try:
        writer = None
        try:
            for t in tables:
                if writer is None:
                    writer = (pq.ParquetWriter(tmp, t.schema) if fmt == "parquet"
                              else pcsv.CSVWriter(str(tmp), t.schema))
                writer.write_table(t)
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise ValueError("nothing to write")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        digest = sha256_file(tmp)  # the durable bytes, read back once (from the page cache)
        regular_or_absent(path, out)  # never replace a device node, a FIFO or a directory
        if on_durable is not None:
            on_durable(*digest)
        os.replace(tmp, path)
        return digest
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _csv_convert(schema, columns=None):
    import pyarrow.csv as pcsv

    types = {f.name: f.type for f in schema} if schema is not None else None
    return pcsv.ConvertOptions(column_types=types, include_columns=columns,
                               strings_can_be_null=False, quoted_strings_can_be_null=False)


def read_table(path, schema=None, columns=None):
    """Read one part or results file (format from its suffix) -> ``pyarrow.Table``; a CSV file
    is read with the column types of ``schema`` (:func:`arrow_schema` with ``fmt="csv"``)."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    path = Path(path)
    if path.suffix == ".parquet":
        return pq.read_table(path, columns=columns)
    return pcsv.read_csv(path, convert_options=_csv_convert(schema, columns))


def read_parts(paths, schema, fmt: str, lo: int | None = None, hi: int | None = None,
               columns=None):
    """The rows of part files ``paths`` with ``lo <= index < hi`` (None: no bound), sorted by
    index, as one ``pyarrow.Table`` (read through ``pyarrow.dataset``)."""
    import pyarrow.dataset as ds

    fmt_obj = ("parquet" if fmt == "parquet"
               else ds.CsvFileFormat(convert_options=_csv_convert(schema)))
    data = ds.dataset([str(p) for p in paths], schema=schema, format=fmt_obj)
    flt = None
    if lo is not None:
        flt = ds.field("index") >= lo
    if hi is not None:
        flt = (ds.field("index") < hi) if flt is None else flt & (ds.field("index") < hi)
    return data.to_table(columns=columns, filter=flt).sort_by("index")


# ----------------------------------------------------------------------------- the part manifest


@dataclass(frozen=True)
class PartRecord:
    """One line of the part manifest: ``file`` (relative to the sweep directory), ``sha256``
    and ``bytes`` of its contents, ``rows`` and the ``first`` / ``last`` index it holds (every
    row's index lies in ``[first, last]``, sorted, no duplicates)."""

    file: str
    sha256: str
    bytes: int
    rows: int
    first: int
    last: int

    def line(self) -> str:
        doc = asdict(self)
        body = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        doc["check"] = hashlib.sha256(body.encode()).hexdigest()[:16]
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    @classmethod
    def parse(cls, line: str) -> PartRecord | None:
        """A record from a manifest line, or None if the line is torn or damaged."""
        try:
            doc = json.loads(line)
            check = doc.pop("check")
            body = json.dumps(doc, sort_keys=True, separators=(",", ":"))
            if hashlib.sha256(body.encode()).hexdigest()[:16] != check:
                return None
            rec = cls(**doc)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        ints = (rec.bytes, rec.rows, rec.first, rec.last)
        if not (isinstance(rec.file, str) and isinstance(rec.sha256, str)
                and all(isinstance(v, int) and v >= 0 for v in ints)):
            return None
        return rec


class Ledger:
    """The append-only part manifest ``parts.jsonl``: the last valid record of a file wins."""

    def __init__(self, path: Path, out: Path):
        self.path = path
        self.out = out

    def read(self) -> tuple[dict, int]:
        """(file -> :class:`PartRecord`, number of lines): a torn or damaged line is no
        record."""
        if not regular_or_absent(self.path, self.out):
            return {}, 0
        recs, n = {}, 0
        with open(self.path, "rb") as fh:
            for raw in fh:
                n += 1
                rec = PartRecord.parse(raw.decode("utf-8", "replace"))
                if rec is not None:
                    recs[rec.file] = rec
        return recs, n

    def append(self, rec: PartRecord) -> None:
        """Append a record and fsync: after this the record survives a crash."""
        regular_or_absent(self.path, self.out)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            data = (rec.line() + "\n").encode()
            st = os.fstat(fd)
            if st.st_size:  # a torn last line (a crash mid-append) must not swallow this one
                with open(self.path, "rb") as fh:
                    fh.seek(st.st_size - 1)
                    if fh.read(1) != b"\n":
                        data = b"\n" + data
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def rewrite(self, recs) -> None:
        """Replace the manifest by exactly ``recs`` (atomically)."""
        text = "".join(r.line() + "\n" for r in sorted(recs, key=lambda r: r.file))
        write_bytes_atomic(self.path, text.encode(), self.out)


def index_runs(idx: np.ndarray) -> list[tuple[int, int]]:
    """Sorted unique indices (k,) -> their runs of consecutive values as ``[start, stop)``."""
    if idx.size == 0:
        return []
    cut = np.flatnonzero(np.diff(idx) != 1) + 1
    starts = np.concatenate([[0], cut])
    stops = np.concatenate([cut, [idx.size]])
    return [(int(idx[a]), int(idx[b - 1]) + 1) for a, b in zip(starts, stops)]


def gaps(runs: list[tuple[int, int]], n: int) -> list[tuple[int, int]]:
    """The complement of disjoint sorted ``[start, stop)`` runs in ``[0, n)``."""
    out, at = [], 0
    for a, b in runs:
        if a > at:
            out.append((at, a))
        at = max(at, b)
    if at < n:
        out.append((at, n))
    return out


def batches_of(todo: list[tuple[int, int]], size: int):
    """Yield index arrays of ``size`` (the last may be shorter) that cover the ``[start,
    stop)`` ranges ``todo`` in order; a batch may span several ranges."""
    buf, have = [], 0
    for a, b in todo:
        while a < b:
            take = min(b - a, size - have)
            buf.append(np.arange(a, a + take, dtype=np.int64))
            have += take
            a += take
            if have == size:
                yield np.concatenate(buf) if len(buf) > 1 else buf[0]
                buf, have = [], 0
    if buf:
        yield np.concatenate(buf) if len(buf) > 1 else buf[0]
