"""Simulated calibration campaigns (issue 17): joints perturbed by 1 mm per coordinate, leg
offsets by 0.5 mm (and the mount and tool by 1 mm / 1 mrad), tool measured with 10 um / 20 urad
noise at planned poses, on duo, trio and the default Assembler.

Checked against things the calibration code does not compute: the true model (built through
the config loader and measured through the NumPy/Numba facade), held-out poses it never saw,
the exact symmetries of the error model written out independently (``calibration_support.py``) and the
analytic count of what tool measurements cannot identify (6 per plate frame: 6N + 6).
"""

import numpy as np
import pytest
import scipy.stats
from calibration_support import equivalent, tangents

import assemblers as A
from assemblers.calibration import calibrate, plan_poses, random_poses, simulate_campaign
from assemblers.calibration.simulate import tool_errors

SIGMA_P, SIGMA_R = 1e-5, 2e-5
ERRORS = {"joints": 1e-3, "offsets": 5e-4, "mount": 1e-3, "mount_rotation": 1e-3,
          "tool": 1e-3, "tool_rotation": 1e-3}
POSES = {"duo": 40, "trio": 50, "assembler": 60}
SEEDS = (0, 1, 2)


def _rms(e):
    return np.sqrt(np.mean(e ** 2, axis=0))


@pytest.fixture(scope="module", params=list(POSES))
def campaign(request):
    name = request.param
    asm = A.load_config(name)
    pl = plan_poses(asm, POSES[name], n_candidates=600, seed=1)
    held_out = A.leg_lengths(asm, random_poses(asm, 200, np.random.default_rng(77)))
    random_legs = A.leg_lengths(asm, random_poses(asm, POSES[name], np.random.default_rng(5)))
    runs = {"planned": [], "random": []}
    for kind, legs in (("planned", pl.legs), ("random", random_legs)):
        for seed in SEEDS:
            camp = simulate_campaign(asm, legs, seed=seed, errors=ERRORS,
                                     sigma_position=SIGMA_P, sigma_rotation=SIGMA_R)
            res = calibrate(asm, camp.measurements)
            runs[kind].append((camp, res, _rms(tool_errors(res.assembler, camp.true, held_out)),
                               _rms(tool_errors(asm, camp.true, held_out))))
    return asm, pl, runs


def test_held_out_tool_error_drops_to_the_noise(campaign):
    asm, _, runs = campaign
    for camp, res, after, before in runs["planned"]:
        assert res.success, res.message
        assert before[0] > 1e-3 and before[1] > 1e-3  # millimetres and milliradians off
        assert after[0] < 3 * SIGMA_P and after[1] < 3 * SIGMA_R, (asm.name, after)
        # and the calibrated model works in commanded lengths: the true pose from them
        legs = camp.measurements.legs[:5]
        T_cal = A.forward_kinematics(res.assembler, A.from_legs(res.assembler, legs))
        T_true = A.forward_kinematics(camp.true, A.from_legs(camp.true, legs))
        assert np.abs(T_cal[:, :3, 3] - T_true[:, :3, 3]).max() < 5 * SIGMA_P


def test_identifiable_parameters_within_their_standard_deviations(campaign):
    """The estimates against the true model expressed in the fit's gauge (the exact symmetries
    bring the true model's fixed entries to nominal): z-scores and the Mahalanobis distance
    with the fit's covariance, which is chi-square with r degrees of freedom.  Beyond 3 std:
    0.27 % of normal z-scores; the estimates are correlated, so such z-scores come in
    clusters, and the pooled fraction over the campaigns is allowed 1.5 %."""
    asm, _, runs = campaign
    zs = []
    for camp, res, _, _ in runs["planned"]:
        est, fixed = res.estimated, res.identifiability.fixed
        truth = equivalent(camp.p_true, fixed, res.nominal[fixed], asm.T_interfaces, asm.T_tool)
        d = res.estimate[est] - truth[est]
        z = d / res.std[est]
        zs.append(z)
        assert np.max(np.abs(z)) < 4.5, (asm.name, res.names[est[np.argmax(np.abs(z))]], z.max())
        maha = float(d @ np.linalg.solve(res.covariance, d))
        assert maha < scipy.stats.chi2.ppf(0.999, est.size), (maha, est.size)
        assert maha > scipy.stats.chi2.ppf(0.001, est.size)  # the std are not inflated either
        # leg offsets are not moved by any symmetry: compared with the truth itself
        off = [j for j in est if res.names[j].endswith(".offset")]
        assert np.all(np.abs(res.estimate[off] - camp.p_true[off]) < 4.5 * res.std[off])
    zs = np.concatenate(zs)
    assert np.mean(np.abs(zs) > 3) <= 0.015, np.mean(np.abs(zs) > 3)
    assert 0.8 < np.std(zs) < 1.2  # the standard deviations are the estimates' spread


def test_unidentifiable_parameters_reported_and_left_at_nominal(campaign):
    asm, _, runs = campaign
    n = asm.n_platforms
    _, res, _, _ = runs["planned"][0]
    fixed = res.identifiability.fixed
    assert len(res.unidentifiable) == fixed.size == 6 * n + 6  # one rigid move per plate frame
    assert res.estimated.size == 36 * n + 6
    assert {u["name"] for u in res.unidentifiable} == {res.names[j] for j in fixed}
    assert all(u["absorbed_by"] for u in res.unidentifiable)
    assert np.array_equal(res.estimate[fixed], res.nominal[fixed])
    assert np.all(np.isnan(res.std[fixed]))
    # the fixed entries' values in the calibrated config are the nominal ones, bit for bit
    cal = res.assembler
    for j in fixed:
        name = res.names[j]
        if name.startswith("p"):
            i, rest = name[1:].split(".", 1)
            joints = "base_joints" if rest.startswith("base") else "top_joints"
            k = int(rest.split("[")[1].split("]")[0])
            axis = "xyz".index(rest[-1])
            assert getattr(cal.platforms[int(i) - 1], joints)[k, axis] == \
                getattr(asm.platforms[int(i) - 1], joints)[k, axis]
    # what is fixed is exactly what the symmetries move: the Jacobian is blind to them
    T = tangents(res.nominal, asm.T_interfaces, asm.T_tool)[res.identifiability.columns]
    assert np.linalg.matrix_rank(T) == 6 * n + 6
    sv = res.identifiability.singular_values
    assert sv[res.estimated.size] < 1e-10 * sv[0] < sv[res.estimated.size - 1]


def test_planned_poses_beat_random_ones(campaign):
    asm, pl, runs = campaign
    assert pl.predicted.position_rms_m < pl.random.position_rms_m
    assert pl.predicted.rotation_rms_rad < pl.random.rotation_rms_rad
    planned = np.mean([r[2] for r in runs["planned"]], axis=0)
    rand = np.mean([r[2] for r in runs["random"]], axis=0)
    assert planned[0] < rand[0] and planned[1] < rand[1], (asm.name, planned, rand)
    # the prediction is what a fit achieves (within the spread of three campaigns)
    assert 0.6 < planned[0] / pl.predicted.position_rms_m < 1.6
    assert 0.6 < planned[1] / pl.predicted.rotation_rms_rad < 1.6
