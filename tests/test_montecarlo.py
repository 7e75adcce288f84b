"""Monte Carlo kernels (sims.montecarlo) and streaming statistics (sims.stats).

Checks: the generator's normals; counter-based reproducibility (a sample depends only on the seed
and its index, not on chunking or threads); the Numba twists against the JAX kinematics sample by
sample; the first-order link of SPEC (mean squared weighted error -> ||W_out J W_in||_F^2) for
pose and actuator noise within 5 standard errors; identical statistics on 1 and 2 threads; the
streaming statistics against NumPy on stored samples.
"""

from __future__ import annotations

import math
import tracemalloc

import jax
import jax.numpy as jnp
import numba
import numpy as np
import pytest
from scipy import stats as sps

import assemblers
from assemblers import kinematics as K
from assemblers import lie
from assemblers.errors import InputError
from assemblers.model import StackArrays
from sims import montecarlo as M
from sims import stats as S

# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def trio():
    return assemblers.load_config("trio")


@pytest.fixture(scope="module")
def default():
    return assemblers.load_config("assembler")


def feasible_pose(asm, seed, scale=1.0):
    """A random stack pose near home whose legs are inside the strokes (m, rad)."""
    rng = np.random.default_rng(seed)
    N = asm.n_platforms
    lim = np.tile([0.01, 0.01, 0.01, 0.05, 0.05, 0.05], N) * scale
    for _ in range(1000):
        Q = assemblers.home_pose(asm) + rng.uniform(-lim, lim)
        L = assemblers.leg_lengths(asm, Q)
        if np.all(L > asm.leg_min[:, None] + 0.005) and np.all(L < asm.leg_max[:, None] - 0.005):
            return Q
    raise AssertionError("no feasible pose found")


_twists_cache = {}


def jax_twists(asm, Q0, Qs, b=None, t=None):
    """Reference twists of the stack poses ``Qs`` (n, 6N) against ``Q0`` with the JAX kinematics
    (geometry ``b``/``t`` (n, N, 6, 3) per sample only matters for the legs, not for FK)."""
    arrs = assemblers.stack_arrays(asm)
    T0 = K.forward(arrs, jnp.asarray(Q0))
    key = asm.n_platforms
    if key not in _twists_cache:
        _twists_cache[key] = jax.jit(jax.vmap(
            lambda arrs, T0, Q: lie.twist_between(T0, K.forward(arrs, Q)), in_axes=(None, None, 0)))
    return np.asarray(_twists_cache[key](arrs, T0, jnp.asarray(Qs)))


# ----------------------------------------------------------------------------- generator


def test_normals_are_standard_normal():
    n, m = 200_000, 5  # 1e6 normals, in the per-sample layout the kernels use
    out = np.empty((n, m))
    M.normals_kernel(M.seed_key(7), n, m, out)
    x = out.ravel()
    assert abs(x.mean()) < 5 / math.sqrt(x.size)
    assert abs(x.var() - 1) < 5 * math.sqrt(2 / x.size)
    assert abs(np.mean(x**4) - 3) < 5 * math.sqrt(96 / x.size)
    assert sps.kstest(x[:300_000], "norm").pvalue > 1e-3
    # the tail beyond the ziggurat's base (r = 3.654) comes from a separate code path
    p = 2 * sps.norm.sf(M._ZIG_R)
    frac = np.mean(np.abs(x) > M._ZIG_R)
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


# ----------------------------------------------------------------------------- against JAX


@pytest.mark.parametrize("dist", [
    M.Disturbance(pose_sigma=(1e-3, 2e-3, 5e-4, 1e-2, 2e-2, 5e-3)),
    # large uniform angles: beyond the polynomial range (fallback to fastkin.forward) and
    # beyond the small-angle branch of the log
    M.Disturbance(pose_sigma=(1e-3,) * 3 + (0.2,) * 3, pose_dist="uniform"),
])
def test_pose_noise_twists_match_jax(default, dist):
    Q = feasible_pose(default, 1)
    smp = M.sample_errors(default, Q, dist, 2000, seed=3)
    assert smp.ok.all()
    ref = jax_twists(default, Q, smp.Q)
    np.testing.assert_allclose(smp.errors, ref, rtol=0, atol=1e-12)
    # the perturbation itself has the requested spread
    dQ = (smp.Q - Q).reshape(-1, default.n_platforms, 6)
    sig = np.asarray(dist.pose_sigma)
    np.testing.assert_allclose(dQ.std(axis=(0, 1)), sig, rtol=0.1)
    if dist.pose_dist == "uniform":
        assert np.all(np.abs(dQ) <= math.sqrt(3) * sig + 1e-15)
        assert np.any(np.abs(dQ[..., 3:]) > M._POLY_MAX)  # the fallback path was used


