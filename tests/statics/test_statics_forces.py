"""Leg forces (assemblers.leg_forces) against independent references: the equilibrium of every
rigid body built by hand, finite differences of the potential energy through the legs (virtual
work, f = dV/dL = -J_L^T w), and the JAX closed form (values and, for the IK, derivatives)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from statics_support import bodies, gravity_potential, poses, with_masses

import assemblers as A
from assemblers.errors import InputError
from assemblers.geometry.api import twist_between
from assemblers.kinematics import kernels as kk
from assemblers.kinematics.api import kernel_arrays, stack_arrays
from assemblers.statics import kernels as sk
from assemblers.statics import reference as R
from assemblers.statics.loads import LoadArrays, load_arrays

STACKS = ["single", "duo", "trio", "assembler"]


@pytest.mark.parametrize("name", STACKS)
def test_every_plate_is_in_equilibrium(name):
    """Sum of forces and of moments on every rigid body = 0 to 1e-9 (N, N m): the leg forces of
    the platform below push it (+f u at its top joints), those of the platform above pull it
    back (-f u at their base joints), gravity acts on its masses, the payload and the tool
    wrench on the last one; built in NumPy from the forward kinematics' frames alone."""
    asm = with_masses(A.load_config(name), gravity=(0.3, -0.5, -9.81))
    wrench = np.array([3.0, -2.0, 5.0, 0.4, -0.3, 0.2])
    for Q in poses(asm, 4, 1):
        F = A.leg_forces(asm, Q, wrench=wrench)
        bs, _, _, T_tool = bodies(asm, Q)
        g = asm.gravity
        for j, (masses, alpha, beta, beta_next) in enumerate(bs):
            pts, fs = [], []
            u = (alpha - beta) / np.linalg.norm(alpha - beta, axis=1)[:, None]
            pts += list(alpha)
            fs += list(F[j][:, None] * u)
            if beta_next is not None:
                alpha_next = bs[j + 1][1]
                un = (alpha_next - beta_next) / np.linalg.norm(alpha_next - beta_next, axis=1)[:, None]
                pts += list(beta_next)
                fs += list(-F[j + 1][:, None] * un)
            pts += [x for _, x in masses]
            fs += [m * g for m, _ in masses]
            moment = np.zeros(3)
            if j == len(bs) - 1:
                pts.append(T_tool[:3, 3])
                fs.append(wrench[:3])
                moment += wrench[3:]
            total = np.sum(fs, axis=0)
            moment += np.sum(np.cross(pts, fs), axis=0)
            assert np.abs(total).max() < 1e-9 and np.abs(moment).max() < 1e-9, (j, total, moment)
        assert np.abs(F).max() > 1.0  # a real load was carried


@pytest.mark.parametrize("name", ["duo", "trio", "assembler"])
def test_forces_are_the_derivative_of_the_potential(name):
    """Virtual work: f_ik = dV/dL_ik with the other legs held (V the potential energy of
    gravity and of the tool wrench, -F . dp - M . dtheta), by central differences through
    from_legs: the same as f = -J_L^T w for a tool wrench."""
    asm = with_masses(A.load_config(name), gravity=(0.5, 0.2, -9.81))
    wrench = np.array([2.0, 1.0, -4.0, 0.3, 0.1, -0.2])
    Q = poses(asm, 1, 2)[0]
    T0 = A.forward_kinematics(asm, Q)
    L0 = A.leg_lengths(asm, Q)
    F = A.leg_forces(asm, Q, wrench=wrench)

    def V(L):
        Qx = A.from_legs(asm, L, initial=Q)
        tw = twist_between(T0, A.forward_kinematics(asm, Qx))
        return gravity_potential(asm, Qx) - wrench[:3] @ tw[:3] - wrench[3:] @ tw[3:]

    h = 1e-6
    for i in range(asm.n_platforms):
        for k in range(6):
            Lp, Lm = L0.copy(), L0.copy()
            Lp[i, k] += h
            Lm[i, k] -= h
            fd = (V(Lp) - V(Lm)) / (2 * h)
            assert fd == pytest.approx(F[i, k], rel=1e-6, abs=1e-6)
    # the tool wrench alone: f = -J_L^T w
    asm0 = dataclasses.replace(asm, gravity=np.zeros(3))
    F_w = A.leg_forces(asm0, Q, wrench=wrench)
    np.testing.assert_allclose(F_w.reshape(-1), -A.jacobian(asm0, Q, "legs").T @ wrench, atol=1e-10)


def test_compression_is_positive():
    """An upright stack holding its own weight pushes on every leg (compression > 0), more on
    the lower platforms; no mass or no gravity: no force."""
    asm = with_masses(A.load_config("assembler"))
    F = A.leg_forces(asm, A.home_pose(asm))
    assert np.all(F > 0)
    assert np.all(np.diff(F.sum(axis=1)) < 0)
    none = dataclasses.replace(asm, gravity=np.zeros(3))
    assert np.abs(A.leg_forces(none, A.home_pose(asm))).max() == 0.0
    plain = A.load_config("assembler")
    assert np.abs(A.leg_forces(plain, A.home_pose(plain))).max() == 0.0


