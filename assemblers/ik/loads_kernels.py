"""The statics inside the criteria's kernels (:mod:`.criteria`): the leg forces and their
derivative (:func:`forces`), each platform's 1 / leg stiffness (:func:`inv_stiffness`) and the
gradient of the ``compliance`` criterion (:func:`compliance_gradient`).

They exist only for a problem with a mass model: ``P.loads`` is None for a config without one
(``assemblers.statics.loads.kernel_loads``), and these overloads then compile to stubs, so such
a stack's first run does not compile the forces, their derivative and the compliance gradient
(seconds of LLVM time) it never uses.
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload

from .. import _runtime  # noqa: F401  (sets NUMBA_CACHE_DIR to the user's cache)
from ..kinematics.kernels import jacobian_pose, jacobian_pose_contract, leg_jacobian_row_contract
from ..statics import kernels as sk


def _loaded(P) -> bool:
    """(At typing time) whether the Problem type ``P`` carries a mass model."""
    return not isinstance(P.types[P.fields.index("loads")], types.NoneType)


def forces(P, Q, want, J, bases, tops, T_ee, tmp, F, dF):
    """The leg forces ``F`` (N, 6) N at ``Q`` and, when ``want``, ``dF`` (6N, 6N) = dF/dQ
    (:mod:`assemblers.statics.kernels`); fills ``J`` = J_Q and its frames.  False where a
    platform is singular.  Without a mass model: zeros.  (Kernels only: see the overload.)"""
    raise NotImplementedError("forces is compiled into the kernels only")


@overload(forces, jit_options={"cache": True})
def _forces_overload(P, Q, want, J, bases, tops, T_ee, tmp, F, dF):
    if _loaded(P):
        return _forces

    def no_load(P, Q, want, J, bases, tops, T_ee, tmp, F, dF):
        F[:, :] = 0.0
        if want:
            dF[:, :] = 0.0
        return True
    return no_load


def inv_stiffness(P):
    """(N,) m/N, each platform's 1 / leg_stiffness (0 without a mass model).  (Kernels only.)"""
    raise NotImplementedError("inv_stiffness is compiled into the kernels only")


@overload(inv_stiffness, jit_options={"cache": True})
def _inv_stiffness_overload(P):
    if _loaded(P):
        return lambda P: P.loads.inv_stiffness
    return lambda P: np.zeros(P.b.shape[0])


def _forces(P, Q, want, J, bases, tops, T_ee, tmp, F, dF):
    n = P.b.shape[0]
    jacobian_pose(P.T_mount, P.T_after, Q, J, bases, tops, T_ee, tmp)
    Ginv = np.empty((n, 6, 6))
    U = np.empty((n, 6, 3))
    Bw = np.empty((n, 6, 3))
    Lw = np.empty((n, 6))
    Mc = np.empty(n)
    Sc = np.empty((n, 3))
    if not sk.forces(P.b, P.t, P.loads, bases, tops, T_ee, F, Ginv, U, Bw, Lw, Mc, Sc):
        return False
    if want:
        sk.forces_jacobian(P.loads, J, T_ee, F, Ginv, U, Bw, Lw, Mc, Sc, dF)
    return True


def compliance_gradient(P, Q, f, J, X, Jinv, e, bases, tops, T_ee, V, Rt, L, Es, dEs, F, dF,
                        gQ):
    """d|W d|/dQ for the deflection ``d = -J_Q y`` (in ``e``), ``y_i = Jinv_i c_i F_i``:
    ``dd = -(dJ_Q y + J_Q dy)``, ``dy_i = -Jinv_i dJleg_i y_i + c_i Jinv_i dF_i`` (0 without a
    mass model).  (Kernels only: see the overload.)"""
    raise NotImplementedError("compliance_gradient is compiled into the kernels only")


@overload(compliance_gradient, jit_options={"cache": True})
def _compliance_gradient_overload(P, Q, f, J, X, Jinv, e, bases, tops, T_ee, V, Rt, L, Es, dEs,
                                  F, dF, gQ):
    if _loaded(P):
        return _compliance_gradient_loaded
    return lambda P, Q, f, J, X, Jinv, e, bases, tops, T_ee, V, Rt, L, Es, dEs, F, dF, gQ: None


def _compliance_gradient_loaded(P, Q, f, J, X, Jinv, e, bases, tops, T_ee, V, Rt, L, Es, dEs, F,
                                dF, gQ):
    w_out = P.w_out
    n = P.b.shape[0]
    nq = 6 * n
    if not f > 0.0:
        return
    a = np.empty(6)  # d f / d d
    for r in range(6):
        a[r] = w_out[r] * w_out[r] * e[r] / f
    y = np.empty(nq)
    c_leg = P.loads.inv_stiffness
    for i in range(n):
        c_i = c_leg[i]
        for r in range(6):
            s = 0.0
            for k in range(6):
                s += Jinv[i, r, k] * F[i, k]
            y[6 * i + r] = c_i * s
    Km = np.empty((6, nq))  # -a y^T: what multiplies d J_Q
    for r in range(6):
        for c in range(nq):
            Km[r, c] = -a[r] * y[c]
    jacobian_pose_contract(Km, J, Q, bases, tops, T_ee, gQ)
    gam = np.empty(6)  # X_i^T a
    p = np.empty(6)
    out = np.empty(6)
    for i in range(n):
        c_i = c_leg[i]
        for k in range(6):
            s = 0.0
            for r in range(6):
                s += X[r, 6 * i + k] * a[r]
            gam[k] = s
        out[:] = 0.0
        for k in range(6):  # sum_k gam_k y_i . d row_k / dq_j
            for c in range(6):
                p[c] = gam[k] * y[6 * i + c]
            leg_jacobian_row_contract(V[i, k], Rt[i, k], L[i, k], Es[i], dEs[i], p, out)
        for j in range(6):
            gQ[6 * i + j] += out[j]
        if c_i != 0.0:
            for k in range(6):
                gk = c_i * gam[k]
                for c in range(nq):
                    gQ[c] -= gk * dF[6 * i + k, c]
