"""Streaming statistics (sims.robustness.stats) against NumPy on stored samples, and the
histogram layout."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sims.robustness import montecarlo as M
from sims.robustness import stats as S


def test_streaming_stats_match_numpy(trio, feasible_pose):
    Q = feasible_pose(trio, 7)
    d = M.Disturbance(pose_sigma=(2e-4, 1e-4, 1e-4, 1e-3, 5e-4, 5e-4), leg_sigma=1e-4)
    st, smp = M.simulate(trio, Q, d, 40_000, seed=13, chunk_size=3000, return_samples=True)
    e = smp.errors
    np.testing.assert_allclose(st.mean, e.mean(axis=0), rtol=1e-9, atol=1e-18)
    np.testing.assert_allclose(st.cov, np.cov(e.T), rtol=1e-9, atol=1e-20)
    mp = np.linalg.norm(e[:, :3], axis=1)
    mr = np.linalg.norm(e[:, 3:], axis=1)
    l2 = trio.sensitivity.length_scale**2
    w = mp**2 + l2 * mr**2
    assert st.rms_position == pytest.approx(math.sqrt(np.mean(mp**2)), rel=1e-10)
    assert st.rms_rotation == pytest.approx(math.sqrt(np.mean(mr**2)), rel=1e-10)
    assert st.mean_sq_weighted == pytest.approx(w.mean(), rel=1e-10)
    assert st.sem_sq_weighted == pytest.approx(w.std(ddof=1) / math.sqrt(w.size), rel=1e-8)
    assert st.max_position == mp.max() and st.max_rotation == mr.max()
    for q in (50, 95, 99):
        for got, x in ((st.percentile(q), mp), (st.percentile(q, "rotation"), mr)):
            assert got == pytest.approx(np.percentile(x, q), rel=S.HIST_RESOLUTION)
    assert st.p99_position == st.percentile(99)
    # the histogram counts every sample in the right bin
    edges = S.hist_edges()
    np.testing.assert_array_equal(st.hist_position, np.histogram(mp, edges)[0])
    # stats of the stored samples through the NumPy-side path agree
    st2 = S.stats_from_samples(e, trio.sensitivity.length_scale, chunk_size=5000)
    np.testing.assert_allclose(st2.cov, st.cov, rtol=1e-9, atol=1e-20)
    np.testing.assert_array_equal(st2.hist_rotation, st.hist_rotation)


def test_hist_index_and_edges():
    edges = S.hist_edges()
    assert edges.size == S.HIST_BINS + 1 and np.all(np.diff(edges) > 0)
    rel = np.diff(edges[1:-1]) / edges[1:-2]
    assert rel.max() <= S.HIST_RESOLUTION * (1 + 1e-12)
    rng = np.random.default_rng(0)
    x = np.exp(rng.uniform(np.log(1e-17), np.log(5e3), 20_000))
    idx = np.array([S.hist_index(v) for v in x])
    assert np.all((edges[idx] <= x) & (x < edges[idx + 1]))
    assert S.hist_index(0.0) == 0
    assert S.hist_index(np.inf) == S.hist_index(np.nan) == S.HIST_BINS - 1
