"""The stream journal: JSON lines, one record per frame and event (``docs/hardware.md``).

Rules, in order of importance:

1. **Losing the journal never stops the STOP.**  :class:`Journal` never raises once open: a
   write, flush or fsync error is kept in :attr:`Journal.error` (the first one; later records
   are counted in :attr:`Journal.lost`), the streamer ends the stream as a fault ("journal")
   and stops every platform, and the summary and stderr say what was lost.
2. **An existing journal is never destroyed.**  A path is opened for appending (created if
   missing); each session starts with its own ``"session"`` record, and
   :func:`read_journal` can return one session (``session=-1``: the last).  Only regular
   files and character devices (``/dev/null``) are accepted.
3. **fsync policy.**  Records are flushed to the operating system after every tick and every
   event (a host crash loses at most the current tick's lines); ``os.fsync`` is called after
   the session record, the plan, every fault, the stops and the summary, and on close, so the
   records that say what happened survive a power loss.  Ticks are not fsynced one by one: at
   1 kHz that would put a disk's latency (milliseconds) into every tick.
"""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

from assemblers.errors import InputError


class JournalError(InputError):
    """The journal path cannot be opened or written (nothing was sent)."""


class Journal:
    """JSON-lines journal.  ``target``: a path (appended to, never truncated), an open text or
    binary file object with ``write`` (e.g. an injected writer in a test), or None (no
    journal).  Records are buffered until :meth:`flush`."""

    def __init__(self, target: str | os.PathLike | io.IOBase | None):
        self.path: str | None = None
        self._fh = None
        self._own = False
        self._binary = False
        self._lines: list[str] = []
        self.error: str | None = None
        self.lost = 0
        if target is None:
            return
        if hasattr(target, "write"):
            self._fh = target
            self.path = str(getattr(target, "name", "<writer>"))
            self._binary = isinstance(target, (io.RawIOBase, io.BufferedIOBase))
            return
        self.path = str(target)
        self._fh = _open_append(Path(self.path))
        self._own = True

    @property
    def enabled(self) -> bool:
        return self._fh is not None

    @property
    def ok(self) -> bool:
        return self.error is None

    def write(self, rec: dict) -> None:
        if self._fh is not None:
            try:
                self._lines.append(json.dumps(rec, separators=(",", ":"), default=str))
            except (TypeError, ValueError) as exc:  # a record that cannot be encoded
                self._lines.append(json.dumps({"ev": rec.get("ev"), "unencodable": str(exc)}))

    def write_line(self, line: str) -> None:
        """Append one already-encoded JSON object (the streaming hot path)."""
        if self._fh is not None:
            self._lines.append(line)

    def flush(self) -> bool:
        """Write the buffered records; False (and :attr:`error` set) if that failed."""
        if self._fh is None or not self._lines:
            return self.error is None
        if self.error is not None:
            self.lost += len(self._lines)
            self._lines.clear()
            return False
        text = "\n".join(self._lines) + "\n"
        n = len(self._lines)
        self._lines.clear()
        try:
            self._fh.write(text.encode() if self._binary else text)
            if hasattr(self._fh, "flush"):
                self._fh.flush()
        except Exception as exc:  # noqa: BLE001 - OSError (ENOSPC, EIO, EFBIG...) or a broken writer
            self._fail(exc, n)
            return False
        return True

    def sync(self) -> bool:
        """:meth:`flush`, then ``os.fsync`` where the target has a descriptor."""
        if not self.flush() or self._fh is None:
            return self.error is None
        try:
            fd = self._fh.fileno()
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return True
        try:
            os.fsync(fd)
        except OSError as exc:
            if exc.errno not in (22, 95):  # EINVAL/EOPNOTSUPP: a device that cannot sync
                self._fail(exc, 0)
                return False
        return True

    def _fail(self, exc: BaseException, n: int) -> None:
        self.error = f"{type(exc).__name__}: {exc}"
        self.lost += n

    def close(self) -> None:
        if self._fh is None:
            return
        self.sync()
        if self._own:
            try:
                self._fh.close()
            except OSError as exc:
                if self.error is None:
                    self._fail(exc, 0)
        self._fh = None


def _open_append(path: Path):
    """Open ``path`` for appending text without ever truncating it; :class:`JournalError` with
    one clear line if that is not possible."""
    try:
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC,
                     0o644)
    except OSError as exc:
        raise JournalError(f"journal {str(path)!r}: cannot open for writing: "
                           f"{exc.strerror or exc} (nothing was sent)") from None
    try:
        st = os.fstat(fd)
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISCHR(st.st_mode)):
            raise JournalError(f"journal {str(path)!r}: not a regular file (nothing was sent)")
        os.set_blocking(fd, True)
        if stat.S_ISREG(st.st_mode) and st.st_size > 0:
            # a session cut short may have left a partial line: start on a fresh one
            with open(path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    os.write(fd, b"\n")
        return os.fdopen(fd, "w", encoding="utf-8", buffering=1 << 16)
    except JournalError:
        os.close(fd)
        raise
    except OSError as exc:
        os.close(fd)
        raise JournalError(f"journal {str(path)!r}: cannot write: {exc.strerror or exc} "
                           "(nothing was sent)") from None


def read_journal(path: str | os.PathLike, session: int | None = None, *,
                 strict: bool = True) -> list[dict]:
    """The journal's records, in order: all of them, or those of one ``session`` (0 the first,
    -1 the last; a session starts at its ``"session"`` record).  A line that is not JSON raises
    ``ValueError`` naming it (``strict=False``: skipped, e.g. the last line of a session cut
    short by a crash)."""
    records = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                if strict:
                    raise ValueError(f"{path}: line {n} is not a JSON record (a session cut "
                                     "short?); read_journal(..., strict=False) skips it") from None
                continue
            records.append(rec)
    if session is None:
        return records
    starts = [i for i, r in enumerate(records) if r.get("ev") == "session"]
    if not starts:
        return records if session in (0, -1) else []
    try:
        a = starts[session]
    except IndexError:
        raise ValueError(f"{path}: has {len(starts)} session(s), no session {session}") from None
    i = starts.index(a)
    b = starts[i + 1] if i + 1 < len(starts) else len(records)
    return records[a:b]
