"""The IK evaluation kernel (assemblers.ik.evaluate) against independent references: JAX autodiff
of the public oracle (assemblers.ik.reference), central finite differences, and SciPy's SLSQP."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ik_support import feasible_poses, with_loads, with_pose_bounds

import assemblers as A
from assemblers.geometry import reference as geo
from assemblers.ik import driver, reference
from assemblers.ik import evaluate as F
from assemblers.ik.criteria import CODES, CRIT_CLOSEST, CRITERIA, SPECS, Terms
from assemblers.ik.custom import resolve, start_vector
from assemblers.ik.problem import closest_problem, limits, n_constraints, problem, weights
from assemblers.kinematics.api import home_pose, stack_arrays
from assemblers.statics.loads import LoadArrays, load_arrays


def evaluate(P, code, z, n):
    m = n_constraints(P)
    Q, grad, g, G = np.empty(6 * n), np.empty(z.size), np.empty(m), np.empty((m, z.size))
    f = F.evaluate(P, code, np.array(z), Q, True, grad, g, G, False)
    return f, grad, g, G, Q


def user_criterion(Q, m):
    """A user-defined criterion (docs/ik.md): sensitivity, leg forces and the legs' spread."""
    import jax.numpy as jnp

    return (jnp.sqrt(jnp.sum(m.J_Q ** 2)) + 1e-4 * jnp.sum(m.forces ** 2)
            + jnp.sum((m.legs - jnp.mean(m.legs)) ** 2))


# every public criterion, new ones included, blends (two minimax terms in one) and a user criterion
OPEN = ["fn:1,loads:0.2", "loads_max:1,margin:0.5", "fn:1,compliance:0.3,margin:0.2",
        user_criterion]


STACKS = ["duo", "trio", "assembler", "duo+bounds", "assembler_loaded", "trio+loads"]
# (every built-in on every stack; the blends and the user criterion, slower to trace, on two)
CASES = [(s, c) for c in CRITERIA for s in STACKS] + [(s, c) for c in OPEN
                                                      for s in ("duo+bounds", "assembler_loaded")]


@pytest.mark.parametrize("name,spec", CASES,
                         ids=[f"{getattr(c, '__name__', c)}-{s}" for s, c in CASES])
def test_derivatives_match_jax_autodiff(name, spec):
    """f, grad f, g and dg/dz of the Numba kernel equal the jitted JAX reference (autodiff of
    the same model; the criteria of the loads written as a user criterion would be, through
    assemblers.ik.user.quantities) to rounding, at poses off the solution: every criterion
    (its epigraph variables included) and every constraint family (force ratings, epigraph)."""
    crit = resolve(spec)
    asm = A.load_config(name.split("+")[0])
    if name.endswith("bounds"):
        asm = with_pose_bounds(asm)
    if name.endswith("loads") or (SPECS[crit].needs and asm.platforms[0].leg_stiffness is None):
        asm = with_loads(asm)
    n, n6 = asm.n_platforms, 6 * (asm.n_platforms - 1)
    arrs = stack_arrays(asm)
    loads = LoadArrays(*(jnp.asarray(a) for a in load_arrays(asm)))
    rng = np.random.default_rng(3)
    for Q in feasible_poses(asm, 3, 7):
        T = A.forward_kinematics(asm, Q)
        Q_ref = home_pose(asm) + rng.normal(0, 0.01, 6 * n)
        P = problem(asm, T, crit, Q_ref)
        z = Q[:n6] + rng.normal(0, 0.003, n6)
        t = start_vector(asm, P, Q)[n6:]  # epigraph variables, off their values
        z = np.concatenate([z, t * rng.uniform(0.9, 1.2, t.size)])
        nz = z.size
        f, grad, g, G, _ = evaluate(P, CODES[crit], z, n)
        w_out, w_in = weights(asm, SPECS[crit].wrt)
        terms = Terms(*(jnp.asarray(a) for a in P.terms))
        ref = np.asarray(reference.reduced(crit)(z, arrs, T, w_out, w_in, Q_ref, limits(asm),
                                                 loads, terms))
        m = g.size
        assert f == pytest.approx(ref[0], rel=1e-12)
        np.testing.assert_allclose(grad, ref[1:1 + nz], rtol=0, atol=1e-11 * np.abs(ref[1:1 + nz]).max())
        np.testing.assert_allclose(g, ref[1 + nz:1 + nz + m], rtol=0, atol=1e-13)
        G_ref = ref[1 + nz + m:].reshape(m, nz)
        np.testing.assert_allclose(G, G_ref, rtol=0, atol=1e-11 * max(1.0, np.abs(G_ref).max()))
        if name.endswith("bounds"):
            assert m > 24 * n  # the pose-bound rows are there and were compared
        if P.terms.rated.size:
            assert m >= 30 * n  # the force rows are there and were compared


