"""A cold solve in one compiled call: the start, the first BFGS matrix, the SQP and the report.

Why this exists: the compiled SQP takes 0.1-1 ms, and the Python around it (a second solve to
repair the even split before starting, NumPy temporaries for the report, one kernel call per
piece, each unboxing the :class:`~.problem.Problem`) took as long again or longer.  Here the
start (the even split, another split of the tool motion, or a given pose; the SQP starts
outside the limits as well as inside), the objective's Hessian for the first BFGS matrix, the
solve and everything a result reports are one call of compiled code.  :mod:`.solve` falls back
to its general path (repairs, SciPy's SLSQP, the closest pose) when this does not converge.

Arrays: ``P`` a :class:`~.problem.Problem`; ``z`` (n,) = (6(N-1),) m and rad; ``Q`` (6N,).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .. import _runtime  # noqa: F401  (sets NUMBA_CACHE_DIR to the user's cache)
from ..kinematics.api import forward_kinematics, home_pose
from ..optim.linalg import copy_into
from .constraints import MARGIN
from .criteria import CODES
from .evaluate import NO, YES, eliminate, evaluate, result_at, split
from .problem import MAX_ITER, n_constraints, problem
from .sqp import B_IDENTITY, B_UNSCALED, initial_hessian, sqp

# solve's start: ``z_start``, or the split (a, c) of the motion; START_HESSIAN: no solve, only
# the objective's Hessian at ``z_start`` into ``B`` (:func:`start_hessian`)
START_GIVEN, START_SPLIT, START_HESSIAN = 0, 1, 2


def start_hessian(asm, criterion: str) -> np.ndarray:
    """The first BFGS matrix of every cold solve of ``asm`` for ``criterion``: the objective's
    Hessian at the home pose for the home tool pose (:func:`~.sqp.initial_hessian`), (n, n),
    unscaled; computed once per Assembler and criterion.  Measured (docs/ik.md): as good a
    start as the Hessian at each solve's own start (which costs n + 1 gradients per solve),
    and far better than the identity (default Assembler: 13 iterates instead of 36)."""
    key = f"_ik_start_hessian_{criterion}"
    H = asm.__dict__.get(key)
    if H is None:
        Q_home = home_pose(asm)
        P = problem(asm, forward_kinematics(asm, Q_home), criterion)
        n = 6 * (asm.n_platforms - 1)
        H, m = np.empty((n, n)), n_constraints(P)
        n_pl = asm.n_platforms
        solve(P, CODES[criterion], Q_home, Q_home[:n_pl], Q_home[:n_pl], Q_home[:n].copy(),
              START_HESSIAN, H[:0], 0.0, 0, 0.0, Q_home[:n], 0.0, np.empty(n), np.empty(m), H,
              np.empty(6 * n_pl), np.empty((n_pl, 6)), np.empty(6), np.empty(m))
        asm.__dict__[key] = H
    return H


@njit(cache=True)
def solve(P, crit, Q_home, a, c, z_start, start_kind, H0, tol, max_iter, f_tol, x_ref, r_ref, x,
          lam, B, Q, legs, twist, g):
    """One cold SQP solve of the reduced problem ``P`` for criterion ``crit``, and its report.

    Start: the poses ``z_start`` (6(N-1),) (START_GIVEN) or the split of the tool motion from
    ``Q_home`` (6N,) with fractions ``a``, ``c`` (N,) (START_SPLIT, :func:`~.evaluate.split`);
    the E epigraph variables of a minimax criterion (``x`` (6(N-1) + E,)) start just above
    their terms' values there, inside their rows (as :func:`~.custom.start_vector`).  First BFGS
    matrix: ``H0`` (n, n) for the unscaled objective (:func:`start_hessian`), or the identity
    when ``H0`` has no rows.  The objective is scaled by ``1 / |f(start)|`` (the tolerance
    ``tol`` on the KKT error is relative).  ``x_ref`` (n,), ``r_ref`` > 0: a minimum found
    before; the solve stops (status JOINED) once it is within ``r_ref`` of it (:func:`~.sqp.sqp`).

    START_HESSIAN: no solve; ``B`` = :func:`~.sqp.initial_hessian` at ``z_start`` (the one
    compiled entry of the cold path: the SQP and the Hessian are inlined here, so the large
    compiled closure of the evaluation is built once, not once per entry: about 15 s of a
    first run's compile).

    Fills ``x`` (n,), ``lam`` (m,) (multipliers of the scaled objective), ``B`` (n, n) (the last
    BFGS matrix), and at ``Q`` (6N,) = the full pose of ``x``: ``legs`` (N, 6) m, ``twist`` (6,)
    the tool's error against the target, ``g`` (m,) the constraints.  Returns ``(status,
    iterations, KKT error, scale, cost, largest violation, tool position error m, tool
    rotation error rad)``; the cost is the criterion at ``Q`` (unscaled), the violation as
    :func:`~.report.violation` (0 inside every limit)."""
    n = x.shape[0]
    if start_kind == START_HESSIAN:
        f0 = initial_hessian(P, crit, z_start, B, g)
        return MAX_ITER, 0, np.inf, 1.0, f0, 0.0, 0.0, 0.0
    nq = Q.shape[0]
    n6 = nq - 6
    z0 = np.empty(n)
    if start_kind == START_SPLIT:
        split(P, Q_home, a, c, Q)
    elif n > n6:
        eliminate(P, z_start, Q)
    for k in range(n6):
        z0[k] = Q[k] if start_kind == START_SPLIT else z_start[k]
    n_epi = n - n6
    if n_epi > 0:
        # each epigraph variable's rows hold t - h and t + h at t = max |h| (full evaluation):
        # half their sum is that value; start just above it
        evaluate(P, crit, z0, Q, NO, z0[:0], g, np.empty((0, 0)), YES)
        m = g.shape[0]
        for e in range(n_epi):
            r = m - 2 * nq * (n_epi - e)
            z0[n6 + e] = 0.5 * (g[r] + g[r + nq]) * (1.0 + 1e-6) + 1e-12
    b_init = B_IDENTITY
    if H0.shape[0] == n:
        copy_into(B, H0)
        b_init = B_UNSCALED
    status, k, err, f_raw = sqp(P, crit, z0, tol, max_iter, 0.0, x, lam, B, f_tol, b_init, x_ref,
                                r_ref)
    scale = 1.0 / abs(f_raw) if abs(f_raw) > 1e-12 else 1.0  # the scale sqp used

    cost, ep, er = result_at(P, crit, x, Q, g, legs, twist)
    worst = 0.0
    for i in range(g.shape[0]):
        worst = max(worst, -g[i] - MARGIN)
    return status, k, err, scale, cost, worst, ep, er
