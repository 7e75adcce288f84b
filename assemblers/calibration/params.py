"""The calibration's error model: the parameter vector, its names, nominal values and prior sizes,
and the Assembler (config) a parameter vector describes.

Layout of the full vector ``p`` (``48 N + 12``,), platform i = 1..N bottom first, leg k = 0..5:

* per platform, 48 numbers: base joints ``b_k`` (6 x 3, m, base frame), top joints ``t_k``
  (6 x 3, m, top frame), leg offsets (6, m) and leg scales (6): geometric length =
  ``scale * commanded + offset`` (docs/calibration.md);
* the mount, 6 numbers: ``T_mount = T_mount_nominal @ T(d)``, ``d = (dx, dy, dz, rx, ry, rz)``,
  a translation (m) and a rotation vector (rad) in the nominal mount frame;
* the tool, 6 numbers, the same way: ``T_tool = T_tool_nominal @ T(d)``.

The interfaces between platforms are not parameters: a change of one is a rigid motion of the
next platform's base joints, which are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry.api import so3_exp
from ..model import Assembler
from ..model.config import config_from_dict
from ..model.writer import config_to_dict, transform_entry

PER_PLATFORM = 48
#: Default prior sizes (standard deviations) of the errors, also the default error sizes of a
#: simulated campaign: joints 1 mm per coordinate, offsets 0.5 mm, scales 1e-3, mount and tool
#: 1 mm / 1 mrad per component.
DEFAULT_PRIOR = {"joints": 1e-3, "offsets": 5e-4, "scales": 1e-3, "mount": 1e-3,
                 "mount_rotation": 1e-3, "tool": 1e-3, "tool_rotation": 1e-3}
FAMILIES = ("joints", "offsets", "scales", "mount", "tool")
_AXES = ("x", "y", "z")
_TWIST = ("x", "y", "z", "rx", "ry", "rz")


def n_params(n: int) -> int:
    """Length of the full parameter vector of an N-platform stack."""
    return PER_PLATFORM * n + 12


def param_names(n: int) -> tuple[str, ...]:
    """Names of the full vector's entries: ``p1.base[0].x``, ``p1.top[5].z``,
    ``p2.leg[3].offset``, ``p2.leg[3].scale``, ``mount.rx``, ``tool.z`` ..."""
    names = []
    for i in range(1, n + 1):
        names += [f"p{i}.base[{k}].{a}" for k in range(6) for a in _AXES]
        names += [f"p{i}.top[{k}].{a}" for k in range(6) for a in _AXES]
        names += [f"p{i}.leg[{k}].offset" for k in range(6)]
        names += [f"p{i}.leg[{k}].scale" for k in range(6)]
    names += [f"mount.{a}" for a in _TWIST] + [f"tool.{a}" for a in _TWIST]
    return tuple(names)


def family_index(n: int) -> dict[str, np.ndarray]:
    """Indices of each family (``joints``, ``offsets``, ``scales``, ``mount``, ``tool``) in the
    full vector."""
    base = PER_PLATFORM * np.arange(n)[:, None]
    return {"joints": (base + np.arange(36)).ravel(),
            "offsets": (base + 36 + np.arange(6)).ravel(),
            "scales": (base + 42 + np.arange(6)).ravel(),
            "mount": PER_PLATFORM * n + np.arange(6),
            "tool": PER_PLATFORM * n + 6 + np.arange(6)}


def unit(n: int, index: int) -> str:
    """The unit of entry ``index``: "m", "rad" or "1" (a scale)."""
    name = param_names(n)[index]
    if name.endswith(".scale"):
        return "1"
    return "rad" if name.split(".")[-1] in ("rx", "ry", "rz") else "m"


def nominal_vector(asm: Assembler) -> np.ndarray:
    """The full vector (48N + 12,) of ``asm`` itself: its joints, offsets and scales, and zero
    mount and tool corrections."""
    per = [np.concatenate([p.base_joints.ravel(), p.top_joints.ravel(), p.leg_offset,
                           p.leg_scale]) for p in asm.platforms]
    return np.concatenate([*per, np.zeros(12)])


def prior_vector(n: int, prior: dict | None = None) -> np.ndarray:
    """Prior sizes (standard deviations) per entry from a dict of family sizes
    (:data:`DEFAULT_PRIOR` for the missing ones; m, rad or 1)."""
    pr = dict(DEFAULT_PRIOR, **(prior or {}))
    per = np.concatenate([np.full(36, pr["joints"]), np.full(6, pr["offsets"]),
                          np.full(6, pr["scales"])])
    return np.concatenate([np.tile(per, n), np.full(3, pr["mount"]), np.full(3, pr["mount_rotation"]),
                           np.full(3, pr["tool"]), np.full(3, pr["tool_rotation"])])


def split(n: int, p: np.ndarray):
    """Full vector -> ``(b (N, 6, 3), t (N, 6, 3), offset (N, 6), scale (N, 6), d_mount (6,),
    d_tool (6,))``; works on NumPy and JAX arrays alike."""
    per = p[:PER_PLATFORM * n].reshape(n, PER_PLATFORM)
    b = per[:, 0:18].reshape(n, 6, 3)
    t = per[:, 18:36].reshape(n, 6, 3)
    return b, t, per[:, 36:42], per[:, 42:48], p[PER_PLATFORM * n:PER_PLATFORM * n + 6], \
        p[PER_PLATFORM * n + 6:]


def twist_transform(d) -> np.ndarray:
    """``d`` (6,): translation m and rotation vector rad -> (4, 4) ``T(d)``."""
    T = np.eye(4)
    T[:3, :3] = so3_exp(np.asarray(d[3:], dtype=np.float64))
    T[:3, 3] = d[:3]
    return T


@dataclass(frozen=True)
class Perturbed:
    """What a full vector ``p`` does to a nominal Assembler: ``asm`` the Assembler (built
    through the config loader, so its written config reads back to the same bits) and
    ``config`` its config dict."""

    asm: Assembler
    config: dict


def assembler_from_vector(nominal: Assembler, p, name: str | None = None,
                          description: str | None = None) -> Perturbed:
    """The Assembler the full vector ``p`` describes, on the nominal's stack (interfaces,
    strokes, limits, home heights, weights and hardware unchanged): explicit joints, leg
    offsets and scales per platform (one platform type per stack position), the corrected
    mount and tool.  Raises :class:`~assemblers.model.config.ConfigError` when the result is
    not a valid Assembler (e.g. its home pose leaves the stroke)."""
    n = nominal.n_platforms
    p = np.asarray(p, dtype=np.float64)
    b, t, off, scl, d_m, d_t = split(n, p)
    d = config_to_dict(nominal)
    types = d["platforms"]
    names = []
    for i, tname in enumerate(d["stack"]["platforms"]):
        entry = dict(types[tname])
        entry.update(base_joints=(b[i] + 0.0).tolist(), top_joints=(t[i] + 0.0).tolist(),
                     leg_offset=(off[i] + 0.0).tolist(), leg_scale=(scl[i] + 0.0).tolist())
        names.append(f"{tname}_{i + 1}")
        d.setdefault("_new", {})[names[-1]] = entry
    d["platforms"] = d.pop("_new")
    d["stack"]["platforms"] = names
    d["stack"]["mount"] = transform_entry(np.asarray(nominal.T_mount) @ twist_transform(d_m))
    d["stack"]["tool"] = transform_entry(np.asarray(nominal.T_tool) @ twist_transform(d_t))
    d["name"] = name if name is not None else nominal.name
    if description is not None:
        d["description"] = description
    return Perturbed(config_from_dict(d, f"<{d['name']}>"), d)