def test_payload_and_wrench_arguments():
    """``payload`` replaces the config's (dict, Payload or (mass, com)); forces are linear in
    the loads; bad arguments are InputError naming them."""
    asm = with_masses(A.load_config("trio"))
    Q = poses(asm, 1, 3)[0]
    base = A.leg_forces(asm, Q, payload={"mass": 0.0})
    one = A.leg_forces(asm, Q, payload={"mass": 1.0, "com": [0.0, 0.0, 0.0]})
    two = A.leg_forces(asm, Q, payload=(2.0, [0.0, 0.0, 0.0]))
    np.testing.assert_allclose(two - base, 2 * (one - base), atol=1e-10)
    w = np.array([0.0, 0.0, -9.81, 0.0, 0.0, 0.0])  # 1 kg at the tool point, as a wrench
    np.testing.assert_allclose(A.leg_forces(asm, Q, payload={"mass": 0.0}, wrench=w), one,
                               atol=1e-10)
    for bad, what in (({"mass": -1.0}, "payload"), ({"mas": 1.0}, "payload"),
                      ("heavy", "payload")):
        with pytest.raises(InputError, match=what):
            A.leg_forces(asm, Q, payload=bad)
    with pytest.raises(InputError, match="wrench"):
        A.leg_forces(asm, Q, wrench=[1.0, 2.0])
    with pytest.raises(InputError, match="wrench"):
        A.leg_forces(asm, Q, wrench=[np.nan] * 6)


@pytest.mark.parametrize("name", ["single", "duo", "trio", "assembler_loaded"])
def test_numba_matches_jax_closed_form(name):
    """The Numba kernel (single poses, serial rows, threaded batch) against the JAX closed form;
    its exact derivative dF/dQ (the IK's) against forward-mode autodiff of the same."""
    asm = A.load_config(name)
    if asm.platforms[0].top_mass == 0:
        asm = with_masses(asm, gravity=(0.4, -0.3, -9.81))
    wrench = np.array([1.0, -2.0, 3.0, 0.1, 0.2, -0.3])
    Qs = poses(asm, 5, 4)
    loads = load_arrays(asm, wrench=wrench)
    loads_j = LoadArrays(*(jnp.asarray(x) for x in loads))
    arrs = stack_arrays(asm)
    ref = np.stack([np.asarray(R.leg_forces(arrs, loads_j, Q)) for Q in Qs])
    np.testing.assert_allclose(A.leg_forces(asm, Qs, wrench=wrench), ref, atol=1e-11)
    np.testing.assert_allclose(A.leg_forces(asm, Qs[0], wrench=wrench), ref[0], atol=1e-11)
    big = np.repeat(Qs, 500, axis=0)  # above PARALLEL_MIN: the threaded driver, same bits
    np.testing.assert_array_equal(A.leg_forces(asm, big, wrench=wrench)[::500],
                                  A.leg_forces(asm, Qs, wrench=wrench))
    ka = kernel_arrays(asm)
    n = asm.n_platforms
    jac = jax.jit(jax.jacfwd(lambda Q: R.leg_forces(arrs, loads_j, Q).reshape(-1)))
    for Q in Qs:
        J, bases, tops, T = np.empty((6, 6 * n)), np.empty((n, 4, 4)), np.empty((n, 4, 4)), np.empty((4, 4))
        kk.jacobian_pose(ka.T_mount, ka.T_after, Q, J, bases, tops, T, np.empty((4, 4)))
        bufs = (np.empty((n, 6)), np.empty((n, 6, 6)), np.empty((n, 6, 3)), np.empty((n, 6, 3)),
                np.empty((n, 6)), np.empty(n), np.empty((n, 3)))
        assert sk.forces(ka.b, ka.t, loads, bases, tops, T, *bufs)
        dF = np.empty((6 * n, 6 * n))
        sk.forces_jacobian(loads, J, T, *bufs, dF)
        d_ref = np.asarray(jac(jnp.asarray(Q)))
        np.testing.assert_allclose(dF, d_ref, rtol=0, atol=1e-11 * np.abs(d_ref).max())


def test_potential_reference_matches_hand_built():
    """The JAX potential (what the IK's user criteria may use) equals the hand-built one."""
    asm = with_masses(A.load_config("trio"), gravity=(0.2, 0.1, -9.7))
    loads = LoadArrays(*(jnp.asarray(x) for x in load_arrays(asm)))
    for Q in poses(asm, 3, 5):
        assert float(R.potential(stack_arrays(asm), loads, Q)) == pytest.approx(
            gravity_potential(asm, Q), rel=1e-12)
