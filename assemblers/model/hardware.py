"""The ``[hardware]`` section of a config -> :class:`HardwareConfig` (streaming settings, serial
links and actuator calibrations).  Keys: ``docs/config.md``; the hardware layer's own checks:
``docs/hardware.md``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ._toml import ConfigError, _Table
from .types import ActuatorCalibration, HardwareConfig, PlatformLink, PlatformType, _frozen

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
