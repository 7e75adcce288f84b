"""The NumPy facade (assemblers.kinematics.api): batches equal single poses, its one backend rule
(small batches never start threads; large ones give the same bits on threads), bad input."""

import numpy as np
import pytest
from conftest import random_poses

import assemblers as A
from assemblers.kinematics import api
from assemblers.kinematics import kernels as kk


def test_from_legs_reports_non_convergence(default_asm):
    # Every leg at 1 cm: no pose of this layout has such legs; Newton cannot converge.
    L = np.full((default_asm.n_platforms, 6), 0.01)
    with pytest.raises(A.ConvergenceError, match="did not converge.*platform 1"):
        A.from_legs(default_asm, L)


def test_from_legs_rejects_bad_input(default_asm):
    L = np.full((default_asm.n_platforms, 6), 0.26)
    L[1, 2] = np.nan
    with pytest.raises(A.InputError, match=r"L: non-finite value nan at index \(1, 2\)"):
        A.from_legs(default_asm, L)
    with pytest.raises(A.InputError, match="expected shape"):
        A.from_legs(default_asm, L[:2])


def test_batched_equals_single(any_asm):
    rng = np.random.default_rng(5)
    Qs = random_poses(any_asm, rng, 4)
    T_b = A.forward_kinematics(any_asm, Qs)
    L_b = A.leg_lengths(any_asm, Qs)
    J_b = A.jacobian(any_asm, Qs)
    JL_b = A.jacobian(any_asm, Qs, "legs")
    S_b = A.sensitivity(any_asm, Qs)
    ang_b = A.joint_angles(any_asm, Qs)
    Q_back = A.from_legs(any_asm, L_b)
    for k, Q in enumerate(Qs):
        np.testing.assert_allclose(T_b[k], A.forward_kinematics(any_asm, Q), atol=1e-15)
        np.testing.assert_allclose(L_b[k], A.leg_lengths(any_asm, Q), atol=1e-15)
        np.testing.assert_allclose(J_b[k], A.jacobian(any_asm, Q), atol=1e-14)
        np.testing.assert_allclose(JL_b[k], A.jacobian(any_asm, Q, "legs"), atol=1e-12)
        np.testing.assert_allclose(ang_b[k], A.joint_angles(any_asm, Q), atol=1e-14)
        assert abs(S_b[k] - A.sensitivity(any_asm, Q)) < 1e-12
        np.testing.assert_allclose(Q_back[k], A.from_legs(any_asm, L_b[k]), atol=1e-14)


def test_api_rejects_bad_Q(default_asm):
    with pytest.raises(A.InputError, match=r"Q: expected shape \(24,\) or \(B, 24\), got \(6,\)"):
        A.forward_kinematics(default_asm, np.zeros(6))
    Q = A.home_pose(default_asm)
    Q[5] = np.inf
    with pytest.raises(A.InputError, match=r"Q: non-finite value inf at index \(5,\)"):
        A.leg_lengths(default_asm, Q)
    with pytest.raises(A.InputError, match="wrt"):
        A.jacobian(default_asm, A.home_pose(default_asm), wrt="joints")


def _no_threads(*args, **kwargs):
    raise AssertionError("a parallel=True kernel was entered")


PARALLEL = ("forward_batch", "stack_frames_batch", "legs_batch", "joint_angles_batch", "jacobian_pose_batch",
            "jacobian_legs_batch", "from_legs_batch")


def test_single_poses_and_small_batches_never_enter_a_parallel_kernel(monkeypatch):
    """Every function of the facade, for one pose and for a batch just below PARALLEL_MIN: no
    ``*_batch`` (threaded) kernel is called (each is replaced by one that fails)."""
    asm = A.load_config("duo")
    for name in PARALLEL:
        monkeypatch.setattr(kk, name, _no_threads)
    rng = np.random.default_rng(0)
    for Q in (A.home_pose(asm), random_poses(asm, rng, api.PARALLEL_MIN - 1, scale=0.3)):
        A.forward_kinematics(asm, Q)
        api.stack_frames(asm, Q)
        L = A.leg_lengths(asm, Q)
        A.joint_angles(asm, Q)
        A.jacobian(asm, Q)
        A.jacobian(asm, Q, "legs")
        A.sensitivity(asm, Q)
        A.tool_pose(asm, Q)
        A.from_legs(asm, L)


def test_large_batches_run_on_threads_with_the_same_bits(monkeypatch):
    """At PARALLEL_MIN rows the threaded kernels run (each is called once), and they give the
    same bits as the serial ones (one compiled per-row code)."""
    asm = A.load_config("duo")
    Qs = random_poses(asm, np.random.default_rng(1), api.PARALLEL_MIN, scale=0.3)
    called = []
    for name in PARALLEL:
        real = getattr(kk, name)
        monkeypatch.setattr(kk, name, lambda *a, _real=real, _name=name: (called.append(_name),
                                                                          _real(*a)))
    par = [A.forward_kinematics(asm, Qs), A.leg_lengths(asm, Qs), A.joint_angles(asm, Qs),
           A.jacobian(asm, Qs), A.jacobian(asm, Qs, "legs"), *api.stack_frames(asm, Qs)]
    Q_back = A.from_legs(asm, par[1])
    assert sorted(called) == sorted(PARALLEL)
    monkeypatch.setattr(api, "PARALLEL_MIN", 10**9)
    ser = [A.forward_kinematics(asm, Qs), A.leg_lengths(asm, Qs), A.joint_angles(asm, Qs),
           A.jacobian(asm, Qs), A.jacobian(asm, Qs, "legs"), *api.stack_frames(asm, Qs)]
    for a, b in zip(par, ser, strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(Q_back, A.from_legs(asm, ser[1]))
