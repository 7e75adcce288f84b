"""The kinematics (the JAX reference and, through the public API, the Numba kernels) against
independent references: finite differences, autodiff, closed forms, round trips and invariants.
(Backend against backend: tests/twins.)"""

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import random_poses
from hypothesis import given
from hypothesis import strategies as st

import assemblers as A
from assemblers.geometry import reference as geo
from assemblers.geometry.api import pose_to_transform
from assemblers.kinematics import reference as kinematics


def twist(T0, T1):
    """Independent NumPy twist (SPEC): dp, and the rotation vector of R1 R0^T via scipy."""
    from scipy.spatial.transform import Rotation

    dth = Rotation.from_matrix(T1[:3, :3] @ T0[:3, :3].T).as_rotvec()
    return np.concatenate([T1[:3, 3] - T0[:3, 3], dth])


def fd_jacobian_pose(asm, Q, h=1e-6):
    T0 = A.forward_kinematics(asm, Q)
    J = np.empty((6, Q.size))
    for j in range(Q.size):
        e = np.zeros(Q.size)
        e[j] = h
        J[:, j] = (twist(T0, A.forward_kinematics(asm, Q + e))
                   - twist(T0, A.forward_kinematics(asm, Q - e))) / (2 * h)
    return J


def fd_jacobian_legs(asm, Q, h=1e-6):
    T0 = A.forward_kinematics(asm, Q)
    L = A.leg_lengths(asm, Q).reshape(-1)
    J = np.empty((6, L.size))
    for j in range(L.size):
        e = np.zeros(L.size)
        e[j] = h
        Qp = A.from_legs(asm, (L + e).reshape(-1, 6), initial=Q)
        Qm = A.from_legs(asm, (L - e).reshape(-1, 6), initial=Q)
        J[:, j] = (twist(T0, A.forward_kinematics(asm, Qp))
                   - twist(T0, A.forward_kinematics(asm, Qm))) / (2 * h)
    return J


