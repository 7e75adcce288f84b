"""Fit options on duo: measured top plates remove the plate-frame symmetries (only the mount
against platform 1's base joints is left: 6 unidentifiable), and a robust loss keeps outlier
rows (2 mm off) from spoiling the calibration while the linear loss does not."""

import dataclasses

import numpy as np
import pytest

import assemblers as A
from assemblers.calibration import calibrate, plan_poses, random_poses, simulate_campaign
from assemblers.calibration.simulate import tool_errors


@pytest.fixture(scope="module")
def setting():
    asm = A.load_config("duo")
    pl = plan_poses(asm, 40, n_candidates=300, seed=2)
    held = A.leg_lengths(asm, random_poses(asm, 200, np.random.default_rng(7)))
    return asm, pl, held


def _held_out(res, camp, held):
    return np.sqrt(np.mean(tool_errors(res.assembler, camp.true, held) ** 2, axis=0))


def test_measured_plates_leave_only_the_mount_symmetry(setting):
    asm, pl, held = setting
    camp = simulate_campaign(asm, pl.legs, seed=4, plates=True)
    assert camp.measurements.plates_measured.all()
    res = calibrate(asm, camp.measurements)
    assert res.after.frames == ("tool", "top_1", "top_2")
    assert len(res.unidentifiable) == 6 and res.estimated.size == 42 * 2 + 6
    fixed = {u["name"].split(".")[0] for u in res.unidentifiable}
    assert fixed <= {"mount", "p1"}  # the base frame of platform 1 against the mount
    assert np.all(_held_out(res, camp, held) < [3e-5, 6e-5])


def test_robust_loss_resists_outlier_rows(setting):
    asm, pl, held = setting
    camp = simulate_campaign(asm, pl.legs, seed=4)
    tool = camp.measurements.tool.copy()
    outliers = [3, 11, 20, 33]
    tool[outliers, 0] += 2e-3
    bad = dataclasses.replace(camp.measurements, tool=tool)
    linear = calibrate(asm, bad)
    robust = calibrate(asm, bad, loss="soft_l1")
    assert _held_out(linear, camp, held)[0] > 1e-4
    assert np.all(_held_out(robust, camp, held) < [3e-5, 6e-5])
    # the outliers stand out in the residuals after the robust fit
    assert set(np.argsort(robust.after.whitened)[-4:]) == set(outliers)


def test_leg_scales_can_be_fitted(setting):
    asm, pl, held = setting
    camp = simulate_campaign(asm, pl.legs, seed=5, errors={"scales": 1e-3})
    res = calibrate(asm, camp.measurements, families=("joints", "offsets", "scales", "mount",
                                                      "tool"))
    assert res.estimated.size == 36 * 2 + 6 + 12
    scales = [j for j in res.estimated if res.names[j].endswith(".scale")]
    z = (res.estimate[scales] - camp.p_true[scales]) / res.std[scales]
    assert np.all(np.abs(z) < 4.5)
    assert np.all(_held_out(res, camp, held) < [3e-5, 6e-5])
    assert not np.array_equal(res.assembler.leg_scale, np.ones((2, 6)))
