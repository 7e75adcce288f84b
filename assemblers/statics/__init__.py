"""Statics of the stack: quasi-static leg forces, tool compliance and deflection (docs/statics.md).

* :mod:`.loads`: the mass model as arrays (:class:`~.loads.LoadArrays`, from the config);
* :mod:`.reference`: the JAX closed forms (the reference; autodiff through them);
* :mod:`.kernels`: the Numba twins and the exact derivative of the forces (for the IK);
* :mod:`.api`: the NumPy facade behind ``assemblers.leg_forces``, ``compliance`` and
  ``deflection``.

Leg forces are positive in compression.  Importing this package does not import JAX.
"""

from .api import compliance, deflection, leg_forces
from .loads import LoadArrays, load_arrays

__all__ = ["LoadArrays", "compliance", "deflection", "leg_forces", "load_arrays"]
