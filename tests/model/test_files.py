"""assemblers.files: the one home for safe reads and atomic writes."""

import errno
import json
import math
import os
import stat

import numpy as np
import pytest

from assemblers import files
from assemblers.files import FileError


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_read_refuses_what_is_not_a_regular_file(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # no writer: a blocking open would hang here
    for path, kind in ((fifo, r"a FIFO \(named pipe\)"), ("/dev/zero", "a character device"),
                       (tmp_path, "a directory")):
        with pytest.raises(FileError, match=f"is {kind}, not a regular file"):
            files.read_bytes(path)
    with pytest.raises(FileError, match="no such file"):
        files.read_bytes(tmp_path / "missing")


def test_read_caps_size_and_decodes_utf8(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"x" * 101)
    with pytest.raises(FileError, match="101 bytes; the limit is 100"):
        files.read_bytes(p, max_bytes=100)
    assert files.read_bytes(p, max_bytes=101) == b"x" * 101
    p.write_bytes("\ufeffgrüß".encode())
    assert files.read_text(p) == "grüß"
    p.write_bytes(b"ok\xc3(")
    with pytest.raises(FileError, match=r"not UTF-8 text \(byte 0xc3 at offset 2\)"):
        files.read_text(p)


def test_json_depth_and_numbers(tmp_path):
    assert files.nesting_depth(5) == 0 and files.nesting_depth([1, {"a": [2]}]) == 3
    assert files.nesting_depth([[[[[]]]]], limit=2) == 3  # stops counting past the limit
    with pytest.raises(FileError, match="nested deeper than 32 levels"):
        files.parse_json("[" * 33 + "]" * 33, "x.json")
    with pytest.raises(FileError, match="nested deeper than 32 levels"):
        files.parse_json("[" * 100_000 + "]" * 100_000, "x.json")  # past the recursion limit
    doc = files.parse_json('[NaN, 1e999, 12, ' + "9" * 5000 + "]", "x.json")
    assert math.isnan(doc[0]) and doc[1] == math.inf and doc[2] == 12 and doc[3] == math.inf
    with pytest.raises(FileError, match=r"x.json: not valid JSON \(Expecting value at line 1\)"):
        files.parse_json("[", "x.json")


def test_jsonable_writes_strict_json():
    doc = {"a": np.float64("nan"), "b": np.array([1.0, np.inf]), "c": (1, np.int64(2)),
           "d": [-math.inf, 0.5], "e": None, "f": True}
    out = json.loads(files.dumps_json(doc))
    assert out == {"a": None, "b": [1.0, None], "c": [1, 2], "d": [None, 0.5], "e": None,
                   "f": True}
    with pytest.raises(TypeError):
        files.jsonable({"x": object()})


def test_output_path_refuses_devices_fifos_and_directories(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in ("/dev/full", "/dev/null", fifo, tmp_path):
        with pytest.raises(FileError, match="only a regular file is ever replaced"):
            files.output_path(path, "--out")
        with pytest.raises(FileError):
            files.write_text(path, "x")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode) and stat.S_ISFIFO(os.stat(fifo).st_mode)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(FileError, match="afile is not a directory"):
        files.output_path(tmp_path / "afile" / "out.json")
    with pytest.raises(FileError, match="empty path"):
        files.output_path("", "--out")


def test_trajectory_writer_never_replaces_a_device():
    import assemblers as A

    tr = A.Trajectory(t=np.array([0.0]), Q=np.zeros((1, 6)), legs=np.full((1, 1, 6), 0.25))
    with pytest.raises(FileError, match="/dev/full: is a character device"):
        A.save_trajectory("/dev/full", tr)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    out = tmp_path / "sub" / "r.json"  # a missing folder is created
    files.write_json(out, {"v": 1})
    assert json.loads(out.read_text()) == {"v": 1}
    os.chmod(out, 0o640)
    files.write_json(out, {"v": 2})
    assert json.loads(out.read_text()) == {"v": 2} and stat.S_IMODE(out.stat().st_mode) == 0o640
    with pytest.raises(RuntimeError), files.atomic_path(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("the writer died")
    assert json.loads(out.read_text()) == {"v": 2} and _listing(out.parent) == ["r.json"]


def test_disk_full_leaves_the_old_file(tmp_path, monkeypatch):
    out = tmp_path / "r.txt"
    out.write_text("old")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(FileError, match="cannot write .No space left on device"):
        files.write_text(out, "new")
    assert out.read_text() == "old" and _listing(tmp_path) == ["r.txt"]


def test_symlink_is_followed(tmp_path):
    target = tmp_path / "real.txt"
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    files.write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"


def test_staged_dir_moves_all_files_or_none(tmp_path):
    out = tmp_path / "rep"
    with files.staged_dir(out) as tmp:
        (tmp / "a.txt").write_text("1")
        (tmp / "b.txt").write_text("2")
    assert _listing(out) == ["a.txt", "b.txt"] and _listing(tmp_path) == ["rep"]
    (out / "b.txt").unlink()
    (out / "b.txt").mkdir()  # a destination that must not be replaced
    with pytest.raises(FileError, match="only a regular file"), files.staged_dir(out) as tmp:
        (tmp / "a.txt").write_text("new")
        (tmp / "b.txt").write_text("new")
    assert (out / "a.txt").read_text() == "1" and _listing(tmp_path) == ["rep"]
    with pytest.raises(FileError, match="exists and is not a directory"):
        files.output_dir(out / "a.txt")
