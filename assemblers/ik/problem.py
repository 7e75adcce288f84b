"""The reduced IK problem as data: the typed :class:`Problem`, status codes and limits.

The problem (docs/ik.md): decision variables ``z`` (6(N-1),), the poses of platforms 1..N-1;
the last platform closes the chain onto the target exactly, ``Q = (z, q_N(z))``; the objective
is a criterion (:mod:`.criteria`) and the inequalities ``g(Q) >= 0`` are those of
:mod:`.constraints`.  :class:`Problem` is a NamedTuple of arrays, so the Numba kernels
take it as one typed argument (``P.T_target``, not a position in a tuple).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..kinematics.api import home_pose, kernel_arrays
from ..model import Assembler
from .constraints import MARGIN  # noqa: F401  (the margin kept inside every limit)
from .constraints import rows as constraint_rows
from .criteria import CRIT_BLEND, SPECS

# solver status codes (every solver of this package)
RUNNING, CONVERGED, MAX_ITER, FAILED = 0, 1, 2, 3
QP_FAILED = 4  # sqp: no useful subproblem step (inconsistent linearisation, no elastic progress)
STALLED = 5  # sqp with f_tol: feasible, the objective no longer moves, the KKT error not small
JOINED = 6  # sqp with x_ref: the iterate came within r_ref of a known minimum (same basin)

NO_ANGLE_LIMIT = 4.0  # rad: the joint-angle limit of a platform without one (beyond any angle)


class Problem(NamedTuple):
    """Everything the kernels need about one solve; float64/int64 C arrays (writable: Numba
    compiles one specialization).

    ``b``, ``t`` (N, 6, 3) m joints; ``T_mount`` (4, 4); ``T_after`` (N, 4, 4) (interfaces,
    then the tool); ``T_target`` (4, 4) world_from_tool; weights ``w_out`` (6,) and ``w_in``
    (6N,) (for the closest pose, ``w_out`` weighs the tool's error twist); ``Q_ref`` (6N,) the
    reference pose of the distance criterion; ``leg_min``, ``leg_max`` (N, 6) m, each leg's
    geometric bounds (see :func:`limits`); ``max_angle``
    (N,) rad; pose bounds as indices into Q and values: ``lo_idx``, ``lo_val``, ``hi_idx``,
    ``hi_val``; ``loads`` the mass model (:class:`~assemblers.statics.loads.LoadArrays`) and
    ``terms`` what the criterion needs beyond that (:class:`~assemblers.ik.criteria.Terms`:
    blend weights, epigraph variables, force ratings, a user criterion's key).
    """

    b: np.ndarray
    t: np.ndarray
    T_mount: np.ndarray
    T_after: np.ndarray
    T_target: np.ndarray
    w_out: np.ndarray
    w_in: np.ndarray
    Q_ref: np.ndarray
    leg_min: np.ndarray
    leg_max: np.ndarray
    max_angle: np.ndarray
    lo_idx: np.ndarray
    lo_val: np.ndarray
    hi_idx: np.ndarray
    hi_val: np.ndarray
    loads: object = None
    terms: object = None


class Limits(NamedTuple):
    """The limits of a stack: ``leg_min``, ``leg_max`` (N, 6) m per leg, geometric (joint to
    joint: the kernels' lengths), ``max_angle`` (N,) rad
    (:data:`NO_ANGLE_LIMIT` where none), pose bounds ``lo_idx``/``lo_val``, ``hi_idx``/``hi_val``
    (indices into Q (6N,) and values).  NumPy arrays; the JAX oracle takes them as a pytree."""

    leg_min: np.ndarray
    leg_max: np.ndarray
    max_angle: np.ndarray
    lo_idx: np.ndarray
    lo_val: np.ndarray
    hi_idx: np.ndarray
    hi_val: np.ndarray


def leg_bounds(asm: Assembler) -> tuple[np.ndarray, np.ndarray]:
    """``(leg_min, leg_max)``, (N, 6) m each: every leg's stroke as geometric lengths (the
    commanded stroke ``[leg_min, leg_max]`` of its platform through the leg's ``leg_offset`` and
    ``leg_scale``, docs/calibration.md; the stroke itself without leg calibration)."""
    lo = np.repeat(np.asarray(asm.leg_min, dtype=np.float64)[:, None], 6, axis=1)
    hi = np.repeat(np.asarray(asm.leg_max, dtype=np.float64)[:, None], 6, axis=1)
    return asm.geometric_lengths(lo), asm.geometric_lengths(hi)


def limits(asm: Assembler) -> Limits:
    """The stack's limits (built once per Assembler)."""
    cached = asm.__dict__.get("_ik_limits_np")
    if cached is None:
        lo = np.nonzero(np.isfinite(asm.pose_lower))[0]
        hi = np.nonzero(np.isfinite(asm.pose_upper))[0]
        max_angle = np.where(np.isfinite(asm.max_joint_angle), asm.max_joint_angle,
                             NO_ANGLE_LIMIT)
        leg_lo, leg_hi = leg_bounds(asm)
        # [ik] stroke_margin: that fraction of each (commanded) stroke is kept free at both ends
        keep = asm.ik.stroke_margin * (asm.leg_max - asm.leg_min)[:, None] * asm.leg_scale
        cached = Limits(leg_lo + keep, leg_hi - keep, max_angle, lo, asm.pose_lower[lo], hi,
                        asm.pose_upper[hi])
        asm.__dict__["_ik_limits_np"] = cached
    return cached


def n_constraints(P: Problem) -> int:
    """Rows of ``g`` for the problem ``P``."""
    key = (P.b.shape[0], P.lo_idx.shape[0], P.hi_idx.shape[0], P.terms.rated.shape[0],
           P.terms.epi.shape[0])
    m = _N_ROWS.get(key)
    if m is None:
        m = _N_ROWS[key] = constraint_rows(*key)[-1][2]
    return m


_N_ROWS: dict[tuple[int, ...], int] = {}


def n_variables(P: Problem) -> int:
    """Decision variables of the reduced problem ``P``: the free platforms' poses, 6(N-1), and
    one epigraph variable per minimax term of its criterion (:mod:`.criteria`)."""
    return 6 * (P.b.shape[0] - 1) + P.terms.epi.shape[0]


def make_problem(b, t, T_mount, T_after, T_target, w_out, w_in, Q_ref, lim, loads,
                 terms) -> Problem:
    """A :class:`Problem` of writable copies (``lim``: :class:`Limits` or the same 7-tuple;
    ``loads``, ``terms``: the mass model and the criterion's terms, see :class:`Problem`)."""
    f64 = [np.array(a, dtype=np.float64) for a in (b, t, T_mount, T_after, T_target, w_out, w_in,
                                                   Q_ref)]
    leg_min, leg_max, max_angle, lo_idx, lo_val, hi_idx, hi_val = (np.asarray(a) for a in lim)
    return Problem(*f64, np.asarray(leg_min, np.float64), np.asarray(leg_max, np.float64),
                   np.asarray(max_angle, np.float64), np.asarray(lo_idx, np.int64),
                   np.asarray(lo_val, np.float64), np.asarray(hi_idx, np.int64),
                   np.asarray(hi_val, np.float64), loads, terms)


def weights(asm: Assembler, wrt: str) -> tuple[np.ndarray, np.ndarray]:
    """``(w_out (6,), w_in (6N,))`` of the config's sensitivity for ``wrt`` "pose" or "legs".

    For "legs" the kernels differentiate by geometric lengths; a calibrated leg's commanded
    length moves its geometric one by ``leg_scale`` times as much, so its weight carries that
    factor and the cost is the facade's ``|| W_out J_L W_in ||_F`` in commanded lengths."""
    s = asm.sensitivity
    w_in = np.asarray(s.w_in(asm.n_platforms, wrt), dtype=np.float64)
    if wrt == "legs" and asm.legs_calibrated:
        w_in = w_in * asm.leg_scale.reshape(-1)
    return np.asarray(s.w_out, dtype=np.float64), w_in


def problem(asm: Assembler, T_target, criterion: str, Q_ref=None) -> Problem:
    """The :class:`Problem` of a target for a criterion (see :mod:`.criteria`; its weights);
    the geometry, weights and limits are converted once per Assembler and criterion weighting.
    ``Q_ref`` (6N,): the distance criterion's reference (default: home)."""
    spec = SPECS[criterion]
    key = f"_ik_problem_{spec.wrt}"
    base = asm.__dict__.get(key)
    if base is None:
        from ..statics.loads import kernel_loads
        from .custom import base_terms

        wrt = spec.wrt
        a = kernel_arrays(asm)
        w_out, w_in = weights(asm, wrt)
        base = make_problem(a.b, a.t, a.T_mount, a.T_after, np.eye(4), w_out, w_in,
                            home_pose(asm), limits(asm), kernel_loads(asm), base_terms(asm))
        asm.__dict__[key] = base
    Q_ref = base.Q_ref if Q_ref is None else np.array(Q_ref, dtype=np.float64)
    # a new tuple of the cached arrays (NamedTuple._replace costs ~2 us: solves take ~50 us)
    P = Problem._make(base[:4] + (np.array(T_target, dtype=np.float64),) + base[5:7]
                      + (Q_ref,) + base[8:])
    if spec.code < CRIT_BLEND and not spec.epigraph:
        return P
    from .custom import terms

    return P._replace(terms=terms(asm, P, criterion))  # blend weights, epigraph, user key


def closest_problem(asm: Assembler, T_target) -> Problem:
    """The problem of the closest pose to an unreachable target (criterion ``closest``): the
    tool error weights ``(1, 1, 1, l, l, l)`` (``l`` the config's length scale) as ``w_out``."""
    l = asm.sensitivity.length_scale
    return problem(asm, T_target, "even")._replace(w_out=np.array([1.0, 1.0, 1.0, l, l, l]))
