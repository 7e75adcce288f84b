"""The output directory of one sweep: manifest, lock, verified part files, merged results, run
log (layout in docs/scaling.md; integrity model in :mod:`sims.sweeps.storage`)."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path

import numpy as np

from .spec import FORMATS, SweepError, SweepFailed, arrow_schema, columns, schema_of
from .storage import (
    LEDGER,
    STORAGE,
    Ledger,
    PartRecord,
    gaps,
    index_runs,
    part_first,
    part_name,
    read_parts,
    read_table,
    regular_or_absent,
    sha256_file,
    to_table,
    write_bytes_atomic,
    write_table_atomic,
)

WINDOW_ROWS = 1 << 16  # rows merged at a time: memory stays flat whatever the sweep's size
_OWN_FILES = ("sweep.json", "sweep.lock", LEDGER, "runs.jsonl", "summary.md", "summary.json")
_OWN_DIRS = ("parts", "maps", "corrupt")


def read_manifest(d: Path) -> dict:
    """The parsed ``sweep.json`` of directory ``d`` (SweepError if missing or unreadable)."""
    p = d / "sweep.json"
    if not regular_or_absent(p, d):
        raise SweepError(f"--out {d}: no sweep.json (not a sweep directory)")
    try:
        doc = json.loads(p.read_text())
        if not isinstance(doc, dict) or not isinstance(doc.get("spec"), dict):
            raise ValueError("not a sweep manifest")
        return doc
    except (OSError, ValueError) as exc:
        raise SweepError(f"--out {d}: unreadable sweep.json ({exc}); use a new --out") from None


class SweepOutput:
    """The output directory of one sweep.

    After :meth:`open`: ``verified`` (part file name -> :class:`PartRecord`) are the parts whose
    bytes and indices match their records; ``done`` the ``[start, stop)`` index runs they hold
    (disjoint, sorted); ``repaired`` (file, reason) of the parts moved to ``corrupt/`` or found
    missing, whose targets are pending again.
    """

    def __init__(self, out, spec, fmt: str = "parquet"):
        if fmt not in FORMATS:
            raise SweepError(f"--format: one of {', '.join(FORMATS)}, got {fmt!r}")
        self.dir = Path(out)
        self.spec = spec
        self.fmt = fmt
        self.parts = self.dir / "parts"
        self.manifest = self.dir / "sweep.json"
        self.results = self.dir / f"results.{fmt}"
        self.runs = self.dir / "runs.jsonl"
        self.ledger = Ledger(self.dir / LEDGER, self.dir)
        self.schema = arrow_schema(spec, fmt)
        self.verified: dict[str, PartRecord] = {}
        self.done: list[tuple[int, int]] = []
        self.repaired: list[tuple[str, str]] = []
        self._records: dict[str, PartRecord] = {}
        self._lock = None

    # -------------------------------------------------------------------- checks, open, lock

    def manifest_doc(self) -> dict:
        return {"spec": self.spec.to_dict(), "format": self.fmt, "storage": dict(STORAGE),
                "columns": {k: {"type": t, "meaning": m} for k, (t, m) in columns(self.spec).items()}}

    def check(self) -> None:
        """Fail (SweepError naming ``--out``) if the directory cannot hold this sweep: not a
        folder, not writable, another sweep's manifest, or one of the sweep's own names taken
        by something that is not a regular file (or folder).  Writes nothing."""
        d = self.dir
        if d.exists() and not d.is_dir():
            raise SweepError(f"--out {d}: exists and is not a directory")
        anc = d
        while not anc.exists():
            if anc.is_symlink():  # a dangling link: following it would write elsewhere
                raise SweepError(f"--out {d}: {anc} is a dangling symbolic link")
            anc = anc.parent
        if not anc.is_dir():
            raise SweepError(f"--out {d}: {anc} is not a directory")
        if not os.access(anc, os.W_OK | os.X_OK):
            raise SweepError(f"--out {d}: {anc} is not writable")
        if not d.exists():
            return
        for name in (*_OWN_FILES, "results.parquet", "results.csv"):
            regular_or_absent(d / name, d)
        for name in _OWN_DIRS:
            p = d / name
            if (p.exists() or p.is_symlink()) and not p.is_dir():
                raise SweepError(f"--out {d}: {name} exists and is not a directory; move it away")
        if self.manifest.exists():
            self._compare(read_manifest(d))
        elif any(p.name != "sweep.lock" for p in d.iterdir()):
            raise SweepError(f"--out {d}: not empty and holds no sweep (sweep.json); use a new "
                             f"or empty directory")
        if self.parts.is_dir():
            for p in self.parts.iterdir():
                if part_first(p.name) is not None:
                    regular_or_absent(p, d)

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
        second concurrent sweep, drop temporary files of an interrupted run and verify every
        part (:meth:`scan`)."""
        self.check()
        created = []
        p = self.dir
        while not p.exists():
            created.append(p)
            p = p.parent
        legacy = False
        try:
            self.parts.mkdir(parents=True, exist_ok=True)
            self._acquire_lock()
            if self.manifest.exists():
                legacy = "storage" not in read_manifest(self.dir)
            else:
                write_bytes_atomic(self.manifest,
                                   (json.dumps(self.manifest_doc(), indent=2) + "\n").encode(),
                                   self.dir)
        except OSError as exc:
            self.close()
            for c in [self.parts, *created]:
                with contextlib.suppress(OSError):
                    (c / "sweep.lock").unlink(missing_ok=True)
                    (c / "sweep.json").unlink(missing_ok=True)
                    c.rmdir()
            raise SweepError(f"--out {self.dir}: cannot write ({exc.strerror or exc})") from None
        for tmp in [*self.parts.glob(".tmp-*"), *self.dir.glob(".tmp-*")]:
            with contextlib.suppress(OSError):
                if stat.S_ISREG(os.lstat(tmp).st_mode):
                    tmp.unlink()
        self.scan(adopt=legacy)
        if legacy:  # parts written before records existed are recorded now; say so in the manifest
            old = read_manifest(self.dir)
            old["storage"] = dict(STORAGE)
            write_bytes_atomic(self.manifest, (json.dumps(old, indent=2) + "\n").encode(), self.dir)

    def _acquire_lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # not on POSIX: no lock
            return
        path = self.dir / "sweep.lock"
        regular_or_absent(path, self.dir)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
                     | os.O_NONBLOCK, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise SweepError(f"--out {self.dir}: another sweep is writing there") from None
        self._lock = fd

    def close(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    # -------------------------------------------------------------------- verification

    def part_files(self) -> list[Path]:
        return sorted(p for p in self.parts.glob(f"part-*.{self.fmt}") if part_first(p.name)
                      is not None)

    def _verify(self, path: Path, rec: PartRecord | None, adopt: bool):
        """The sorted indices (k,) of a part if it passes its checks, else the reason."""
        try:
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):
                return "not a regular file"
            if rec is None and not adopt:
                return "no record in the part manifest"
            if rec is not None:
                if st.st_size != rec.bytes:
                    return f"size {st.st_size} bytes, recorded {rec.bytes}"
                if sha256_file(path)[0] != rec.sha256:
                    return "checksum mismatch"
            if rec is None and self.fmt == "csv" and st.st_size:
                with open(path, "rb") as fh:  # a part cut mid-line: the writer ends every row
                    fh.seek(st.st_size - 1)
                    if fh.read(1) != b"\n":
                        return "cut short (no final newline)"
            # a part that matches its record holds the bytes this sweep wrote: its index column
            # is enough; an adopted one is read in full (types, columns)
            table = read_table(path, self.schema, ["index"] if rec else None)
            if rec is None and table.schema != self.schema:
                return "columns differ from the sweep's"
            idx = np.asarray(table.column("index").to_numpy(zero_copy_only=False), dtype=np.int64)
        except Exception as exc:  # noqa: BLE001 - any damage: the part is re-solved
            return f"unreadable ({type(exc).__name__})"
        first = part_first(path.name)
        if idx.size == 0 or idx[0] != first or (np.diff(idx) <= 0).any():
            return "indices do not match the file name or are not sorted"
        if idx[-1] >= self.spec.n_total:
            return "indices outside this sweep"
        if rec is not None and (idx.size != rec.rows or idx[0] != rec.first
                                or idx[-1] != rec.last):
            return "indices differ from the record"
        return idx

    def scan(self, adopt: bool = False, readonly: bool = False) -> None:
        """Verify every part against the part manifest (with ``adopt``: record parts that have
        no record after structural checks; a sweep written before records existed).  Parts
        that fail, or that overlap another part, are moved to ``corrupt/`` (``readonly``: only
        left out) and their targets are pending again.  The manifest is then rewritten to the
        records of the verified parts (and of the results file) if it held anything else."""
        recs, n_lines = self.ledger.read()
        self._records = dict(recs)
        self.verified, self.repaired = {}, []
        runs = []  # (start, stop, file name)
        on_disk = {p.name: f"parts/{p.name}" for p in self.part_files()}
        for name, key in on_disk.items():
            rec = recs.get(key)
            got = self._verify(self.parts / name, rec, adopt)
            if isinstance(got, str):
                self._reject(name, got, readonly)
                continue
            if rec is None:  # adopted
                digest, size = sha256_file(self.parts / name)
                rec = PartRecord(key, digest, size, int(got.size), int(got[0]), int(got[-1]))
            self.verified[name] = rec
            runs += [(a, b, name) for a, b in index_runs(got)]
        runs.sort()
        clash = set()
        stop, owner = -1, None
        for a, b, name in runs:  # no index in two parts (a copied or re-written part)
            if a < stop and name != owner:
                clash |= {name, owner}
            if b > stop:
                stop, owner = b, name
        for name in sorted(clash):
            self.verified.pop(name, None)
            self._reject(name, "holds indices that another part holds too", readonly)
        self.repaired += [(k, "missing") for k in sorted(set(recs) - set(on_disk.values()))
                          if k.startswith("parts/")]
        self.done = []
        for a, b, name in runs:
            if name in self.verified:
                if self.done and self.done[-1][1] == a:
                    self.done[-1] = (self.done[-1][0], b)
                else:
                    self.done.append((a, b))
        keep = {r.file: r for r in self.verified.values()}
        if self.results.name in recs and regular_or_absent(self.results, self.dir):
            keep[self.results.name] = recs[self.results.name]
        self._records = keep
        if not readonly and (n_lines != len(keep) or keep.keys() != recs.keys()):
            self.ledger.rewrite(keep.values())

    def _reject(self, name: str, why: str, readonly: bool) -> None:
        self.repaired.append((f"parts/{name}", why))
        if readonly:
            return
        bad = self.dir / "corrupt"
        bad.mkdir(exist_ok=True)
        dest, k = bad / name, 1
        while dest.exists() or dest.is_symlink():
            dest, k = bad / f"{name}.{k}", k + 1
        os.replace(self.parts / name, dest)

    @property
    def n_done(self) -> int:
        return sum(b - a for a, b in self.done)

    def todo(self) -> list[tuple[int, int]]:
        """The ``[start, stop)`` index ranges not held by a verified part."""
        return gaps(self.done, self.spec.n_total)

    def results_ok(self) -> bool:
        """The merged results file exists and matches its record."""
        rec = self._records.get(self.results.name)
        if rec is None or not regular_or_absent(self.results, self.dir):
            return False
        return (os.lstat(self.results).st_size == rec.bytes and rec.rows == self.spec.n_total
                and sha256_file(self.results)[0] == rec.sha256)

    # -------------------------------------------------------------------- writing

    def write_part(self, cols: dict) -> PartRecord:
        """Write a finished task's rows (sorted by index) as a part file with its record."""
        idx = cols["index"]
        name = part_name(idx[0], self.fmt)
        path = self.parts / name
        if path.exists() or path.is_symlink():  # a pending target is in no file (see scan)
            raise SweepError(f"--out {self.dir}: {name} exists already")
        recs = []

        def record(digest, size):  # durable bytes -> their record -> the final name
            recs.append(PartRecord(f"parts/{name}", digest, size, len(idx), int(idx[0]),
                                   int(idx[-1])))
            self.ledger.append(recs[0])

        write_table_atomic(to_table(self.spec, cols, self.fmt), path, self.fmt, self.dir, record)
        self.verified[name] = self._records[recs[0].file] = recs[0]
        return recs[0]

    def merge(self) -> Path:
        """Every verified part, sorted by index, into ``results.<fmt>`` (atomic, then its
        record); reads ``WINDOW_ROWS`` rows at a time.  Each part's checksum is verified again
        first; a part that changed on disk during the run is moved to ``corrupt/`` and the
        merge refused (SweepFailed: rerun)."""
        bad = [n for n, r in self.verified.items() if sha256_file(self.parts / n)[0] != r.sha256]
        for n in bad:
            self.verified.pop(n)
            self._reject(n, "checksum mismatch at merge", False)
        if bad:
            raise SweepFailed(f"{self.dir}: {len(bad)} part(s) changed on disk during the run "
                              f"(moved to corrupt/); rerun to solve their targets again")
        names = sorted(self.verified)
        first = np.array([self.verified[n].first for n in names], dtype=np.int64)
        last = np.array([self.verified[n].last for n in names], dtype=np.int64)
        n_total = self.spec.n_total

        def windows():
            for lo in range(0, n_total, WINDOW_ROWS):
                hi = min(lo + WINDOW_ROWS, n_total)
                sel = np.flatnonzero((first < hi) & (last >= lo))
                t = read_parts([self.parts / names[i] for i in sel], self.schema, self.fmt,
                               lo, hi)
                idx = t.column("index").to_numpy()
                if len(idx) != hi - lo or (idx != np.arange(lo, hi)).any():
                    raise SweepFailed(f"{self.dir}: {len(idx)} rows for indices {lo}..{hi - 1}; "
                                      f"cannot merge")
                yield t

        def record(digest, size):
            rec = PartRecord(self.results.name, digest, size, n_total, 0, n_total - 1)
            self.ledger.append(rec)
            self._records[rec.file] = rec

        write_table_atomic(windows(), self.results, self.fmt, self.dir, record)
        return self.results

    def log_run(self, run) -> None:
        regular_or_absent(self.runs, self.dir)
        with open(self.runs, "a") as fh:
            fh.write(json.dumps(run.to_dict()) + "\n")


