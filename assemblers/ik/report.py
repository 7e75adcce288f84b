"""What an IK solve reports: :class:`IKResult`, and the values measured at a pose for it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from ..errors import InputError
from ..kinematics.api import as_array
from ..model import Assembler
from . import evaluate as ev
from .criteria import CODES, SPECS
from .problem import MARGIN, constraint_rows, limits, n_constraints, problem

FEAS_TOL = 1e-8  # largest violation (m or rad) still called feasible by the optimizer


class Lazy:
    """A value computed on first use: ``Lazy(fn)``; :class:`IKResult` resolves it (once) when
    the field is read."""

    __slots__ = ("fn",)

    def __init__(self, fn):
        self.fn = fn


class _LazyField:
    """A dataclass field whose value may be a :class:`Lazy` (a data descriptor: the frozen
    dataclass's ``__init__`` stores through it, reading resolves and keeps the value)."""

    def __set_name__(self, owner, name):
        self.key = "_" + name

    def __get__(self, obj, objtype=None):
        if obj is None:
            raise AttributeError  # no default for the dataclass field
        v = obj.__dict__[self.key]
        if isinstance(v, Lazy):
            v = v.fn()
            obj.__dict__[self.key] = v
        return v

    def __set__(self, obj, value):
        obj.__dict__[self.key] = value


@dataclass(frozen=True, eq=False)
class IKResult:
    """Result of :func:`assemblers.ik.solve_ik`.

    ``Q``: (6N,) stack pose (the closest one found when ``success`` is False); ``legs``: (N, 6) m;
    ``cost``: the criterion at ``Q``; ``baseline_cost``: the same criterion at the ``even``
    baseline (None if that baseline is infeasible; computed on first access, as it needs a
    solve of its own when the even split violates a limit: not part of ``time_s``);
    ``max_violation``: largest limit violation (m or rad, 0 if none); ``tool_error``: (position
    m, rotation rad) between the tool pose at ``Q`` and the target; ``reason``: None,
    "unreachable: stroke", "unreachable: joint angle", "unreachable: pose bounds" or "no
    convergence"; ``time_s``: wall time of the whole call; ``solver_time_s``: the part of it
    spent in the optimizer runs (every start's compiled SQP call, start and report included,
    or SciPy's SLSQP); ``starts``: how many starts were solved; ``extra["solver"]``: which
    solver produced the pose.
    """

    Q: np.ndarray
    legs: np.ndarray
    cost: float
    baseline_cost: float | None = _LazyField()
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
    solver_time_s: float = 0.0

    @classmethod
    def make(cls, **fields) -> IKResult:
        """The same as ``IKResult(**fields)`` (every field given), at a fraction of the cost:
        a frozen dataclass's ``__init__`` sets each of its 16 fields through
        ``object.__setattr__`` (~5 us, a tenth of a small solve)."""
        if fields.keys() != _FIELDS:
            return cls(**fields)  # a field missing or unknown: the dataclass says which
        r = object.__new__(cls)
        fields["_baseline_cost"] = fields.pop("baseline_cost")
        r.__dict__.update(fields)
        return r

    def __getstate__(self):  # a pickled result carries the baseline's value, not its recipe
        self.baseline_cost  # noqa: B018  (resolves a Lazy)
        return self.__dict__

    @property
    def reduction(self) -> float | None:
        """Relative cost reduction against the ``even`` baseline (0.25 = 25 % lower)."""
        if self.baseline_cost is None or self.baseline_cost == 0:
            return None
        return 1.0 - self.cost / self.baseline_cost


_FIELDS = {f.name for f in dataclasses.fields(IKResult)}


def default_criterion(asm: Assembler) -> str:
    """``fn`` (||J_Q||) unless the config's ``[sensitivity] wrt`` is "legs" (then ``fn_legs``)."""
    return "fn_legs" if asm.sensitivity.wrt == "legs" else "fn"


_EYE3 = np.eye(3)


@njit(cache=True)
def _rigid(T):
    """Whether the (4, 4) ``T`` is a finite rigid transform (to 1e-9; as :func:`as_target`)."""
    for r in range(4):
        for c in range(4):
            if not np.isfinite(T[r, c]):
                return False
    if T[3, 0] != 0.0 or T[3, 1] != 0.0 or T[3, 2] != 0.0 or T[3, 3] != 1.0:
        return False
    for a in range(3):
        for b in range(3):
            s = T[0, a] * T[0, b] + T[1, a] * T[1, b] + T[2, a] * T[2, b]
            if abs(s - (1.0 if a == b else 0.0)) > 1e-9:
                return False
    det = (T[0, 0] * (T[1, 1] * T[2, 2] - T[1, 2] * T[2, 1])
           - T[0, 1] * (T[1, 0] * T[2, 2] - T[1, 2] * T[2, 0])
           + T[0, 2] * (T[1, 0] * T[2, 1] - T[1, 1] * T[2, 0]))
    return abs(det - 1.0) <= 1e-9


def as_target(T_target) -> np.ndarray:
    """``T_target`` validated: a finite (4, 4) rigid transform (else :class:`InputError`); a
    C-ordered float64 copy."""
    try:
        T = np.array(T_target, dtype=np.float64)
    except (TypeError, ValueError):
        T = None
    if T is not None and T.shape == (4, 4) and _rigid(T):  # the common case, one compiled check
        return T
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
    return max(0.0, -float(g.min()) - MARGIN) if g.size else 0.0


_FAMILY = {"stroke low": "stroke", "stroke high": "stroke", "joint angle": "joint angle",
           "pose lower": "pose bounds", "pose upper": "pose bounds", "leg force": "leg force"}


def reason(asm: Assembler, g) -> str:
    """Which family of limits ``g`` (laid out as :func:`~.problem.constraint_rows`) violates
    most: "unreachable: stroke", "unreachable: joint angle", "unreachable: pose bounds" or
    "unreachable: leg force"."""
    lim = limits(asm)
    worst = dict.fromkeys(("stroke", "joint angle", "pose bounds", "leg force"), np.inf)
    n_rated = sum(p.max_leg_force is not None for p in asm.platforms)
    for fam, a, b in constraint_rows(asm.n_platforms, lim.lo_idx.size, lim.hi_idx.size, n_rated):
        if b > a and fam in _FAMILY:
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
