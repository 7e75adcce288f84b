"""Numba kernels of the statics: the twins of :mod:`.reference` (JAX), and the exact derivative
of the leg forces for the IK.

Scalar loops into preallocated outputs, as :mod:`assemblers.kinematics.kernels`.  The per-pose
kernels take the stack's frames from :func:`assemblers.kinematics.kernels.stack_frames` (or
:func:`~assemblers.kinematics.kernels.jacobian_pose`, which fills them too); ``loads`` is a
:class:`~assemblers.statics.loads.LoadArrays` of NumPy arrays.  World frame throughout; moments
about the world origin.

Array arguments: ``b``, ``t`` (N, 6, 3) m joints (base / top frame); ``bases``, ``tops``
(N, 4, 4) world_from_base_i / world_from_top_i; ``T_ee`` (4, 4) world_from_tool; ``F`` (N, 6)
N leg forces (compression positive); ``Ginv`` (N, 6, 6) each platform's inverse of ``G_i`` (the
columns ``[u_k; beta_k x u_k]``); ``U``, ``Bw`` (N, 6, 3) leg unit vectors and base joints,
``Lw`` (N, 6) m leg lengths; ``Mc`` (N,) kg, ``Sc`` (N, 3) kg m the mass and first moment each
platform carries.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .. import _runtime  # noqa: F401  (sets NUMBA_CACHE_DIR to the user's cache)
from ..kinematics.kernels import CHUNK, stack_frames
from ..optim.linalg import invert6


@njit(cache=True)
def carried(b, t, loads, bases, tops, T_ee, U, Bw, Lw, Mc, Sc):
    """Legs in the world (``U``, ``Bw``, ``Lw``) and what each platform's legs carry (``Mc``,
    ``Sc``: suffix sums over the bodies above their base plates)."""
    n = b.shape[0]
    leg_m = loads.leg_mass
    pay = loads.payload
    for i in range(n):
        for k in range(6):
            ax, ay, az = tops[i, 0, 3], tops[i, 1, 3], tops[i, 2, 3]
            bx, by, bz = bases[i, 0, 3], bases[i, 1, 3], bases[i, 2, 3]
            for c in range(3):
                ax += tops[i, 0, c] * t[i, k, c]
                ay += tops[i, 1, c] * t[i, k, c]
                az += tops[i, 2, c] * t[i, k, c]
                bx += bases[i, 0, c] * b[i, k, c]
                by += bases[i, 1, c] * b[i, k, c]
                bz += bases[i, 2, c] * b[i, k, c]
            vx, vy, vz = ax - bx, ay - by, az - bz
            Lk = math.sqrt(vx * vx + vy * vy + vz * vz)
            Lw[i, k] = Lk
            U[i, k, 0], U[i, k, 1], U[i, k, 2] = vx / Lk, vy / Lk, vz / Lk
            Bw[i, k, 0], Bw[i, k, 1], Bw[i, k, 2] = bx, by, bz
    # per body j: the top plate, the upper leg halves of platform j, the lower ones of j + 1
    for j in range(n - 1, -1, -1):
        m = loads.top_mass[j] + 3.0 * leg_m[j]
        cx, cy, cz = tops[j, 0, 3], tops[j, 1, 3], tops[j, 2, 3]
        for c in range(3):
            cx += tops[j, 0, c] * loads.top_com[j, c]
            cy += tops[j, 1, c] * loads.top_com[j, c]
            cz += tops[j, 2, c] * loads.top_com[j, c]
        sx, sy, sz = loads.top_mass[j] * cx, loads.top_mass[j] * cy, loads.top_mass[j] * cz
        h = 0.5 * leg_m[j]
        for k in range(6):  # top joints: base joint + L u
            sx += h * (Bw[j, k, 0] + Lw[j, k] * U[j, k, 0])
            sy += h * (Bw[j, k, 1] + Lw[j, k] * U[j, k, 1])
            sz += h * (Bw[j, k, 2] + Lw[j, k] * U[j, k, 2])
        if j + 1 < n:
            h = 0.5 * leg_m[j + 1]
            m += 3.0 * leg_m[j + 1]
            for k in range(6):
                sx += h * Bw[j + 1, k, 0]
                sy += h * Bw[j + 1, k, 1]
                sz += h * Bw[j + 1, k, 2]
            m += Mc[j + 1]
            sx += Sc[j + 1, 0]
            sy += Sc[j + 1, 1]
            sz += Sc[j + 1, 2]
        else:
            px, py, pz = T_ee[0, 3], T_ee[1, 3], T_ee[2, 3]
            for c in range(3):
                px += T_ee[0, c] * pay[1 + c]
                py += T_ee[1, c] * pay[1 + c]
                pz += T_ee[2, c] * pay[1 + c]
            m += pay[0]
            sx += pay[0] * px
            sy += pay[0] * py
            sz += pay[0] * pz
        Mc[j] = m
        Sc[j, 0], Sc[j, 1], Sc[j, 2] = sx, sy, sz


@njit(cache=True)
def forces(b, t, loads, bases, tops, T_ee, F, Ginv, U, Bw, Lw, Mc, Sc):
    """Leg forces ``F`` (N, 6) N at the pose of the frames; fills the other outputs for
    :func:`forces_jacobian`.  Returns False (``F`` NaN) where a platform is singular."""
    n = b.shape[0]
    carried(b, t, loads, bases, tops, T_ee, U, Bw, Lw, Mc, Sc)
    g = loads.gravity
    w = loads.wrench
    px, py, pz = T_ee[0, 3], T_ee[1, 3], T_ee[2, 3]
    # the tool wrench's moment about the origin
    mex = py * w[2] - pz * w[1] + w[3]
    mey = pz * w[0] - px * w[2] + w[4]
    mez = px * w[1] - py * w[0] + w[5]
    G = np.empty((6, 6))
    W = np.empty(6)
    for i in range(n):
        for k in range(6):
            ux, uy, uz = U[i, k, 0], U[i, k, 1], U[i, k, 2]
            bx, by, bz = Bw[i, k, 0], Bw[i, k, 1], Bw[i, k, 2]
            G[0, k], G[1, k], G[2, k] = ux, uy, uz
            G[3, k], G[4, k], G[5, k] = by * uz - bz * uy, bz * ux - bx * uz, bx * uy - by * ux
        if not invert6(G, Ginv[i]):
            F[:, :] = np.nan
            return False
        m = Mc[i]
        sx, sy, sz = Sc[i, 0], Sc[i, 1], Sc[i, 2]
        W[0], W[1], W[2] = m * g[0] + w[0], m * g[1] + w[1], m * g[2] + w[2]
        W[3] = sy * g[2] - sz * g[1] + mex
        W[4] = sz * g[0] - sx * g[2] + mey
        W[5] = sx * g[1] - sy * g[0] + mez
        for k in range(6):
            s = 0.0
            for a in range(6):
                s -= Ginv[i, k, a] * W[a]
            F[i, k] = s
    return True


@njit(cache=True)
def forces_jacobian(loads, J, T_ee, F, Ginv, U, Bw, Lw, Mc, Sc, dF):
    """``dF`` (6N, 6N): d F[i, k] / d Q_c in row 6i + k, column c, from ``J`` = J_Q (6, 6N) at
    the same pose (after :func:`forces`).

    A parameter c of platform p moves everything above p's top frame rigidly with the world
    twist of its J_Q column (``omega``; the origin's velocity ``v0 = v_tool - omega x p_tool``):
    each platform i carries a load whose moment changes (``dS x g``, ``S`` the first moment of
    the part that moves: everything platform ``max(i, p)`` carries) and, for i >= p, legs that
    move (the top joints alone for i = p, the whole platform rigidly for i > p); then
    ``dF_i = -G_i^-1 (dW_i + dG_i F_i)``."""
    n = F.shape[0]
    g = loads.gravity
    fe0, fe1, fe2 = loads.wrench[0], loads.wrench[1], loads.wrench[2]
    px, py, pz = T_ee[0, 3], T_ee[1, 3], T_ee[2, 3]
    rhs = np.empty(6)
    for c in range(6 * n):
        p = c // 6
        vtx, vty, vtz = J[0, c], J[1, c], J[2, c]
        wx, wy, wz = J[3, c], J[4, c], J[5, c]
        v0x = vtx - (wy * pz - wz * py)
        v0y = vty - (wz * px - wx * pz)
        v0z = vtz - (wx * py - wy * px)
        for i in range(n):
            j = max(i, p)
            m = Mc[j]
            sx, sy, sz = Sc[j, 0], Sc[j, 1], Sc[j, 2]
            dsx = m * v0x + wy * sz - wz * sy
            dsy = m * v0y + wz * sx - wx * sz
            dsz = m * v0z + wx * sy - wy * sx
            rhs[0] = rhs[1] = rhs[2] = 0.0
            rhs[3] = dsy * g[2] - dsz * g[1] + vty * fe2 - vtz * fe1
            rhs[4] = dsz * g[0] - dsx * g[2] + vtz * fe0 - vtx * fe2
            rhs[5] = dsx * g[1] - dsy * g[0] + vtx * fe1 - vty * fe0
            if p <= i:
                for k in range(6):
                    f = F[i, k]
                    ux, uy, uz = U[i, k, 0], U[i, k, 1], U[i, k, 2]
                    bx, by, bz = Bw[i, k, 0], Bw[i, k, 1], Bw[i, k, 2]
                    if p == i:  # the top joint moves, the base joint stays
                        Lk = Lw[i, k]
                        ax, ay, az = bx + Lk * ux, by + Lk * uy, bz + Lk * uz
                        dax = v0x + wy * az - wz * ay
                        day = v0y + wz * ax - wx * az
                        daz = v0z + wx * ay - wy * ax
                        ud = ux * dax + uy * day + uz * daz
                        dux, duy, duz = (dax - ux * ud) / Lk, (day - uy * ud) / Lk, (daz - uz * ud) / Lk
                        mx = by * duz - bz * duy
                        my = bz * dux - bx * duz
                        mz = bx * duy - by * dux
                    else:  # the whole platform moves rigidly
                        dux, duy, duz = wy * uz - wz * uy, wz * ux - wx * uz, wx * uy - wy * ux
                        dbx = v0x + wy * bz - wz * by
                        dby = v0y + wz * bx - wx * bz
                        dbz = v0z + wx * by - wy * bx
                        mx = dby * uz - dbz * uy + by * duz - bz * duy
                        my = dbz * ux - dbx * uz + bz * dux - bx * duz
                        mz = dbx * uy - dby * ux + bx * duy - by * dux
                    rhs[0] += f * dux
                    rhs[1] += f * duy
                    rhs[2] += f * duz
                    rhs[3] += f * mx
                    rhs[4] += f * my
                    rhs[5] += f * mz
            for k in range(6):
                s = 0.0
                for a in range(6):
                    s -= Ginv[i, k, a] * rhs[a]
                dF[6 * i + k, c] = s


@njit(cache=True)
def leg_forces_pose(b, t, T_mount, T_after, loads, Q, F):
    """Leg forces ``F`` (N, 6) N at the stack pose ``Q`` (6N,); False where singular."""
    n = b.shape[0]
    bases = np.empty((n, 4, 4))
    tops = np.empty((n, 4, 4))
    T_ee = np.empty((4, 4))
    stack_frames(T_mount, T_after, Q, bases, tops, T_ee, np.empty((4, 4)))
    return forces(b, t, loads, bases, tops, T_ee, F, np.empty((n, 6, 6)), np.empty((n, 6, 3)),
                  np.empty((n, 6, 3)), np.empty((n, 6)), np.empty(n), np.empty((n, 3)))


@njit(cache=True)
def leg_forces_rows(b, t, T_mount, T_after, loads, Q, out, lo, hi):
    """Leg forces for rows ``lo:hi`` of ``Q`` (B, 6N) into ``out`` (B, N, 6) N (NaN where
    singular)."""
    for s in range(lo, hi):
        leg_forces_pose(b, t, T_mount, T_after, loads, Q[s], out[s])


@njit(cache=True, parallel=True)
def leg_forces_batch(b, t, T_mount, T_after, loads, Q, out):
    """:func:`leg_forces_rows` over all rows, threads over chunks."""
    B = Q.shape[0]
    for c in prange((B + CHUNK - 1) // CHUNK):
        leg_forces_rows(b, t, T_mount, T_after, loads, Q, out, c * CHUNK, min(B, (c + 1) * CHUNK))
