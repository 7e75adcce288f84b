"""The calibration's derivatives against finite differences of independent code.

* Each platform's pose from its legs, differentiated implicitly (JAX, ``platform_pose``'s
  rule), against central differences of the Numba kernels' own Newton solve
  (``assemblers.kinematics.kernels.from_legs_rows``) with perturbed joints and legs.
* The identification Jacobian (JAX forward mode through the measurement model) against
  central differences of the residuals computed the public way: the perturbed Assembler built
  through the config loader, its poses by the facade's ``from_legs`` in commanded lengths,
  its frames by ``stack_frames``, the error twist by ``geometry.api.twist_between``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import assemblers as A
from assemblers.calibration import params as P
from assemblers.calibration.core import evaluator, model_rows
from assemblers.calibration.jaxmodel import platform_pose
from assemblers.calibration.poses import random_poses
from assemblers.geometry.api import pose_to_transform, twist_between
from assemblers.kinematics import kernels as kk
from assemblers.kinematics.api import stack_frames


def _kernel_pose(b, t, L, q0):
    """One platform's pose from geometric legs by the Numba kernel (tol 1e-14 m)."""
    Q = np.array(q0, dtype=np.float64)[None].copy()
    err, it = np.empty((1, 1)), np.empty((1, 1), dtype=np.int64)
    kk.from_legs_rows(np.array(b[None]), np.array(t[None]), np.array(L[None, None]), Q, 1e-14, 50,
                      err, it, 0, 1)
    assert err[0, 0] <= 1e-14
    return Q[0]


def test_implicit_from_legs_derivative_against_finite_differences():
    asm = A.load_config("trio")
    p = asm.platforms[1]  # explicit joints, top joints below the plate
    rng = np.random.default_rng(3)
    b = p.base_joints + rng.normal(scale=1e-3, size=(6, 3))
    t = p.top_joints + rng.normal(scale=1e-3, size=(6, 3))
    q = p.home_pose + np.array([0.01, -0.015, 0.01, 0.05, -0.04, 0.08])
    L = np.linalg.norm(q[:3] + t @ pose_to_transform(q)[:3, :3].T - b, axis=1)
    q0 = p.home_pose
    jb, jt, jL = jax.jit(jax.jacfwd(platform_pose, argnums=(0, 1, 2)))(
        jnp.asarray(b), jnp.asarray(t), jnp.asarray(L), jnp.asarray(q0))
    assert np.allclose(platform_pose(b, t, L, q0), q, atol=1e-12)
    h = 1e-6
    for arr, jac in ((b, jb), (t, jt), (L, jL)):
        for idx in np.ndindex(arr.shape):
            args = {"b": b, "t": t, "L": L}
            plus, minus = arr.copy(), arr.copy()
            plus[idx] += h
            minus[idx] -= h
            name = "b" if arr is b else "t" if arr is t else "L"
            qp = _kernel_pose(**{**args, name: plus}, q0=q0)
            qm = _kernel_pose(**{**args, name: minus}, q0=q0)
            fd = (qp - qm) / (2 * h)
            got = np.asarray(jac)[(slice(None),) + idx]
            assert np.allclose(got, fd, rtol=1e-6, atol=1e-7), (name, idx, got, fd)


def _facade_residuals(nominal, p, legs, T_meas_tool):
    """Tool error twists (M, 6) of the model ``p`` the public way (see the module docs)."""
    model = P.assembler_from_vector(nominal, p).asm
    Q = A.from_legs(model, legs, initial=None, tol=1e-14)
    _, _, T_tool = stack_frames(model, Q)
    return twist_between(T_tool, T_meas_tool)


@pytest.mark.parametrize("name", ["duo"])
def test_identification_jacobian_against_finite_differences(name):
    asm = A.load_config(name)
    n = asm.n_platforms
    rng = np.random.default_rng(11)
    Q = random_poses(asm, 8, rng)
    rows = model_rows(asm, Q)
    p = P.nominal_vector(asm) + P.prior_vector(n) * rng.standard_normal(P.n_params(n))
    # the "measurements": the nominal model's tool poses moved a little, so residuals are not 0
    T_meas = rows.T_meas.copy()
    T_meas[:, 0] = T_meas[:, 0] @ pose_to_transform([2e-4, -1e-4, 3e-4, 1e-3, -2e-3, 1.5e-3])
    r, J = evaluator(asm).evaluate(p, rows.L, rows.q0, T_meas)
    # values: the JAX model against the facade
    assert np.allclose(r[:, 0], _facade_residuals(asm, p, rows.L, T_meas[:, 0]), atol=1e-11)
    h = 1e-6
    for j in range(P.n_params(n)):
        e = np.zeros(P.n_params(n))
        e[j] = h
        fd = (_facade_residuals(asm, p + e, rows.L, T_meas[:, 0])
              - _facade_residuals(asm, p - e, rows.L, T_meas[:, 0])) / (2 * h)
        assert np.allclose(J[:, 0, :, j], fd, rtol=1e-5, atol=1e-6), (P.param_names(n)[j],
                                                                     np.abs(J[:, 0, :, j] - fd).max())
