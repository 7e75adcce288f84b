"""Quasi-static leg forces, compliance and deflection of the stack in JAX: the reference.

Closed forms (traceable: autodiff through them is the oracle of the Numba derivatives in
:mod:`.kernels` and the IK criteria).  Conventions (docs/statics.md):

* legs are two-force members (massless struts; ``leg_mass`` is lumped half at each joint) and
  a leg's force is **positive in compression** (it pushes its joints apart);
* platform i's legs carry everything above its base plate: top plates i..N (``top_mass``), the
  upper halves of the legs of platforms i..N, the lower halves of platforms i+1..N, the payload
  and the tool wrench ``(F, M)`` (world frame, at the tool point);
* the equilibrium of that upper part, ``sum_k f_k [u_k; b_k x u_k] + W_i = 0`` (``u_k`` the
  leg's unit vector from base to top joint, ``b_k`` its base joint, world frame; ``W_i`` the
  load's force and moment about the world origin), gives ``f_i = -G_i^-1 W_i``; equivalently
  ``f_i = dV/dL_i`` for the potential energy V with the other platforms' legs held.

Arguments: ``arrs`` :class:`~assemblers.model.StackArrays`, ``loads``
:class:`~assemblers.statics.loads.LoadArrays` (jnp or NumPy arrays), ``Q`` (6N,) m and rad.
"""

from __future__ import annotations

import jax.numpy as jnp

from .. import _runtime
from ..kinematics import reference as K

_runtime.configure_jax()


def _body_loads(arrs, loads, Q):
    """Per body j (top plate j with what moves with it): ``(mass (N,) kg, first moment (N, 3)
    kg m, world)`` and the stack frames, the leg unit vectors ``u`` and base joints ``beta``
    (N, 6, 3), world."""
    bases, tops, T_ee = K.stack_frames(arrs, Q)
    n = arrs.b.shape[0]
    alpha = tops[:, None, :3, 3] + jnp.einsum("nrc,nkc->nkr", tops[:, :3, :3], arrs.t)
    beta = bases[:, None, :3, 3] + jnp.einsum("nrc,nkc->nkr", bases[:, :3, :3], arrs.b)
    v = alpha - beta
    u = v / jnp.sqrt(jnp.sum(v * v, axis=-1, keepdims=True))
    com = tops[:, :3, 3] + jnp.einsum("nrc,nc->nr", tops[:, :3, :3], loads.top_com)
    half = 0.5 * loads.leg_mass  # (N,)
    up_m = loads.top_mass + 6.0 * half
    up_s = loads.top_mass[:, None] * com + half[:, None] * jnp.sum(alpha, axis=1)
    # the lower halves of platform j+1's legs sit on body j
    low_m = jnp.concatenate([6.0 * half[1:], jnp.zeros(1)])
    low_s = jnp.concatenate([half[1:, None] * jnp.sum(beta[1:], axis=1), jnp.zeros((1, 3))])
    p_pay = T_ee[:3, 3] + T_ee[:3, :3] @ loads.payload[1:4]
    last = jnp.arange(n) == n - 1
    m = up_m + low_m + jnp.where(last, loads.payload[0], 0.0)
    s = up_s + low_s + jnp.where(last[:, None], loads.payload[0] * p_pay[None, :], 0.0)
    return m, s, u, beta, T_ee


def carried_wrench(arrs, loads, Q):
    """``W`` (N, 6): the load on the part above each platform's legs, (force N; moment N m about
    the world origin), world frame."""
    m, s, _, _, T_ee = _body_loads(arrs, loads, Q)
    # suffix sums: platform i carries bodies i..N
    M = jnp.cumsum(m[::-1])[::-1]
    S = jnp.cumsum(s[::-1], axis=0)[::-1]
    g = loads.gravity
    F_ext, M_ext = loads.wrench[:3], loads.wrench[3:]
    force = M[:, None] * g[None, :] + F_ext[None, :]
    moment = jnp.cross(S, g[None, :]) + jnp.cross(T_ee[:3, 3], F_ext)[None, :] + M_ext[None, :]
    return jnp.concatenate([force, moment], axis=1)


def leg_forces(arrs, loads, Q):
    """Leg forces (N, 6) N, positive in compression, at the stack pose ``Q`` (6N,)."""
    _, _, u, beta, _ = _body_loads(arrs, loads, Q)
    W = carried_wrench(arrs, loads, Q)
    G = jnp.concatenate([u, jnp.cross(beta, u)], axis=2).transpose(0, 2, 1)  # (N, 6, 6): columns
    return -jnp.linalg.solve(G, W[..., None])[..., 0]


def compliance(arrs, loads, Q):
    """Tool compliance (6, 6): the tool twist (dp m, dtheta rad; world frame) per unit wrench
    (force N, moment N m at the tool point, world frame), ``J_L diag(1 / k) J_L^T`` from the leg
    stiffnesses (rigid legs contribute nothing).  The elastic part: the load-dependent geometric
    stiffness of a preloaded stack is not included (docs/statics.md)."""
    JL = K.jacobian_legs(arrs, Q)  # (6, 6N)
    c = jnp.repeat(loads.inv_stiffness, 6)
    return (JL * c[None, :]) @ JL.T


def deflection(arrs, loads, Q):
    """Tool deflection (6,) (dp m, dtheta rad; world frame) under the loads, to first order in
    the compliance: each leg shortens by ``f / k`` under its compression ``f``, so
    ``d = -J_L (f / k)``."""
    JL = K.jacobian_legs(arrs, Q)
    f = leg_forces(arrs, loads, Q).reshape(-1)
    return -JL @ (jnp.repeat(loads.inv_stiffness, 6) * f)


def potential(arrs, loads, Q):
    """Potential energy (J) of the gravity load (every mass of the stack and the payload, zero
    at the world origin); the virtual-work check of :func:`leg_forces` differentiates it."""
    _, s, _, _, _ = _body_loads(arrs, loads, Q)
    # the lower halves of platform 1's legs sit on the mount (fixed): they do not move
    return -jnp.sum(s @ loads.gravity)
