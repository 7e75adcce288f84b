"""The evaluation kernel of the reduced IK problem (Numba): values and exact first derivatives.

Why this exists: a cold IK solve needs a few hundred evaluations of (f, grad f, g, dg/dz), and
on a CPU one jitted JAX evaluation costs 150-250 us of dispatch and small-op overhead, where the
same arithmetic written as scalar loops takes a few microseconds.  The derivatives are exact
closed forms (no finite differences); the JAX oracle (:mod:`.reference`, autodiff) is what they
are tested against.  Both solvers (:mod:`.sqp`, :mod:`.ipm`) run on :func:`evaluate`.

With ``J`` = J_Q (6, 6N) the world-frame tool-twist Jacobian:

* ``dq_N/dz = D = -J_N^-1 J_<N`` (the tool pose stays put), so ``df/dz = df/dz + D^T df/dq_N``;
* the criterion's ``df/dQ``: :func:`assemblers.ik.criteria.gradient` (its ``d J / d Q`` through
  :func:`assemblers.kinematics.kernels.jacobian_pose_contract`);
* the constraints' values and rows: :mod:`assemblers.ik.constraints` (unit-vector and angle
  derivatives of the legs in each platform's base frame).

Array arguments: ``P`` a :class:`~assemblers.ik.problem.Problem`; ``z`` (6(N-1),) m and rad;
``Q`` (6N,).  No randomness, no I/O.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .. import _runtime  # noqa: F401  (sets NUMBA_CACHE_DIR to the user's cache)
from ..geometry.kernels import (
    angular_basis,
    compose,
    inverse_transform,
    pose_to_transform,
    rpy_to_matrix,
    so3_exp,
    so3_log,
    transform_to_pose,
    twist_between,
)
from ..kinematics.kernels import forward, jacobian_pose, platform_legs
from ..optim.linalg import copy_into, invert6
from . import constraints, criteria
from .criteria import CRIT_CLOSEST

# The flags ``want``/``full`` of the kernels below as NumPy booleans: Numba types them ``bool``,
# where a literal True/False argument compiles one specialization of the whole evaluation per
# literal (measured: three of evaluate, 16.6 s of a cold `assemblers solve`'s 92 s compile).
YES, NO = np.True_, np.False_

@njit(cache=True)
def eliminate(P, z, Q):
    """``Q`` (6N,) = (z, q_N): the last platform closes the chain onto ``P.T_target``."""
    T_mount, T_after, T_target = P.T_mount, P.T_after, P.T_target
    n = T_after.shape[0]
    n6 = 6 * (n - 1)
    A = T_mount.copy()
    T = np.empty((4, 4))
    B = np.empty((4, 4))
    for i in range(n - 1):
        pose_to_transform(z, 6 * i, T)
        compose(A, T, B)
        compose(B, T_after[i], A)
    inverse_transform(A, B)
    compose(B, T_target, T)
    inverse_transform(T_after[n - 1], B)
    compose(T, B, A)
    for k in range(n6):
        Q[k] = z[k]
    transform_to_pose(A, Q, n6)


@njit(cache=True)
def evaluate(P, crit, z, Q, want, grad, g, G, full):
    """The reduced problem at ``z`` (6(N-1) + E,: the free platforms' poses, then the E
    epigraph variables of a minimax criterion, :mod:`.criteria`): returns ``f``; fills ``Q``
    (6N,) and ``g`` (m,) and, when ``want``, ``grad`` (n,) = df/dz and ``G`` (m, n) = dg/dz
    (exact).  With ``full``, ``Q`` is an input (any stack pose, e.g. one off target; ``z``
    unused) and only ``f`` and ``g`` are computed.  For CRIT_CLOSEST the variables are the
    whole stack pose: ``z`` (6N,) = ``Q``, ``grad`` (6N,), ``G`` (m, 6N), and ``w_out`` weighs
    the tool's error twist (its three rotation weights must be equal).  Returns NaN where the
    geometry breaks down (a singular leg Jacobian for ``fn_legs``, a zero-length leg)."""
    b, t, T_mount, T_after = P.b, P.t, P.T_mount, P.T_after
    n = b.shape[0]
    nq = 6 * n
    n6 = nq - 6
    closest = crit == CRIT_CLOSEST
    if full:
        want = False
    elif closest:
        for c in range(nq):
            Q[c] = z[c]
    else:
        eliminate(P, z, Q)
    # ---- per-platform legs, leg Jacobians and joint angles (each in its base frame)
    R = np.empty((3, 3))
    E = np.empty((3, 3))
    dE = np.empty((3, 3, 3))
    Jl = np.empty((n, 6, 6))
    V = np.empty((n, 6, 3))  # leg vectors
    Rt = np.empty((n, 6, 3))  # R t_k
    L = np.empty((n, 6))
    N_top = np.empty((n, 3))
    ang = np.empty((n, 6, 2))
    Es = np.empty((n, 3, 3))
    dEs = np.empty((n, 3, 3, 3))
    for i in range(n):
        o = 6 * i
        rpy_to_matrix(Q[o + 3], Q[o + 4], Q[o + 5], R)
        angular_basis(Q[o + 4], Q[o + 5], E, dE)
        copy_into(Es[i], E)
        copy_into(dEs[i], dE)
        nx, ny, nz = R[0, 2], R[1, 2], R[2, 2]
        N_top[i, 0], N_top[i, 1], N_top[i, 2] = nx, ny, nz
        for k in range(6):
            rx = R[0, 0] * t[i, k, 0] + R[0, 1] * t[i, k, 1] + R[0, 2] * t[i, k, 2]
            ry = R[1, 0] * t[i, k, 0] + R[1, 1] * t[i, k, 1] + R[1, 2] * t[i, k, 2]
            rz = R[2, 0] * t[i, k, 0] + R[2, 1] * t[i, k, 1] + R[2, 2] * t[i, k, 2]
            vx = Q[o] + rx - b[i, k, 0]
            vy = Q[o + 1] + ry - b[i, k, 1]
            vz = Q[o + 2] + rz - b[i, k, 2]
            Lk = math.sqrt(vx * vx + vy * vy + vz * vz)
            Rt[i, k, 0], Rt[i, k, 1], Rt[i, k, 2] = rx, ry, rz
            V[i, k, 0], V[i, k, 1], V[i, k, 2] = vx, vy, vz
            L[i, k] = Lk
            ux, uy, uz = vx / Lk, vy / Lk, vz / Lk
            cx = ry * uz - rz * uy
            cy = rz * ux - rx * uz
            cz = rx * uy - ry * ux
            Jl[i, k, 0], Jl[i, k, 1], Jl[i, k, 2] = ux, uy, uz
            for m in range(3):
                Jl[i, k, 3 + m] = cx * E[0, m] + cy * E[1, m] + cz * E[2, m]
            ang[i, k, 0] = math.atan2(math.sqrt(vx * vx + vy * vy), vz)
            sx = vy * nz - vz * ny
            sy = vz * nx - vx * nz
            sz = vx * ny - vy * nx
            ang[i, k, 1] = math.atan2(math.sqrt(sx * sx + sy * sy + sz * sz),
                                      vx * nx + vy * ny + vz * nz)
    # ---- objective, and the leg forces where the criterion or a force limit needs them
    J = np.empty((6, nq))
    bases = np.empty((n, 4, 4))
    tops = np.empty((n, 4, 4))
    T_ee = np.empty((4, 4))
    tmp = np.empty((4, 4))
    Jinv = np.empty((n, 6, 6))
    X = np.empty((6, nq))
    e = np.empty(6)
    Us = np.empty((6, 6))
    Ss = np.empty(6)
    Vts = np.empty((6, nq))
    # plain bools for the callees: a caller's literal True/False would compile one of each
    # per literal (their specializations multiply the first run's compile time)
    wants, is_full = want != 0, full != 0
    F = np.zeros((n, 6))
    dF = np.empty((nq, nq) if want else (0, 0))
    if criteria.needs_forces(crit, P):
        if not criteria.forces(P, Q, wants, J, bases, tops, T_ee, tmp, F, dF):
            return np.nan
    constraints.values(P, Q, z, is_full, L, ang, F, g)
    f, ok = criteria.value(crit, P, Q, z, is_full, Jl, J, X, Jinv, e, Us, Ss, Vts, bases, tops,
                           T_ee, tmp, L, F)
    if not ok:
        return np.nan
    if not want:
        return f
    gQ = np.empty(nq)
    gt = np.empty(P.terms.epi.shape[0])  # df/dt of the epigraph variables (after the pose)
    criteria.gradient(crit, P, Q, z, is_full, f, Jl, J, X, Jinv, e, Us, Ss, Vts, bases, tops,
                      T_ee, tmp, V, Rt, L, Es, dEs, F, dF, gQ, gt)
    # ---- d q_N / d z = -J_N^-1 J_<N
    D = np.empty((6, max(n6, 1)))
    n_put, n_free = (n + 1, nq) if closest else (n, n6)  # CRIT_CLOSEST: every column direct
    if closest:
        for c in range(nq):
            grad[c] = gQ[c]
    elif n > 1:
        if not criteria.uses_jacobian(crit):
            jacobian_pose(T_mount, T_after, Q, J, bases, tops, T_ee, tmp)
        JN = np.empty((6, 6))
        for r in range(6):
            for c in range(6):
                JN[r, c] = J[r, n6 + c]
        JNi = np.empty((6, 6))
        if not invert6(JN, JNi):
            return np.nan
        for r in range(6):
            for c in range(n6):
                s = 0.0
                for a in range(6):
                    s -= JNi[r, a] * J[a, c]
                D[r, c] = s
    if not closest:
        for c in range(n6):
            s = gQ[c]
            for r in range(6):
                s += D[r, c] * gQ[n6 + r]
            grad[c] = s
        for a in range(gt.shape[0]):
            grad[n6 + a] = gt[a]
    if G.shape[0] > 0:  # (a G of no rows: the objective's gradient alone, e.g. for differences)
        constraints.jacobian(P, V, L, N_top, Es, Rt, Jl, D, n_put, n_free, z, F, dF, G)
    return f


# ----------------------------------------------------------------------------- for the solvers


@njit(cache=True, inline="always")
def scaled(P, crit, scale, z, Qw, want, grad, g, G):
    """:func:`evaluate` with the objective (and gradient) times ``scale``."""
    f = evaluate(P, crit, z, Qw, want, grad, g, G, NO) * scale
    if want:
        for a in range(z.shape[0]):
            grad[a] *= scale
    return f


@njit(cache=True, inline="always")
def start(P, crit, x0, m, f_scale, x):
    """The start of a solver: ``x = x0`` evaluated, the objective scale (``f_scale``, or
    ``1 / |f(x0)|`` when 0, or 1 when f(x0) is ~0) applied to the gradient, and the buffers.
    Returns ``(f(x0) unscaled, scale, Qw (n + 6,), grad (n,), g (m,), G (m, n))`` filled at
    ``x0`` and a second ``(grad, g, G)`` for trial points."""
    n = x0.shape[0]
    Qw = np.empty(n + 6)
    grad = np.empty(n)
    g = np.empty(m)
    G = np.empty((m, n))
    copy_into(x, x0)
    f_raw = evaluate(P, crit, x, Qw, YES, grad, g, G, NO)
    scale = f_scale if f_scale > 0.0 else (1.0 / abs(f_raw) if abs(f_raw) > 1e-12 else 1.0)
    if np.isfinite(f_raw):
        for a in range(n):
            grad[a] *= scale
    return f_raw, scale, Qw, grad, g, G, np.empty(n), np.empty(m), np.empty((m, n))


# ----------------------------------------------------------------------------- even split, report


@njit(cache=True)
def even_split(P, Q_home, Q):
    """The ``even`` pose before repair into ``Q`` (6N,) (as :func:`assemblers.ik.even_split`):
    the tool motion from home (``Q_home`` (6N,)) to the target, in the home tool frame, split
    into N equal parts (translation / N, rotation vector / N) applied by platforms 1..N-1; the
    last platform closes the chain."""
    n = P.T_after.shape[0]
    w = np.full(n, 1.0 / n)
    split(P, Q_home, w, w, Q)


@njit(cache=True)
def term_values(P, Q_home, codes, w, Q, g, values):
    """A blend's normalization in one call: the even split of ``P.T_target`` into ``Q`` (6N,)
    (:func:`even_split`), and ``values`` (K,) = each term ``codes[a]`` at it (0 where its weight
    ``w[a]`` is 0); ``g`` (m,) scratch for the constraints of ``P`` (base terms).  Why: the
    same done from Python, one kernel call per piece, took 80 us of a 0.3 ms duo solve."""
    even_split(P, Q_home, Q)
    for a in range(codes.shape[0]):
        values[a] = 0.0
        if w[a] != 0.0:
            values[a] = evaluate(P, codes[a], Q[:0], Q, NO, Q[:0], g, np.empty((0, 0)), YES)


@njit(cache=True)
def split(P, Q_home, a, c, Q):
    """A split of the tool motion from home (``Q_home`` (6N,)) to the target into ``Q`` (6N,):
    the motion, in the home tool frame, as a translation ``d`` and a rotation vector ``w`` (a
    decoupled SE(3) logarithm); platform i of 1..N-1 applies ``(a_i d, exp(c_i w))`` to its
    home transform (``a``, ``c`` (N,) fractions; 1/N each is the even split), and the last
    platform closes the chain."""
    T_mount, T_after, T_target = P.T_mount, P.T_after, P.T_target
    n = T_after.shape[0]
    work = np.empty((2, 4, 4))
    T_home = np.empty((4, 4))
    forward(T_mount, T_after, Q_home, T_home, work)
    Ti = np.empty((4, 4))
    inverse_transform(T_home, Ti)
    D = np.empty((4, 4))
    compose(Ti, T_target, D)
    w = np.empty(3)
    so3_log(D[0:3, 0:3].copy(), w)
    wi = np.empty(3)
    step = np.eye(4)
    Rs = np.empty((3, 3))
    z = np.empty(6 * (n - 1))
    Tq = np.empty((4, 4))
    for i in range(n - 1):
        for r in range(3):
            wi[r] = w[r] * c[i]
        so3_exp(wi, Rs)
        copy_into(step[0:3, 0:3], Rs)
        for r in range(3):
            step[r, 3] = D[r, 3] * a[i]
        pose_to_transform(Q_home, 6 * i, Tq)
        compose(Tq, step, Ti)
        transform_to_pose(Ti, z, 6 * i)
    eliminate(P, z, Q)


@njit(cache=True)
def report(P, Q, legs, twist):
    """What a result reports at a full stack pose ``Q`` (6N,), on target or not, besides the
    cost and limits (``evaluate(..., full=True)``): fills ``legs`` (N, 6) m and ``twist`` (6,),
    the tool's error twist against the target (position m, rotation vector rad; world frame).
    (Kept apart from :func:`evaluate`: every Numba caller of it compiles it again.)"""
    b, t = P.b, P.t
    n = b.shape[0]
    R = np.empty((3, 3))
    for i in range(n):
        platform_legs(b[i], t[i], Q, 6 * i, legs[i], R)
    T = np.empty((4, 4))
    forward(P.T_mount, P.T_after, Q, T, np.empty((2, 4, 4)))
    twist_between(P.T_target, T, twist)


@njit(cache=True, inline="always")
def result_at(P, crit, x, Q, g, legs, twist):
    """What a solver's result reports at its solution ``x`` (n,) (the cold solve's and a
    trajectory step's, :mod:`.cold`, :mod:`.ipm`): fills ``Q`` (6N,) the full pose, ``g`` (m,)
    the constraints, ``legs`` (N, 6) m (geometric) and ``twist`` (6,) the tool's error against
    the target.  Returns ``(cost, tool position error m, tool rotation error rad)``, the cost
    the criterion at ``Q`` (unscaled)."""
    eliminate(P, x, Q)
    cost = evaluate(P, crit, x[:0], Q, NO, x[:0], g, np.empty((0, 0)), YES)
    report(P, Q, legs, twist)
    ep = math.sqrt(twist[0] ** 2 + twist[1] ** 2 + twist[2] ** 2)
    er = math.sqrt(twist[3] ** 2 + twist[4] ** 2 + twist[5] ** 2)
    return cost, ep, er
