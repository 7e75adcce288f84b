"""What an IK solve reports: :class:`IKResult`, and the values measured at a pose for it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..kinematics.api import as_array
from ..model import Assembler
from . import evaluate as ev
from .criteria import CODES, SPECS
from .problem import MARGIN, constraint_rows, limits, n_constraints, problem

FEAS_TOL = 1e-8  # largest violation (m or rad) still called feasible by the optimizer


@dataclass(frozen=True, eq=False)
class IKResult:
    """Result of :func:`assemblers.ik.solve_ik`.

    ``Q``: (6N,) stack pose (the closest one found when ``success`` is False); ``legs``: (N, 6) m;
    ``cost``: the criterion at ``Q``; ``baseline_cost``: the same criterion at the ``even``
    baseline (None if that baseline is infeasible); ``max_violation``: largest limit violation
    (m or rad, 0 if none); ``tool_error``: (position m, rotation rad) between the tool pose at
    ``Q`` and the target; ``reason``: None, "unreachable: stroke", "unreachable: joint angle",
    "unreachable: pose bounds" or "no convergence"; ``extra["solver"]``: which solver produced
    the pose.
    """

    Q: np.ndarray
    legs: np.ndarray
    cost: float
    baseline_cost: float | None
    max_violation: float
    success: bool
    message: str
    iterations: int
    time_s: float
    criterion: str
    tool_error: tuple[float, float] = (0.0, 0.0)
    reason: str | None = None
    starts: int = 1
    extra: dict = field(default_factory=dict)

    @property
    def reduction(self) -> float | None:
        """Relative cost reduction against the ``even`` baseline (0.25 = 25 % lower)."""
        if self.baseline_cost is None or self.baseline_cost == 0:
            return None
        return 1.0 - self.cost / self.baseline_cost


def default_criterion(asm: Assembler) -> str:
    """``fn`` (||J_Q||) unless the config's ``[sensitivity] wrt`` is "legs" (then ``fn_legs``)."""
    return "fn_legs" if asm.sensitivity.wrt == "legs" else "fn"


_EYE3 = np.eye(3)


def as_target(T_target) -> np.ndarray:
    """``T_target`` validated: a finite (4, 4) rigid transform (else :class:`InputError`)."""
    T = as_array(T_target, "T_target", (4, 4), batch=False)
    R = T[:3, :3]
    (a, b, c), (d, e, f), (g, h, i) = R.tolist()  # det by the rule of Sarrus: no LAPACK call
    det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    if np.abs(R.T @ R - _EYE3).max() > 1e-9 or abs(det - 1) > 1e-9 or \
            T[3].tolist() != [0.0, 0.0, 0.0, 1.0]:
        raise InputError("T_target: not a rigid transform (rotation must be orthonormal with "
                         "det +1 to 1e-9, last row 0 0 0 1)")
    return T


def violation(g) -> float:
    """Largest limit violation (m or rad, 0 if none) of constraint values ``g`` (m,)."""
    return float(max(0.0, -float(np.min(g)) - MARGIN)) if g.size else 0.0


_FAMILY = {"stroke low": "stroke", "stroke high": "stroke", "joint angle": "joint angle",
           "pose lower": "pose bounds", "pose upper": "pose bounds"}


def reason(asm: Assembler, g) -> str:
    """Which family of limits ``g`` (laid out as :func:`~.problem.constraint_rows`) violates
    most: "unreachable: stroke", "unreachable: joint angle" or "unreachable: pose bounds"."""
    lim = limits(asm)
    worst = dict.fromkeys(("stroke", "joint angle", "pose bounds"), np.inf)
    for fam, a, b in constraint_rows(asm.n_platforms, lim.lo_idx.size, lim.hi_idx.size):
        if b > a:
            worst[_FAMILY[fam]] = min(worst[_FAMILY[fam]], float(np.min(g[a:b])))
    return "unreachable: " + min(worst, key=worst.get)


def at_pose(P, criterion: str, Q):
    """The criterion and the constraints at a full stack pose ``Q`` (6N,) (on target or not):
    ``(cost, g (m,))``."""
    g = np.empty(n_constraints(P))
    cost = ev.evaluate(P, CODES[criterion], Q[:0], Q, False, Q[:0], g, np.empty((0, 0)), True)
    return float(cost), g


def criterion_cost(asm: Assembler, Q, criterion: str) -> float:
    """The value of a criterion at a full pose ``Q`` (6N,); for ``even``/``nearest`` (which do
    not optimize sensitivity) this is the ``fn`` cost."""
    crit = SPECS[criterion].cost
    # a writable copy (Numba types read-only arrays apart)
    return at_pose(problem(asm, np.eye(4), crit), crit, np.array(Q, dtype=np.float64))[0]


def full_pose(asm: Assembler, T_target, z) -> np.ndarray:
    """Full stack pose (6N,) from the first N-1 platforms ``z`` and the target."""
    Q = np.empty(6 * asm.n_platforms)
    ev.eliminate(problem(asm, T_target, "fn"), np.array(z, dtype=np.float64), Q)
    return Q


def report_at(asm: Assembler, T_target, Q, criterion: str):
    """``(g, (position error m, rotation error rad), legs, cost)`` at a full pose ``Q``; the
    cost of ``even``/``nearest`` is the ``fn`` cost (as :func:`criterion_cost`)."""
    crit = SPECS[criterion].cost
    P = problem(asm, T_target, crit)
    Q = np.array(Q, dtype=np.float64)
    cost, g = at_pose(P, crit, Q)
    legs, tw = np.empty((asm.n_platforms, 6)), np.empty(6)
    ev.report(P, Q, legs, tw)
    legs = asm.commanded_lengths(legs)  # the kernel's are geometric; results are commanded
    return g, (float(np.linalg.norm(tw[:3])), float(np.linalg.norm(tw[3:]))), legs, cost
