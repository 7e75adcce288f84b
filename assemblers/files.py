"""Safe file input and output: the one home for reading user files and writing results.

Reading: only regular files are read (a FIFO, ``/dev/zero`` or a directory fails at once instead
of blocking or reading forever), size-capped, decoded as UTF-8, and JSON documents have a
nesting-depth limit.  Writing: a result goes to a temporary file in the destination's folder,
is flushed to disk and renamed into place, so a reader never sees half a file and a failure
leaves the old file (or nothing) behind; and nothing but a regular file is ever replaced (not a
device such as ``/dev/full``, a FIFO, a socket or a directory).

Every problem raises :class:`FileError` (an :class:`~assemblers.errors.InputError`) naming the
path and what is wrong.  Standard library only: the CLI's fast paths import this module.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError

#: Largest config file read (TOML).  Configs are a few kB; the cap makes a wrong path fail fast.
MAX_CONFIG_BYTES = 1 << 20
#: Largest JSON or CSV input read (trajectories, target lists): 256 MiB, about 200 000 steps of
#: a 4-platform trajectory with targets.
MAX_DATA_BYTES = 256 << 20
#: Deepest nesting accepted in a JSON or TOML document (ours need 4 or 5 levels).
MAX_DEPTH = 32


class FileError(InputError):
    """A file that cannot be read or written as asked: ``path`` and ``problem``."""

    def __init__(self, path, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _strerror(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


# ----------------------------------------------------------------------------------- reading


def read_bytes(path, max_bytes: int = MAX_DATA_BYTES) -> bytes:
    """The contents of the regular file ``path``, at most ``max_bytes`` long.

    Opened non-blocking, so a FIFO without a writer cannot hang the caller; anything but a
    regular file (FIFO, device, directory, socket) is refused before a byte is read.
    Raises :class:`FileError`.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileError(path, "no such file") from None
    except OSError as exc:
        raise FileError(path, f"cannot read ({_strerror(exc)})") from None
    except ValueError as exc:  # an embedded NUL byte in the name
        raise FileError(repr(str(path)), f"not a valid path ({exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileError(path, f"is {_kind(st.st_mode)}, not a regular file")
        if st.st_size > max_bytes:
            raise FileError(path, f"is {st.st_size} bytes; the limit is {max_bytes}")
        chunks, size = [], 0
        while True:  # the size can change under us: never read past the cap
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise FileError(path, f"is larger than the limit of {max_bytes} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise FileError(path, f"cannot read ({_strerror(exc)})") from None
    finally:
        os.close(fd)


def read_text(path, max_bytes: int = MAX_DATA_BYTES) -> str:
    """:func:`read_bytes` decoded as UTF-8 (a byte-order mark is dropped).  Raises FileError."""
    data = read_bytes(path, max_bytes)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileError(path, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                        f"{exc.start})") from None


def nesting_depth(obj, limit: int = MAX_DEPTH) -> int:
    """Depth of nested lists/dicts in ``obj`` (a number or string is depth 0), counted without
    recursion; stops counting at ``limit + 1``."""
    deepest, stack = 0, [(obj, 0)]
    while stack:
        x, d = stack.pop()
        if isinstance(x, dict):
            x = list(x.values())
        elif not isinstance(x, list):
            continue
        d += 1
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        stack.extend((y, d) for y in x if isinstance(y, (list, dict)))
    return deepest


def check_depth(obj, path, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`FileError` when ``obj`` nests deeper than ``limit``."""
    if nesting_depth(obj, limit) > limit:
        raise FileError(path, f"nested deeper than {limit} levels")


def _parse_int(text: str):
    # Python refuses int() of more than 4300 digits with ValueError; anything beyond float range
    # becomes inf here, which the array checks reject as non-finite.
    return int(text) if len(text) <= 18 else float(text)


def parse_json(text: str, path, *, max_depth: int = MAX_DEPTH):
    """Parse a JSON document read from ``path``: NaN/Infinity literals and huge integers become
    floats (rejected by the callers' finiteness checks), nesting is limited.  Raises FileError."""
    try:
        doc = json.loads(text, parse_int=_parse_int, parse_constant=lambda c: math.nan)
    except json.JSONDecodeError as exc:
        raise FileError(path, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise FileError(path, f"nested deeper than {max_depth} levels") from None
    check_depth(doc, path, max_depth)
    return doc


def read_json(path, max_bytes: int = MAX_DATA_BYTES, *, max_depth: int = MAX_DEPTH):
    """Read and parse the JSON file ``path`` (:func:`read_text` + :func:`parse_json`)."""
    return parse_json(read_text(path, max_bytes), path, max_depth=max_depth)


# ----------------------------------------------------------------------------------- JSON out


def jsonable(obj):
    """``obj`` with NumPy scalars and arrays turned into Python numbers and lists, tuples into
    lists, and every non-finite float into ``None`` (JSON ``null``): strict JSON has no NaN or
    Infinity, and a script reading our output must not meet them."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    tolist = getattr(obj, "tolist", None)  # NumPy arrays and scalars, without importing NumPy
    if tolist is not None:
        return jsonable(tolist())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def dumps_json(doc, indent: int | None = 2) -> str:
    """Strict JSON text of ``doc`` (see :func:`jsonable`; non-finite numbers become null)."""
    return json.dumps(jsonable(doc), indent=indent, allow_nan=False)


# ----------------------------------------------------------------------------------- writing


def output_path(path, what: str = "") -> Path:
    """Check that ``path`` may be written as a file and return the path to write.

    A symbolic link is followed (its target is what gets written).  Refused: an empty path,
    an existing path that is not a regular file (a device such as ``/dev/full``, a FIFO, a
    socket, a directory), a parent that exists but is not a directory, and a parent folder that
    exists but is not writable.  A missing parent folder is fine (the writers create it).
    Nothing is created.  Raises :class:`FileError`; ``what`` (e.g. ``"--out"``) prefixes the
    path in the message.
    """
    name = f"{what} {path}" if what else str(path)
    if not str(path).strip():
        raise FileError(what or "output", "empty path")
    try:
        p = Path(path)
        if p.is_symlink():
            p = p.resolve()
        try:
            st = p.stat()
        except (FileNotFoundError, NotADirectoryError):  # the parent check below says why
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise FileError(name, f"is {_kind(st.st_mode)}; only a regular file is ever replaced")
        parent = _existing_ancestor(p.parent)
        if not parent.is_dir():
            raise FileError(name, f"{parent} is not a directory")
        if parent == p.parent and not os.access(parent, os.W_OK | os.X_OK):
            raise FileError(name, f"cannot write into {parent} (permission denied)")
    except FileError:
        raise
    except OSError as exc:
        raise FileError(name, f"cannot write ({_strerror(exc)})") from None
    except ValueError as exc:  # an embedded NUL byte
        raise FileError(repr(str(path)), f"not a valid path ({exc})") from None
    return p


def output_dir(path, what: str = "") -> Path:
    """Check that ``path`` is a directory or can be created as one (nothing is created).
    Raises :class:`FileError`."""
    name = f"{what} {path}" if what else str(path)
    if not str(path).strip():
        raise FileError(what or "output", "empty path")
    try:
        p = Path(path)
        if p.exists() and not p.is_dir():
            raise FileError(name, "exists and is not a directory")
        parent = _existing_ancestor(p)
        if not parent.is_dir():
            raise FileError(name, f"{parent} is not a directory")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise FileError(name, f"cannot write into {parent} (permission denied)")
    except FileError:
        raise
    except OSError as exc:
        raise FileError(name, f"cannot write ({_strerror(exc)})") from None
    except ValueError as exc:
        raise FileError(repr(str(path)), f"not a valid path ({exc})") from None
    return p


def _existing_ancestor(p: Path) -> Path:
    p = Path(os.path.abspath(p))
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path, what: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same folder, same suffix, so format-sniffing
    writers such as matplotlib, Pillow or pyarrow still work); when the block ends without an
    exception the file is fsynced and renamed onto ``path``; otherwise it is removed and
    ``path`` is left as it was.  The checks of :func:`output_path` run first and again just
    before the rename.  A missing parent folder is created.  OSErrors become FileError."""
    target = output_path(path, what)
    name = f"{what} {path}" if what else str(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{target.suffix}",
                                   dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise FileError(name, f"cannot write ({_strerror(exc)})") from None
    tmp = Path(tmp)
    try:
        yield tmp
        output_path(target, what)  # nothing else took the name meanwhile
        mode = 0o666 & ~_umask()  # mkstemp makes the file private; give it a normal mode
        with contextlib.suppress(FileNotFoundError):
            mode = stat.S_IMODE(target.stat().st_mode)  # keep a replaced file's mode
        os.chmod(tmp, mode)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        tmp = None
        _fsync_dir(target.parent)
    except OSError as exc:
        raise FileError(name, f"cannot write ({_strerror(exc)})") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()


def write_bytes(path, data: bytes, what: str = "") -> Path:
    """Write ``data`` to ``path`` atomically (:func:`atomic_path`); returns the path written."""
    with atomic_path(path, what) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return Path(path)


def write_text(path, text: str, what: str = "") -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path written."""
    return write_bytes(path, text.encode("utf-8"), what)


def write_json(path, doc, what: str = "", indent: int | None = 1) -> Path:
    """Write ``doc`` as strict JSON (see :func:`jsonable`) plus a newline, atomically."""
    return write_text(path, dumps_json(doc, indent) + "\n", what)


@contextlib.contextmanager
def staged_dir(out_dir, what: str = "") -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``out_dir``; write a set of files into it.  When
    the block ends without an exception every file is moved into ``out_dir`` (created if
    missing; files of the same names are replaced, others left alone); on an exception, or when
    a destination name is taken by something that is not a regular file, nothing is moved and
    the temporary folder is removed.  So a set of files (a report) appears whole or not at all."""
    out = output_dir(out_dir, what)
    name = f"{what} {out_dir}" if what else str(out_dir)
    try:
        parent = Path(os.path.abspath(out)).parent
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
    except OSError as exc:
        raise FileError(name, f"cannot write ({_strerror(exc)})") from None
    try:
        yield tmp
        names = sorted(p.name for p in tmp.iterdir())
        for n in names:
            if not (tmp / n).is_file():
                raise FileError(name, f"{n}: only files can be staged")
        mode = 0o666 & ~_umask()
        for n in names:
            os.chmod(tmp / n, mode)
            with open(tmp / n, "rb+") as fh:
                os.fsync(fh.fileno())
        if not out.exists():
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private
            os.replace(tmp, out)
            tmp = None
        else:
            output_dir(out, what)
            for n in names:  # check every destination before moving any
                output_path(out / n, what)
            for n in names:
                os.replace(tmp / n, out / n)
        _fsync_dir(out)
    except OSError as exc:
        raise FileError(name, f"cannot write ({_strerror(exc)})") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
