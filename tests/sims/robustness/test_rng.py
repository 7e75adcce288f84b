"""The Monte Carlo's counter-based generator (sims.robustness.rng): its normals are standard
normal, and a sample depends only on the seed and its index (not on chunking or threads)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

import assemblers
from sims.robustness import montecarlo as M
from sims.robustness import rng


def test_normals_are_standard_normal():
    n, m = 200_000, 5  # 1e6 normals, in the per-sample layout the kernels use
    out = np.empty((n, m))
    rng.normals_kernel(rng.seed_key(7), n, m, out)
    x = out.ravel()
    assert abs(x.mean()) < 5 / math.sqrt(x.size)
    assert abs(x.var() - 1) < 5 * math.sqrt(2 / x.size)
    assert abs(np.mean(x**4) - 3) < 5 * math.sqrt(96 / x.size)
    assert sps.kstest(x[:300_000], "norm").pvalue > 1e-3
    # the tail beyond the ziggurat's base (r = 3.654) comes from a separate code path
    p = 2 * sps.norm.sf(rng._ZIG_R)
    frac = np.mean(np.abs(x) > rng._ZIG_R)
    assert abs(frac - p) < 5 * math.sqrt(p / x.size)
    # sign symmetry and no correlation between consecutive draws of a sample
    assert abs(np.mean(x > 0) - 0.5) < 5 * 0.5 / math.sqrt(x.size)
    assert abs(np.corrcoef(out[:, 0], out[:, 1])[0, 1]) < 5 / math.sqrt(n)


def test_samples_depend_only_on_seed_and_index(trio):
    Q = assemblers.home_pose(trio)
    d = M.Disturbance(pose_sigma=(1e-4,) * 6, leg_sigma=1e-4)
    a = M.sample_errors(trio, Q, d, 300, seed=5)
    b = M.sample_errors(trio, Q, d, 100, seed=5)
    np.testing.assert_array_equal(a.errors[:100], b.errors)
    _, c = M.simulate(trio, Q, d, 300, seed=5, chunk_size=37, return_samples=True)
    np.testing.assert_array_equal(a.errors, c.errors)
    np.testing.assert_array_equal(a.Q, c.Q)
    other = M.sample_errors(trio, Q, d, 100, seed=6)
    assert not np.allclose(other.errors, b.errors)
    # and the statistics with another chunk size agree to rounding
    s1 = M.simulate(trio, Q, d, 3000, seed=5, chunk_size=1000)
    s2 = M.simulate(trio, Q, d, 3000, seed=5, chunk_size=999)
    np.testing.assert_allclose(s1.cov, s2.cov, rtol=1e-9, atol=1e-22)
    assert s1.max_position == s2.max_position
