"""The IK criteria, each defined once: its id, its Numba value and gradient, its JAX reference.

A criterion is a row of :data:`SPECS` (name, kernel code, which weights, how results report
it, which solvers suit it), one branch of :func:`_value` and of :func:`_gradient` (Numba: the
value at a full stack pose ``Q`` and ``df/dQ``; the chain rule of the elimination is the
evaluation kernel's, :mod:`.evaluate`), and a JAX function of the same quantity in
:func:`reference` (autodiff of it is the oracle ``tests/ik`` checks the Numba derivatives
against).  Adding one means adding those four things here, nothing elsewhere.  Blends of the
built-ins and user-defined JAX criteria are registered at run time (:mod:`.custom`).

Criteria of the loads (docs/statics.md): ``loads`` (sum of squared leg forces over their
ratings), ``compliance`` (weighted tool deflection under the configured loads), and two minimax
criteria, ``loads_max`` (largest |force| / rating) and ``margin`` (largest excursion of a leg
from mid-stroke over half its stroke), each kept smooth by an *epigraph* variable ``t`` (one
more decision variable, ``z[6(N-1) + e]``): minimize ``t`` subject to ``t - h_k >= 0`` and
``t + h_k >= 0`` for every leg (rows of :mod:`.constraints`).

Shared arguments of the kernels (filled by :func:`assemblers.ik.evaluate.evaluate`): ``P`` the
:class:`~assemblers.ik.problem.Problem`; ``Q`` (6N,); ``z`` the decision variables (their
epigraph entries after the 6(N-1) pose ones) and ``full`` (True: ``Q`` is given, ``z`` unused;
an epigraph criterion then takes its value, ``max |h|``); ``Jl`` (N, 6, 6) each platform's leg
Jacobian; ``V``, ``Rt`` (N, 6, 3) leg vectors and ``R t_k``, ``L`` (N, 6) m, ``Es``/``dEs`` the
angular bases and their derivatives (each platform's base frame); scratch of the stack
Jacobian ``J`` (6, 6N) with its frames ``bases``, ``tops`` (N, 4, 4), ``T_ee``, ``tmp`` (4, 4);
``X`` (6, 6N), ``Jinv`` (N, 6, 6), ``e`` (6,), ``Us`` (6, 6), ``Ss`` (6,), ``Vts`` (6, 6N);
``F`` (N, 6) N the leg forces and ``dF`` (6N, 6N) their derivative (:func:`.loads_kernels.forces`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, objmode

from .. import _runtime  # noqa: F401  (sets NUMBA_CACHE_DIR to the user's cache)
from ..geometry.kernels import twist_between
from ..kinematics.kernels import jacobian_pose, jacobian_pose_contract, leg_jacobian_row_contract
from ..optim.linalg import copy_into, invert6
from .loads_kernels import (
    compliance_gradient,
    forces,  # noqa: F401  (criteria.forces: the evaluation kernel's name)
    inv_stiffness,
)
from .user import call as user_call

# kernel codes
CRIT_FN, CRIT_FN_LEGS, CRIT_DIST = 0, 1, 2  # ||W J_Q W||, ||W J_L W||, |Q - Q_ref|^2
# the closest pose to an unreachable target: |w_out * twist(T_target, FK(Q))|^2 over the whole
# stack pose (z = Q, (6N,); no elimination)
CRIT_CLOSEST = 3
CRIT_COND = 4  # condition number sigma_max / sigma_min of W_out J_Q W_in
CRIT_LOADS = 5  # sum over legs of (f / force_scale)^2
CRIT_LOADS_MAX = 6  # max |f| / force_scale (epigraph)
CRIT_MARGIN = 7  # max |L - mid| / half stroke (epigraph)
CRIT_COMPLIANCE = 8  # |W_out d|, d the tool deflection under the configured loads
CRIT_BLEND = 9  # sum of terms P.terms.codes, each times P.terms.weights (custom.py)
CRIT_USER = 10  # a user-defined JAX function (custom.py, user.py)


class Criterion(NamedTuple):
    """``code``: the kernels' id; ``wrt``: the sensitivity weights it uses ("pose"/"legs");
    ``cost``: the criterion a result's cost is reported in (the baselines report ``fn``);
    ``ipm``: smooth enough for the interior point (it needs second derivatives); ``f_tol``: the
    SQP's objective-change test (0: off; for objectives not smooth at their optimum);
    ``public``: a ``solve_ik`` criterion (else internal); ``doc``: one line; ``epigraph``: one
    more decision variable (minimax); ``needs``: "load" (leg forces under a load), "stiffness"
    (and leg stiffnesses) or ""."""

    code: int
    wrt: str
    cost: str
    ipm: bool
    f_tol: float
    public: bool
    doc: str
    epigraph: bool = False
    needs: str = ""


SPECS: dict[str, Criterion] = {
    "fn": Criterion(CRIT_FN, "pose", "fn", True, 0.0, True, "|| W_out J_Q W_in ||_F"),
    "fn_legs": Criterion(CRIT_FN_LEGS, "legs", "fn_legs", True, 0.0, True,
                         "|| W_out J_L W_in ||_F"),
    # its optimum is often where the extreme singular values cross (no small KKT error there):
    # also stop after three feasible steps that change the normalised objective by <= 1e-12
    "condition": Criterion(CRIT_COND, "pose", "condition", False, 1e-12, True,
                           "condition number of W_out J_Q W_in"),
    "loads": Criterion(CRIT_LOADS, "pose", "loads", True, 0.0, True,
                       "sum of squared leg forces over their max_leg_force", needs="load"),
    # the interior point's driver sizes its variables 6(N-1): epigraph criteria use the SQP
    "loads_max": Criterion(CRIT_LOADS_MAX, "pose", "loads_max", False, 0.0, True,
                           "largest |leg force| / max_leg_force (minimax)", True, "load"),
    "margin": Criterion(CRIT_MARGIN, "pose", "margin", False, 0.0, True,
                        "largest |L - mid-stroke| / half stroke (maximizes the smallest stroke "
                        "margin)", True),
    "compliance": Criterion(CRIT_COMPLIANCE, "pose", "compliance", True, 0.0, True,
                            "|| W_out d ||, d the tool deflection under the configured loads",
                            needs="stiffness"),
    "even": Criterion(CRIT_DIST, "pose", "fn", False, 0.0, True,
                      "baseline: the tool motion split evenly, repaired to feasibility"),
    "nearest": Criterion(CRIT_DIST, "pose", "fn", True, 0.0, True,
                         "baseline: the feasible pose closest to home"),
    "closest": Criterion(CRIT_CLOSEST, "pose", "fn", False, 0.0, False,
                         "internal: the pose closest to an unreachable target"),
}
CRITERIA = tuple(name for name, c in SPECS.items() if c.public)  # solve_ik's names
CODES = {name: c.code for name, c in SPECS.items()}
#: criteria a blend may combine (custom.py)
BLENDABLE = ("fn", "fn_legs", "condition", "loads", "loads_max", "margin", "compliance")


class Terms(NamedTuple):
    """What a criterion of the loads, a blend or a user criterion needs in the kernels
    (float64/int64 arrays; one :class:`~assemblers.ik.problem.Problem` field).

    ``codes`` (K,) / ``weights`` (K,): a blend's terms and their weights (each divided by the
    term's value at the even split); ``epi`` (E,): the codes of the epigraph terms, in the order
    of their variables ``z[6(N-1) + e]``; ``force_scale`` (N,) N: each platform's
    ``max_leg_force`` (1 N where none); ``rated`` (R,): the platforms with a rating (the leg
    force limits of :mod:`.constraints`); ``mid``, ``half`` (N, 6) m: each leg's mid-stroke and
    half stroke (``margin``); ``user`` (1,): the key of a user criterion (:mod:`.user`).
    """

    codes: np.ndarray
    weights: np.ndarray
    epi: np.ndarray
    force_scale: np.ndarray
    rated: np.ndarray
    mid: np.ndarray
    half: np.ndarray
    user: np.ndarray


# ----------------------------------------------------------------------------- Numba


@njit(cache=True)
def uses_jacobian(crit):
    """Whether :func:`value` fills ``J`` (and its frames) with J_Q at ``Q``."""
    return crit != CRIT_DIST and crit != CRIT_MARGIN and crit != CRIT_LOADS_MAX \
        and crit != CRIT_LOADS and crit != CRIT_USER and crit != CRIT_BLEND


@njit(cache=True)
def _needs_forces1(code):
    return code == CRIT_LOADS or code == CRIT_LOADS_MAX or code == CRIT_COMPLIANCE


@njit(cache=True)
def needs_forces(crit, P):
    """Whether the criterion ``crit`` or a limit of ``P`` (a leg force rating) uses the forces."""
    if P.terms.rated.shape[0] > 0 or _needs_forces1(crit):
        return True
    if crit == CRIT_BLEND:
        for a in range(P.terms.codes.shape[0]):
            if P.terms.weights[a] != 0.0 and _needs_forces1(P.terms.codes[a]):
                return True
    return False


@njit(cache=True)
def epigraph_h(code, P, i, k, L, F):
    """``h_k`` of an epigraph criterion, leg k of platform i: its normalized force
    (``loads_max``) or its excursion from mid-stroke over half the stroke (``margin``)."""
    if code == CRIT_LOADS_MAX:
        return F[i, k] / P.terms.force_scale[i]
    return (L[i, k] - P.terms.mid[i, k]) / P.terms.half[i, k]


@njit(cache=True)
def epigraph_index(code, P):
    """Which epigraph variable belongs to the criterion ``code`` (-1: none)."""
    for e in range(P.terms.epi.shape[0]):
        if P.terms.epi[e] == code:
            return e
    return -1


@njit(cache=True, inline="always")
def value(crit, P, Q, z, full, Jl, J, X, Jinv, e, Us, Ss, Vts, bases, tops, T_ee, tmp, L, F):
    """The criterion ``crit`` at the full stack pose ``Q``: ``(f, ok)``; ``ok`` False where the
    geometry breaks down (a singular leg Jacobian for ``fn_legs``)."""
    if crit != CRIT_BLEND:
        return _value(crit, P, Q, z, full, Jl, J, X, Jinv, e, Us, Ss, Vts, bases, tops, T_ee,
                      tmp, L, F)
    f = 0.0
    for a in range(P.terms.codes.shape[0]):
        w = P.terms.weights[a]
        if w != 0.0:
            fa, ok = _value(P.terms.codes[a], P, Q, z, full, Jl, J, X, Jinv, e, Us, Ss, Vts,
                            bases, tops, T_ee, tmp, L, F)
            if not ok:
                return np.nan, False
            f += w * fa
    return f, True


@njit(cache=True, inline="always")
def gradient(crit, P, Q, z, full, f, Jl, J, X, Jinv, e, Us, Ss, Vts, bases, tops, T_ee, tmp, V,
             Rt, L, Es, dEs, F, dF, gQ, gt):
    """``gQ`` (6N,) = df/dQ and ``gt`` (E,) = df/dt of the epigraph variables, for the
    criterion at ``Q`` (after :func:`value`, whose scratch it reads; ``full`` False, as a
    runtime bool: a literal would compile :func:`_value` once more)."""
    if crit != CRIT_BLEND:
        _gradient(crit, P, Q, z, f, Jl, J, X, Jinv, e, Us, Ss, Vts, bases, tops, T_ee, V, Rt, L,
                  Es, dEs, F, dF, gQ, gt)
        return
    gQ[:] = 0.0
    gt[:] = 0.0
    gq = np.empty(gQ.shape[0])
    gtt = np.empty(gt.shape[0])
    for a in range(P.terms.codes.shape[0]):
        w = P.terms.weights[a]
        if w == 0.0:
            continue
        code = P.terms.codes[a]
        # the value again: it leaves this term's scratch (J, X, SVD) for its gradient
        fa, _ = _value(code, P, Q, z, full, Jl, J, X, Jinv, e, Us, Ss, Vts, bases, tops, T_ee,
                       tmp, L, F)
        _gradient(code, P, Q, z, fa, Jl, J, X, Jinv, e, Us, Ss, Vts, bases, tops, T_ee, V, Rt,
                  L, Es, dEs, F, dF, gq, gtt)
        for c in range(gQ.shape[0]):
            gQ[c] += w * gq[c]
        for c in range(gt.shape[0]):
            gt[c] += w * gtt[c]


@njit(cache=True)
def _value(crit, P, Q, z, full, Jl, J, X, Jinv, e, Us, Ss, Vts, bases, tops, T_ee, tmp, L, F):
    w_out, w_in = P.w_out, P.w_in
    n = P.b.shape[0]
    nq = 6 * n
    if crit == CRIT_DIST:
        f = 0.0
        for c in range(nq):
            d = Q[c] - P.Q_ref[c]
            f += d * d
        return f, True
    if crit == CRIT_LOADS:
        f = 0.0
        for i in range(n):
            s = P.terms.force_scale[i]
            for k in range(6):
                f += (F[i, k] / s) ** 2
        return f, np.isfinite(f)
    if crit == CRIT_LOADS_MAX or crit == CRIT_MARGIN:
        if not full:
            return z[nq - 6 + epigraph_index(crit, P)], True
        f = 0.0
        for i in range(n):
            for k in range(6):
                f = max(f, abs(epigraph_h(crit, P, i, k, L, F)))
        return f, np.isfinite(f)
    if crit == CRIT_USER:
        gbuf = np.empty(nq)
        key = P.terms.user[0]
        with objmode(f="float64"):
            f = user_call(key, Q, gbuf)
        return f, np.isfinite(f)
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
        copy_into(Us, U)
        copy_into(Ss, S)
        copy_into(Vts, Vt)
        return S[0] / S[5], True
    if crit == CRIT_FN_LEGS or crit == CRIT_COMPLIANCE:
        for i in range(n):
            if not invert6(Jl[i], Jinv[i]):
                return np.nan, False
            _times_block(J, i, Jinv[i], False, X)
        if crit == CRIT_COMPLIANCE:
            # deflection d = -J_L (f / k) = -sum_i X_i c_i F_i, into e
            e[:] = 0.0
            c = inv_stiffness(P)
            for i in range(n):
                c_i = c[i]
                for r in range(6):
                    s = 0.0
                    for k in range(6):
                        s += X[r, 6 * i + k] * F[i, k]
                    e[r] -= c_i * s
            f = 0.0
            for r in range(6):
                f += (w_out[r] * e[r]) ** 2
            return math.sqrt(f), True
    else:
        copy_into(X, J)
    f = 0.0
    for r in range(6):
        for c in range(nq):
            mrc = w_out[r] * X[r, c] * w_in[c]
            f += mrc * mrc
    return math.sqrt(f), True


@njit(cache=True)
def _gradient(crit, P, Q, z, f, Jl, J, X, Jinv, e, Us, Ss, Vts, bases, tops, T_ee, V, Rt, L, Es,
              dEs, F, dF, gQ, gt):
    w_out, w_in = P.w_out, P.w_in
    n = P.b.shape[0]
    nq = 6 * n
    gQ[:] = 0.0
    gt[:] = 0.0
    if crit == CRIT_DIST:
        for c in range(nq):
            gQ[c] = 2.0 * (Q[c] - P.Q_ref[c])
    elif crit == CRIT_LOADS:
        for i in range(n):
            s2 = P.terms.force_scale[i] ** 2
            for k in range(6):
                a = 2.0 * F[i, k] / s2
                for c in range(nq):
                    gQ[c] += a * dF[6 * i + k, c]
    elif crit == CRIT_LOADS_MAX or crit == CRIT_MARGIN:
        gt[epigraph_index(crit, P)] = 1.0  # f = t
    elif crit == CRIT_USER:
        key = P.terms.user[0]
        with objmode():
            user_call(key, Q, gQ)  # the value and gradient of _value's call, cached
    elif crit == CRIT_COMPLIANCE:
        compliance_gradient(P, Q, f, J, X, Jinv, e, bases, tops, T_ee, V, Rt, L, Es, dEs, F, dF,
                            gQ)
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
            out = np.empty(6)
            for i in range(n):
                for r in range(6):
                    for c in range(6):
                        s = 0.0
                        for a in range(6):
                            s += X[a, 6 * i + r] * Hm[a, 6 * i + c]
                        Pm[r, c] = s
                out[:] = 0.0
                for k in range(6):
                    leg_jacobian_row_contract(V[i, k], Rt[i, k], L[i, k], Es[i], dEs[i], Pm[k],
                                              out)
                for j in range(6):
                    gQ[6 * i + j] -= out[j]


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


def reference(name: str, arrs, Q, w_out, w_in, Q_ref, T_target=None, *, loads=None, terms=None,
              z=None, _epi=None):
    """The criterion ``name`` at a full pose ``Q`` (6N,) in JAX (traceable; the oracle of the
    Numba :func:`value` and, through autodiff, of :func:`gradient`).  ``arrs``: JAX
    :class:`~assemblers.model.StackArrays`; ``T_target`` (4, 4) only for ``closest``; for the
    criteria of the loads, blends and user criteria ``loads``
    (:class:`~assemblers.statics.loads.LoadArrays`) and ``terms`` (:class:`Terms`, JAX or NumPy
    arrays); ``z`` the decision variables (an epigraph criterion's value is its variable; None:
    its value at ``Q``, ``max |h|``).  The criteria of the loads are written as a user would
    write them (:func:`assemblers.ik.user.quantities`), so the user path is the oracle too.
    (``_epi``: a blend's epigraph codes, for its terms.)"""
    import jax.numpy as jnp

    from ..geometry import reference as geo
    from ..kinematics import reference as K

    spec = SPECS[name]
    code = spec.code
    n = arrs.b.shape[0]
    if code == CRIT_BLEND:
        from .custom import blend_terms

        return sum(terms.weights[a] * reference(term, arrs, Q, w_out, w_in, Q_ref, T_target,
                                                loads=loads, terms=terms, z=z,
                                                _epi=epigraph_codes(name))
                   for a, (term, w) in enumerate(blend_terms(name)) if w != 0)
    if code in (CRIT_LOADS, CRIT_LOADS_MAX, CRIT_MARGIN, CRIT_COMPLIANCE, CRIT_USER):
        from . import user

        m = user.quantities(arrs, loads, Q)
        if code == CRIT_USER:
            return user.function(name)(Q, m)
        if code == CRIT_LOADS:
            return jnp.sum((m.forces / terms.force_scale[:, None]) ** 2)
        if code == CRIT_COMPLIANCE:
            return jnp.sqrt(jnp.sum((w_out * m.deflection) ** 2))
        if z is not None:
            return z[6 * (n - 1) + (_epi or epigraph_codes(name)).index(code)]
        return jnp.max(jnp.abs(epigraph_reference(code, m, terms)))
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


def epigraph_codes(name: str) -> tuple[int, ...]:
    """The codes of the epigraph variables of the criterion ``name``, in order."""
    spec = SPECS[name]
    if spec.code == CRIT_BLEND:
        from .custom import blend_terms

        return tuple(SPECS[t].code for t, w in blend_terms(name) if w != 0 and SPECS[t].epigraph)
    return (spec.code,) if spec.epigraph else ()


def epigraph_reference(code, m, terms):
    """``h`` (N, 6) of an epigraph criterion in JAX (:func:`epigraph_h`), from the model's
    quantities ``m`` (:func:`assemblers.ik.user.quantities`)."""
    if code == CRIT_LOADS_MAX:
        return m.forces / terms.force_scale[:, None]
    return (m.legs - terms.mid) / terms.half
