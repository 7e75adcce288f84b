"""Tool compliance and deflection against the finite-difference deflection of the elastic stack:
legs as springs (rest length minus f / k), settled by a fixed point through from_legs."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
from statics_support import poses, with_masses

import assemblers as A
from assemblers.errors import InputError
from assemblers.geometry.api import twist_between
from assemblers.kinematics.api import stack_arrays
from assemblers.statics import reference as R
from assemblers.statics.loads import LoadArrays, load_arrays


def settle(asm, Q, wrench=None, iters=30):
    """The stack pose where every leg, a spring of rest length L(Q), has shortened by its force
    over its stiffness: ``L = L_rest - f(Q(L)) / k`` (each iterate through from_legs)."""
    L_rest = A.leg_lengths(asm, Q)
    invk = 1.0 / np.array([p.leg_stiffness for p in asm.platforms])[:, None]
    Qx = np.array(Q)
    for _ in range(iters):
        f = A.leg_forces(asm, Qx, wrench=wrench)
        Qx = A.from_legs(asm, L_rest - f * invk, initial=Qx)
    return Qx


@pytest.mark.parametrize("name", ["duo", "trio", "assembler"])
def test_compliance_is_the_deflection_per_wrench(name):
    """Without gravity, a tool wrench w deflects the settled elastic stack by C w to first
    order, for every direction of w: the relative error (the deflection changing the lever
    arms, of the order of |d| / plate size) shrinks with the wrench."""
    asm = with_masses(A.load_config(name), gravity=(0.0, 0.0, 0.0), stiffness=2e6)
    Q = poses(asm, 1, 7)[0]
    C = A.compliance(asm, Q)
    np.testing.assert_allclose(C, C.T, atol=1e-15)
    assert np.all(np.linalg.eigvalsh(C) > 0)
    T0 = A.forward_kinematics(asm, Q)
    rng = np.random.default_rng(1)
    for w in np.vstack([np.eye(6) * [20, 20, 20, 2, 2, 2], rng.normal(size=(2, 6)) * 10]):
        errs = []
        for eps in (1.0, 0.1):
            d = twist_between(T0, A.forward_kinematics(asm, settle(asm, Q, wrench=eps * w)))
            errs.append(np.linalg.norm(d - C @ (eps * w)) / np.linalg.norm(C @ (eps * w)))
        assert errs[0] < 1e-3 and errs[1] < errs[0] / 5, (w, errs)


def test_deflection_under_gravity_and_its_scaling():
    """The deflection under the configured loads is the settled elastic pose's (first order in
    1/k: the error shrinks with the strain), and it is -J_L (f / k)."""
    base = A.load_config("assembler_loaded")
    Q = poses(base, 1, 3)[0]
    errs = []
    for scale in (1.0, 10.0):
        asm = dataclasses.replace(base, platforms=tuple(
            dataclasses.replace(p, leg_stiffness=p.leg_stiffness * scale) for p in base.platforms))
        d = A.deflection(asm, Q)
        true = twist_between(A.forward_kinematics(asm, Q), A.forward_kinematics(asm, settle(asm, Q)))
        errs.append(np.linalg.norm(d - true) / np.linalg.norm(true))
        k = np.repeat([p.leg_stiffness for p in asm.platforms], 6)
        f = A.leg_forces(asm, Q).reshape(-1)
        np.testing.assert_allclose(d, -A.jacobian(asm, Q, "legs") @ (f / k), atol=1e-15)
    # first order: ~1 % at the prototype's stiffness (0.5 mm), ten times less at 10x the stiffness
    assert errs[0] < 2e-2 and errs[1] < errs[0] / 5, errs


def test_facade_matches_jax_and_batches():
    asm = A.load_config("assembler_loaded")
    Qs = poses(asm, 3, 9)
    loads = LoadArrays(*(jnp.asarray(x) for x in load_arrays(asm)))
    arrs = stack_arrays(asm)
    C = A.compliance(asm, Qs)
    d = A.deflection(asm, Qs)
    assert C.shape == (3, 6, 6) and d.shape == (3, 6)
    for k, Q in enumerate(Qs):
        np.testing.assert_allclose(C[k], np.asarray(R.compliance(arrs, loads, Q)), atol=1e-16)
        np.testing.assert_allclose(d[k], np.asarray(R.deflection(arrs, loads, Q)), atol=1e-16)
        np.testing.assert_allclose(A.compliance(asm, Q), C[k], atol=1e-18)


def test_compliance_needs_a_stiffness():
    asm = A.load_config("assembler")
    with pytest.raises(InputError, match="leg_stiffness"):
        A.compliance(asm, A.home_pose(asm))
    with pytest.raises(InputError, match="leg_stiffness"):
        A.deflection(asm, A.home_pose(asm))
