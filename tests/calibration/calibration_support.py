"""Test support: the exact symmetries of the calibration's error model, written out
independently of :mod:`assemblers.calibration` (NumPy and SciPy only).

Tool measurements cannot tell a model from the same model with one plate frame moved (and the
joints expressed in the moved frame): the base frame of platform 1 against the mount, each top
frame against the next base frame (through the interface), the last top frame against the
tool.  :func:`act` applies such moves (N + 1 rigid transforms) to a full parameter vector
(layout of docs/calibration.md); :func:`equivalent` finds the moves that bring a given set of
entries to prescribed values, i.e. the true model expressed in the fit's gauge.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
from scipy.spatial.transform import Rotation

PER = 48


def _T(xi):
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(xi[3:]).as_matrix()
    T[:3, 3] = xi[:3]
    return T


def _inv(T):
    out = np.eye(4)
    out[:3, :3] = T[:3, :3].T
    out[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return out


def _points(T, pts):
    return pts @ T[:3, :3].T + T[:3, 3]


def _d(T):
    """A transform -> its correction vector (translation, rotation vector)."""
    return np.concatenate([T[:3, 3], Rotation.from_matrix(T[:3, :3]).as_rotvec()])


def act(p, xis, T_interfaces, T_tool0):
    """The full vector ``p`` of an N-platform model with its frames moved by ``xis``
    ((N + 1, 6) twists: the base frame of platform 1, then the top frames 1..N), the joints
    expressed in the moved frames; ``T_interfaces`` (N - 1, 4, 4), ``T_tool0`` (4, 4) the
    nominal interfaces and tool."""
    n = (p.size - 12) // PER
    out = np.array(p, dtype=np.float64)
    per = out[: PER * n].reshape(n, PER)
    b = per[:, 0:18].reshape(n, 6, 3).copy()
    t = per[:, 18:36].reshape(n, 6, 3).copy()
    D = [_T(x) for x in xis]
    # base frame of platform 1: T_mount -> T_mount D0, its joints b -> D0^-1 b
    Tm = _T(p[PER * n: PER * n + 6]) @ D[0]  # = T_mount0^-1 T_mount
    b[0] = _points(_inv(D[0]), b[0])
    for i in range(n):
        # top frame i -> top_i D_i: its joints t -> D_i^-1 t, and the next base frame moves by
        # E = T_if^-1 D_i T_if (the interface stays), its joints b -> E^-1 b
        t[i] = _points(_inv(D[i + 1]), t[i])
        if i + 1 < n:
            E = _inv(T_interfaces[i]) @ D[i + 1] @ T_interfaces[i]
            b[i + 1] = _points(_inv(E), b[i + 1])
    # the tool stays in the world: T_tool -> D_N^-1 T_tool
    Tt = _inv(T_tool0) @ _inv(D[n]) @ T_tool0 @ _T(p[PER * n + 6:])
    per[:, 0:18] = b.reshape(n, 18)
    per[:, 18:36] = t.reshape(n, 18)
    out[: PER * n] = per.ravel()
    out[PER * n: PER * n + 6] = _d(Tm)
    out[PER * n + 6:] = _d(Tt)
    return out


def equivalent(p, fixed, values, T_interfaces, T_tool0):
    """The model ``p`` moved (:func:`act`) so that its entries ``fixed`` equal ``values``;
    raises AssertionError when no moves do."""
    n = (p.size - 12) // PER
    fixed = np.asarray(fixed)

    def f(x):
        return (act(p, x.reshape(n + 1, 6), T_interfaces, T_tool0)[fixed] - values) * 1e3

    res = scipy.optimize.least_squares(f, np.zeros(6 * (n + 1)), xtol=1e-15, ftol=1e-15,
                                       gtol=1e-15)
    assert np.max(np.abs(res.fun)) < 1e-9, np.max(np.abs(res.fun))
    return act(p, res.x.reshape(n + 1, 6), T_interfaces, T_tool0)


def tangents(p, T_interfaces, T_tool0, h=1e-6):
    """(P, 6(N + 1)): the directions in which the moves change ``p`` (central differences)."""
    n = (p.size - 12) // PER
    cols = []
    for j in range(6 * (n + 1)):
        e = np.zeros(6 * (n + 1))
        e[j] = h
        cols.append((act(p, e.reshape(-1, 6), T_interfaces, T_tool0)
                     - act(p, -e.reshape(-1, 6), T_interfaces, T_tool0)) / (2 * h))
    return np.stack(cols, axis=1)
