"""Load and validate Assembler configs (TOML, read with :mod:`tomllib`).

Every problem raises :class:`ConfigError` with one line naming the file, the key and what is
wrong; unknown keys are errors.  The keys are documented in ``docs/config.md``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .model import (
    ActuatorCalibration,
    Assembler,
    HardwareConfig,
    PlatformLink,
    PlatformType,
    Sensitivity,
    _frozen,
)
from .transforms import pose_to_transform

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_CONFIG = "assembler"

_PARAMETRIC = ("base_radius", "top_radius", "base_pair_angle_deg", "top_pair_angle_deg")
_EXPLICIT = ("base_joints", "top_joints")


class ConfigError(InputError):
    """A config problem: ``source`` (file), ``key`` (dotted path) and ``problem``."""

    def __init__(self, source: str, key: str, problem: str):
        self.source, self.key, self.problem = source, key, problem
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(where + problem)


class _Table:
    """A TOML table being read: tracks the key path and which keys were used."""

    def __init__(self, data: Any, path: str, source: str):
        self.source, self.path = source, path
        if not isinstance(data, dict):
            raise ConfigError(source, path, f"must be a table, got {_type_name(data)}")
        self.data = data
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, problem: str) -> ConfigError:
        return ConfigError(self.source, self.key(name), problem)

    def has(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str, default: Any = ..., required: bool = True) -> Any:
        if name not in self.data:
            if default is ... and required:
                raise self.error(name, "missing (required)")
            return None if default is ... else default
        self.used.add(name)
        return self.data[name]

    def number(self, name, default=..., *, positive=False, nonneg=False, lo=None, hi=None):
        v = self.raw(name, default)
        if v is None or (v is default and default is not ...):
            return v
        return _check_number(v, self.error, name, positive=positive, nonneg=nonneg, lo=lo, hi=hi)

    def integer(self, name, default=..., *, lo=None, hi=None) -> int:
        v = self.raw(name, default)
        if v is default and default is not ...:
            return v
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(name, f"must be an integer, got {_type_name(v)} {v!r}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise self.error(name, f"must be in [{lo}, {hi}], got {v}")
        return v

    def string(self, name, default=..., *, choices=None) -> str:
        v = self.raw(name, default)
        if v is default and default is not ...:
            return v
        if not isinstance(v, str):
            raise self.error(name, f"must be a string, got {_type_name(v)} {v!r}")
        if choices is not None and v not in choices:
            raise self.error(name, f"must be one of {', '.join(map(repr, choices))}, got {v!r}")
        return v

    def vector(self, name, length, default=..., *, positive=False, nonneg=False) -> np.ndarray:
        """A list of ``length`` numbers, or (when ``default`` is an array) a scalar broadcast."""
        v = self.raw(name, default)
        if v is default and default is not ...:
            return v
        if isinstance(v, (int, float)) and not isinstance(v, bool) and default is not ...:
            v = [v] * length
        if not isinstance(v, list) or len(v) != length:
            raise self.error(name, f"must be a list of {length} numbers, got {_short(v)}")
        return np.array([self._element(x, f"{name}[{i}]", positive=positive, nonneg=nonneg)
                         for i, x in enumerate(v)])

    def matrix(self, name, rows, cols) -> np.ndarray:
        v = self.raw(name)
        if not isinstance(v, list) or len(v) != rows:
            raise self.error(name, f"must be {rows} rows of {cols} numbers, got {_short(v)}")
        out = np.empty((rows, cols))
        for i, row in enumerate(v):
            if not isinstance(row, list) or len(row) != cols:
                raise self.error(f"{name}[{i}]", f"must be a list of {cols} numbers, got {_short(row)}")
            for j, x in enumerate(row):
                out[i, j] = self._element(x, f"{name}[{i}][{j}]")
        return out

    def _element(self, x, key: str, **checks) -> float:
        return _check_number(x, lambda _n, problem: self.error(key, problem), key, **checks)

    def table(self, name, required=False) -> _Table | None:
        v = self.raw(name, None if not required else ..., required=required)
        if v is None:
            return None
        return _Table(v, self.key(name), self.source)

    def done(self) -> None:
        """Reject keys that were never read (typos must not pass silently)."""
        extra = [k for k in self.data if k not in self.used]
        if extra:
            where = f"[{self.path}]" if self.path else "the top level"
            raise ConfigError(
                self.source, self.key(extra[0]), f"unknown key in {where} (check the spelling; "
                "docs/config.md lists the keys)"
            )


def _type_name(v: Any) -> str:
    return {dict: "a table", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(v), type(v).__name__
    )


def _short(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _check_number(v, error, name, *, positive=False, nonneg=False, lo=None, hi=None) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise error(name, f"must be a number, got {_type_name(v)} {_short(v)}")
    v = float(v)
    if not math.isfinite(v):
        raise error(name, f"must be a finite number, got {v}")
    if positive and v <= 0:
        raise error(name, f"must be positive, got {v}")
    if nonneg and v < 0:
        raise error(name, f"must not be negative, got {v}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise error(name, f"must be in [{lo}, {hi}], got {v}")
    return v


def transform_from_xyz_rpy(xyz, rpy) -> np.ndarray:
    """``xyz``: (3,) m, ``rpy``: (3,) rad -> (4, 4) transform with R = Rz(yaw) Ry(pitch) Rx(roll)."""
    return pose_to_transform(np.concatenate([np.asarray(xyz, float), np.asarray(rpy, float)]))


def parametric_joints(radius: float, angles_rad: np.ndarray) -> np.ndarray:
    """(6,) angles (rad) on a circle of ``radius`` (m) -> (6, 3) joints at z = 0."""
    return np.stack([radius * np.cos(angles_rad), radius * np.sin(angles_rad), np.zeros(6)], 1)


def parametric_layout(base_radius, top_radius, base_pair_angle_deg, top_pair_angle_deg):
    """SPEC's parametric layout -> (base_joints (6, 3), top_joints (6, 3)) in metres."""
    k = np.arange(6)
    s = np.where(k % 2 == 0, -1.0, 1.0)
    group = np.deg2rad(120.0) * (k // 2)
    a_base = group + s * np.deg2rad(base_pair_angle_deg) / 2.0
    a_top = group + s * (np.deg2rad(60.0) - np.deg2rad(top_pair_angle_deg) / 2.0)
    return parametric_joints(base_radius, a_base), parametric_joints(top_radius, a_top)


def default_home_height(base_joints, top_joints, leg_min, leg_max) -> float:
    """SPEC's default home z: mean over legs of ``sqrt(m^2 - |t_xy - b_xy|^2) - (t_z - b_z)``."""
    m = 0.5 * (leg_min + leg_max)
    dxy2 = np.sum((top_joints[:, :2] - base_joints[:, :2]) ** 2, axis=1)
    if np.any(dxy2 >= m * m):
        return float("nan")
    return float(np.mean(np.sqrt(m * m - dxy2) - (top_joints[:, 2] - base_joints[:, 2])))


def _transform(tbl: _Table, name: str) -> np.ndarray:
    sub = tbl.table(name)
    if sub is None:
        return np.eye(4)
    xyz = sub.vector("xyz", 3, np.zeros(3))
    rpy = sub.vector("rpy", 3, np.zeros(3))
    sub.done()
    return transform_from_xyz_rpy(xyz, rpy)


def _platform(tbl: _Table, name: str) -> PlatformType:
    par = [k for k in _PARAMETRIC if tbl.has(k)]
    exp = [k for k in _EXPLICIT if tbl.has(k)]
    if par and exp:
        raise tbl.error(exp[0], f"give either the parametric layout ({', '.join(_PARAMETRIC)}) "
                        "or explicit joints (base_joints, top_joints), not both")
    if exp:
        b = tbl.matrix("base_joints", 6, 3)
        t = tbl.matrix("top_joints", 6, 3)
    else:
        if not par:
            raise tbl.error("base_joints", "missing: give base_joints and top_joints (six "
                            "[x, y, z] rows each) or the parametric layout keys "
                            f"({', '.join(_PARAMETRIC)})")
        b, t = parametric_layout(
            tbl.number("base_radius", positive=True),
            tbl.number("top_radius", positive=True),
            tbl.number("base_pair_angle_deg", lo=0.0, hi=119.0),
            tbl.number("top_pair_angle_deg", lo=0.0, hi=119.0),
        )
    leg_min = tbl.number("leg_min", positive=True)
    leg_max = tbl.number("leg_max", positive=True)
    if leg_min >= leg_max:
        raise tbl.error("leg_min", f"must be less than leg_max ({leg_min} >= {leg_max})")
    mja = tbl.number("max_joint_angle_deg", None, lo=0.0, hi=90.0)
    if mja is not None and mja <= 0:
        raise tbl.error("max_joint_angle_deg", f"must be positive, got {mja}")
    home = tbl.number("home_height", None, positive=True)
    if home is None:
        home = default_home_height(b, t, leg_min, leg_max)
        if not math.isfinite(home):
            raise tbl.error("leg_max", "the legs at mid-stroke cannot span the horizontal offset "
                            "between base and top joints: no default home pose (set home_height "
                            "or change the layout)")
    lower = tbl.vector("pose_min", 6, np.full(6, -np.inf))
    upper = tbl.vector("pose_max", 6, np.full(6, np.inf))
    bad = np.nonzero(lower >= upper)[0]
    if bad.size:
        raise tbl.error("pose_min", f"component {bad[0]} is not below pose_max "
                        f"({lower[bad[0]]} >= {upper[bad[0]]})")
    tbl.done()
    R = np.eye(3)
    p = np.array([0.0, 0.0, home])
    legs = np.linalg.norm(p + t @ R.T - b, axis=1)
    out = np.nonzero((legs < leg_min - 1e-12) | (legs > leg_max + 1e-12))[0]
    if out.size:
        k = int(out[0])
        raise tbl.error("home_height" if tbl.has("home_height") else "leg_min",
                        f"at the home pose (z = {home:.6g} m) leg {k} is {legs[k]:.6g} m, outside "
                        f"the stroke [{leg_min}, {leg_max}]")
    home_q = np.array([0, 0, home, 0, 0, 0.0])
    if np.any(home_q < lower) or np.any(home_q > upper):
        raise tbl.error("pose_min", "the home pose lies outside [pose_min, pose_max]")
    return PlatformType(name, _frozen(b), _frozen(t), leg_min, leg_max,
                        None if mja is None else math.radians(mja), home,
                        _frozen(lower), _frozen(upper))


def _sensitivity(tbl: _Table | None) -> Sensitivity:
    if tbl is None:
        return Sensitivity()
    s = Sensitivity(
        wrt=tbl.string("wrt", "pose", choices=("pose", "legs")),
        length_scale=tbl.number("length_scale", 1.0, positive=True),
        sigma_translation=tbl.number("sigma_translation", 1.0, positive=True),
        sigma_rotation=tbl.number("sigma_rotation", 1.0, positive=True),
        sigma_leg=tbl.number("sigma_leg", 1.0, positive=True),
    )
    tbl.done()
    return s


_ACTUATOR_DEFAULTS = {"scale": 1.0e5, "offset": 0.0, "sign": 1.0, "max_velocity": 0.05,
                      "max_acceleration": 0.5}


# Physical bounds of the [hardware] keys (docs/config.md).  Past them a limit stops limiting:
# a max_velocity of 1e300 m/s lets the safety gate pass any step, a watchdog of hours never
# trips, a count of a millimetre makes the gate's one-count allowance larger than the limits.
_MAX_VELOCITY = 10.0  # m/s: beyond linear actuators of any robot of this kind
_MAX_ACCELERATION = 1000.0  # m/s^2: about 100 g
_SCALE_RANGE = (1.0, 1.0e9)  # counts/m: a metre per count .. a nanometre per count
_WATCHDOG_RANGE = (0.01, 10.0)  # s
_INT32 = (-(2**31), 2**31 - 1)  # the wire carries int32 counts


def _calibration(tbl: _Table | None, defaults: dict, plat: PlatformType,
                 where: _Table | None = None) -> ActuatorCalibration:
    """One platform's actuators; ``where`` names the table for errors in values that came from
    the defaults (``[hardware.actuator]``)."""
    err_tbl = tbl if tbl is not None else where
    vals = {}
    for key, dflt in defaults.items():
        if tbl is None:
            vals[key] = np.full(6, dflt)
            continue
        pos = key in ("scale", "max_velocity", "max_acceleration")
        vals[key] = tbl.vector(key, 6, np.full(6, dflt), positive=pos)

    def fail(key, problem):
        if err_tbl is None:
            raise ConfigError("<defaults>", f"hardware.{key}", problem)
        raise err_tbl.error(key, problem)

    if np.any(np.abs(vals["sign"]) != 1.0):
        fail("sign", "must be +1 or -1 for every actuator")
    for key, hi, unit in (("max_velocity", _MAX_VELOCITY, "m/s"),
                          ("max_acceleration", _MAX_ACCELERATION, "m/s^2")):
        if np.any(vals[key] > hi):
            fail(key, f"must be at most {hi:g} {unit} (got {vals[key].max():g}): a limit past "
                 "what an actuator can do would switch the safety gate off")
    scale = vals["scale"]
    if np.any(scale < _SCALE_RANGE[0]) or np.any(scale > _SCALE_RANGE[1]):
        fail("scale", f"must be in [{_SCALE_RANGE[0]:g}, {_SCALE_RANGE[1]:g}] counts/m, got "
             f"{scale.min():g}..{scale.max():g}")
    # the gate allows one count on top of each limit (whole counts); over its 0.1 s look-back
    # that allowance must stay under a tenth of the limit, so one count must be finer than
    # the actuator's travel in 10 ms at full speed and than a_max x 0.5 ms^2
    q = 1.0 / scale
    if np.any(q > vals["max_velocity"] * 0.01):
        j = int(np.argmax(q / vals["max_velocity"]))
        fail("scale", f"one count ({q[j]:.3g} m at actuator {j}) is coarser than 1 % of "
             f"max_velocity x 1 s ({vals['max_velocity'][j] * 0.01:.3g} m): the safety gate's "
             "one-count allowance would be a large part of the limit")
    if np.any(q > vals["max_acceleration"] * 5e-4):
        j = int(np.argmax(q / vals["max_acceleration"]))
        fail("scale", f"one count ({q[j]:.3g} m at actuator {j}) is coarser than "
             f"max_acceleration x 0.5 ms^2 ({vals['max_acceleration'][j] * 5e-4:.3g} m): the "
             "safety gate's one-count allowance would be a large part of the limit")
    soft_min = np.full(6, plat.leg_min) if tbl is None else tbl.vector(
        "soft_min", 6, np.full(6, plat.leg_min), positive=True)
    soft_max = np.full(6, plat.leg_max) if tbl is None else tbl.vector(
        "soft_max", 6, np.full(6, plat.leg_max), positive=True)
    if np.any(soft_min < plat.leg_min) or np.any(soft_max > plat.leg_max):
        fail("soft_min", f"soft limits must lie inside the stroke [{plat.leg_min}, "
             f"{plat.leg_max}] of platform type {plat.name!r}")
    if np.any(soft_min >= soft_max):
        fail("soft_min", "must be below soft_max for every actuator")
    # every count anywhere in the stroke (one count of margin) must fit the wire's int32
    for L, end in ((plat.leg_min, "leg_min"), (plat.leg_max, "leg_max")):
        c = vals["offset"] + vals["sign"] * scale * L
        bad = (c - 1 < _INT32[0]) | (c + 1 > _INT32[1])
        if np.any(bad):
            j = int(np.argmax(bad))
            fail("offset" if err_tbl is not None and err_tbl.has("offset") else "scale",
                 f"actuator {j} at {end} = {L:g} m would be {c[j]:.6g} counts, outside the "
                 f"controller's int32 range [{_INT32[0]}, {_INT32[1]}]: lower scale or "
                 "change offset")
    return ActuatorCalibration(**{k: _frozen(v) for k, v in vals.items()},
                               soft_min=_frozen(soft_min), soft_max=_frozen(soft_max))


def _hardware(tbl: _Table | None, platforms: tuple[PlatformType, ...]) -> HardwareConfig:
    n = len(platforms)
    if tbl is None:
        tbl = _Table({}, "hardware", "<defaults>")
    rate = tbl.number("rate_hz", 100.0, lo=1.0, hi=1000.0)
    ack = tbl.number("ack_timeout_s", 0.05, lo=1e-4, hi=10.0)
    retries = tbl.integer("max_retries", 3, lo=0, hi=100)
    heartbeat = tbl.number("heartbeat_s", 0.1, lo=1e-3, hi=10.0)
    watchdog = tbl.number("watchdog_s", 0.5, lo=_WATCHDOG_RANGE[0], hi=_WATCHDOG_RANGE[1])
    quality = {f.name: f.default for f in dataclasses.fields(HardwareConfig)
               if f.name in ("max_gap_s", "max_lag_s", "max_retry_rate")}  # their defaults
    max_gap = tbl.number("max_gap_s", quality["max_gap_s"], positive=True)
    max_lag = tbl.number("max_lag_s", quality["max_lag_s"], positive=True, hi=3600.0)
    max_retry_rate = tbl.number("max_retry_rate", quality["max_retry_rate"], lo=0.0, hi=1.0)
    if heartbeat >= watchdog:
        raise tbl.error("heartbeat_s", f"must be shorter than watchdog_s ({heartbeat} >= {watchdog})")
    if ack * (retries + 1) >= watchdog:
        raise tbl.error("ack_timeout_s", f"ack_timeout_s x (max_retries + 1) = {ack} x "
                        f"{retries + 1} = {ack * (retries + 1):g} s must be shorter than "
                        f"watchdog_s ({watchdog:g} s): the devices' watchdog would trip before "
                        "the host gives up on a frame")
    if max_gap >= watchdog:
        raise tbl.error("max_gap_s", f"must be shorter than watchdog_s ({max_gap} >= "
                        f"{watchdog}): a stall is the host's to notice, before the watchdog")
    if 1.0 / rate >= watchdog:
        raise tbl.error("rate_hz", f"a period of {1 / rate:g} s is not shorter than watchdog_s "
                        f"({watchdog:g} s): the devices would trip between set-points")
    act = tbl.table("actuator")
    defaults = dict(_ACTUATOR_DEFAULTS)
    if act is not None:
        for key, d in _ACTUATOR_DEFAULTS.items():
            pos = key in ("scale", "max_velocity", "max_acceleration")
            defaults[key] = act.number(key, d, positive=pos)
        if abs(defaults["sign"]) != 1.0:
            raise act.error("sign", "must be +1 or -1")
        for key, hi in (("max_velocity", _MAX_VELOCITY), ("max_acceleration", _MAX_ACCELERATION),
                        ("scale", _SCALE_RANGE[1])):
            if defaults[key] > hi:
                raise act.error(key, f"must be at most {hi:g}, got {defaults[key]:g}: past what "
                                "an actuator can do, the safety gate would stop limiting")
        act.done()
    plats = tbl.raw("platform", [])
    if not isinstance(plats, list):
        raise tbl.error("platform", "must be an array of tables ([[hardware.platform]])")
    if plats and len(plats) != n:
        raise tbl.error("platform", f"gives {len(plats)} entries; the stack has {n} platforms")
    links = []
    for i in range(n):
        if plats:
            sub = _Table(plats[i], f"hardware.platform[{i}]", tbl.source)
            port = sub.string("port", None)
            baud = sub.integer("baudrate", 115200, lo=300, hi=20_000_000)
            addr = sub.integer("address", i + 1, lo=0, hi=255)
            cal = _calibration(sub, defaults, platforms[i])
            sub.done()
            for j, other in enumerate(links):
                if other.address == addr:
                    raise sub.error("address", f"{addr} is also hardware.platform[{j}]'s: every "
                                    "controller needs its own address (the host checks it "
                                    "against each controller's IDENTIFY reply)")
                if port is not None and other.port == port:
                    raise sub.error("port", f"{port!r} is also hardware.platform[{j}]'s: one "
                                    "controller per port")
        else:
            port, baud, addr = None, 115200, i + 1
            cal = _calibration(None, defaults, platforms[i], act)
        links.append(PlatformLink(port, baud, addr, cal))
    tbl.done()
    return HardwareConfig(rate, ack, retries, heartbeat, watchdog, tuple(links),
                          max_gap_s=max_gap, max_lag_s=max_lag, max_retry_rate=max_retry_rate)


def config_from_dict(data: dict, source: str = "<dict>") -> Assembler:
    """Build an :class:`Assembler` from a parsed config (the TOML's dict); ``source`` names it
    in error messages."""
    top = _Table(data, "", source)
    name = top.string("name", Path(source).stem if source.endswith(".toml") else "assembler")
    description = top.string("description", "")
    ptbl = top.table("platforms", required=True)
    if not ptbl.data:
        raise ConfigError(source, "platforms",
                          "no platform type defined (add a [platforms.<name>] table)")
    types = {}
    for pname in list(ptbl.data):
        types[pname] = _platform(ptbl.table(pname, required=True), pname)
    ptbl.done()
    stbl = top.table("stack", required=True)
    names = stbl.raw("platforms")
    if not isinstance(names, list) or not names or not all(isinstance(x, str) for x in names):
        raise stbl.error("platforms", f"must be a non-empty list of platform type names, got "
                         f"{_short(names)}")
    for i, nm in enumerate(names):
        if nm not in types:
            raise stbl.error(f"platforms[{i}]", f"unknown platform type {nm!r} (defined: "
                             f"{', '.join(sorted(types))})")
    platforms = tuple(types[nm] for nm in names)
    n = len(platforms)
    T_mount = _transform(stbl, "mount")
    T_tool = _transform(stbl, "tool")
    ifs = stbl.raw("interfaces", None, required=False)
    if ifs is None:
        T_if = np.tile(np.eye(4), (n - 1, 1, 1))
    else:
        if not isinstance(ifs, list) or len(ifs) != n - 1:
            got = len(ifs) if isinstance(ifs, list) else _type_name(ifs)
            raise stbl.error("interfaces", f"must be a list of {n - 1} entries (one between each "
                             f"pair of the {n} platforms), got {got}")
        T_if = []
        for i, entry in enumerate(ifs):
            sub = _Table(entry, f"stack.interfaces[{i}]", source)
            xyz = sub.vector("xyz", 3, np.zeros(3))
            rpy = sub.vector("rpy", 3, np.zeros(3))
            sub.done()
            T_if.append(transform_from_xyz_rpy(xyz, rpy))
        T_if = np.array(T_if).reshape(n - 1, 4, 4)
    stbl.done()
    sens = _sensitivity(top.table("sensitivity"))
    hw = _hardware(top.table("hardware"), platforms)
    top.done()
    return Assembler(name=name, platforms=platforms, T_mount=_frozen(T_mount),
                     T_interfaces=_frozen(T_if), T_tool=_frozen(T_tool), sensitivity=sens,
                     hardware=hw, source=source, description=description)


def resolve_config_path(name_or_path: str | os.PathLike | None) -> Path:
    """A path, or the name of a shipped config (``assembler``, ``duo``...) -> its path.

    ``None`` means the default Assembler.
    """
    if name_or_path is None:
        name_or_path = DEFAULT_CONFIG
    p = Path(name_or_path)
    if p.exists():
        return p
    shipped = CONFIG_DIR / f"{name_or_path}.toml"
    if p.suffix == "" and shipped.exists():
        return shipped
    return p


def shipped_configs() -> list[str]:
    """Names of the configs shipped in ``configs/``."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


def load_config(path: str | os.PathLike | None = None) -> Assembler:
    """Read a config file (or a shipped config's name; None = the default) -> :class:`Assembler`.

    Raises :class:`ConfigError` with the file, key and problem for any bad input.
    """
    p = resolve_config_path(path)
    src = str(p)
    if not p.exists():
        avail = ", ".join(shipped_configs())
        raise ConfigError(src, "", f"no such config file (shipped configs: {avail})")
    try:
        with open(p, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(src, "", f"not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(src, "", f"cannot read: {exc.strerror}") from None
    return config_from_dict(data, src)
