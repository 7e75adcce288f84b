"""The jitted interior-point solver (assemblers.nlp) against closed forms, SciPy, and KKT."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize, nnls

from assemblers import nlp


def cold(solve, f_g, z0, params, mu0=1e-1):
    g0 = f_g(jnp.asarray(z0), params)
    s0 = jnp.maximum(g0, 1e-2)
    return solve(jnp.asarray(z0), s0, mu0 / s0, mu0, params)


def test_projection_onto_halfspace_closed_form():
    # min |z - c|^2  s.t.  a.z <= b: z* = c - max(0, a.c - b) a / |a|^2
    f = lambda z, p: jnp.sum((z - p[0]) ** 2)
    g = lambda z, p: jnp.array([p[2] - p[1] @ z])
    solve = jax.jit(nlp.interior_point(f, g))
    c, a, b = jnp.array([2.0, 1.0, -0.5]), jnp.array([1.0, 2.0, 0.5]), 1.0
    out = cold(solve, g, np.zeros(3), (c, a, b))
    expect = c - max(0.0, float(a @ c) - b) * a / float(a @ a)
    assert int(out.status) == nlp.CONVERGED
    np.testing.assert_allclose(out.z, expect, atol=1e-9)
    # multiplier of the active constraint: grad f = lam * grad(-g) => lam = 2 (a.c - b) / |a|^2
    assert float(out.lam[0]) == pytest.approx(2 * (float(a @ c) - b) / float(a @ a), rel=1e-7)


@pytest.mark.parametrize("z0", [[-1.0, 0.5], [3.0, 3.0]])  # feasible and infeasible starts
def test_rosenbrock_in_a_disk_matches_scipy(z0):
    f = lambda z, p: (1 - z[0]) ** 2 + 100 * (z[1] - z[0] ** 2) ** 2
    g = lambda z, p: jnp.array([p - z[0] ** 2 - z[1] ** 2])
    solve = jax.jit(nlp.interior_point(f, g))
    out = cold(solve, g, np.array(z0), 1.5)
    assert int(out.status) == nlp.CONVERGED
    ref = minimize(lambda z: float(f(z, 0)), np.array(z0), method="SLSQP",
                   constraints=[{"type": "ineq", "fun": lambda z: np.array(g(z, 1.5))}],
                   options={"ftol": 1e-15, "maxiter": 500})
    np.testing.assert_allclose(out.z, ref.x, atol=1e-6)
    # an interior point stops with complementarity s * lam ~ tol, so the cost may exceed the
    # exact optimum by about that much
    assert float(f(out.z, 0)) <= ref.fun + 1e-9


def test_warm_starts_track_a_moving_problem():
    # min (z0 - t)^2 + (z1 - 1)^4 + z0 z1  s.t.  z0 + z1 <= 1 (active), z0 >= -2, t moving
    f = lambda z, t: (z[0] - t) ** 2 + (z[1] - 1) ** 4 + z[0] * z[1]
    g = lambda z, t: jnp.array([1.0 - z[0] - z[1], z[0] + 2.0])
    solve = jax.jit(nlp.interior_point(f, g, tol=1e-10))
    first = cold(solve, g, np.zeros(2), 1.5)
    assert int(first.status) == nlp.CONVERGED
    exact = frozen = first
    for t in np.linspace(1.5, 1.6, 11)[1:]:
        ref = cold(solve, g, np.zeros(2), t)

        def warm(prev, H0, t=t):
            s0 = jnp.maximum(g(prev.z, t), 1e-11 / jnp.maximum(prev.lam, 1e-11))
            return solve(prev.z, s0, prev.lam, 1e-11, t, H0)

        exact = warm(exact, None)  # exact Hessian: Newton from a neighbouring solution
        assert int(exact.status) == nlp.CONVERGED and int(exact.k) <= 3
        np.testing.assert_allclose(exact.z, ref.z, atol=1e-8)
        frozen = warm(frozen, first.H)  # the first solution's Hessian, never refreshed
        assert int(frozen.status) == nlp.CONVERGED
        np.testing.assert_allclose(frozen.z, ref.z, atol=1e-8)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_random_convex_qp_satisfies_kkt(seed):
    """Random strictly convex QP with a known feasible point: the solution satisfies KKT,
    checked independently (NNLS for the multipliers of the active constraints)."""
    rng = np.random.default_rng(seed)
    n, m = 4, 6
    A = rng.normal(size=(n, n))
    P = A @ A.T + 0.5 * np.eye(n)
    c = rng.normal(size=n) * 3
    G = rng.normal(size=(m, n))
    h = rng.uniform(0.1, 1.0, size=m)  # z = 0 is strictly feasible: G z <= h
    f = lambda z, p: 0.5 * z @ p[0] @ z + p[1] @ z
    g = lambda z, p: p[3] - p[2] @ z
    solve = jax.jit(nlp.interior_point(f, g))
    params = tuple(jnp.asarray(x) for x in (P, c, G, h))
    out = cold(solve, g, np.zeros(n), params)
    assert int(out.status) == nlp.CONVERGED
    z = np.asarray(out.z)
    slack = h - G @ z
    assert slack.min() >= -1e-9
    grad = P @ z + c
    active = slack < 1e-6
    if active.any():
        lam, resid = nnls(G[active].T, -grad)  # -grad = sum lam_i G_i  (grad of -g_i is G_i)
    else:
        resid = np.linalg.norm(grad)
    assert resid <= 1e-6 * max(1.0, np.linalg.norm(c))
