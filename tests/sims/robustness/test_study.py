"""The robustness study (sims.robustness.study): the optimal pose against the baselines and
random poses under common random numbers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import assemblers
from assemblers.errors import InputError
from assemblers.geometry.api import pose_to_transform
from sims.robustness import montecarlo as M
from sims.robustness.study import TargetUnreachable, default_disturbance, run_study

TARGET_DEFAULT = [0.05, 0.03, 1.0, 0.1, -0.05, 0.2]  # reachable by the default Assembler


def test_fn_pose_beats_even_baseline_on_default_robot(default_asm):
    """The fn-optimal pose has a lower Monte Carlo RMS error than the even baseline, by more than
    the statistical error of the (paired, common random numbers) difference."""
    T = pose_to_transform(TARGET_DEFAULT)
    fn = assemblers.solve_ik(default_asm, T, criterion="fn")
    even = assemblers.solve_ik(default_asm, T, criterion="even")
    assert fn.success and even.success
    d = default_disturbance(default_asm)  # pose noise, 0.1 mm / 0.1 mrad
    n = 100_000
    s_fn, x_fn = M.simulate(default_asm, fn.Q, d, n, seed=21, return_samples=True)
    s_ev, x_ev = M.simulate(default_asm, even.Q, d, n, seed=21, return_samples=True)
    assert s_fn.rms_weighted < s_ev.rms_weighted
    assert s_fn.rms_position < s_ev.rms_position
    # paired difference of the squared weighted errors, sample by sample
    l2 = default_asm.sensitivity.length_scale**2

    def w(e):
        return np.sum(e[:, :3] ** 2, 1) + l2 * np.sum(e[:, 3:] ** 2, 1)

    diff = w(x_fn.errors) - w(x_ev.errors)
    assert diff.mean() < -5 * diff.std(ddof=1) / math.sqrt(n)
    # and the size of the gain is what the costs predict (first order)
    gain_mc = 1 - s_fn.rms_weighted / s_ev.rms_weighted
    gain_cost = 1 - fn.cost / even.cost
    assert gain_mc == pytest.approx(gain_cost, abs=0.2 * gain_cost)


def test_study_result(duo, duo_study):
    st = duo_study
    labels = [p.label for p in st.poses]
    assert labels[0] == "fn" and "even" in labels and "nearest" in labels
    assert sum(p.kind == "random" for p in st.poses) == 2
    assert st.criterion == "fn" and st.disturbance.kinds == ("pose",)
    T = st.target
    for p in st.poses:
        assert p.stats.n == 20_000 and p.scatter.shape == (500, 6)
        np.testing.assert_allclose(assemblers.forward_kinematics(duo, p.Q), T, atol=1e-9)
        # first order holds at 0.1 mm / 0.1 mrad
        assert p.stats.mean_sq_weighted == pytest.approx(p.predicted_mean_sq, rel=0.05)
    # the optimum has the lowest cost; reductions are consistent with the stats
    assert st.optimal.cost <= min(p.cost for p in st.poses) + 1e-12
    red = st.reductions()
    assert set(red) == set(labels[1:])
    e = st.pose("even").stats
    assert red["even"]["rms_weighted"] == pytest.approx(1 - st.optimal.stats.rms_weighted
                                                        / e.rms_weighted)
    doc = json.loads(json.dumps(st.to_dict(histograms=True), allow_nan=False))
    assert doc["poses"][0]["stats"]["n"] == 20_000
    assert doc["disturbance"]["kinds"] == ["pose"]


def test_study_bad_input(duo):
    T = np.eye(4)
    with pytest.raises(InputError):
        run_study(duo, T, M.Disturbance(), n_samples=10)  # nothing to simulate
    with pytest.raises(InputError):
        run_study(duo, T, n_samples=0)
    with pytest.raises(InputError):
        run_study(duo, T, criterion="even")
    with pytest.raises(InputError):
        run_study(duo, np.full((4, 4), np.nan))


def test_default_disturbance(duo):
    trio = assemblers.load_config("trio")
    d = default_disturbance(trio)  # wrt = legs, sigma_leg = 1e-4 (physical): used as is
    assert d.kinds == ("legs",) and d.leg_sigma == 1e-4
    d = default_disturbance(duo)  # unit weights: scaled to 1e-4
    assert d.kinds == ("pose",) and max(d.pose_sigma) == pytest.approx(1e-4)
    d = default_disturbance(duo, ("pose", "joints"))
    assert d.kinds == ("pose", "joints")


def test_unreachable_raises(duo):
    with pytest.raises(TargetUnreachable) as info:
        run_study(duo, pose_to_transform([0, 0, 3.0, 0, 0, 0]), n_samples=100, progress=False)
    assert not info.value.ik_result.success
