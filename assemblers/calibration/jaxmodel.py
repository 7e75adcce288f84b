"""The measurement model in JAX: commanded legs and a parameter vector -> the frames a lab
measures, and its identification Jacobian by forward-mode autodiff.

Each platform's pose follows from its geometric legs by Newton's method (a fixed number of
steps from the nominal model's pose, millimetres away: quadratic convergence reaches round-off
in four; a pose whose legs still miss by more than :data:`NEWTON_TOL` is NaN, and the fit's
trust region steps back).  Its derivative is not the derivative of the Newton iterations but
the implicit one (:func:`platform_pose`'s ``custom_jvp`` rule): at the solution
``legs(b, t, q) = L``, so ``dL/dq dq + dlegs/d(b, t) d(b, t) = dL``, one 6 x 6 solve.

Shapes (one pose; :class:`Evaluator` maps them over rows in fixed-size chunks, so each stack
compiles once): ``p`` (48N + 12,) the full parameter vector (:mod:`.params`); ``L`` (N, 6)
commanded lengths m; ``q0`` (6N,) Newton's start (the nominal model's pose);
``T_meas`` (N + 1, 4, 4): the measured tool (row 0) and top plates 1..N (world frame).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..geometry import reference as geo
from ..kinematics import reference as K
from ..kinematics.api import stack_arrays
from ..model import Assembler
from .params import n_params, split

NEWTON_TOL = 1e-13  # m, on the largest leg residual
NEWTON_ITER = 8  # fixed Newton steps from the nominal pose (quadratic: 1 mm -> 1e-15 m in 4)
CHUNK = 32  # rows per compiled call: one compilation per stack, whatever the row count


@jax.custom_jvp
def platform_pose(b, t, L, q0):
    """Pose (6,) of one platform with joints ``b``, ``t`` (6, 3) m and geometric legs ``L``
    (6,) m, by :data:`NEWTON_ITER` Newton steps from ``q0`` (6,); NaN where the legs then miss
    by more than :data:`NEWTON_TOL`.  Differentiated implicitly (the start ``q0`` carries no
    derivative)."""
    def step(_, q):
        return q - jnp.linalg.solve(K.platform_leg_jacobian(b, t, q), K.platform_legs(b, t, q) - L)

    q = lax.fori_loop(0, NEWTON_ITER, step, q0)
    ok = jnp.max(jnp.abs(K.platform_legs(b, t, q) - L)) <= NEWTON_TOL
    return jnp.where(ok, q, jnp.nan)


@platform_pose.defjvp
def _platform_pose_jvp(primals, tangents):
    b, t, L, q0 = primals
    db, dt, dL, _ = tangents
    q = platform_pose(b, t, L, q0)
    # legs(b, t, q(b, t, L)) = L  =>  dL/dq dq = dL - dlegs/d(b, t) . (db, dt)
    _, dlegs = jax.jvp(lambda b_, t_: K.platform_legs(b_, t_, q), (b, t), (db, dt))
    dq = jnp.linalg.solve(K.platform_leg_jacobian(b, t, q), dL - dlegs)
    return q, dq


def twist_transform(d):
    """``d`` (6,): translation m, rotation vector rad -> (4, 4) ``T(d)`` (JAX)."""
    top = jnp.concatenate([geo.so3_exp(d[3:]), d[:3, None]], axis=1)
    return jnp.concatenate([top, jnp.array([[0.0, 0.0, 0.0, 1.0]])], axis=0)


def frames(p, T_mount0, T_after0, L, q0):
    """World frames of one pose: ``(T_world_tool (4, 4), T_world_top (N, 4, 4))``.

    ``T_mount0`` (4, 4) and ``T_after0`` (N, 4, 4) are the nominal mount and the transforms
    after each top plate (interfaces, then the nominal tool); ``p`` corrects mount and tool."""
    n = L.shape[0]
    b, t, off, scl, d_m, d_t = split(n, p)
    L_geo = scl * L + off
    qs = jax.vmap(platform_pose)(b, t, L_geo, lax.stop_gradient(q0).reshape(n, 6))
    T_after = T_after0.at[n - 1].set(T_after0[n - 1] @ twist_transform(d_t))

    def step(A, x):
        q, T_next = x
        top = A @ geo.pose_to_transform(q)
        return top @ T_next, top

    T_tool, tops = lax.scan(step, T_mount0 @ twist_transform(d_m), (qs, T_after))
    return T_tool, tops


def error_twist(T_model, T_meas):
    """``(p_meas - p_model, log(R_meas R_model^T))`` (6,), world frame (m, rad): the twist of
    :func:`assemblers.geometry.reference.twist_between`, its log written for angles below
    pi/2 (``theta = asin(|v|)``, ``v = vee(E - E^T) / 2``), which a measured pose's error
    never reaches (:func:`assemblers.calibration.core.prepare` refuses rows past 0.5 rad).
    About half the compiled code of the general log; exact in that range."""
    dp = T_meas[0:3, 3] - T_model[0:3, 3]
    E = T_meas[0:3, 0:3] @ T_model[0:3, 0:3].T
    v = 0.5 * jnp.array([E[2, 1] - E[1, 2], E[0, 2] - E[2, 0], E[1, 0] - E[0, 1]])
    s2 = jnp.dot(v, v)
    small = s2 < 1e-12
    s = jnp.sqrt(jnp.where(small, 1.0, s2))  # double where: finite gradients at 0
    factor = jnp.where(small, 1.0 + s2 / 6.0, jnp.arcsin(jnp.minimum(s, 1.0)) / s)
    return jnp.concatenate([dp, factor * v])


def residual(p, T_mount0, T_after0, L, q0, T_meas):
    """Error twists (N + 1, 6) of the measured frames against the model's (:func:`error_twist`):
    row 0 the tool, row i the top plate of platform i."""
    T_tool, tops = frames(p, T_mount0, T_after0, L, q0)
    model = jnp.concatenate([T_tool[None], tops], axis=0)
    return jax.vmap(error_twist)(model, T_meas)


@partial(jax.jit, static_argnames=("with_jacobian",))
def _chunk(p, T_mount0, T_after0, L, q0, T_meas, with_jacobian: bool):
    f = jax.vmap(residual, in_axes=(None, None, None, 0, 0, 0))
    r = f(p, T_mount0, T_after0, L, q0, T_meas)
    if not with_jacobian:
        return r, None
    J = jax.jacfwd(f)(p, T_mount0, T_after0, L, q0, T_meas)  # (C, N + 1, 6, P)
    return r, J


class Evaluator:
    """The measurement model of one nominal Assembler on NumPy arrays, in chunks of
    :data:`CHUNK` rows (padded), so a stack compiles once per kind of call."""

    def __init__(self, asm: Assembler):
        self.asm = asm
        self.n = asm.n_platforms
        self.P = n_params(self.n)
        a = stack_arrays(asm)
        self._T_mount0 = a.T_mount
        self._T_after0 = a.T_after

    def evaluate(self, p, L, q0, T_meas, with_jacobian: bool = True):
        """``p`` (P,), ``L`` (M, N, 6) commanded m, ``q0`` (M, 6N), ``T_meas`` (M, N + 1, 4, 4)
        -> ``(r (M, N + 1, 6), J (M, N + 1, 6, P) or None)``: the error twists and their
        derivatives by ``p``.  NaN rows where a platform's legs have no pose."""
        p = jnp.asarray(np.asarray(p, dtype=np.float64))
        M = L.shape[0]
        rs, Js = [], []
        for s in range(0, M, CHUNK):
            idx = np.arange(s, min(s + CHUNK, M))
            pad = np.concatenate([idx, np.full(CHUNK - idx.size, idx[0])])
            r, J = _chunk(p, self._T_mount0, self._T_after0, jnp.asarray(L[pad]),
                          jnp.asarray(q0[pad]), jnp.asarray(T_meas[pad]), with_jacobian)
            rs.append(np.asarray(r)[: idx.size])
            if with_jacobian:
                Js.append(np.asarray(J)[: idx.size])
        r = np.concatenate(rs) if rs else np.zeros((0, self.n + 1, 6))
        if not with_jacobian:
            return r, None
        return r, (np.concatenate(Js) if Js else np.zeros((0, self.n + 1, 6, self.P)))
