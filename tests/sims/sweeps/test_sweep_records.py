"""Sweep records (issue 13): a part file is merged only if its bytes match the SHA-256 in the part
manifest; a corrupt, unrecorded or missing part is solved again, never merged; the results file
is rebuilt from verified parts when it is missing, truncated or fails its checksum.

Each defect test damages a finished sweep the way a disk or a crash would and checks the rerun
against an undamaged copy of the same sweep (every column but the wall time).  The damage is
first shown to be silent to a plain reader (pyarrow reads the damaged part without an error and
returns other numbers), which is what the merge before part records trusted.
"""

import json
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assemblers.cli import main
from sims import sweeps as S

# 12 reachable targets of the single-platform config, solved 3 per task: 4 parts
LO = (-0.03, -0.03, 0.0, 0.0, 0.0, 0.0)
HI = (0.03, 0.03, 0.0, 0.0, 0.0, 0.05)
COUNTS = (3, 2, 1, 1, 1, 2)


def _spec(mc_samples=0):
    return S.SweepSpec(configs=[S.read_config("single")], lo=LO, hi=HI, mode="grid",
                       counts=COUNTS, mc_samples=mc_samples)


def _rows(out):
    """The sweep's results without the wall-time column (the only one that varies)."""
    return S.load_results(out).drop_columns(["time_s"])


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """fmt -> a finished, undamaged sweep directory (parquet, csv, csv with Monte Carlo)."""
    base = tmp_path_factory.mktemp("clean")
    dirs = {}
    for key, fmt, mc in (("parquet", "parquet", 0), ("csv", "csv", 0), ("csv-mc", "csv", 2000)):
        run = S.run_sweep(_spec(mc), base / key, fmt=fmt, executor=0, batch=3)
        assert run.complete and run.new == 12
        assert len(list((base / key / "parts").glob("part-*"))) == 4
        dirs[key] = base / key
    return dirs


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _rerun(out, key):
    fmt = "parquet" if key == "parquet" else "csv"
    return S.run_sweep(_spec(2000 if key == "csv-mc" else 0), out, fmt=fmt, executor=0, batch=3)


def _part(out, first, fmt="parquet"):
    return out / "parts" / f"part-{first:012d}.{fmt}"


def _read(path):
    schema = pq.read_schema(path) if path.suffix == ".parquet" else None
    if schema is not None:
        return pq.read_table(path)
    return pcsv.read_csv(path)


def _flip_silently(path: Path, column: str) -> None:
    """Flip the lowest bit of one stored float of ``column`` so that the file still reads and
    that column reads back as other numbers (the data page, not a statistic)."""
    data = bytearray(path.read_bytes())
    before = _read(path).column(column).to_pylist()
    for v in set(before):
        pat = struct.pack("<d", v)
        at = data.find(pat)
        while at >= 0:
            data[at] ^= 1
            path.write_bytes(bytes(data))
            try:
                after = _read(path).column(column).to_pylist()
            except (pa.ArrowException, OSError):
                after = before
            if after != before:
                return
            data[at] ^= 1
            at = data.find(pat, at + 1)
    path.write_bytes(bytes(data))
    pytest.fail(f"no stored value of {column} found in {path.name}")


def test_bit_flip_in_a_parquet_part_is_solved_again_not_merged(clean, tmp_path):
    out = _copy(clean["parquet"], tmp_path / "s")
    (out / "results.parquet").unlink()  # the sweep had not merged yet
    part = _part(out, 3)
    _flip_silently(part, "cost")
    assert pq.read_table(part).num_rows == 3  # a plain reader sees no damage
    run = _rerun(out, "parquet")
    assert _rows(out).equals(_rows(clean["parquet"]))
    assert run.complete and run.new == 3
    assert run.repaired == [("parts/part-000000000003.parquet", "checksum mismatch")]
    assert (out / "corrupt" / part.name).exists()  # kept aside, never merged