def rel_err(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_jacobian_pose_matches_finite_differences(any_asm, seed):
    rng = np.random.default_rng(seed)
    for Q in random_poses(any_asm, rng, 2):
        assert rel_err(A.jacobian(any_asm, Q, "pose"), fd_jacobian_pose(any_asm, Q)) < 1e-8


@pytest.mark.parametrize("seed", [0, 1])
def test_jacobian_legs_matches_finite_differences(any_asm, seed):
    rng = np.random.default_rng(100 + seed)
    Q = random_poses(any_asm, rng, 1)[0]
    assert rel_err(A.jacobian(any_asm, Q, "legs"), fd_jacobian_legs(any_asm, Q)) < 1e-8


def test_analytic_jacobian_equals_autodiff(any_asm):
    rng = np.random.default_rng(7)
    arrs = A.stack_arrays(any_asm)
    for Q in random_poses(any_asm, rng, 5, scale=2.0):
        J_ad = np.asarray(kinematics.jacobian_pose_autodiff(arrs, jnp.asarray(Q)))
        np.testing.assert_allclose(A.jacobian(any_asm, Q), J_ad, atol=1e-12, rtol=0)


def test_leg_jacobian_equals_autodiff():
    asm = A.load_config("trio")
    rng = np.random.default_rng(3)
    Q = random_poses(asm, rng, 1)[0]
    for i in range(asm.n_platforms):
        b, t, q = asm.arrays.b[i], asm.arrays.t[i], jnp.asarray(Q[6 * i: 6 * i + 6])
        ad = np.asarray(jax_jacfwd(lambda q_, b=b, t=t: kinematics.platform_legs(b, t, q_))(q))
        np.testing.assert_allclose(np.asarray(kinematics.platform_leg_jacobian(b, t, q)), ad,
                                   atol=1e-13)


def jax_jacfwd(f):
    import jax

    return jax.jacfwd(f)


def test_autodiff_gradient_is_finite_at_zero_rotation(default_asm):
    """The twist's log map sits exactly at zero angle when differentiated at the nominal pose:
    the guarded branch must keep every entry finite (an arccos log would give NaN/inf)."""
    arrs = A.stack_arrays(default_asm)
    J = np.asarray(kinematics.jacobian_pose_autodiff(arrs, jnp.asarray(A.home_pose(default_asm))))
    assert np.isfinite(J).all()


def test_reverse_mode_gradient_is_finite_at_zero_rotation(default_asm):
    """Reverse mode through the log map at exactly zero angle (the IK's closest-pose objective
    sits there): every entry finite, and equal to forward mode."""
    import jax

    arrs = A.stack_arrays(default_asm)
    Q = jnp.asarray(A.home_pose(default_asm))
    T0 = kinematics.forward(arrs, Q)

    def f(Q2):
        return jnp.sum(geo.twist_between(T0, kinematics.forward(arrs, Q2)) ** 2)

    g_rev = np.asarray(jax.grad(f)(Q))
    g_fwd = np.asarray(jax.jacfwd(f)(Q))
    assert np.isfinite(g_rev).all()
    np.testing.assert_allclose(g_rev, g_fwd, atol=1e-15)


@given(st.integers(0, 2**31 - 1))
def test_pose_legs_pose_round_trip(seed):
    asm = A.load_config("trio")
    Q = random_poses(asm, np.random.default_rng(seed), 1)[0]
    L = A.leg_lengths(asm, Q)
    Q2 = A.from_legs(asm, L)  # from home
    np.testing.assert_allclose(Q2, Q, atol=1e-10, rtol=0)
    np.testing.assert_allclose(A.leg_lengths(asm, Q2), L, atol=1e-12, rtol=0)


def test_from_legs_jax_reference_agrees_with_numba(any_asm):
    rng = np.random.default_rng(11)
    arrs = A.stack_arrays(any_asm)
    for Q in random_poses(any_asm, rng, 3):
        L = A.leg_lengths(any_asm, Q)
        Qj, err, _, ok = kinematics.from_legs_stack(arrs, jnp.asarray(L),
                                                     jnp.asarray(A.home_pose(any_asm)), 1e-12, 50)
        assert bool(np.all(ok)) and float(np.max(err)) <= 1e-12
        np.testing.assert_allclose(np.asarray(Qj), A.from_legs(any_asm, L), atol=1e-11)


@given(st.integers(0, 2**31 - 1), st.sampled_from(["duo", "trio", "assembler"]))
def test_stack_fk_is_product_of_platform_transforms(seed, name):
    """Independent NumPy composition of SPEC's chain T_mount T(q1) T_if1 ... T(qN) T_tool."""
    asm = A.load_config(name)
    Q = random_poses(asm, np.random.default_rng(seed), 1, scale=2.0)[0]
    T = asm.T_mount.copy()
    for i in range(asm.n_platforms):
        T = T @ pose_to_transform(Q[6 * i: 6 * i + 6])
        T = T @ (asm.T_interfaces[i] if i < asm.n_platforms - 1 else asm.T_tool)
    np.testing.assert_allclose(A.forward_kinematics(asm, Q), T, atol=1e-14)


@given(st.floats(0.05, 0.4), st.floats(0.05, 0.4), st.floats(0.0, 40.0), st.floats(0.0, 40.0))
def test_yaw_symmetric_platform_has_equal_legs_at_home(rb, rt, ab, at):
    """SPEC's parametric layout is 3-fold symmetric with mirror pairs: all six legs are equal at
    any pure-z pose, and the default home puts each at mid-stroke exactly (closed form)."""
    from assemblers.model.config import default_home_height, parametric_layout

    b, t = parametric_layout(rb, rt, ab, at)
    dxy = np.linalg.norm(t[:, :2] - b[:, :2], axis=1)
    leg_mid = dxy.max() + 0.1
    z = default_home_height(b, t, leg_mid - 0.05, leg_mid + 0.05)
    legs = np.asarray(kinematics.platform_legs(b, t, jnp.array([0, 0, z, 0, 0, 0.0])))
    np.testing.assert_allclose(legs, leg_mid, rtol=1e-13)


def test_home_joint_angles_closed_form(default_asm):
    """Planar joints, pure z pose: each leg's angle to both normals is atan(dxy / z)."""
    p = default_asm.platforms[0]
    dxy = np.linalg.norm(p.top_joints[:, :2] - p.base_joints[:, :2], axis=1)
    expected = np.arctan2(dxy, p.home_height)
    ang = A.joint_angles(default_asm, A.home_pose(default_asm))
    for i in range(default_asm.n_platforms):
        np.testing.assert_allclose(ang[i, :, 0], expected, atol=1e-14)
        np.testing.assert_allclose(ang[i, :, 1], expected, atol=1e-14)


def test_home_jacobian_closed_form():
    """At home with no rotation, identity mount/interfaces: J_Q's block of platform i is
    [[I, -hat(p_tool - o_i)], [0, I]] with o_i the top-frame origin (z offsets only)."""
    asm = A.load_config("duo")
    Q = A.home_pose(asm)
    J = A.jacobian(asm, Q)
    z_tool = A.forward_kinematics(asm, Q)[2, 3]
    z_top1 = asm.platforms[0].home_height
    for i, z_o in enumerate([z_top1, z_tool - 0.10]):
        lever = z_tool - z_o
        block = np.zeros((6, 6))
        block[:3, :3] = np.eye(3)
        block[3:, 3:] = np.eye(3)
        block[0, 4], block[1, 3] = lever, -lever
        np.testing.assert_allclose(J[:, 6 * i: 6 * i + 6], block, atol=1e-14)


def test_sensitivity_is_weighted_frobenius_norm():
    asm = A.load_config("trio")  # leg mode, length_scale 0.1, sigma_leg 1e-4
    Q = random_poses(asm, np.random.default_rng(1), 1)[0]
    J = A.jacobian(asm, Q, "legs")
    W_out = np.diag([1, 1, 1, 0.1, 0.1, 0.1])
    expected = np.linalg.norm(W_out @ J @ (1e-4 * np.eye(18)), "fro")
    assert A.sensitivity(asm, Q) == pytest.approx(expected, rel=1e-13)
    assert A.sensitivity(asm, Q, wrt="pose") == pytest.approx(
        np.linalg.norm(W_out @ A.jacobian(asm, Q) @ np.eye(18)), rel=1e-13)
