"""Redundant inverse kinematics: the least-sensitive stack pose that puts the tool at a target.

Modules, bottom up (docs/ik.md):

* :mod:`.problem`: the typed :class:`~.problem.Problem`, status codes, limits;
* :mod:`.criteria`: every criterion once (id, Numba value and gradient, JAX reference);
* :mod:`.constraints`: every constraint family once (rows, Numba values and derivative rows,
  JAX reference);
* :mod:`.evaluate`: the Numba evaluation kernel (values and exact derivatives of the reduced
  problem), the even split and the report;
* :mod:`.sqp` (compiled SQP, cold solves) and :mod:`.ipm` (interior point, trajectory steps),
  both on that one kernel; their Python drivers in :mod:`.driver`;
* :mod:`.reference`: the public JAX oracle (autodiff of the same problem) the tests use;
* :mod:`.report`, :mod:`.starts`, :mod:`.solve` (``solve_ik``), :mod:`.trajectory`
  (``solve_trajectory``).
"""

from .criteria import CRITERIA
from .report import IKResult, criterion_cost, default_criterion
from .solve import solve_ik, warmup
from .starts import even_split, sample_solutions
from .trajectory import TrajectoryResult, solve_trajectory, straight_line

__all__ = ["CRITERIA", "IKResult", "TrajectoryResult", "criterion_cost", "default_criterion",
           "even_split", "sample_solutions", "solve_ik", "solve_trajectory", "straight_line",
           "warmup"]
