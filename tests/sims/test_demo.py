"""``assemblers demo``: the README's main job (solve, robustness study, picture) in one command."""

import numpy as np

from assemblers.cli import main


def test_demo_solves_studies_and_draws(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--config", "duo", "--target", "0.01 0 0.63 0.02 0 0.05",
                 "--samples", "2e4", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "SOLVED" in text and "lower than even" in text and "fn vs even" in text
    assert (out / "robustness" / "report.md").is_file()
    assert (out / "robustness" / "stats.json").is_file()
    from PIL import Image  # pillow comes with matplotlib

    img = np.asarray(Image.open(out / "assembler.png"))
    assert img.shape[:2] == (480, 640) and img.std() > 5  # a picture, not a blank


def test_demo_bad_input_and_unreachable(tmp_path, capsys):
    assert main(["demo", "--target", "0 0 nan 0 0 0", "--out", str(tmp_path / "a")]) == 2
    assert not (tmp_path / "a").exists()
    assert main(["demo", "--target", "0 0 1.6 0 0 0", "--out", str(tmp_path / "b")]) == 1
    assert "not reachable" in capsys.readouterr().out
    assert not (tmp_path / "b").exists()