def _flip_csv_digit(path: Path, column: str, row: int) -> None:
    """Flip the lowest bit of a middle digit of one CSV field: another valid number (the last
    of 17 digits may round to the same float)."""
    lines = path.read_bytes().split(b"\n")
    head = lines[0].decode().split(",")
    col = head.index(f'"{column}"')
    fields = lines[1 + row].split(b",")
    digits = [i for i, c in enumerate(fields[col]) if chr(c).isdigit()]
    f = bytearray(fields[col])
    f[digits[len(digits) // 2]] ^= 1
    fields[col] = bytes(f)
    lines[1 + row] = b",".join(fields)
    path.write_bytes(b"\n".join(lines))


def test_bit_flip_in_a_csv_part_is_solved_again_not_merged(clean, tmp_path):
    out = _copy(clean["csv"], tmp_path / "s")
    (out / "results.csv").unlink()
    part = _part(out, 6, "csv")
    before = pcsv.read_csv(part).column("cost").to_pylist()
    _flip_csv_digit(part, "cost", 1)
    after = pcsv.read_csv(part).column("cost").to_pylist()
    assert after != before and after[0] == before[0]  # silent: one number changed
    run = _rerun(out, "csv")
    assert _rows(out).equals(_rows(clean["csv"]))
    assert run.complete and run.new == 3
    assert [r[0] for r in run.repaired] == ["parts/part-000000000006.csv"]


def test_flipped_index_does_not_overwrite_another_targets_row(clean, tmp_path):
    """Index 1 -> 9 (one bit) in part 0 while targets 9..11 are still pending: before part
    records, target 1's row was merged as target 9's and target 1 solved again."""
    out = _copy(clean["parquet"], tmp_path / "s")
    (out / "results.parquet").unlink()
    _part(out, 9).unlink()
    part = _part(out, 0)
    t = pq.read_table(part)
    idx = t.column("index").to_pylist()
    assert idx == [0, 1, 2]
    t = t.set_column(0, "index", pa.array([0, 1 ^ 8, 2], pa.int64()))
    pq.write_table(t, part)
    run = _rerun(out, "parquet")
    assert _rows(out).equals(_rows(clean["parquet"]))
    assert run.complete
    reasons = dict(run.repaired)
    assert reasons["parts/part-000000000000.parquet"] == "checksum mismatch"
    assert reasons["parts/part-000000000009.parquet"] == "missing"


def test_csv_part_cut_mid_field_is_solved_again_not_merged(clean, tmp_path):
    """A part cut inside its last field (a Monte Carlo column, a number) still parses: the
    number comes back shorter, or null."""
    out = _copy(clean["csv-mc"], tmp_path / "s")
    (out / "results.csv").unlink()
    part = _part(out, 9, "csv")
    data = part.read_bytes()
    start = data.rindex(b",") + 1  # the last field of the last row, before its newline
    part.write_bytes(data[: start + (len(data) - 1 - start) // 2])
    cut = pcsv.read_csv(part)
    whole = pcsv.read_csv(_part(clean["csv-mc"], 9, "csv"))
    assert cut.num_rows == 3 and cut.column_names == whole.column_names  # silent
    assert cut.column("mc_reduction")[2] != whole.column("mc_reduction")[2]
    run = _rerun(out, "csv-mc")
    assert _rows(out).equals(_rows(clean["csv-mc"]))
    assert run.complete and run.new == 3
    assert [r[0] for r in run.repaired] == ["parts/part-000000000009.csv"]


SWEEP_ARGS = ["sweep", "--config", "single", "--x", "-0.03 0.03", "--y", "-0.03 0.03", "--z", "0",
              "--yaw", "0 0.05", "--grid", "3 2 1 1 1 2", "--workers", "0", "--batch", "3",
              "--no-progress", "--no-maps"]


def test_truncated_results_file_is_rebuilt_not_a_traceback(tmp_path, capsys):
    out = tmp_path / "s"
    assert main([*SWEEP_ARGS, "--out", str(out)]) == 0
    capsys.readouterr()
    res = out / "results.parquet"
    whole = pq.read_table(res).drop_columns(["time_s"])
    res.write_bytes(res.read_bytes()[: res.stat().st_size // 2])
    rc = main([*SWEEP_ARGS, "--out", str(out), "--json"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "Traceback" not in cap.err
    assert json.loads(cap.out)["run"]["new"] == 0  # rebuilt from the parts, nothing solved
    assert pq.read_table(res).drop_columns(["time_s"]).equals(whole)


def test_results_file_failing_its_checksum_is_rebuilt(clean, tmp_path):
    out = _copy(clean["parquet"], tmp_path / "s")
    _flip_silently(out / "results.parquet", "cost")
    assert S.load_results(out).drop_columns(["time_s"]).equals(_rows(clean["parquet"]))  # parts
    run = _rerun(out, "parquet")
    assert run.new == 0 and run.complete
    assert pq.read_table(out / "results.parquet").drop_columns(["time_s"]).equals(
        _rows(clean["parquet"]))


def test_deleted_part_is_solved_again_and_reported(clean, tmp_path):
    """Before part records a deleted part was solved again too, silently; now the run says so
    (``repaired``, runs.jsonl) and the merged file is rebuilt."""
    out = _copy(clean["parquet"], tmp_path / "s")
    _part(out, 3).unlink()
    run = _rerun(out, "parquet")
    assert run.new == 3 and run.n_before == 9 and run.complete
    assert run.repaired == [("parts/part-000000000003.parquet", "missing")]
    last = json.loads((out / "runs.jsonl").read_text().splitlines()[-1])
    assert last["repaired"] == [["parts/part-000000000003.parquet", "missing"]]
    assert _rows(out).equals(_rows(clean["parquet"]))


def test_damaged_manifest_line_or_unrecorded_part_is_not_trusted(clean, tmp_path):
    out = _copy(clean["parquet"], tmp_path / "s")
    (out / "results.parquet").unlink()
    ledger = out / "parts.jsonl"
    lines = ledger.read_text().splitlines()
    [k] = [i for i, x in enumerate(lines) if "part-000000000003" in x]
    lines[k] = lines[k].replace('"rows":3', '"rows":4')  # the line's own check fails
    ledger.write_text("\n".join(lines) + "\n")
    shutil.copy(_part(out, 6), _part(out, 7))  # a stray copy: a name with no record
    run = _rerun(out, "parquet")
    reasons = dict(run.repaired)
    assert reasons["parts/part-000000000003.parquet"] == "no record in the part manifest"
    assert reasons["parts/part-000000000007.parquet"] == "no record in the part manifest"
    assert run.new == 3 and run.complete
    assert _rows(out).equals(_rows(clean["parquet"]))
    recs = [json.loads(x)["file"] for x in ledger.read_text().splitlines()]
    assert sorted(recs) == sorted([f"parts/part-{i:012d}.parquet" for i in (0, 3, 6, 9)]
                                  + ["results.parquet"])


def test_recorded_parts_holding_the_same_index_are_both_solved_again(clean, tmp_path):
    """No index is merged from two parts, even when both match their records."""
    from sims.sweeps.storage import Ledger, PartRecord, sha256_file

    out = _copy(clean["parquet"], tmp_path / "s")
    t = pq.read_table(_part(out, 3)).slice(1)  # indices 4, 5 again, as a part of their own
    pq.write_table(t, _part(out, 4))
    digest, size = sha256_file(_part(out, 4))
    Ledger(out / "parts.jsonl", out).append(
        PartRecord("parts/part-000000000004.parquet", digest, size, 2, 4, 5))
    run = _rerun(out, "parquet")
    assert sorted(r[0] for r in run.repaired) == ["parts/part-000000000003.parquet",
                                                  "parts/part-000000000004.parquet"]
    assert run.new == 3 and _rows(out).equals(_rows(clean["parquet"]))


def test_sweep_written_before_part_records_resumes(clean, tmp_path):
    """A directory as the code before part records left it (no parts.jsonl, no "storage" in
    sweep.json): its parts are adopted after structural checks, nothing is solved again, and a
    CSV part without its final newline (cut) is not adopted."""
    for key in ("parquet", "csv"):
        out = _copy(clean[key], tmp_path / key)
        (out / "parts.jsonl").unlink()
        man = json.loads((out / "sweep.json").read_text())
        del man["storage"]
        (out / "sweep.json").write_text(json.dumps(man))
        fmt = "parquet" if key == "parquet" else "csv"
        (out / f"results.{fmt}").unlink()
        if key == "csv":
            p = _part(out, 3, "csv")
            p.write_bytes(p.read_bytes()[:-1])
        run = _rerun(out, key)
        assert run.complete and run.n_before == (12 if key == "parquet" else 9)
        assert "storage" in json.loads((out / "sweep.json").read_text())
        assert _rows(out).equals(_rows(clean[key]))
        again = _rerun(out, key)
        assert again.new == 0 and again.repaired == []


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["parquet", "csv"]), part=st.integers(0, 3),
       where=st.floats(0, 1, exclude_max=True), mask=st.integers(1, 255),
       keep_results=st.booleans())
def test_any_corrupt_byte_of_any_part_never_reaches_the_results(clean, key, part, where, mask,
                                                                keep_results):
    with tempfile.TemporaryDirectory() as d:
        out = _copy(clean[key], Path(d) / "s")
        fmt = "parquet" if key == "parquet" else "csv"
        if not keep_results:
            (out / f"results.{fmt}").unlink()
        p = _part(out, 3 * part, fmt)
        data = bytearray(p.read_bytes())
        data[int(where * len(data))] ^= mask
        p.write_bytes(bytes(data))
        run = _rerun(out, key)
        assert _rows(out).equals(_rows(clean[key]))
        assert run.complete and run.new == 3
        assert not list((out / "parts").glob(".tmp-*"))


def test_index_runs_and_batches_cover_the_pending_targets():
    from sims.sweeps.storage import batches_of, gaps, index_runs

    idx = np.array([0, 1, 2, 5, 6, 9])
    assert index_runs(idx) == [(0, 3), (5, 7), (9, 10)]
    todo = gaps(index_runs(idx), 12)
    assert todo == [(3, 5), (7, 9), (10, 12)]
    got = [b.tolist() for b in batches_of(todo, 4)]
    assert got == [[3, 4, 7, 8], [10, 11]]
    assert np.concatenate([b for b in batches_of([(0, 10**6)], 4096)]).tolist() == \
        list(range(10**6))
