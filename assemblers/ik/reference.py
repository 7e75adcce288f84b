"""The JAX oracle of the IK problem (public): the same problem as the Numba kernels, by autodiff.

Tests check the evaluation kernel (:mod:`.evaluate`) against these functions, and the solver
uses two of them as fallbacks (the closest-pose search's SciPy SLSQP, random feasible starts).
``arrs``: JAX :class:`~assemblers.model.StackArrays` (``assemblers.stack_arrays``); ``limits``:
:class:`~assemblers.ik.problem.Limits` (NumPy or JAX arrays); ``z`` (6(N-1),); ``Q`` (6N,).
"""

from __future__ import annotations

from functools import cache

import jax
import jax.numpy as jnp

from .. import _runtime
from ..geometry import reference as geo
from ..kinematics import reference as K
from . import constraints
from .criteria import reference as criterion_value

_runtime.configure_jax()

__all__ = ["closest_values", "constraint_values", "criterion_value", "eliminate_batch",
           "constraints_batch", "eliminate_last", "even_split", "reduced", "report_values"]


def eliminate_last(arrs, z, T_target):
    """Full stack pose ``Q`` (6N,) from platforms 1..N-1 (``z`` (6(N-1),)) and the target."""
    n = arrs.b.shape[0]
    z = z[:6 * (n - 1)]  # (any epigraph variables of a minimax criterion follow)
    A = arrs.T_mount
    for i in range(n - 1):
        A = A @ geo.pose_to_transform(z[6 * i: 6 * i + 6]) @ arrs.T_after[i]
    T_last = geo.inverse_transform(A) @ T_target @ geo.inverse_transform(arrs.T_after[n - 1])
    return jnp.concatenate([z, geo.transform_to_pose(T_last)])


def constraint_values(arrs, Q, limits, loads=None, terms=None, z=None, epi=()):
    """Inequalities ``g(Q) >= 0`` (stroke, joint angle, pose bounds; with ``loads`` and
    ``terms`` also leg force ratings and the epigraph rows of the codes ``epi``), m and rad,
    laid out as :func:`assemblers.ik.constraints.rows`."""
    return constraints.reference(arrs, Q, limits, loads, terms, z, epi)


@cache
def reduced(criterion: str):
    """A jitted ``(z, arrs, T_target, w_out, w_in, Q_ref, limits, loads=None, terms=None) -> [f,
    df/dz, g, dg/dz]`` (one flat array) of the reduced problem for ``criterion``: the oracle of
    :func:`assemblers.ik.evaluate.evaluate` (``loads``, ``terms``: the problem's, for the
    criteria of the loads, blends and force ratings; ``z`` then holds any epigraph variables
    after the poses)."""
    from .criteria import epigraph_codes

    epi = epigraph_codes(criterion)

    def f_of_z(z, arrs, T_target, w_out, w_in, Q_ref, loads, terms):
        Q = eliminate_last(arrs, z, T_target)
        return criterion_value(criterion, arrs, Q, w_out, w_in, Q_ref, loads=loads, terms=terms,
                               z=z)

    def g_of_z(z, arrs, T_target, limits, loads, terms):
        return constraint_values(arrs, eliminate_last(arrs, z, T_target), limits, loads, terms, z,
                                 epi)

    @jax.jit
    def all_in_one(z, arrs, T_target, w_out, w_in, Q_ref, limits, loads=None, terms=None):
        f, df = jax.value_and_grad(f_of_z)(z, arrs, T_target, w_out, w_in, Q_ref, loads, terms)
        g = g_of_z(z, arrs, T_target, limits, loads, terms)
        dg = jax.jacfwd(g_of_z)(z, arrs, T_target, limits, loads, terms)
        return jnp.concatenate([f[None], df, g, dg.reshape(-1)])

    return all_in_one


@jax.jit
def closest_values(Q, arrs, T_target, w, limits):
    """(f, grad f, g, dg/dQ) of the closest-pose problem over the whole stack pose ``Q``:
    ``f = |w * twist(T_target, FK(Q))|^2`` (``w`` (6,))."""

    def f(Q):
        return criterion_value("closest", arrs, Q, w, None, None, T_target)

    def g(Q):
        return constraint_values(arrs, Q, limits)

    v, d = jax.value_and_grad(f)(Q)
    return v, d, g(Q), jax.jacfwd(g)(Q)


@jax.jit
def even_split(arrs, Q_home, T_target):
    """The ``even`` pose before repair: ``Q_home`` (6N,), ``T_target`` (4, 4) -> Q (6N,) (the
    oracle of :func:`assemblers.ik.evaluate.even_split`)."""
    n = Q_home.shape[0] // 6
    if n == 1:
        return eliminate_last(arrs, Q_home[:0], T_target)
    D = geo.inverse_transform(K.forward(arrs, Q_home)) @ T_target  # motion in the home tool frame
    step = jnp.eye(4).at[:3, :3].set(geo.so3_exp(geo.so3_log(D[:3, :3]) / n))
    step = step.at[:3, 3].set(D[:3, 3] / n)
    z = jnp.concatenate([geo.transform_to_pose(geo.pose_to_transform(Q_home[6 * i: 6 * i + 6]) @ step)
                         for i in range(n - 1)])
    return eliminate_last(arrs, z, T_target)


def report_values(criterion, arrs, Q, T_target, limits, w_out, w_in):
    """What a result reports at a full pose ``Q``: constraints ``g`` (m,), the tool's error
    twist against the target (6,), legs (N, 6) m and the cost (the oracle of
    :func:`assemblers.ik.evaluate.report`)."""
    return (constraint_values(arrs, Q, limits), geo.twist_between(T_target, K.forward(arrs, Q)),
            K.stack_legs(arrs, Q), criterion_value(criterion, arrs, Q, w_out, w_in, None))


@jax.jit
def eliminate_batch(arrs, Z, T_target):
    """:func:`eliminate_last` over the rows of ``Z`` (B, 6(N-1)) -> (B, 6N)."""
    return jax.vmap(eliminate_last, in_axes=(None, 0, None))(arrs, Z, T_target)


@jax.jit
def constraints_batch(arrs, Qs, limits):
    """:func:`constraint_values` over the rows of ``Qs`` (B, 6N) -> (B, m)."""
    return jax.vmap(constraint_values, in_axes=(None, 0, None))(arrs, Qs, limits)
