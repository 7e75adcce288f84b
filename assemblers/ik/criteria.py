"""The IK criteria, each defined once: its id, its Numba value and gradient, its JAX reference.

A criterion is a row of :data:`SPECS` (name, kernel code, which weights, how results report
it, which solvers suit it), one branch of :func:`value` and of :func:`gradient` (Numba: the
value at a full stack pose ``Q`` and ``df/dQ``; the chain rule of the elimination is the
evaluation kernel's, :mod:`.evaluate`), and a JAX function of the same quantity in
:func:`reference` (autodiff of it is the oracle ``tests/ik`` checks the Numba derivatives
against).  Adding one means adding those four things here, nothing elsewhere.

Shared arguments of the kernels (filled by :func:`assemblers.ik.evaluate.evaluate`): ``P`` the
:class:`~assemblers.ik.problem.Problem`; ``Q`` (6N,); ``Jl`` (N, 6, 6) each platform's leg
Jacobian; ``V``, ``Rt`` (N, 6, 3) leg vectors and ``R t_k``, ``L`` (N, 6) m, ``Es``/``dEs`` the
angular bases and their derivatives (each platform's base frame); scratch of the stack
Jacobian ``J`` (6, 6N) with its frames ``bases``, ``tops`` (N, 4, 4), ``T_ee``, ``tmp`` (4, 4);
``X`` (6, 6N), ``Jinv`` (N, 6, 6), ``e`` (6,), ``Us`` (6, 6), ``Ss`` (6,), ``Vts`` (6, 6N).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from .. import _runtime  # noqa: F401  (sets NUMBA_CACHE_DIR to the user's cache)
from ..geometry.kernels import twist_between
from ..kinematics.kernels import jacobian_pose, jacobian_pose_contract, leg_jacobian_row_derivative
from ..optim.linalg import invert6

# kernel codes
CRIT_FN, CRIT_FN_LEGS, CRIT_DIST = 0, 1, 2  # ||W J_Q W||, ||W J_L W||, |Q - Q_ref|^2
# the closest pose to an unreachable target: |w_out * twist(T_target, FK(Q))|^2 over the whole
# stack pose (z = Q, (6N,); no elimination)
CRIT_CLOSEST = 3
CRIT_COND = 4  # condition number sigma_max / sigma_min of W_out J_Q W_in


class Criterion(NamedTuple):
    """``code``: the kernels' id; ``wrt``: the sensitivity weights it uses ("pose"/"legs");
    ``cost``: the criterion a result's cost is reported in (the baselines report ``fn``);
    ``ipm``: smooth enough for the interior point (it needs second derivatives); ``f_tol``: the
    SQP's objective-change test (0: off; for objectives not smooth at their optimum);
    ``public``: a ``solve_ik`` criterion (else internal); ``doc``: one line."""

    code: int
    wrt: str
    cost: str
    ipm: bool
    f_tol: float
    public: bool
    doc: str


SPECS: dict[str, Criterion] = {
    "fn": Criterion(CRIT_FN, "pose", "fn", True, 0.0, True, "|| W_out J_Q W_in ||_F"),
    "fn_legs": Criterion(CRIT_FN_LEGS, "legs", "fn_legs", True, 0.0, True,
                         "|| W_out J_L W_in ||_F"),
    # its optimum is often where the extreme singular values cross (no small KKT error there):
    # also stop after three feasible steps that change the normalised objective by <= 1e-12
    "condition": Criterion(CRIT_COND, "pose", "condition", False, 1e-12, True,
                           "condition number of W_out J_Q W_in"),
    "even": Criterion(CRIT_DIST, "pose", "fn", False, 0.0, True,
                      "baseline: the tool motion split evenly, repaired to feasibility"),
    "nearest": Criterion(CRIT_DIST, "pose", "fn", True, 0.0, True,
                         "baseline: the feasible pose closest to home"),
    "closest": Criterion(CRIT_CLOSEST, "pose", "fn", False, 0.0, False,
                         "internal: the pose closest to an unreachable target"),
}
CRITERIA = tuple(name for name, c in SPECS.items() if c.public)  # solve_ik's names
CODES = {name: c.code for name, c in SPECS.items()}


# ----------------------------------------------------------------------------- Numba


@njit(cache=True)
def uses_jacobian(crit):
    """Whether :func:`value` fills ``J`` (and its frames) with J_Q at ``Q``."""
    return crit != CRIT_DIST


@njit(cache=True)
def value(crit, P, Q, Jl, J, X, Jinv, e, Us, Ss, Vts, bases, tops, T_ee, tmp):
    """The criterion ``crit`` at the full stack pose ``Q``: ``(f, ok)``; ``ok`` False where the
    geometry breaks down (a singular leg Jacobian for ``fn_legs``)."""
    w_out, w_in = P.w_out, P.w_in
    n = P.b.shape[0]
    nq = 6 * n
    if crit == CRIT_DIST:
        f = 0.0
        for c in range(nq):
            d = Q[c] - P.Q_ref[c]
            f += d * d
        return f, True
    jacobian_pose(P.T_mount, P.T_after, Q, J, bases, tops, T_ee, tmp)
    if crit == CRIT_CLOSEST:
        twist_between(P.T_target, T_ee, e)
        f = 0.0
        for r in range(6):
            f += (w_out[r] * e[r]) ** 2
        return f, True
    if crit == CRIT_COND:
        for r in range(6):
            for c in range(nq):
                X[r, c] = w_out[r] * J[r, c] * w_in[c]
        U, S, Vt = np.linalg.svd(X, full_matrices=False)  # (6, 6), (6,), (6, 6N)
        Us[:, :] = U
        Ss[:] = S
        Vts[:, :] = Vt
        return S[0] / S[5], True
    if crit == CRIT_FN_LEGS:
        for i in range(n):
            if not invert6(Jl[i], Jinv[i]):
                return np.nan, False
            _times_block(J, i, Jinv[i], False, X)
    else:
        X[:, :] = J
    f = 0.0
    for r in range(6):
        for c in range(nq):
            mrc = w_out[r] * X[r, c] * w_in[c]
            f += mrc * mrc
    return math.sqrt(f), True


@njit(cache=True)
def gradient(crit, P, Q, f, J, X, Jinv, e, Us, Ss, Vts, bases, tops, T_ee, V, Rt, L, Es, dEs,
             gQ):
    """``gQ`` (6N,) = df/dQ of the criterion at ``Q`` (after :func:`value`, whose scratch it
    reads)."""
    w_out, w_in = P.w_out, P.w_in
    n = P.b.shape[0]
    nq = 6 * n
    gQ[:] = 0.0
    if crit == CRIT_DIST:
        for c in range(nq):
            gQ[c] = 2.0 * (Q[c] - P.Q_ref[c])
    elif crit == CRIT_COND:
        # d sigma_i = u_i' dM v_i (simple singular values), M = W_out J W_in
        Gf = np.empty((6, nq))
        a1 = 1.0 / Ss[5]
        a2 = Ss[0] / (Ss[5] * Ss[5])
        for r in range(6):
            for c in range(nq):
                Gf[r, c] = w_out[r] * w_in[c] * (a1 * Us[r, 0] * Vts[0, c]
                                                 - a2 * Us[r, 5] * Vts[5, c])
        jacobian_pose_contract(Gf, J, Q, bases, tops, T_ee, gQ)
    elif crit == CRIT_CLOSEST:
        # d e = [I 0; 0 Jl^-1(phi)] J_Q dQ (phi = e_rot, a left perturbation), and
        # phi^T Jl^-1(phi) = phi^T (Jl^-1 = I - hat(phi)/2 + k hat(phi)^2): with equal
        # rotation weights (as built by problem.closest_problem) d|phi|^2 = 2 phi . omega
        a = np.empty(6)
        for r in range(6):
            a[r] = 2.0 * w_out[r] * w_out[r] * e[r]
        for c in range(nq):
            v = 0.0
            for r in range(6):
                v += a[r] * J[r, c]
            gQ[c] = v
    else:
        Gf = np.empty((6, nq))  # d f / d X
        for r in range(6):
            for c in range(nq):
                wgt = w_out[r] * w_in[c]
                Gf[r, c] = wgt * wgt * X[r, c] / f if f > 0.0 else 0.0
        if crit == CRIT_FN:
            jacobian_pose_contract(Gf, J, Q, bases, tops, T_ee, gQ)
        else:
            Hm = np.empty((6, nq))  # G_i Jinv_i^T: what multiplies d J_Q
            for i in range(n):
                _times_block(Gf, i, Jinv[i], True, Hm)
            jacobian_pose_contract(Hm, J, Q, bases, tops, T_ee, gQ)
            Pm = np.empty((6, 6))  # X_i^T H_i: what multiplies d Jleg_i
            drow = np.empty(6)
            for i in range(n):
                for r in range(6):
                    for c in range(6):
                        s = 0.0
                        for a in range(6):
                            s += X[a, 6 * i + r] * Hm[a, 6 * i + c]
                        Pm[r, c] = s
                for j in range(6):
                    acc = 0.0
                    for k in range(6):
                        leg_jacobian_row_derivative(V[i, k], Rt[i, k], L[i, k], Es[i], dEs[i], j,
                                                    drow)
                        for c in range(6):
                            acc += Pm[k, c] * drow[c]
                    gQ[6 * i + j] -= acc


@njit(cache=True, inline="always")
def _times_block(A, i, B, transpose, out):
    """``out[:, 6i:6i+6] = A[:, 6i:6i+6] @ B`` (or ``@ B.T``); ``A``, ``out`` (6, 6N), ``B`` (6, 6)."""
    o = 6 * i
    for r in range(6):
        for c in range(6):
            s = 0.0
            for a in range(6):
                s += A[r, o + a] * (B[c, a] if transpose else B[a, c])
            out[r, o + c] = s


# ----------------------------------------------------------------------------- JAX


def reference(name: str, arrs, Q, w_out, w_in, Q_ref, T_target=None):
    """The criterion ``name`` at a full pose ``Q`` (6N,) in JAX (traceable; the oracle of the
    Numba :func:`value` and, through autodiff, of :func:`gradient`).  ``arrs``: JAX
    :class:`~assemblers.model.StackArrays`; ``T_target`` (4, 4) only for ``closest``."""
    import jax.numpy as jnp

    from ..geometry import reference as geo
    from ..kinematics import reference as K

    code = SPECS[name].code
    if code in (CRIT_FN, CRIT_FN_LEGS):
        return K.sensitivity(arrs, Q, w_out, w_in, "pose" if code == CRIT_FN else "legs")
    if code == CRIT_COND:
        J = K.jacobian(arrs, Q, "pose")
        s = jnp.linalg.svd(w_out[:, None] * J * w_in[None, :], compute_uv=False)
        return s[0] / s[-1]
    if code == CRIT_CLOSEST:
        e = w_out * geo.twist_between(T_target, K.forward(arrs, Q))
        return jnp.sum(e * e)
    # "nearest" (to Q_ref = home) and the "even" repair (to Q_ref = the even split)
    d = Q - Q_ref
    return jnp.sum(d * d)
