"""Kinematics of stacked Stewart platforms in JAX (float64, pure functions, no I/O): the reference.

Single-example functions for one platform, composed over the stack; batches are ``vmap``s of
these.  The Numba kernels (:mod:`.kernels`) and the NumPy facade (:mod:`.api`) are tested
against them (``tests/twins``); ``J_Q`` is also checked against autodiff of the twist
(:func:`jacobian_pose_autodiff`) and central differences.

Shapes and frames (docs/conventions.md):
  ``q``: (6,) pose of a platform's top frame in its base frame (m, rad; R = Rz Ry Rx).
  ``Q``: (6N,) the stack's poses, bottom to top.
  ``b``: (6, 3) m base joints, base frame;  ``t``: (6, 3) m top joints, top frame.
  ``arrs``: :class:`assemblers.model.StackArrays` with ``b`` (N, 6, 3), ``t`` (N, 6, 3),
  ``T_mount`` (4, 4) world_from_base1 and ``T_after`` (N, 4, 4) (interfaces, then the tool).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ..geometry import reference as geo
from ..geometry.reference import angular_basis

# ----------------------------------------------------------------------------- one platform


def leg_vectors(b, t, q):
    """Leg vectors ``p + R t_k - b_k``: (6, 3) m, base frame."""
    R = geo.rpy_to_matrix(q[3:6])
    return q[0:3] + t @ R.T - b


def platform_legs(b, t, q):
    """Leg lengths ``L_k = || p + R t_k - b_k ||``: (6,) m."""
    v = leg_vectors(b, t, q)
    return jnp.sqrt(jnp.sum(v * v, axis=-1))


def platform_leg_jacobian(b, t, q):
    """``dL/dq``: (6, 6), row k = d L_k / d(x, y, z, roll, pitch, yaw), analytic.

    ``dL_k = u_k . dp + ((R t_k) x u_k) . omega`` with ``omega = E(rpy) d(rpy)``.
    """
    R = geo.rpy_to_matrix(q[3:6])
    Rt = t @ R.T
    v = q[0:3] + Rt - b
    u = v / jnp.sqrt(jnp.sum(v * v, axis=-1, keepdims=True))
    return jnp.concatenate([u, jnp.cross(Rt, u) @ angular_basis(q[3:6])], axis=1)


def joint_angles_platform(b, t, q):
    """Angle between each leg and its plate's normal, at both ends: (6, 2) rad,
    ``[:, 0]`` at the base joint (base plate normal), ``[:, 1]`` at the top joint."""
    R = geo.rpy_to_matrix(q[3:6])
    v = q[0:3] + t @ R.T - b
    n_base = jnp.array([0.0, 0.0, 1.0])
    n_top = R[:, 2]

    def angle(n):
        return jnp.arctan2(geo.safe_norm(jnp.cross(v, n)), v @ n)

    return jnp.stack([angle(n_base), angle(n_top)], axis=1)


def from_legs_platform(b, t, L, q0, tol, max_iter):
    """Pose of one platform from its leg lengths by damped Newton.

    ``L``: (6,) m; ``q0``: (6,) initial pose; ``tol``: m, on the largest leg residual.
    Returns ``(q (6,), max_residual m, iterations, converged bool)``.
    Each step solves ``dL/dq dq = L(q) - L`` and backtracks (1, 1/2, 1/4, 1/8) if the residual
    would grow, so it cannot run away to a mirrored assembly mode from a nearby start.
    """
    alphas = jnp.array([1.0, 0.5, 0.25, 0.125])

    def resid(q):
        return platform_legs(b, t, q) - L

    def cond(state):
        _, r, it = state
        return (jnp.max(jnp.abs(r)) > tol) & (it < max_iter)

    def body(state):
        q, r, it = state
        dq = jnp.linalg.solve(platform_leg_jacobian(b, t, q), r)
        cands = q[None, :] - alphas[:, None] * dq[None, :]
        rs = jax.vmap(resid)(cands)
        norms = jnp.max(jnp.abs(rs), axis=1)
        ok = norms < jnp.max(jnp.abs(r))
        k = jnp.where(jnp.any(ok), jnp.argmax(ok), 0)
        return cands[k], rs[k], it + 1

    q, r, it = lax.while_loop(cond, body, (q0, resid(q0), jnp.asarray(0)))
    err = jnp.max(jnp.abs(r))
    return q, err, it, err <= tol


# ----------------------------------------------------------------------------- the stack


def _split(Q):
    return Q.reshape(-1, 6)


def stack_frames(arrs, Q):
    """World frames along the stack for ``Q`` (6N,).

    Returns ``(T_world_base (N, 4, 4), T_world_top (N, 4, 4), T_world_tool (4, 4))``.
    """
    qs = _split(Q)
    n = qs.shape[0]
    A = arrs.T_mount
    bases, tops = [], []
    for i in range(n):  # N is static and small: unrolled, so XLA fuses the chain
        top = A @ geo.pose_to_transform(qs[i])
        bases.append(A)
        tops.append(top)
        A = top @ arrs.T_after[i]
    return jnp.stack(bases), jnp.stack(tops), A


def forward(arrs, Q):
    """Stack forward kinematics: ``Q`` (6N,) -> T_world_tool (4, 4)."""
    return stack_frames(arrs, Q)[2]


def stack_legs(arrs, Q):
    """Leg lengths of every platform: ``Q`` (6N,) -> (N, 6) m."""
    return jax.vmap(platform_legs)(arrs.b, arrs.t, _split(Q))


def stack_joint_angles(arrs, Q):
    """Joint angles of every leg end: ``Q`` (6N,) -> (N, 6, 2) rad (base end, top end)."""
    return jax.vmap(joint_angles_platform)(arrs.b, arrs.t, _split(Q))


def jacobian_pose(arrs, Q):
    """``J_Q`` (6, 6N): derivative of the tool's error twist (dp, dtheta; world frame) w.r.t. Q.

    Closed form: a translation of platform i moves the tool by ``R_world_base_i dp``; a rotation
    rate ``omega`` (world) about platform i's top-frame origin ``o_i`` moves it by
    ``omega x (p_tool - o_i)`` and turns it by ``omega``.  Tested against autodiff of the twist.
    """
    qs = _split(Q)
    bases, tops, T_ee = stack_frames(arrs, Q)
    p_ee = T_ee[0:3, 3]
    cols = []
    for i in range(qs.shape[0]):
        R_A = bases[i, 0:3, 0:3]
        omega = R_A @ angular_basis(qs[i, 3:6])  # (3, 3), world frame, columns per angle
        lever = p_ee - tops[i, 0:3, 3]
        dp_rot = -geo.hat(lever) @ omega  # omega x lever, column by column
        block = jnp.concatenate(
            [jnp.concatenate([R_A, dp_rot], axis=1),
             jnp.concatenate([jnp.zeros((3, 3)), omega], axis=1)], axis=0)
        cols.append(block)
    return jnp.concatenate(cols, axis=1)


def jacobian_pose_autodiff(arrs, Q):
    """Reference ``J_Q`` by forward-mode autodiff of the error twist
    (:func:`assemblers.geometry.reference.twist_between`; slow, exact)."""
    T0 = forward(arrs, Q)
    return jax.jacfwd(lambda Q2: geo.twist_between(T0, forward(arrs, Q2)))(Q)


def jacobian_legs(arrs, Q):
    """``J_L`` (6, 6N): twist derivative w.r.t. the 6N leg lengths, ``J_Q,i (dL_i/dq_i)^-1``
    per platform."""
    JQ = jacobian_pose(arrs, Q)
    JLeg = jax.vmap(platform_leg_jacobian)(arrs.b, arrs.t, _split(Q))  # (N, 6, 6)
    blocks = JQ.reshape(6, -1, 6).transpose(1, 0, 2)  # (N, 6, 6): J_Q columns of platform i
    # X_i = blocks_i @ inv(JLeg_i)  <=>  JLeg_i^T X_i^T = blocks_i^T
    X = jnp.linalg.solve(JLeg.transpose(0, 2, 1), blocks.transpose(0, 2, 1)).transpose(0, 2, 1)
    return X.transpose(1, 0, 2).reshape(6, -1)


def jacobian(arrs, Q, wrt: str = "pose"):
    """``J_Q`` (wrt="pose") or ``J_L`` (wrt="legs"), (6, 6N)."""
    if wrt == "pose":
        return jacobian_pose(arrs, Q)
    if wrt == "legs":
        return jacobian_legs(arrs, Q)
    raise ValueError(f"wrt must be 'pose' or 'legs', got {wrt!r}")


def sensitivity(arrs, Q, w_out, w_in, wrt: str = "pose"):
    """The cost ``|| diag(w_out) J diag(w_in) ||_F`` (scalar); ``w_out`` (6,), ``w_in`` (6N,)."""
    J = jacobian(arrs, Q, wrt)
    M = w_out[:, None] * J * w_in[None, :]
    return jnp.sqrt(jnp.sum(M * M))


def from_legs_stack(arrs, L, Q0, tol, max_iter):
    """Each platform's pose from its legs: ``L`` (N, 6) m, ``Q0`` (6N,) start.

    Returns ``(Q (6N,), max_residual (N,) m, iterations (N,), converged (N,))``.
    """
    q, err, it, ok = jax.vmap(from_legs_platform, in_axes=(0, 0, 0, 0, None, None))(
        arrs.b, arrs.t, L, _split(Q0), tol, max_iter)
    return q.reshape(-1), err, it, ok
