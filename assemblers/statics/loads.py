"""The mass model of a stack as arrays: what the statics kernels and the JAX reference take.

Built from an :class:`~assemblers.model.Assembler` (the config's ``top_mass``, ``top_com``,
``leg_mass``, ``leg_stiffness``, ``[stack] gravity`` and ``payload``; docs/statics.md) plus the
optional payload and tool wrench of one call.  NumPy only (no JAX, no Numba).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import InputError
from ..model import Assembler


class LoadArrays(NamedTuple):
    """The loads of a stack (float64 C arrays; a JAX pytree when built with jnp arrays).

    ``top_mass`` (N,) kg, each platform's moving top plate with what is fixed to it;
    ``top_com`` (N, 3) m its centre of mass in its top frame; ``leg_mass`` (N,) kg per leg
    (half at each joint); ``gravity`` (3,) m/s^2 world; ``payload`` (4,) = (mass kg, com
    (3,) m in the tool frame); ``wrench`` (6,) = (force N, moment N m) applied to the tool at
    the tool point, world frame; ``inv_stiffness`` (N,) m/N, 1 / leg_stiffness (0 for a rigid
    leg, where the config gives none).
    """

    top_mass: object
    top_com: object
    leg_mass: object
    gravity: object
    payload: object
    wrench: object
    inv_stiffness: object


_ATTR = "_load_arrays"


def _payload_vector(payload, where: str) -> np.ndarray:
    """``payload``: a :class:`~assemblers.model.Payload`, a dict ``{"mass": kg, "com": [x, y, z]}``
    or a pair ``(mass, com)`` -> (4,)."""
    if payload is None:
        return np.zeros(4)
    if hasattr(payload, "mass"):
        mass, com = payload.mass, payload.com
    elif isinstance(payload, dict):
        unknown = set(payload) - {"mass", "com"}
        if unknown or "mass" not in payload:
            raise InputError(f"{where}: expected {{'mass': kg, 'com': [x, y, z]}} (com optional), "
                             f"got keys {sorted(payload)}")
        mass, com = payload["mass"], payload.get("com", np.zeros(3))
    else:
        try:
            mass, com = payload
        except (TypeError, ValueError):
            raise InputError(f"{where}: expected {{'mass': kg, 'com': [x, y, z]}} or (mass, com)"
                             ) from None
    try:
        v = np.concatenate([[float(mass)], np.asarray(com, dtype=np.float64).reshape(3)])
    except (TypeError, ValueError):
        raise InputError(f"{where}: mass must be a number and com three numbers (m, tool frame)"
                         ) from None
    if not np.isfinite(v).all() or v[0] < 0:
        raise InputError(f"{where}: mass must be finite and >= 0 kg, com finite, got {v.tolist()}")
    return v


def load_arrays(asm: Assembler, payload=None, wrench=None) -> LoadArrays:
    """The :class:`LoadArrays` of ``asm`` (cached for the config's own loads): ``payload``
    replaces the config's ``[stack] payload`` (a dict ``{"mass": kg, "com": [x, y, z]}`` with
    com in the tool frame, or a :class:`~assemblers.model.Payload`); ``wrench`` (6,) = (force N,
    moment N m) on the tool at the tool point, world frame (default none)."""
    own = payload is None and wrench is None
    if own and _ATTR in asm.__dict__:
        return asm.__dict__[_ATTR]
    plats = asm.platforms
    pay = _payload_vector(asm.payload if payload is None else payload, "payload")
    if wrench is None:
        w = np.zeros(6)
    else:
        try:
            w = np.array(wrench, dtype=np.float64).reshape(6)
        except (TypeError, ValueError):
            raise InputError("wrench: expected 6 numbers (force N, moment N m; world frame, at "
                             "the tool point)") from None
        if not np.isfinite(w).all():
            raise InputError(f"wrench: non-finite value in {w.tolist()}")
    out = LoadArrays(
        top_mass=np.array([p.top_mass for p in plats], dtype=np.float64),
        top_com=np.array([p.top_com for p in plats], dtype=np.float64).reshape(-1, 3),
        leg_mass=np.array([p.leg_mass for p in plats], dtype=np.float64),
        gravity=np.array(asm.gravity, dtype=np.float64),
        payload=pay,
        wrench=w,
        inv_stiffness=np.array([0.0 if p.leg_stiffness is None else 1.0 / p.leg_stiffness
                                for p in plats], dtype=np.float64),
    )
    if own:
        asm.__dict__[_ATTR] = out  # frozen dataclass: cache beside the fields
    return out


def kernel_loads(asm: Assembler) -> LoadArrays | None:
    """The mass model the IK kernels take: :func:`load_arrays`, or None for a config that gives
    no masses, payload, ratings or stiffnesses (its kernels then compile without the statics,
    :mod:`assemblers.ik.criteria`)."""
    loads = load_arrays(asm)
    rated = any(p.max_leg_force is not None for p in asm.platforms)
    return loads if (has_load(loads) or has_stiffness(loads) or rated) else None


def has_load(loads: LoadArrays) -> bool:
    """Whether anything loads the legs: a mass under non-zero gravity, or a tool wrench."""
    g = float(np.linalg.norm(loads.gravity)) > 0.0
    masses = bool(np.any(np.asarray(loads.top_mass) > 0) or np.any(np.asarray(loads.leg_mass) > 0)
                  or loads.payload[0] > 0)
    return (g and masses) or bool(np.any(np.asarray(loads.wrench) != 0))


def has_stiffness(loads: LoadArrays) -> bool:
    """Whether any platform's legs have a (finite) stiffness."""
    return bool(np.any(np.asarray(loads.inv_stiffness) > 0))
