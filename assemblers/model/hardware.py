"""The ``[hardware]`` section of a config -> :class:`HardwareConfig` (streaming settings, serial
links and actuator calibrations).  Keys: ``docs/config.md``; the hardware layer's own checks:
``docs/hardware.md``.
"""

from __future__ import annotations

import numpy as np

from ._toml import _Table
from .types import ActuatorCalibration, HardwareConfig, PlatformLink, PlatformType, _frozen

_ACTUATOR_DEFAULTS = {"scale": 1.0e5, "offset": 0.0, "sign": 1.0, "max_velocity": 0.05,
                      "max_acceleration": 0.5}


def _calibration(tbl: _Table | None, defaults: dict, plat: PlatformType) -> ActuatorCalibration:
    vals = {}
    for key, dflt in defaults.items():
        if tbl is None:
            vals[key] = np.full(6, dflt)
            continue
        pos = key in ("scale", "max_velocity", "max_acceleration")
        vals[key] = tbl.vector(key, 6, np.full(6, dflt), positive=pos)
    if np.any(np.abs(vals["sign"]) != 1.0):
        raise tbl.error("sign", "must be +1 or -1 for every actuator")
    soft_min = np.full(6, plat.leg_min) if tbl is None else tbl.vector(
        "soft_min", 6, np.full(6, plat.leg_min), positive=True)
    soft_max = np.full(6, plat.leg_max) if tbl is None else tbl.vector(
        "soft_max", 6, np.full(6, plat.leg_max), positive=True)
    if np.any(soft_min < plat.leg_min) or np.any(soft_max > plat.leg_max):
        raise tbl.error("soft_min", f"soft limits must lie inside the stroke [{plat.leg_min}, "
                        f"{plat.leg_max}] of platform type {plat.name!r}")
    if np.any(soft_min >= soft_max):
        raise tbl.error("soft_min", "must be below soft_max for every actuator")
    return ActuatorCalibration(**{k: _frozen(v) for k, v in vals.items()},
                               soft_min=_frozen(soft_min), soft_max=_frozen(soft_max))


def _hardware(tbl: _Table | None, platforms: tuple[PlatformType, ...]) -> HardwareConfig:
    n = len(platforms)
    if tbl is None:
        tbl = _Table({}, "hardware", "<defaults>")
    rate = tbl.number("rate_hz", 100.0, lo=1.0, hi=1000.0)
    ack = tbl.number("ack_timeout_s", 0.05, positive=True)
    retries = tbl.integer("max_retries", 3, lo=0, hi=100)
    heartbeat = tbl.number("heartbeat_s", 0.1, positive=True)
    watchdog = tbl.number("watchdog_s", 0.5, positive=True)
    if heartbeat >= watchdog:
        raise tbl.error("heartbeat_s", f"must be shorter than watchdog_s ({heartbeat} >= {watchdog})")
    act = tbl.table("actuator")
    defaults = dict(_ACTUATOR_DEFAULTS)
    if act is not None:
        for key, d in _ACTUATOR_DEFAULTS.items():
            pos = key in ("scale", "max_velocity", "max_acceleration")
            defaults[key] = act.number(key, d, positive=pos)
        if abs(defaults["sign"]) != 1.0:
            raise act.error("sign", "must be +1 or -1")
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
        else:
            port, baud, addr = None, 115200, i + 1
            cal = _calibration(None, defaults, platforms[i])
        links.append(PlatformLink(port, baud, addr, cal))
    tbl.done()
    return HardwareConfig(rate, ack, retries, heartbeat, watchdog, tuple(links))

