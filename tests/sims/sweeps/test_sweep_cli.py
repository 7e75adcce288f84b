"""``assemblers sweep`` with bad paths and files: one line on stderr, exit 2, no traceback,
nothing written, and nothing but a regular file (or the sweep's own folder) ever replaced;
``--json`` stays valid JSON when results hold non-finite numbers."""

import dataclasses
import json
import math
import os
import stat
from pathlib import Path

import pytest
from support import stderr_lines

from assemblers.cli import main
from sims import sweeps as S

BASE = ["sweep", "--config", "single", "--x", "0", "--y", "0", "--z", "0", "--workers", "0",
        "--no-progress", "--no-maps"]


def _bad(capsys, *args, says: str):
    rc = main([*BASE, *args])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert says in err and "Traceback" not in err, err
    assert len(stderr_lines(err.strip())) == 1, err
    return err


@pytest.mark.parametrize("out,says", [
    ("/proc/sweep-never/x", "cannot write"),      # not writable, even for root
    ("/dev/full", "exists and is not a directory"),
    ("/dev/null/x", "/dev/null is not a directory"),
])
def test_unusable_out_paths(capsys, out, says):
    before = os.lstat(out if Path(out).exists() else "/dev/null").st_mode
    _bad(capsys, "--out", out, says=says)
    assert not Path("/proc/sweep-never").exists()
    assert stat.S_ISCHR(os.lstat("/dev/full").st_mode)
    assert os.lstat(out if Path(out).exists() else "/dev/null").st_mode == before


def test_dangling_symlink_out_is_refused(tmp_path, capsys):
    (tmp_path / "link").symlink_to(tmp_path / "nowhere" / "deeper")
    _bad(capsys, "--out", str(tmp_path / "link"), says="dangling symbolic link")
    assert not (tmp_path / "nowhere").exists()


def test_lock_name_taken_by_a_fifo_does_not_hang(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    os.mkfifo(out / "sweep.lock")  # opening it for writing would block forever
    _bad(capsys, "--out", str(out), says="sweep.lock exists and is not a regular file")
    assert stat.S_ISFIFO(os.lstat(out / "sweep.lock").st_mode)
    assert sorted(p.name for p in out.iterdir()) == ["sweep.lock"]


@pytest.fixture()
def finished(tmp_path, capsys):
    out = tmp_path / "done"
    assert main([*BASE, "--out", str(out)]) == 0
    capsys.readouterr()
    return out


@pytest.mark.parametrize("name,make", [
    ("summary.md", os.mkfifo),
    ("summary.json", lambda p: os.symlink("/dev/full", p)),
    ("results.parquet", os.mkdir),
    ("runs.jsonl", os.mkfifo),
    ("parts.jsonl", lambda p: os.symlink("/dev/null", p)),
    ("maps", lambda p: Path(p).write_text("a file where the maps folder goes")),
])
def test_own_names_taken_by_other_things_are_never_replaced(finished, capsys, name, make):
    p = finished / name
    if p.is_dir():
        for c in p.iterdir():
            c.unlink()
        p.rmdir()
    elif p.exists() or p.is_symlink():
        p.unlink()
    make(str(p))
    kind = os.lstat(p).st_mode
    before = sorted(q.name for q in finished.rglob("*"))
    _bad(capsys, "--out", str(finished), says=name)
    assert os.lstat(p).st_mode == kind  # still the FIFO / link / folder / file it was
    assert sorted(q.name for q in finished.rglob("*")) == before
    assert stat.S_ISCHR(os.lstat("/dev/full").st_mode)


def test_config_files_that_are_not_configs(tmp_path, capsys):
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    _bad(capsys, "--config", str(fifo), "--out", str(tmp_path / "a"), says="not a regular file")
    _bad(capsys, "--config", "/dev/zero", "--out", str(tmp_path / "a"), says="not a regular file")
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 5000 + "]" * 5000)
    _bad(capsys, "--config", str(deep), "--out", str(tmp_path / "a"), says="nested too deeply")
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b"# caf\xe9\n")
    _bad(capsys, "--config", str(latin), "--out", str(tmp_path / "a"), says="not UTF-8")
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (2 << 20))
    _bad(capsys, "--config", str(big), "--out", str(tmp_path / "a"), says="larger than 1 MiB")
    assert not (tmp_path / "a").exists()


def test_json_output_with_non_finite_results_is_valid_json(tmp_path, capsys, monkeypatch):
    import assemblers

    real = assemblers.solve_ik

    def odd(asm, T, **kw):  # a result with every kind of non-finite number
        r = real(asm, T, **kw)
        return dataclasses.replace(r, cost=math.inf, time_s=math.nan,
                                   tool_error=(math.nan, -math.inf), max_violation=math.nan)

    monkeypatch.setattr(assemblers, "solve_ik", odd)
    out = tmp_path / "o"
    rc = main(["sweep", "--config", "single", "--x", "-0.02 0.02", "--y", "0", "--z", "0",
               "--grid", "3", "--workers", "0", "--no-progress", "--json", "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    doc = json.loads(cap.out, parse_constant=lambda c: pytest.fail(f"{c} in --json output"))
    single = doc["summary"]["configs"]["single"]
    assert single["cost_q"] == [None, None, None] and single["solve_ms_mean"] is None
    assert S.load_results(out).column("cost").to_pylist() == [math.inf] * 3


def test_counts_are_exact_integers():
    from sims.sweeps.spec import parse_count

    assert parse_count("9223372036854775807", "--seed", 0) == 2**63 - 1
    assert parse_count("1e6", "--random") == 10**6
    for bad in ("1.5", "nan", "inf", "1e400", "", "0x10", True):
        with pytest.raises(S.SweepError, match="--n: must be an integer"):
            parse_count(bad, "--n")
    with pytest.raises(S.SweepError, match="at most 3"):
        parse_count("4", "--n", 1, 3)


def test_disk_full_mid_sweep_is_exit_1_and_a_rerun_completes(tmp_path, capsys, monkeypatch):
    import errno

    import sims.sweeps.output as output

    real = output.write_table_atomic
    calls = {"n": 0}

    def full(*args, **kw):  # the third part hits a full disk
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kw)

    monkeypatch.setattr(output, "write_table_atomic", full)
    args = ["sweep", "--config", "single", "--x", "-0.02 0.02", "--y", "0", "--z", "0", "--grid",
            "9", "--batch", "2", "--workers", "0", "--no-progress", "--no-maps", "--out",
            str(tmp_path / "o")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "rerun to resume" in err
    assert "Traceback" not in err and len(stderr_lines(err.strip())) == 1
    assert not list((tmp_path / "o" / "parts").glob(".tmp-*"))
    monkeypatch.setattr(output, "write_table_atomic", real)
    assert main(args) == 0
    assert S.load_results(tmp_path / "o").column("index").to_pylist() == list(range(9))