def load_results(out):
    """The results of the sweep in directory ``out`` -> ``pyarrow.Table`` sorted by index: the
    merged file of a finished sweep if it matches its record, else the rows of the verified
    parts (an unfinished sweep's rows so far).  Reads only; moves nothing."""
    d = Path(out)
    man = read_manifest(d)
    fmt = man.get("format", "parquet")
    schema = schema_of({k: v["type"] for k, v in man["columns"].items()}, fmt)
    res = d / f"results.{fmt}"
    if "storage" not in man:  # written before part records: no checksums to verify against
        if regular_or_absent(res, d):
            with contextlib.suppress(Exception):
                return read_table(res, schema)
    out_ = _ReadOnly(d, man, fmt, schema)
    out_._records = out_.ledger.read()[0]
    if out_.results_ok():
        return read_table(res, schema)
    out_.scan(adopt="storage" not in man, readonly=True)
    if not out_.verified:
        raise SweepError(f"--out {d}: no results yet")
    return read_parts([out_.parts / n for n in sorted(out_.verified)], schema, fmt)


class _ReadOnly(SweepOutput):
    """A :class:`SweepOutput` built from ``sweep.json`` alone (no spec object), for reading."""

    def __init__(self, d: Path, man: dict, fmt: str, schema):
        self.dir, self.fmt, self.schema = d, fmt, schema
        self.spec = _SpecDoc(man["spec"])
        self.parts = d / "parts"
        self.results = d / f"results.{fmt}"
        self.ledger = Ledger(d / LEDGER, d)
        self.verified, self.done, self.repaired, self._records = {}, [], [], {}


class _SpecDoc:
    def __init__(self, doc: dict):
        self.n_total = int(doc["n_total"])