def test_derivatives_match_central_differences():
    """The same derivatives against central differences of the kernel's own values (a check
    that does not rely on JAX)."""
    asm = A.load_config("trio")
    n6 = 12
    Q = feasible_poses(asm, 1, 11)[0]
    P = problem(asm, A.forward_kinematics(asm, Q), "fn_legs")
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
    ``reference.closest_values``, for targets off in position and in rotation (up to 2.5 rad)."""
    asm = A.load_config(name.split("+")[0])
    if name.endswith("bounds"):
        asm = with_pose_bounds(asm)
    nq = 6 * asm.n_platforms
    rng = np.random.default_rng(11)
    for k, Q in enumerate(feasible_poses(asm, 3, 4)):
        T = np.array(A.forward_kinematics(asm, Q))
        T[:3, 3] += rng.normal(0, 0.2, 3)
        T[:3, :3] = np.asarray(geo.so3_exp(jnp.asarray(rng.normal(size=3)) * (0.5 + k))) @ T[:3, :3]
        P = closest_problem(asm, T)
        m = n_constraints(P)
        Qx = Q + rng.normal(0, 0.005, nq)
        Qw, grad, g, G = np.empty(nq + 6), np.empty(nq), np.empty(m), np.empty((m, nq))
        f = F.evaluate(P, CRIT_CLOSEST, Qx, Qw, True, grad, g, G, False)
        f_r, d_r, g_r, G_r = jax.device_get(reference.closest_values(
            Qx, stack_arrays(asm), jnp.asarray(T), jnp.asarray(P.w_out), limits(asm)))
        assert f == pytest.approx(float(f_r), rel=1e-12)
        np.testing.assert_allclose(grad, d_r, rtol=1e-10, atol=1e-12 * np.abs(d_r).max())
        np.testing.assert_allclose(g, g_r, atol=1e-13)
        np.testing.assert_allclose(G, G_r, atol=1e-12)


def test_even_split_and_report_match_jax():
    """Even split and the reported values at an off-target pose against the JAX oracle (the
    rotation log's backends are compared in tests/twins)."""
    for name in ("duo", "assembler"):
        asm = A.load_config(name)
        n = asm.n_platforms
        arrs = stack_arrays(asm)
        for Q in feasible_poses(asm, 2, 5):
            T = A.forward_kinematics(asm, Q)
            crit = A.ik.default_criterion(asm)
            P = problem(asm, T, crit)
            Q_even = np.empty(6 * n)
            F.even_split(P, home_pose(asm), Q_even)
            ref = np.asarray(reference.even_split(arrs, home_pose(asm), T))
            np.testing.assert_allclose(Q_even, ref, atol=1e-14)
            Q_off = Q + 0.01
            g, legs, tw = np.empty(n_constraints(P)), np.empty((n, 6)), np.empty(6)
            cost = F.evaluate(P, CODES[crit], Q_off[:0], Q_off, False, Q_off[:0], g,
                              np.empty((0, 0)), True)
            F.report(P, Q_off, legs, tw)
            w_out, w_in = weights(asm, SPECS[crit].wrt)
            g_r, tw_r, legs_r, cost_r = reference.report_values(crit, arrs, Q_off, T, limits(asm),
                                                         w_out, w_in)
            np.testing.assert_allclose(g, g_r, atol=1e-13)
            np.testing.assert_allclose(tw, tw_r, atol=1e-14)
            np.testing.assert_allclose(legs, legs_r, atol=1e-14)
            assert cost == pytest.approx(float(cost_r), rel=1e-12)


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
        assert r.extra["kkt"] <= driver.IPM_TOL
        assert r.cost == pytest.approx(ref.cost, rel=1e-7)
        assert r.max_violation == 0.0 and max(r.tool_error) < 1e-12
        crit = A.ik.default_criterion(asm)
        cold = driver.run_ipm(asm, T, crit, ref.Q[:n6])
        warm = driver.run_ipm(asm, T, crit, cold["Q"][:n6], lam0=cold["lam"], mu0=driver.IPM_TOL / 10,
                           H0=cold["H"])
        assert cold["converged"] and warm["converged"] and warm["iterations"] <= 2
        np.testing.assert_allclose(warm["Q"], cold["Q"], atol=1e-7)
