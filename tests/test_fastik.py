"""The Numba IK kernels (assemblers.fastik) against independent references: JAX autodiff of the
reference model (assemblers.ik, assemblers.lie), central finite differences, and SciPy's SLSQP."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ik_support import feasible_poses, with_pose_bounds

import assemblers as A
from assemblers import fastik as F
from assemblers import ik, lie
from assemblers.api import home_pose, stack_arrays


def evaluate(P, code, z, n):
    m = F.n_constraints(P)
    Q, grad, g, G = np.empty(6 * n), np.empty(z.size), np.empty(m), np.empty((m, z.size))
    f = F.evaluate(P, code, np.array(z), Q, True, grad, g, G, False)
    return f, grad, g, G, Q


@pytest.mark.parametrize("name", ["duo", "trio", "assembler", "duo+bounds"])
@pytest.mark.parametrize("crit", ["fn", "fn_legs", "condition", "even"])
def test_derivatives_match_jax_autodiff(name, crit):
    """f, grad f, g and dg/dz of the Numba kernel equal the jitted JAX reference (autodiff of
    the same model) to rounding, at poses off the solution."""
    asm = A.load_config(name.split("+")[0])
    if name.endswith("bounds"):
        asm = with_pose_bounds(asm)
    n, n6 = asm.n_platforms, 6 * (asm.n_platforms - 1)
    arrs = stack_arrays(asm)
    rng = np.random.default_rng(3)
    for Q in feasible_poses(asm, 3, 7):
        T = A.forward_kinematics(asm, Q)
        Q_ref = home_pose(asm) + rng.normal(0, 0.01, 6 * n)
        P = ik._fast_problem(asm, T, crit, Q_ref)
        z = Q[:n6] + rng.normal(0, 0.003, n6)
        f, grad, g, G, _ = evaluate(P, ik._FAST_CODES[crit], z, n)
        w_out, w_in = ik._weights(asm, ik._cost_criterion(crit))
        ref = np.asarray(ik._compiled(crit)(z, arrs, T, w_out, w_in, Q_ref, ik._limits(asm)))
        m = g.size
        assert f == pytest.approx(ref[0], rel=1e-12)
        np.testing.assert_allclose(grad, ref[1:1 + n6], rtol=0, atol=1e-11 * np.abs(ref[1:1 + n6]).max())
        np.testing.assert_allclose(g, ref[1 + n6:1 + n6 + m], rtol=0, atol=1e-13)
        np.testing.assert_allclose(G, ref[1 + n6 + m:].reshape(m, n6), rtol=0, atol=1e-11)
        if name.endswith("bounds"):
            assert m > 24 * n  # the pose-bound rows are there and were compared


def test_derivatives_match_central_differences():
    """The same derivatives against central differences of the kernel's own values (a check
    that does not rely on JAX)."""
    asm = A.load_config("trio")
    n6 = 12
    Q = feasible_poses(asm, 1, 11)[0]
    P = ik._fast_problem(asm, A.forward_kinematics(asm, Q), "fn_legs")
    z = Q[:n6] + 0.002
    f, grad, g, G, _ = evaluate(P, 1, z, 3)
    h = 1e-6
    for c in range(n6):
        e = np.zeros(n6)
        e[c] = h
        fp, _, gp, _, _ = evaluate(P, 1, z + e, 3)
        fm, _, gm, _, _ = evaluate(P, 1, z - e, 3)
        assert (fp - fm) / (2 * h) == pytest.approx(grad[c], rel=1e-6, abs=1e-9 * abs(f))
        np.testing.assert_allclose((gp - gm) / (2 * h), G[:, c], atol=1e-6)


@pytest.mark.parametrize("name", ["duo", "trio", "assembler", "duo+bounds"])
def test_closest_pose_derivatives_match_jax_autodiff(name):
    """The closest-pose objective (weighted tool error twist over the whole stack pose, the
    problem of unreachable targets) and its limits: the Numba kernel against JAX autodiff of
    ``ik._closest_fg``, for targets off in position and in rotation (up to 2.5 rad)."""
    asm = A.load_config(name.split("+")[0])
    if name.endswith("bounds"):
        asm = with_pose_bounds(asm)
    nq = 6 * asm.n_platforms
    rng = np.random.default_rng(11)
    for k, Q in enumerate(feasible_poses(asm, 3, 4)):
        T = np.array(A.forward_kinematics(asm, Q))
        T[:3, 3] += rng.normal(0, 0.2, 3)
        T[:3, :3] = np.asarray(lie.so3_exp(jnp.asarray(rng.normal(size=3)) * (0.5 + k))) @ T[:3, :3]
        P = ik._closest_problem(asm, T)
        m = F.n_constraints(P)
        Qx = Q + rng.normal(0, 0.005, nq)
        Qw, grad, g, G = np.empty(nq + 6), np.empty(nq), np.empty(m), np.empty((m, nq))
        f = F.evaluate(P, F.CRIT_CLOSEST, Qx, Qw, True, grad, g, G, False)
        f_r, d_r, g_r, G_r = jax.device_get(ik._closest_fg(
            Qx, stack_arrays(asm), jnp.asarray(T), jnp.asarray(P[5]), ik._limits(asm)))
        assert f == pytest.approx(float(f_r), rel=1e-12)
        np.testing.assert_allclose(grad, d_r, rtol=1e-10, atol=1e-12 * np.abs(d_r).max())
        np.testing.assert_allclose(g, g_r, atol=1e-13)
        np.testing.assert_allclose(G, G_r, atol=1e-12)


def test_even_split_report_and_log_match_jax():
    """Even split, the reported values at an off-target pose, and the rotation log near 0 and
    near pi, against the JAX model."""
    for name in ("duo", "assembler"):
        asm = A.load_config(name)
        n = asm.n_platforms
        arrs = stack_arrays(asm)
        for Q in feasible_poses(asm, 2, 5):
            T = A.forward_kinematics(asm, Q)
            crit = ik.default_criterion(asm)
            P = ik._fast_problem(asm, T, crit)
            Q_even = np.empty(6 * n)
            F.even_split(P, home_pose(asm), Q_even)
            ref = np.asarray(jax.jit(ik._even_split_jax)(arrs, home_pose(asm), T))
            np.testing.assert_allclose(Q_even, ref, atol=1e-14)
            Q_off = Q + 0.01
            g, legs, tw = np.empty(F.n_constraints(P)), np.empty((n, 6)), np.empty(6)
            cost = F.evaluate(P, ik._FAST_CODES[crit], Q_off[:0], Q_off, False, Q_off[:0], g,
                              np.empty((0, 0)), True)
            F.report(P, Q_off, legs, tw)
            w_out, w_in = ik._weights(asm, crit)
            g_r, tw_r, legs_r, cost_r = ik._report_values(crit, arrs, Q_off, T, ik._limits(asm),
                                                         w_out, w_in)
            np.testing.assert_allclose(g, g_r, atol=1e-13)
            np.testing.assert_allclose(tw, tw_r, atol=1e-14)
            np.testing.assert_allclose(legs, legs_r, atol=1e-14)
            assert cost == pytest.approx(float(cost_r), rel=1e-12)
    rng = np.random.default_rng(0)
    for angle in (0.0, 1e-9, 0.3, np.pi - 1e-3, np.pi - 1e-9):
        axis = rng.normal(size=3)
        w = axis / np.linalg.norm(axis) * angle
        R = np.asarray(lie.so3_exp(jnp.asarray(w)))
        out = np.empty(3)
        F.so3_log(R, out)
        np.testing.assert_allclose(out, np.asarray(lie.so3_log(jnp.asarray(R))), atol=1e-12)
        np.testing.assert_allclose(out, w, atol=2e-7 if angle > 3 else 1e-12)


@pytest.mark.parametrize("name", ["duo", "trio"])
def test_interior_point_reaches_the_slsqp_optimum(name):
    """The Numba interior point (method="ipm", exact gradients, Hessian by differences of exact
    gradients) converges to a KKT point with the cost SciPy's SLSQP finds from the same start;
    a warm start at that solution (its multipliers and Hessian, frozen) converges at once."""
    asm = A.load_config(name)
    n6 = 6 * (asm.n_platforms - 1)
    for Q in feasible_poses(asm, 3, 21):
        T = A.forward_kinematics(asm, Q)
        ref = A.solve_ik(asm, T, method="slsqp")
        r = A.solve_ik(asm, T, method="ipm")
        assert r.success and r.extra["solver"] == "ipm", r.message
        assert r.extra["kkt"] <= ik._IPM_TOL
        assert r.cost == pytest.approx(ref.cost, rel=1e-7)
        assert r.max_violation == 0.0 and max(r.tool_error) < 1e-12
        crit = ik.default_criterion(asm)
        cold = ik._run_ipm(asm, T, crit, ref.Q[:n6])
        warm = ik._run_ipm(asm, T, crit, cold["Q"][:n6], lam0=cold["lam"], mu0=ik._IPM_TOL / 10,
                           H0=cold["H"])
        assert cold["converged"] and warm["converged"] and warm["iterations"] <= 2
        np.testing.assert_allclose(warm["Q"], cold["Q"], atol=1e-7)
