"""Shim: the Numba IK kernels moved to :mod:`assemblers.ik` (``evaluate``, ``ipm``, ``criteria``,
``problem``); the old names stay here."""

from .ik.criteria import CRIT_CLOSEST, CRIT_COND, CRIT_DIST, CRIT_FN, CRIT_FN_LEGS  # noqa: F401
from .ik.evaluate import eliminate, evaluate, even_split, report  # noqa: F401
from .ik.ipm import HESS_FD, HESS_FROZEN, interior_point  # noqa: F401
from .ik.problem import CONVERGED, FAILED, MARGIN, MAX_ITER, RUNNING, n_constraints  # noqa: F401
from .optim.linalg import cholesky, lower_solve, upper_solve  # noqa: F401
