"""Small dense nonlinear programs solved inside one jit: a primal-dual interior-point method.

    minimize  f(z, p)   subject to   g(z, p) >= 0          z: (n,), g: (m,), n and m small

Why our own: scipy's SLSQP and trust-constr call back into Python every iterate, and each callback
pays JAX's dispatch (tens to hundreds of microseconds on a CPU) plus SLSQP's own dense work on
every constraint; JAX itself (and jaxopt, optimistix) has no general inequality-constrained NLP
solver.  Here the whole solve is one ``lax.while_loop``: exact gradients, constraint Jacobian and
Lagrangian Hessian from JAX, no Python in the loop.

The method is the textbook primal-dual barrier method (Nocedal & Wright, *Numerical Optimization*,
2nd ed., ch. 19; Waechter & Biegler's IPOPT for the barrier update and fraction-to-boundary rule):
slacks ``s > 0`` turn ``g(z) >= 0`` into ``g(z) - s = 0``; each iterate takes one Newton step on
the perturbed KKT conditions

    grad f - G^T lam = 0,     g - s = 0,     s * lam = mu

condensed to an (n, n) system ``(H + G^T diag(lam / s) G) dz = rhs`` (H the Lagrangian Hessian,
shifted to be positive definite where the problem is not convex), keeps ``s`` and ``lam`` positive
with the fraction-to-boundary rule, and backtracks on the merit function
``f - mu sum(log s) + nu ||g - s||_1`` (Armijo).  ``mu`` falls superlinearly (IPOPT's monotone
rule) once the barrier problem is solved to ``10 mu``.  Starts may be infeasible; a warm start
(``z``, ``lam`` of a neighbouring problem, small ``mu``) converges in a few steps, which is what
trajectory IK uses.

The IK no longer runs on this module: :func:`assemblers.fastik.interior_point` is the same
algorithm in Numba for the IK problem alone (a step costs ~50 us there against ~350 us here, JAX
dispatch and small-op overhead on a CPU).  This one stays the general version: any traceable
``f`` and ``g``, usable inside other jitted code, on any JAX backend.

This module is part of the math core: pure functions, no I/O.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg  # noqa: F401  (cho_solve)
from jax import lax

from . import _runtime

_runtime.configure_jax()

RUNNING, CONVERGED, MAX_ITER, FAILED = 0, 1, 2, 3


class IPState(NamedTuple):
    """Interior-point iterate.  ``z``: (n,); ``s``, ``lam``: (m,) slacks and multipliers (> 0);
    ``mu``: barrier parameter; ``nu``: merit penalty; ``k``: Newton steps taken; ``err``: KKT
    error of the original problem (mu = 0) at ``z``; ``status``: RUNNING, CONVERGED, MAX_ITER
    or FAILED (non-finite values or no acceptable step); ``H``: (n, n) the last Lagrangian
    Hessian used (pass it back as ``H0`` to warm-start a neighbouring problem)."""

    z: jax.Array
    s: jax.Array
    lam: jax.Array
    mu: jax.Array
    nu: jax.Array
    k: jax.Array
    err: jax.Array
    status: jax.Array
    H: jax.Array


def kkt_error(grad_f, G, g, s, lam, mu):
    """Scaled KKT error of the barrier problem with parameter ``mu`` (IPOPT's E_mu): the largest
    of stationarity, primal infeasibility ``||g - s||`` and complementarity ``||s lam - mu||``;
    stationarity and complementarity are divided by ``max(1, mean |lam|)``."""
    scale = jnp.maximum(1.0, jnp.mean(jnp.abs(lam))) if lam.size else 1.0
    stat = jnp.max(jnp.abs(grad_f - G.T @ lam)) / scale
    if lam.size == 0:
        return stat
    prim = jnp.max(jnp.abs(g - s))
    comp = jnp.max(jnp.abs(s * lam - mu)) / scale
    return jnp.maximum(stat, jnp.maximum(prim, comp))


def interior_point(f, g, *, tol: float = 1e-10, max_iter: int = 100, mu_min: float | None = None):
    """Build ``solve(z0, s0, lam0, mu0, params, H0=None) -> IPState`` for ``min f(z, params)``
    subject to ``g(z, params) >= 0``.

    ``f(z, params)``: scalar; ``g(z, params)``: (m,).  ``tol``: the scaled KKT error (see
    :func:`kkt_error`, units of ``grad f``, ``g`` and ``s * lam``) at which the solve stops;
    ``mu_min``: the smallest barrier parameter (default ``tol / 10``).  The returned function is
    pure and traceable: jit it (or a function that calls it) once and reuse it.  ``s0`` and
    ``lam0`` must be positive; a cold start uses ``s0 = max(g(z0), c)``, ``lam0 = mu0 / s0``.

    ``H0``: None for the exact Lagrangian Hessian at every step (forward-over-reverse autodiff,
    the costly part: about n gradients), or an (n, n) matrix used at every step instead (a
    frozen Hessian, e.g. the one returned for a neighbouring problem: a step then costs first
    derivatives only, and convergence is linear at a rate set by how much the Hessian differs).
    (A damped-BFGS variant was tried for cold starts of the IK problem: 50-80 steps where
    SLSQP takes 10-15, so it was dropped.)
    """
    mu_min = tol / 10 if mu_min is None else mu_min
    kappa_eps, kappa_mu, theta_mu, tau_min = 10.0, 0.2, 1.5, 0.99
    eta, max_backtracks = 1e-4, 40

    def lagrangian(z, lam, params):
        return f(z, params) - jnp.dot(lam, g(z, params))

    def first_order(z, params):
        fz, grad_f = jax.value_and_grad(f)(z, params)
        return fz, grad_f, g(z, params), jax.jacfwd(g)(z, params)

    def merit(z, s, mu, nu, params):
        return f(z, params) - mu * jnp.sum(jnp.log(s)) + nu * jnp.sum(jnp.abs(g(z, params) - s))

    def max_step(v, dv, tau):
        """Largest alpha in (0, 1] with v + alpha dv >= (1 - tau) v (fraction to boundary)."""
        ratio = jnp.where(dv < 0, -tau * v / jnp.where(dv < 0, dv, -1.0), jnp.inf)
        return jnp.minimum(1.0, jnp.min(ratio, initial=jnp.inf))

    def newton_step(state: IPState, params, derivs, exact: bool) -> IPState:
        z, s, lam, mu, nu = state.z, state.s, state.lam, state.mu, state.nu
        n = z.shape[0]
        fz, grad_f, gz, G = derivs
        H = jax.hessian(lagrangian)(z, lam, params) if exact else state.H

        # barrier update (IPOPT's monotone rule), repeated while the barrier problem is solved
        def lower(mu_):
            return jnp.maximum(mu_min, jnp.minimum(kappa_mu * mu_, mu_ ** theta_mu))

        def solved(mu_):
            return (kkt_error(grad_f, G, gz, s, lam, mu_) <= kappa_eps * mu_) & (mu_ > mu_min)

        mu = lax.while_loop(solved, lower, mu)
        tau = jnp.maximum(tau_min, 1.0 - mu)
        # Newton step on the perturbed KKT conditions, condensed to z
        r_d = grad_f - G.T @ lam
        r_p = gz - s
        r_c = s * lam - mu
        M = H + G.T @ ((lam / s)[:, None] * G)
        rhs = -r_d - G.T @ ((r_c + lam * r_p) / s)
        # the floor scales with H, not with M: M's barrier terms grow like 1/s near active bounds
        floor = 1e-9 * jnp.maximum(1.0, jnp.max(jnp.abs(jnp.diag(H))))

        def shifted(_):
            """Indefinite (or nearly singular) M: shift its smallest eigenvalue up to the floor."""
            ev = jnp.linalg.eigvalsh(M)
            M2 = M + jnp.where(ev[0] < floor, floor - ev[0], 0.0) * jnp.eye(n)
            return jnp.linalg.solve(M2, rhs)

        # positive definite with room (the usual case near a solution): one Cholesky solve
        L = jnp.linalg.cholesky(M + floor * jnp.eye(n))
        pd = jnp.all(jnp.isfinite(L)) & (jnp.min(jnp.abs(jnp.diag(L))) ** 2 > floor)
        dz = lax.cond(pd, lambda _: jax.scipy.linalg.cho_solve((L, True), rhs), shifted, None)
        ds = G @ dz + r_p
        dlam = -(r_c + lam * ds) / s
        a_s = max_step(s, ds, tau)
        a_l = max_step(lam, dlam, tau)
        # Armijo backtracking on the merit function along (dz, ds)
        nu = jnp.maximum(nu, 1.1 * jnp.max(jnp.abs(lam + dlam), initial=0.0))
        phi0 = merit(z, s, mu, nu, params)
        dphi = jnp.minimum(grad_f @ dz - mu * jnp.sum(ds / s) - nu * jnp.sum(jnp.abs(r_p)), 0.0)

        def not_accepted(c):
            return (~c[2]) & (c[1] < max_backtracks)

        def backtrack(c):
            alpha, j, _ = c
            alpha = jnp.where(j == 0, alpha, 0.5 * alpha)
            phi = merit(z + alpha * dz, s + alpha * ds, mu, nu, params)
            ok = jnp.isfinite(phi) & (phi <= phi0 + eta * alpha * dphi + 1e-14 * jnp.abs(phi0))
            return alpha, j + 1, ok

        alpha, _, ok = lax.while_loop(not_accepted, backtrack, (a_s, 0, False))
        z_new = z + alpha * dz
        lam_new = lam + a_l * dlam
        good = ok & jnp.all(jnp.isfinite(z_new)) & jnp.all(jnp.isfinite(lam_new))
        return IPState(z=jnp.where(good, z_new, z), s=jnp.where(good, s + alpha * ds, s),
                       lam=jnp.where(good, lam_new, lam), mu=mu, nu=nu, k=state.k + 1,
                       err=state.err, status=jnp.where(good, RUNNING, FAILED).astype(jnp.int32),
                       H=H)

    def solve(z0, s0, lam0, mu0, params, H0=None) -> IPState:
        dt = z0.dtype
        n = z0.shape[0]
        exact = H0 is None
        if H0 is None:
            H0 = jnp.zeros((n, n), dt)
        state = IPState(z=z0, s=s0, lam=lam0, mu=jnp.asarray(mu0, dt), nu=jnp.asarray(0.0, dt),
                        k=jnp.asarray(0, jnp.int32), err=jnp.asarray(jnp.inf, dt),
                        status=jnp.asarray(RUNNING, jnp.int32), H=jnp.asarray(H0, dt))

        def cond(st):
            return (st.status == RUNNING) & (st.k < max_iter)

        def body(st):
            derivs = first_order(st.z, params)
            _, grad_f, gz, G = derivs
            err = kkt_error(grad_f, G, gz, st.s, st.lam, 0.0)
            st = st._replace(err=err)
            bad = ~jnp.isfinite(err)
            return lax.cond(
                (err <= tol) | bad,
                lambda st: st._replace(status=jnp.where(bad, FAILED, CONVERGED).astype(jnp.int32)),
                lambda st: newton_step(st, params, derivs, exact), st)

        out = lax.while_loop(cond, body, state)

        def final_check(st):  # the loop ran out of steps: is the last iterate good enough?
            _, grad_f, gz, G = first_order(st.z, params)
            err = kkt_error(grad_f, G, gz, st.s, st.lam, 0.0)
            return st._replace(err=err, status=jnp.where(err <= tol, CONVERGED,
                                                         MAX_ITER).astype(jnp.int32))

        return lax.cond(out.status == RUNNING, final_check, lambda st: st, out)

    return solve
