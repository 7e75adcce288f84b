"""Optimality measures of ``min f(x)  s.t.  g(x) >= 0`` for the Numba solvers (problem-agnostic)."""

from __future__ import annotations

from numba import njit

from .. import _runtime  # (sets NUMBA_CACHE_DIR to the user's cache)

_runtime.gc_off_while_compiling()


@njit(cache=True)
def kkt_error(grad, G, g, s, lam, mu):
    """Scaled KKT error of ``min f  s.t.  g >= 0`` with slacks ``s`` and multipliers ``lam``
    (m,) at barrier parameter ``mu`` (0: the problem itself): the largest of the stationarity
    residual ``|grad - G^T lam|_inf`` and the complementarity residuals ``|s lam - mu|`` (both
    divided by ``max(1, mean |lam|)``), and the slack residuals ``|g - s|``.  ``grad`` (n,),
    ``G`` (m, n), ``g`` (m,)."""
    m, n = G.shape
    scale = 0.0
    for i in range(m):
        scale += abs(lam[i])
    scale = max(1.0, scale / m) if m > 0 else 1.0
    stat = 0.0
    for c in range(n):
        r = grad[c]
        for i in range(m):
            r -= G[i, c] * lam[i]
        stat = max(stat, abs(r))
    err = stat / scale
    for i in range(m):
        err = max(err, abs(g[i] - s[i]), abs(s[i] * lam[i] - mu) / scale)
    return err


@njit(cache=True)
def lagrangian_gradient(grad, G, lam, out):
    """``out`` (n,) = ``grad - G^T lam``."""
    m, n = G.shape
    for c in range(n):
        r = grad[c]
        for i in range(m):
            r -= G[i, c] * lam[i]
        out[c] = r
