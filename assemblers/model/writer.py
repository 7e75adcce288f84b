"""Write an :class:`Assembler` as a config file (TOML) that :func:`load_config` reads back to
the same Assembler.

Every platform is written with explicit joints, its stroke, limits, home height and leg
calibration (``leg_offset``/``leg_scale``); the stack with its mount, interfaces and tool as
``{ xyz, rpy }``; the sensitivity weights; the ``[hardware]`` section with one
``[[hardware.platform]]`` table per platform (every per-actuator value written out).  Numbers
are written with Python's shortest round-tripping ``repr``, so they are read back bit for bit;
a transform's ``rpy`` is chosen so that it rebuilds the stored matrix exactly wherever such
angles exist (always for an Assembler read from a config).  ``docs/calibration.md``.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np

from .. import files
from ..geometry.api import matrix_to_rpy, pose_to_transform
from .types import Assembler, PlatformType

__all__ = ["config_to_dict", "dumps_config", "transform_entry", "write_config"]

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _floats(a) -> list:
    """An array as nested lists of Python floats (exact values; -0.0 written as 0.0)."""
    return (np.asarray(a, dtype=np.float64) + 0.0).tolist()


def _degrees(rad: float) -> float:
    """A degree value that :func:`math.radians` turns back into ``rad`` exactly (when one of
    the floats next to ``degrees(rad)`` does)."""
    d = math.degrees(rad)
    for cand in (d, math.nextafter(d, math.inf), math.nextafter(d, -math.inf)):
        if math.radians(cand) == rad:
            return cand
    return d


def transform_entry(T) -> dict:
    """(4, 4) transform -> ``{"xyz": [3], "rpy": [3]}`` whose transform is ``T`` (exactly, when
    angles a few ulps from ``matrix_to_rpy`` rebuild it)."""
    T = np.asarray(T, dtype=np.float64)
    xyz = T[:3, 3]
    rpy0 = matrix_to_rpy(T[:3, :3])
    best, best_err = rpy0, math.inf
    steps = (0, 1, -1, 2, -2)
    for i in steps:
        for j in steps:
            for k in steps:
                rpy = np.array([_ulps(rpy0[0], i), _ulps(rpy0[1], j), _ulps(rpy0[2], k)])
                err = float(np.max(np.abs(pose_to_transform(np.concatenate([xyz, rpy]))[:3, :3]
                                          - T[:3, :3])))
                if err < best_err:
                    best, best_err = rpy, err
                if err == 0.0:
                    return {"xyz": _floats(xyz), "rpy": _floats(rpy)}
    return {"xyz": _floats(xyz), "rpy": _floats(best)}


def _ulps(x: float, n: int) -> float:
    for _ in range(abs(n)):
        x = math.nextafter(x, math.inf if n > 0 else -math.inf)
    return float(x)


def _platform_dict(p: PlatformType) -> dict:
    d = {"base_joints": _floats(p.base_joints), "top_joints": _floats(p.top_joints),
         "leg_min": float(p.leg_min), "leg_max": float(p.leg_max)}
    if p.max_joint_angle is not None:
        d["max_joint_angle_deg"] = _degrees(float(p.max_joint_angle))
    d["home_height"] = float(p.home_height)
    if np.all(np.isfinite(p.pose_lower)):
        d["pose_min"] = _floats(p.pose_lower)
    if np.all(np.isfinite(p.pose_upper)):
        d["pose_max"] = _floats(p.pose_upper)
    d["leg_offset"] = _floats(p.leg_offset)
    d["leg_scale"] = _floats(p.leg_scale)
    return d


def _type_names(asm: Assembler) -> list[str]:
    """One type name per stack position: the platform's own name, made unique when two
    different platform objects share it."""
    names, seen = [], {}
    for p in asm.platforms:
        name = p.name
        while name in seen and seen[name] is not p:
            name = f"{name}_{len(seen)}"
        seen[name] = p
        names.append(name)
    return names


def _hardware_dict(asm: Assembler) -> dict:
    hw = asm.hardware
    d = {"rate_hz": float(hw.rate_hz), "ack_timeout_s": float(hw.ack_timeout_s),
         "max_retries": int(hw.max_retries), "heartbeat_s": float(hw.heartbeat_s),
         "watchdog_s": float(hw.watchdog_s), "max_gap_s": float(hw.max_gap_s),
         "max_lag_s": float(hw.max_lag_s), "max_retry_rate": float(hw.max_retry_rate)}
    plats = []
    for link in hw.links:
        e = {} if link.port is None else {"port": link.port}
        e.update(baudrate=int(link.baudrate), address=int(link.address))
        c = link.calibration
        for key in ("scale", "offset", "sign", "soft_min", "soft_max", "max_velocity",
                    "max_acceleration"):
            e[key] = _floats(getattr(c, key))
        plats.append(e)
    d["platform"] = plats
    return d


def config_to_dict(asm: Assembler) -> dict:
    """The config (as the dict ``tomllib`` would read) of ``asm``: explicit joints, strokes,
    limits, home heights, leg calibration, transforms, weights and the hardware section."""
    names = _type_names(asm)
    platforms = {}
    for name, p in zip(names, asm.platforms):
        platforms.setdefault(name, _platform_dict(p))
    n = asm.n_platforms
    stack = {"platforms": names, "mount": transform_entry(asm.T_mount)}
    if n > 1:
        stack["interfaces"] = [transform_entry(T) for T in np.asarray(asm.T_interfaces).reshape(-1, 4, 4)]
    stack["tool"] = transform_entry(asm.T_tool)
    s = asm.sensitivity
    out = {"name": asm.name}
    if asm.description:
        out["description"] = asm.description
    out.update(platforms=platforms, stack=stack,
               sensitivity={"wrt": s.wrt, "length_scale": float(s.length_scale),
                            "sigma_translation": float(s.sigma_translation),
                            "sigma_rotation": float(s.sigma_rotation),
                            "sigma_leg": float(s.sigma_leg)},
               hardware=_hardware_dict(asm))
    return out


# ------------------------------------------------------------------------------ TOML text

_INLINE = frozenset(("mount", "tool", "interfaces"))  # written as inline tables


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else _string(k)


def _string(s: str) -> str:
    # JSON's escapes are TOML's, except that TOML also wants DEL escaped
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"not a finite number: {v}")
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        if v and all(isinstance(x, (list, dict)) for x in v):
            return "[\n" + "".join(f"  {_value(x)},\n" for x in v) + "]"
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _is_table_array(v) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _emit(d: dict, path: list[str], out: list[str]) -> None:
    subs = []
    for k, v in d.items():
        if (isinstance(v, dict) or _is_table_array(v)) and k not in _INLINE:
            subs.append((k, v))
        else:
            out.append(f"{_key(k)} = {_value(v)}")
    for k, v in subs:
        name = ".".join(_key(x) for x in [*path, k])
        if isinstance(v, dict):
            if any(not isinstance(x, dict) for x in v.values()) or not v:
                out.append(f"\n[{name}]")
            _emit(v, [*path, k], out)
        else:
            for entry in v:
                out.append(f"\n[[{name}]]")
                _emit(entry, [*path, k], out)


def dumps_config(asm: Assembler | dict, header: str = "") -> str:
    """TOML text of ``asm`` (an Assembler, or a config dict such as :func:`config_to_dict`'s);
    ``header`` lines are written first as comments."""
    d = config_to_dict(asm) if isinstance(asm, Assembler) else asm
    out = [f"# {line}".rstrip() for line in header.splitlines()]
    _emit(d, [], out)
    return "\n".join(out).lstrip("\n") + "\n"


def write_config(path, asm: Assembler | dict, header: str = "", what: str = "") -> None:
    """Write :func:`dumps_config` of ``asm`` to ``path`` atomically (``assemblers.files``:
    nothing but a regular file is replaced)."""
    files.write_text(path, dumps_config(asm, header), what)
