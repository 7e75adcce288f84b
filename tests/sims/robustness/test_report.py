"""The robustness report (sims.robustness.report): report.md, stats.json and the figures,
written all or nothing."""

from __future__ import annotations

import json

from sims.robustness.report import FIGURES, write_report


def test_report_files(duo_study, tmp_path):
    out = tmp_path / "rep"
    paths = write_report(duo_study, out)
    names = {p.name for p in paths}
    assert names == {"report.md", "stats.json", *FIGURES}
    for p in paths:
        assert p.stat().st_size > 1000, p
    for name in FIGURES:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    assert "| fn |" in md and "even" in md and "![" in md
    doc = json.loads((out / "stats.json").read_text())
    assert len(doc["poses"]) == len(duo_study.poses)
    assert "hist_position_m" in doc["poses"][0]["stats"]
    # writing again into the existing directory replaces the files, leaves nothing else
    write_report(duo_study, out, figures=False)
    assert {p.name for p in out.iterdir()} == names
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rep")]
