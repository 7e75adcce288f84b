"""The Monte Carlo API (sims.robustness.montecarlo) through the exact kinematics.

Checks: the lane twists against the JAX kinematics sample by sample, for pose, actuator and
joint noise; the first-order link of docs/conventions.md (mean squared weighted error ->
||W_out J W_in||_F^2) for pose and actuator noise within 5 standard errors; identical statistics
on 1 and 2 threads; fixed memory; failed Newton samples counted; bad input.
"""

from __future__ import annotations

import math
import tracemalloc

import jax
import jax.numpy as jnp
import numba
import numpy as np
import pytest

import assemblers
from assemblers.errors import InputError
from assemblers.geometry import reference as geo_ref
from assemblers.kinematics import reference as kin_ref
from assemblers.model import StackArrays
from sims.robustness import lanes
from sims.robustness import montecarlo as M

_twists_cache = {}


def jax_twists(asm, Q0, Qs):
    """Reference twists (n, 6) of the stack poses ``Qs`` (n, 6N) against ``Q0`` with the JAX
    kinematics (per-sample joint errors do not enter the forward kinematics)."""
    arrs = assemblers.stack_arrays(asm)
    T0 = kin_ref.forward(arrs, jnp.asarray(Q0))
    key = asm.n_platforms
    if key not in _twists_cache:
        _twists_cache[key] = jax.jit(jax.vmap(
            lambda arrs, T0, Q: geo_ref.twist_between(T0, kin_ref.forward(arrs, Q)),
            in_axes=(None, None, 0)))
    return np.asarray(_twists_cache[key](arrs, T0, jnp.asarray(Qs)))


# ----------------------------------------------------------------------------- against JAX


@pytest.mark.parametrize("dist", [
    M.Disturbance(pose_sigma=(1e-3, 2e-3, 5e-4, 1e-2, 2e-2, 5e-3)),
    # large uniform angles: beyond the polynomial range (fallback to kinematics.kernels.forward) and
    # beyond the small-angle branch of the log
    M.Disturbance(pose_sigma=(1e-3,) * 3 + (0.2,) * 3, pose_dist="uniform"),
])
def test_pose_noise_twists_match_jax(default_asm, feasible_pose, dist):
    Q = feasible_pose(default_asm, 1)
    smp = M.sample_errors(default_asm, Q, dist, 2000, seed=3)
    assert smp.ok.all()
    ref = jax_twists(default_asm, Q, smp.Q)
    np.testing.assert_allclose(smp.errors, ref, rtol=0, atol=1e-12)
    # the perturbation itself has the requested spread
    dQ = (smp.Q - Q).reshape(-1, default_asm.n_platforms, 6)
    sig = np.asarray(dist.pose_sigma)
    np.testing.assert_allclose(dQ.std(axis=(0, 1)), sig, rtol=0.1)
    if dist.pose_dist == "uniform":
        assert np.all(np.abs(dQ) <= math.sqrt(3) * sig + 1e-15)
        assert np.any(np.abs(dQ[..., 3:]) > lanes.POLY_MAX)  # the fallback path was used


def test_actuator_noise_twists_match_jax(trio, feasible_pose):
    Q = feasible_pose(trio, 2)
    d = M.Disturbance(leg_sigma=2e-4)
    smp = M.sample_errors(trio, Q, d, 1000, seed=4)
    assert smp.ok.all()
    # Newton matched the commanded legs (JAX leg lengths of the returned poses)
    L = np.asarray(jax.vmap(kin_ref.stack_legs, in_axes=(None, 0))(assemblers.stack_arrays(trio),
                                                             jnp.asarray(smp.Q)))
    np.testing.assert_allclose(L, smp.legs, rtol=0, atol=1e-11)
    Lnom = assemblers.leg_lengths(trio, Q)
    np.testing.assert_allclose((smp.legs - Lnom).std(), 2e-4, rtol=0.1)
    np.testing.assert_allclose(smp.errors, jax_twists(trio, Q, smp.Q), rtol=0, atol=1e-12)


def test_joint_errors_with_legs_and_pose_match_jax(trio, feasible_pose):
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
        return kin_ref.stack_legs(a, Qv)

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
def test_first_order_link_pose_noise(default_asm, feasible_pose, dist_name):
    """docs/conventions.md: E||W_out e||^2 -> ||W_out J_Q W_in||_F^2 for small zero-mean pose noise."""
    Q = feasible_pose(default_asm, 4)
    sig = np.array([1.0, 2.0, 0.5, 3.0, 1.0, 2.0]) * 1e-6  # m, rad: second order negligible
    d = M.Disturbance(pose_sigma=sig, pose_dist=dist_name)
    _, pred = _check_first_order(default_asm, Q, d, 200_000, seed=11)
    # the prediction is the weighted Frobenius norm of J_Q (independent recomputation)
    J = assemblers.jacobian(default_asm, Q, wrt="pose")
    W_in = np.tile(sig, default_asm.n_platforms)
    W_out = default_asm.sensitivity.w_out
    assert pred == pytest.approx(np.linalg.norm(W_out[:, None] * J * W_in) ** 2, rel=1e-12)


def test_first_order_link_actuator_noise(trio, feasible_pose):
    """docs/conventions.md: with leg noise of std sigma, E||W_out e||^2 -> ||W_out J_L sigma||_F^2 (trio has
    length_scale 0.1 m and sigma_leg 1e-4 m: the config's own cost, squared)."""
    Q = feasible_pose(trio, 5)
    sigma = trio.sensitivity.sigma_leg
    d = M.Disturbance(leg_sigma=sigma)
    st, pred = _check_first_order(trio, Q, d, 100_000, seed=12)
    assert st.length_scale == trio.sensitivity.length_scale == 0.1
    cost = assemblers.sensitivity(trio, Q, wrt="legs")
    assert pred == pytest.approx(cost**2, rel=1e-10)


# ----------------------------------------------------------------------------- threads


def test_same_stats_on_one_and_two_threads(trio, feasible_pose):
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


def test_zero_mean_for_symmetric_small_noise(default_asm, feasible_pose):
    Q = feasible_pose(default_asm, 8)
    st = M.simulate(default_asm, Q, M.Disturbance(pose_sigma=(1e-6,) * 6), 100_000, seed=2)
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
