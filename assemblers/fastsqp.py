"""Shim: the compiled SQP moved to :mod:`assemblers.ik.sqp`, its QP to :mod:`assemblers.optim.qp`."""

from .ik.problem import QP_FAILED, STALLED  # noqa: F401
from .ik.sqp import sqp  # noqa: F401
from .optim.qp import QP_INFEASIBLE, QP_MAX_ITER, QP_OK, qp_dual  # noqa: F401
