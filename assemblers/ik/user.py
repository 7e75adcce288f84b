"""User-defined IK criteria: any JAX function of the stack pose and the model's quantities,
differentiated by JAX and solved by the same compiled SQP as the built-in criteria.

A user criterion is ``fn(Q, m) -> scalar`` (traceable by JAX), ``Q`` (6N,) the full stack pose
and ``m`` the :class:`Quantities` at it (J_Q, J_L, legs, leg forces, compliance, deflection:
all JAX, computed from :mod:`assemblers.kinematics.reference` and
:mod:`assemblers.statics.reference`; what ``fn`` does not use is dropped by XLA).  The
evaluation kernel calls back into Python (a Numba ``objmode`` block, only on this criterion's
branch) for ``f`` and ``df/dQ`` from one jitted ``jax.value_and_grad``; the elimination's chain
rule and every limit stay the kernel's.  About 20-100 us per evaluation (JAX's dispatch) where
a built-in takes a few: measured in ``benchmarks/criteria.py``.

Importing this module imports neither JAX nor Numba (the kernels import :func:`call`).
"""

from __future__ import annotations

import itertools
from functools import cached_property

import numpy as np


class Quantities:
    """The model's quantities at a stack pose, JAX arrays computed when first read (so a
    criterion traces only what it uses): ``Q`` (6N,); ``T_tool`` (4, 4) world_from_tool;
    ``J_Q``, ``J_L`` (6, 6N) (docs/conventions.md); ``legs`` (N, 6) m; ``forces`` (N, 6) N leg
    forces, compression positive, under the configured loads; ``compliance`` (6, 6) tool twist
    per wrench; ``deflection`` (6,) tool deflection under the loads (both zero without
    ``leg_stiffness``).  ``arrs``: JAX :class:`~assemblers.model.StackArrays`, ``loads``:
    :class:`~assemblers.statics.LoadArrays`."""

    def __init__(self, arrs, loads, Q):
        self.arrs, self.loads, self.Q = arrs, loads, Q

    @cached_property
    def T_tool(self):
        from ..kinematics import reference as K

        return K.forward(self.arrs, self.Q)

    @cached_property
    def J_Q(self):
        from ..kinematics import reference as K

        return K.jacobian(self.arrs, self.Q, "pose")

    @cached_property
    def J_L(self):
        from ..kinematics import reference as K

        return K.jacobian(self.arrs, self.Q, "legs")

    @cached_property
    def legs(self):
        from ..kinematics import reference as K

        return K.stack_legs(self.arrs, self.Q)

    @cached_property
    def forces(self):
        from ..statics import reference as S

        return S.leg_forces(self.arrs, self.loads, self.Q)

    @cached_property
    def compliance(self):
        from ..statics import reference as S

        return S.compliance(self.arrs, self.loads, self.Q)

    @cached_property
    def deflection(self):
        from ..statics import reference as S

        return S.deflection(self.arrs, self.loads, self.Q)


def quantities(arrs, loads, Q) -> Quantities:
    """The :class:`Quantities` at ``Q`` (traceable)."""
    return Quantities(arrs, loads, Q)


_FUNCTIONS: dict[str, object] = {}  # criterion name -> fn(Q, m)
_ENTRIES: dict[int, _Entry] = {}  # kernel key -> the jitted function bound to one Assembler
_KEYS = itertools.count(1)
_ATTR = "_user_criteria"


class _Entry:
    """One user criterion bound to one Assembler: its jitted ``value_and_grad`` and the last
    result (the kernel asks for the value, then the gradient, at the same pose)."""

    def __init__(self, fn, arrs, loads):
        import jax

        self.vg = jax.jit(jax.value_and_grad(lambda Q: fn(Q, quantities(arrs, loads, Q))))
        self.last_q = None
        self.last = (np.nan, None)
        self.calls = 0

    def __call__(self, Q):
        q = Q.tobytes()
        if q != self.last_q:
            f, g = self.vg(Q)
            self.last = (float(f), np.asarray(g, dtype=np.float64))
            self.last_q = q
            self.calls += 1
        return self.last


def function(name: str):
    """The user's ``fn(Q, m)`` registered as criterion ``name``."""
    return _FUNCTIONS[name]


def add(name: str, fn) -> None:
    """Register ``fn`` as the criterion ``name`` (:mod:`.custom` names it)."""
    _FUNCTIONS[name] = fn


def key_for(asm, name: str) -> float:
    """The kernel key of the user criterion ``name`` bound to ``asm`` (built once per pair)."""
    keys = asm.__dict__.setdefault(_ATTR, {})
    if name not in keys:
        import jax.numpy as jnp

        from ..kinematics.api import stack_arrays
        from ..statics.loads import LoadArrays, load_arrays

        loads = LoadArrays(*(jnp.asarray(a) for a in load_arrays(asm)))
        key = next(_KEYS)
        _ENTRIES[key] = _Entry(_FUNCTIONS[name], stack_arrays(asm), loads)
        keys[name] = float(key)
    return keys[name]


def entry(key: float) -> _Entry:
    return _ENTRIES[int(key)]


def call(key, Q, out) -> float:
    """``f`` at ``Q`` (6N,), ``out`` (6N,) = df/dQ: the kernel's callback (``objmode``).  A
    failing user function gives NaN (the solver then backtracks or stops), never an exception
    inside the compiled solver."""
    try:
        f, g = _ENTRIES[int(key)](Q)
    except Exception:  # noqa: BLE001 - reported as NaN to the kernel; solve_ik checks first
        out[:] = np.nan
        return np.nan
    out[:] = g
    return f