def test_actuator_noise_twists_match_jax(trio):
    Q = feasible_pose(trio, 2)
    d = M.Disturbance(leg_sigma=2e-4)
    smp = M.sample_errors(trio, Q, d, 1000, seed=4)
    assert smp.ok.all()
    # Newton matched the commanded legs (JAX leg lengths of the returned poses)
    L = np.asarray(jax.vmap(K.stack_legs, in_axes=(None, 0))(assemblers.stack_arrays(trio),
                                                             jnp.asarray(smp.Q)))
    np.testing.assert_allclose(L, smp.legs, rtol=0, atol=1e-11)
    Lnom = assemblers.leg_lengths(trio, Q)
    np.testing.assert_allclose((smp.legs - Lnom).std(), 2e-4, rtol=0.1)
    np.testing.assert_allclose(smp.errors, jax_twists(trio, Q, smp.Q), rtol=0, atol=1e-12)


@pytest.mark.parametrize("leg_sigma", [1e-4, 4e-3])
def test_vectorized_newton_matches_scalar_newton(trio, leg_sigma):
    """Actuator noise: the chord Newton vectorized over lanes (legs_newton_block) gives, sample by
    sample, the pose that fastkin's scalar backtracking Newton finds from the same legs; at 4 mm
    some lanes leave the chord path for the scalar one, and they agree too."""
    from assemblers import fastkin

    Q = feasible_pose(trio, 12)
    smp = M.sample_errors(trio, Q, M.Disturbance(leg_sigma=leg_sigma), 3000, seed=8)
    assert smp.ok.all()
    arrs = trio.arrays
    b, t = np.ascontiguousarray(arrs.b), np.ascontiguousarray(arrs.t)
    Qs = np.tile(Q, (smp.legs.shape[0], 1))
    err = np.empty((Qs.shape[0], trio.n_platforms))
    it = np.empty((Qs.shape[0], trio.n_platforms), dtype=np.int64)
    fastkin.from_legs_batch(b, t, np.ascontiguousarray(smp.legs), Qs, 1e-13, 50, err, it)
    assert (err <= 1e-13).all()
    np.testing.assert_allclose(smp.Q, Qs, rtol=0, atol=1e-10)


def test_vectorized_newton_flags_lanes_for_the_scalar_path(trio):
    """Lanes with NaN legs, or an angle change beyond the polynomials' range, or no convergence
    within the chord steps get fb = 1; the others converge to 1e-12 m on their own (a lane's
    result does not depend on its neighbours)."""
    from assemblers import fastkin

    Q = np.ascontiguousarray(feasible_pose(trio, 13))
    n, KB = trio.n_platforms, M.KB
    b, t = np.ascontiguousarray(trio.arrays.b), np.ascontiguousarray(trio.arrays.t)
    ang = Q.reshape(n, 6)[:, 3:]
    trig = np.ascontiguousarray(np.stack([np.cos(ang), np.sin(ang)], axis=-1).reshape(n, 6))
    L_nom = assemblers.leg_lengths(trio, Q)
    Jinv = np.empty((n, 6, 6))
    Jl, R = np.empty((6, 6)), np.empty((3, 3))
    for i in range(n):
        fastkin.platform_leg_jacobian(b[i], t[i], Q, 6 * i, Jl, R)
        Jinv[i] = np.linalg.inv(Jl)
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((6 * n, KB))
    Z[:, 1] = np.nan                       # NaN legs
    Z[:, 2] *= 300.0                       # 3 cm leg errors: large angles / slow convergence
    Z[:, 3] = 0.0                          # exactly the nominal legs

    def run(Z):
        D, fb = np.zeros(6 * n * KB), np.zeros(KB, dtype=np.uint8)
        M.legs_newton_block(b, t, Q, trig, L_nom, Jinv, 1e-4, np.ascontiguousarray(Z.ravel()),
                            1e-12, M.CHORD_ITERS, D, np.zeros(6 * KB), np.zeros(KB),
                            np.zeros(13 * KB), fb)
        return D.reshape(6 * n, KB), fb

    D, fb = run(Z)
    assert fb[1] == 1 and fb[2] == 1 and fb.sum() == 2
    np.testing.assert_array_equal(D[:, 3], 0.0)
    ok = np.flatnonzero(fb == 0)
    Qs = Q[None] + D[:, ok].T
    L = assemblers.leg_lengths(trio, Qs)
    target = L_nom[None] + 1e-4 * Z[:, ok].T.reshape(-1, n, 6)
    assert np.abs(L - target).max() <= 1.5e-12
    # the same lane alone, with other neighbours: the same bits
    Z2 = rng.standard_normal((6 * n, KB))
    Z2[:, 7] = Z[:, 7]
    D2, _ = run(Z2)
    np.testing.assert_array_equal(D2[:, 7], D[:, 7])


