"""``assemblers calibrate plan | simulate | fit`` end to end, and bad input: one clear line on
stderr naming the file, line and column, exit status 2, no traceback."""

import json

import numpy as np
import pytest

import assemblers as A
from assemblers.calibration.measurements import leg_columns, parse_measurements
from assemblers.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A planned, simulated campaign on duo (run once): poses.csv, m.csv, true.toml."""
    d = tmp_path_factory.mktemp("calib")
    assert main(["calibrate", "plan", "--config", "duo", "--poses", "30", "--candidates", "300",
                 "--out", str(d / "poses.csv"), "--json"]) == 0
    assert main(["calibrate", "simulate", "--config", "duo", "--poses", str(d / "poses.csv"),
                 "--out", str(d / "m.csv"), "--truth", str(d / "true.toml"), "--seed", "3"]) == 0
    return d


def test_plan_simulate_fit(workdir, capsys):
    d = workdir
    code, out, err = _run(capsys, "calibrate", "fit", "--config", "duo", "--measurements",
                          str(d / "m.csv"), "--out", str(d / "cal.toml"), "--report",
                          str(d / "report"), "--truth", str(d / "true.toml"), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["success"] and doc["n_estimated"] == 78 and doc["n_unidentifiable"] == 18
    assert doc["holdout"]["before"][0] > 1e-3 and doc["holdout"]["after"][0] < 3e-5
    assert doc["after"]["whitened"] < 1.5 < doc["before"]["whitened"]
    for f in ("report.md", "result.json", "residuals.png", "parameters.png", "spectrum.png"):
        assert (d / "report" / f).stat().st_size > 0
    cal = A.load_config(d / "cal.toml")  # loadable, and a calibrated model
    assert cal.legs_calibrated and cal.n_platforms == 2
    code, out, _ = _run(capsys, "info", "--config", str(d / "cal.toml"))
    assert code == 0 and "hexapod_1" in out
    # the text output (no --json), quietly
    code, out, err = _run(capsys, "calibrate", "fit", "--config", "duo", "--measurements",
                          str(d / "m.csv"), "--out", str(d / "cal2.toml"), "--quiet",
                          "--loss", "soft_l1")
    assert code == 0 and "converged" in out and err == ""


def test_plan_writes_legs_inside_the_stroke(workdir):
    from assemblers.calibration.measurements import read_plan

    legs = read_plan(workdir / "poses.csv", 2)
    assert legs.shape == (30, 2, 6)
    assert np.all(legs >= 0.20 + 0.02 * 0.12 - 1e-12) and np.all(legs <= 0.32 - 0.02 * 0.12 + 1e-12)


def _lines(workdir):
    return (workdir / "m.csv").read_text().splitlines()


def _bad(workdir, capsys, text, name="bad.csv"):
    (workdir / name).write_text(text)
    code, out, err = _run(capsys, "calibrate", "fit", "--config", "duo", "--measurements",
                          str(workdir / name), "--out", str(workdir / "never.toml"), "--quiet")
    assert code == 2, (code, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert not (workdir / "never.toml").exists()
    return err


def test_wrong_column_count(workdir, capsys):
    lines = _lines(workdir)
    row = lines[3].split(",")
    err = _bad(workdir, capsys, "\n".join(lines[:3] + [",".join(row[:-1])] + lines[4:]) + "\n")
    assert "bad.csv: line 4: 17 columns; the header has 18" in err
    err = _bad(workdir, capsys, "\n".join(",".join(r.split(",")[:-1]) for r in lines[1:]) + "\n")
    assert "17 columns without a header; a 2-platform stack needs 18" in err
    trio_header = ",".join(leg_columns(3) + ["x", "y", "z", "roll", "pitch", "yaw"])
    err = _bad(workdir, capsys, trio_header + "\n" + "\n".join(lines[1:]) + "\n")
    assert "unknown column 'leg_3_0' (this stack has 2 platform(s)" in err


def _with_cell(lines, i, col, value):
    """The CSV text of ``lines`` with column ``col`` of row ``i`` (0: the header) set to
    ``value``."""
    row = lines[i].split(",")
    row[col] = value
    return "\n".join(lines[:i] + [",".join(row)] + lines[i + 1:]) + "\n"


def test_nan(workdir, capsys):
    err = _bad(workdir, capsys, _with_cell(_lines(workdir), 5, 13, "nan"))
    assert "bad.csv: line 6, column 'y': not a finite number ('nan')" in err


def test_legs_outside_the_stroke(workdir, capsys):
    err = _bad(workdir, capsys, _with_cell(_lines(workdir), 7, 8, "0.3412"))
    assert "bad.csv: line 8: leg_2_2 = 0.3412 m is outside the stroke [0.2, 0.32] of platform 2" \
        in err


def test_fewer_rows_than_identifiable_parameters(workdir, capsys):
    lines = _lines(workdir)
    err = _bad(workdir, capsys, "\n".join(lines[:11]) + "\n")
    assert "10 measured poses give 60 equations, fewer than the 78 identifiable parameters" in err
    assert "measure at least 13 poses" in err


def test_other_bad_input(workdir, capsys):
    lines = _lines(workdir)
    err = _bad(workdir, capsys, lines[0] + ",sigma\n" + "\n".join(l + ",1" for l in lines[1:]))
    assert "unknown column 'sigma'" in err
    err = _bad(workdir, capsys, lines[0] + ",top_1_x\n" + "\n".join(l + ",1" for l in lines[1:]))
    assert "top plate 1: give all six columns" in err
    err = _bad(workdir, capsys, "")
    assert "no rows" in err
    row = lines[2].split(",")
    row[15] = "1.2"  # roll off by a radian: another frame or degrees
    err = _bad(workdir, capsys, "\n".join(lines[:2] + [",".join(row)] + lines[3:]) + "\n")
    assert "bad.csv: line 3: the measured tool orientation is" in err
    code, _, err = _run(capsys, "calibrate", "plan", "--config", "duo", "--poses", "5",
                        "--out", str(workdir / "p.csv"))
    assert code == 2 and "plan at least 13" in err
    code, _, err = _run(capsys, "calibrate", "fit", "--config", "duo", "--measurements",
                        str(workdir / "missing.csv"), "--out", str(workdir / "x.toml"))
    assert code == 2 and "missing.csv: no such file" in err


def test_parse_weights_and_plates():
    text = ("leg_1_0,leg_1_1,leg_1_2,leg_1_3,leg_1_4,leg_1_5,x,y,z,roll,pitch,yaw,"
            "top_1_x,top_1_y,top_1_z,top_1_roll,top_1_pitch,top_1_yaw,sigma_position,weight\n"
            + ",".join(["0.25"] * 6 + ["0.1"] * 12 + ["2e-5", "0.5"]) + "\n")
    m = parse_measurements(text, 1, "w.csv")
    assert m.plates_measured.tolist() == [True] and m.weight[0] == 0.5
    assert m.sigma_position[0] == 2e-5 and m.sigma_rotation is None
