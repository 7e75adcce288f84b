"""The NumPy facade of the statics: leg forces, tool compliance and deflection (docs/statics.md).

Every function takes one stack pose ``Q`` (6N,) or a batch (B, 6N) and follows the backend
rule of :mod:`assemblers.kinematics.api` (the Numba kernels of :mod:`.kernels`, serial below
``PARALLEL_MIN`` rows, threads above).  The JAX closed forms (:mod:`.reference`) are the
reference these are tested against.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..kinematics.api import PARALLEL_MIN, _rows, jacobian, kernel_arrays
from ..model import Assembler
from . import kernels as sk
from .loads import has_stiffness, load_arrays

__all__ = ["compliance", "deflection", "leg_forces"]


def leg_forces(asm: Assembler, Q, payload=None, wrench=None) -> np.ndarray:
    """Quasi-static leg forces (N), **positive in compression** (the leg pushes its joints
    apart): ``Q`` (6N,) -> (N, 6); (B, 6N) -> (B, N, 6).

    Legs are two-force members; platform i's legs carry everything above its base plate: the
    top plates (``top_mass`` at ``top_com``), the leg halves (``leg_mass``), the payload and
    ``wrench``, under ``[stack] gravity``.  ``payload`` replaces the config's ``[stack]
    payload``: ``{"mass": kg, "com": [x, y, z]}`` (com in the tool frame); ``wrench`` (6,) =
    (force N, moment N m) applied to the tool at the tool point, world frame.  NaN where a
    platform is singular.
    """
    Q, single = _rows(asm, Q)
    a = kernel_arrays(asm)
    loads = load_arrays(asm, payload, wrench)
    out = np.empty((Q.shape[0], asm.n_platforms, 6))
    args = (a.b, a.t, a.T_mount, a.T_after, loads, Q, out)
    if Q.shape[0] < PARALLEL_MIN:
        sk.leg_forces_rows(*args, 0, Q.shape[0])
    else:
        sk.leg_forces_batch(*args)
    return out[0] if single else out


def _leg_compliance(asm: Assembler) -> np.ndarray:
    """(6N,) m/N, 1 / leg_stiffness per leg (0 for rigid legs); InputError when none is given."""
    loads = load_arrays(asm)
    if not has_stiffness(loads):
        raise InputError("compliance: no platform type of this config gives leg_stiffness "
                         "(N/m; docs/config.md)")
    return np.repeat(loads.inv_stiffness, 6)


def compliance(asm: Assembler, Q) -> np.ndarray:
    """Tool compliance ``C = J_L diag(1 / k) J_L^T`` (twist per wrench): ``Q`` (6N,) -> (6, 6);
    (B, 6N) -> (B, 6, 6).  A wrench ``w`` = (force N, moment N m) at the tool point, world frame,
    moves the tool by the twist ``C w`` (dp m, dtheta rad; world frame), to first order, through
    the legs' elastic strain (``leg_stiffness``; platforms without one are rigid).  The
    geometric stiffness of a preloaded stack is not included (docs/statics.md)."""
    c = _leg_compliance(asm)
    JL = _geometric_jacobian(asm, Q)
    return np.einsum("...ic,c,...jc->...ij", JL, c, JL)


def _geometric_jacobian(asm: Assembler, Q) -> np.ndarray:
    """``J_L`` per geometric (joint-to-joint) leg length, the springs' strain: the facade's is
    per commanded length, ``leg_scale`` times larger for a calibrated leg."""
    JL = jacobian(asm, Q, "legs")
    return JL / asm.leg_scale.reshape(-1) if asm.legs_calibrated else JL


def deflection(asm: Assembler, Q, payload=None, wrench=None) -> np.ndarray:
    """Tool deflection under the loads of :func:`leg_forces` (the twist (dp m, dtheta rad),
    world frame, from the unloaded to the loaded pose, first order in the compliance): each leg
    shortens by ``f / k``, so ``d = -J_L (f / k)``.  ``Q`` (6N,) -> (6,); (B, 6N) -> (B, 6)."""
    c = _leg_compliance(asm)
    f = leg_forces(asm, Q, payload, wrench)
    JL = _geometric_jacobian(asm, Q)
    flat = f.reshape(f.shape[:-2] + (-1,))
    return -np.einsum("...ic,c,...c->...i", JL, c, flat)