def test_joint_errors_with_legs_and_pose_match_jax(trio):
    Q = feasible_pose(trio, 3)
    d = M.Disturbance(pose_sigma=(1e-4,) * 6, leg_sigma=1e-4, joint_sigma=2e-4)
    smp = M.sample_errors(trio, Q, d, 300, seed=8)
    assert smp.ok.all()
    arrs = trio.arrays
    assert np.abs(smp.b - arrs.b).std() > 1e-4 and np.abs(smp.t - arrs.t).std() > 1e-4
    # Newton with the perturbed joints matched the commanded legs: check on a run without the
    # pose noise (added after Newton); it draws the same legs and joints for the same seed
    d0 = M.Disturbance(leg_sigma=1e-4, joint_sigma=2e-4)
    s0 = M.sample_errors(trio, Q, d0, 300, seed=8)
    np.testing.assert_array_equal(s0.b, smp.b)
    np.testing.assert_array_equal(s0.legs, smp.legs)

    def legs_one(b, t, Qv):
        a = StackArrays(b=b, t=t, T_mount=arrs.T_mount, T_after=arrs.T_after)
        return K.stack_legs(a, Qv)

    L = np.asarray(jax.vmap(legs_one)(jnp.asarray(s0.b), jnp.asarray(s0.t), jnp.asarray(s0.Q)))
    np.testing.assert_allclose(L, s0.legs, rtol=0, atol=1e-11)
    # the geometry perturbation does not change the FK chain: twists from Q alone
    np.testing.assert_allclose(smp.errors, jax_twists(trio, Q, smp.Q), rtol=0, atol=1e-12)
    np.testing.assert_allclose(s0.errors, jax_twists(trio, Q, s0.Q), rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- first order


def _check_first_order(asm, Q, d, n, seed):
    st = M.simulate(asm, Q, d, n, seed=seed)
    pred = M.first_order_mean_sq(asm, Q, d)
    assert st.n == n and st.n_failed == 0
    z = (st.mean_sq_weighted - pred) / st.sem_sq_weighted
    assert abs(z) < 5, (st.mean_sq_weighted, pred, st.sem_sq_weighted)
    # and the standard error is small enough for this to mean something
    assert st.sem_sq_weighted < 0.01 * pred
    return st, pred


@pytest.mark.parametrize("dist_name", ["gaussian", "uniform"])
def test_first_order_link_pose_noise(default, dist_name):
    """SPEC: E||W_out e||^2 -> ||W_out J_Q W_in||_F^2 for small zero-mean pose noise."""
    Q = feasible_pose(default, 4)
    sig = np.array([1.0, 2.0, 0.5, 3.0, 1.0, 2.0]) * 1e-6  # m, rad: second order negligible
    d = M.Disturbance(pose_sigma=sig, pose_dist=dist_name)
    _, pred = _check_first_order(default, Q, d, 200_000, seed=11)
    # the prediction is the weighted Frobenius norm of J_Q (independent recomputation)
    J = assemblers.jacobian(default, Q, wrt="pose")
    W_in = np.tile(sig, default.n_platforms)
    W_out = default.sensitivity.w_out
    assert pred == pytest.approx(np.linalg.norm(W_out[:, None] * J * W_in) ** 2, rel=1e-12)


def test_first_order_link_actuator_noise(trio):
    """SPEC: with leg noise of std sigma, E||W_out e||^2 -> ||W_out J_L sigma||_F^2 (trio has
    length_scale 0.1 m and sigma_leg 1e-4 m: the config's own cost, squared)."""
    Q = feasible_pose(trio, 5)
    sigma = trio.sensitivity.sigma_leg
    d = M.Disturbance(leg_sigma=sigma)
    st, pred = _check_first_order(trio, Q, d, 100_000, seed=12)
    assert st.length_scale == trio.sensitivity.length_scale == 0.1
    cost = assemblers.sensitivity(trio, Q, wrt="legs")
    assert pred == pytest.approx(cost**2, rel=1e-10)


# ----------------------------------------------------------------------------- threads


def test_same_stats_on_one_and_two_threads(trio):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs NUMBA_NUM_THREADS >= 2")
    Q = feasible_pose(trio, 6)
    before = numba.get_num_threads()
    out = {}
    try:
        for th in (1, 2):
            numba.set_num_threads(th)
            out[th] = (M.simulate(trio, Q, M.Disturbance(pose_sigma=(1e-4,) * 6), 300_000, 9,
                                  chunk_size=4096),
                       M.simulate(trio, Q, M.Disturbance(leg_sigma=1e-4), 20_000, 9,
                                  chunk_size=1024))
    finally:
        numba.set_num_threads(before)
    for a, b in zip(out[1], out[2]):
        for f in ("n", "n_failed", "rms_position", "rms_rotation", "mean_sq_weighted",
                  "sem_sq_weighted", "p50_position", "p99_rotation", "max_position"):
            assert getattr(a, f) == getattr(b, f), f
        np.testing.assert_array_equal(a.mean, b.mean)
        np.testing.assert_array_equal(a.cov, b.cov)
        np.testing.assert_array_equal(a.hist_position, b.hist_position)
        np.testing.assert_array_equal(a.hist_rotation, b.hist_rotation)


# ----------------------------------------------------------------------------- statistics


def test_streaming_stats_match_numpy(trio):
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


def test_memory_does_not_grow_with_samples(trio):
    Q = assemblers.home_pose(trio)
    d = M.Disturbance(pose_sigma=(1e-4,) * 6)
    M.simulate(trio, Q, d, 1000)
    peaks = []
    for n in (100_000, 2_000_000):
        tracemalloc.start()
        M.simulate(trio, Q, d, n)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.2 * peaks[0] + 100_000 and peaks[1] < 20e6


def test_failed_newton_samples_are_counted(trio):
    Q = assemblers.home_pose(trio)
    st = M.simulate(trio, Q, M.Disturbance(leg_sigma=0.08), 2000, seed=1)
    assert st.n_failed > 0 and st.n + st.n_failed == 2000
    assert np.isfinite(st.cov).all() and np.isfinite(st.rms_position)


def test_zero_mean_for_symmetric_small_noise(default):
    Q = feasible_pose(default, 8)
    st = M.simulate(default, Q, M.Disturbance(pose_sigma=(1e-6,) * 6), 100_000, seed=2)
    se = np.sqrt(np.diag(st.cov) / st.n)
    assert np.all(np.abs(st.mean) < 5 * se + 1e-15)


# ----------------------------------------------------------------------------- input errors


@pytest.mark.parametrize("kw", [dict(pose_sigma=(-1.0,) * 6), dict(pose_sigma=(1.0,) * 5),
                                dict(pose_sigma=(np.nan,) * 6), dict(pose_dist="cauchy"),
                                dict(leg_sigma=-1e-4), dict(joint_sigma=np.inf),
                                dict(leg_sigma="a")])
def test_bad_disturbance(kw):
    with pytest.raises(InputError):
        M.Disturbance(**kw)


def test_bad_simulate_arguments(trio):
    Q = assemblers.home_pose(trio)
    d = M.Disturbance(leg_sigma=1e-4)
    for kw in (dict(n_samples=0), dict(n_samples=1.5), dict(n_samples=float("nan")),
               dict(n_samples=10, seed=-1), dict(n_samples=10, chunk_size=0)):
        with pytest.raises(InputError):
            M.simulate(trio, Q, d, **kw)
    with pytest.raises(InputError):
        M.simulate(trio, Q[:-1], d, 10)
    with pytest.raises(InputError):
        M.simulate(trio, Q, M.Disturbance(pose_sigma=(1e-4,) * 12), 10)  # 6N = 18 expected
    with pytest.raises(InputError):
        M.simulate(trio, Q, d, 10, return_samples=M.MAX_RETURN_SAMPLES + 1)
    assert M.simulate(trio, Q, d, 10.0).n == 10  # 1e6-style floats are accepted
