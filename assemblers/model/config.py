"""Load and validate Assembler configs (TOML, read with :mod:`tomllib`) -> :class:`Assembler`.

Every problem raises :class:`ConfigError` with one line naming the file, the key and what is
wrong; unknown keys are errors.  The keys and the limits checked are documented in
``docs/config.md``; frames and units follow ``docs/conventions.md``.
"""

from __future__ import annotations

import math
import os
import tomllib
from pathlib import Path

import numpy as np

from .. import files
from ..geometry.api import pose_to_transform
from ._toml import ConfigError, _short, _Table, _type_name
from .hardware import _hardware
from .types import STANDARD_GRAVITY, Assembler, IKSettings, Payload, PlatformType, Sensitivity, _frozen

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
DEFAULT_CONFIG = "assembler"

# Physical limits (docs/config.md, "Limits").  They keep every number far from where float64
# arithmetic breaks down (1e300 squared is inf) and out of shapes no build can have.
#: Most platforms in a stack: compile time and the IK's dense 6(N-1)-variable problems grow
#: past minutes beyond this (a 32-platform solve takes ~20 s on 2 cores).
MAX_PLATFORMS = 32
#: Largest length anywhere (joint coordinates, radii, strokes, offsets, pose bounds), m.
MAX_LENGTH_M = 100.0
#: Shortest leg (leg_min) and smallest stroke (leg_max - leg_min), m.
MIN_LEG_M = 1e-3
MIN_STROKE_M = 1e-4
#: Smallest spread of a plate's joints (RMS distance from their centroid), m.
MIN_PLATE_M = 1e-3
#: Largest rotation in a transform (rpy of mount, interfaces, tool), rad.
MAX_ANGLE_RAD = 2 * math.pi
#: Sensitivity weights (length_scale m, sigmas m or rad).
WEIGHT_RANGE = (1e-12, 1e3)
#: A platform whose leg Jacobian at home has a condition number above this (translations in m,
#: rotations scaled by the plate size) cannot hold its top plate: rejected as singular.
MAX_HOME_CONDITION = 1e6
#: Masses (top_mass, leg_mass, payload mass), kg: a ten-tonne plate is beyond any hexapod stack.
MAX_MASS_KG = 1e4
#: Actuator rating max_leg_force, N: a milli-newton (a rating below cannot hold any plate) to
#: 10 MN (the largest hydraulic hexapods carry a few MN).
LEG_FORCE_RANGE = (1e-3, 1e7)
#: Axial leg stiffness, N/m: a rubber band to a solid steel bar.
LEG_STIFFNESS_RANGE = (1.0, 1e12)
#: Largest gravity (its norm), m/s^2: about 10 g (a centrifuge test, not a planet).
MAX_GRAVITY = 100.0
#: Largest [ik] stroke_margin: a margin of half the stroke at both ends leaves no stroke.
MAX_STROKE_MARGIN = 0.45
#: ``leg_scale`` (geometric per commanded length): a calibration corrects parts per thousand;
#: beyond this range it describes another actuator (or a unit mistake).
LEG_SCALE_RANGE = (0.5, 2.0)

_PARAMETRIC = ("base_radius", "top_radius", "base_pair_angle_deg", "top_pair_angle_deg")
_EXPLICIT = ("base_joints", "top_joints")

__all__ = [
    "CONFIG_DIR", "DEFAULT_CONFIG", "MAX_PLATFORMS", "ConfigError", "config_from_dict",
    "default_home_height", "load_config", "parametric_joints", "parametric_layout",
    "resolve_config_path", "shipped_configs", "transform_from_xyz_rpy",
]


def transform_from_xyz_rpy(xyz, rpy) -> np.ndarray:
    """``xyz``: (3,) m, ``rpy``: (3,) rad -> (4, 4) transform with R = Rz(yaw) Ry(pitch) Rx(roll)."""
    return pose_to_transform(np.concatenate([np.asarray(xyz, float), np.asarray(rpy, float)]))


def parametric_joints(radius: float, angles_rad: np.ndarray) -> np.ndarray:
    """(6,) angles (rad) on a circle of ``radius`` (m) -> (6, 3) joints at z = 0."""
    return np.stack([radius * np.cos(angles_rad), radius * np.sin(angles_rad), np.zeros(6)], 1)


def parametric_layout(base_radius, top_radius, base_pair_angle_deg, top_pair_angle_deg):
    """The parametric layout (docs/config.md) -> (base_joints (6, 3), top_joints (6, 3)), m,
    each in its plate's frame."""
    k = np.arange(6)
    s = np.where(k % 2 == 0, -1.0, 1.0)
    group = np.deg2rad(120.0) * (k // 2)
    a_base = group + s * np.deg2rad(base_pair_angle_deg) / 2.0
    a_top = group + s * (np.deg2rad(60.0) - np.deg2rad(top_pair_angle_deg) / 2.0)
    return parametric_joints(base_radius, a_base), parametric_joints(top_radius, a_top)


def default_home_height(base_joints, top_joints, leg_min, leg_max, leg_offset=None,
                        leg_scale=None) -> float:
    """The default home z (docs/config.md): mean over legs of ``sqrt(m^2 - |t_xy - b_xy|^2) -
    (t_z - b_z)`` with ``m`` the mid-stroke (geometric: ``leg_scale * mid + leg_offset`` per leg
    when given); NaN when a leg at mid-stroke cannot span its horizontal offset."""
    m = 0.5 * (leg_min + leg_max)
    if leg_offset is not None and (np.any(leg_offset != 0.0) or np.any(leg_scale != 1.0)):
        m = np.asarray(leg_scale) * m + np.asarray(leg_offset)
    dxy2 = np.sum((top_joints[:, :2] - base_joints[:, :2]) ** 2, axis=1)
    if np.any(dxy2 >= m * m):
        return float("nan")
    return float(np.mean(np.sqrt(m * m - dxy2) - (top_joints[:, 2] - base_joints[:, 2])))


def _transform(tbl: _Table, name: str) -> np.ndarray:
    sub = tbl.table(name)
    if sub is None:
        return np.eye(4)
    return _xyz_rpy(sub)


def _xyz_rpy(sub: _Table) -> np.ndarray:
    xyz = sub.vector("xyz", 3, np.zeros(3), lo=-MAX_LENGTH_M, hi=MAX_LENGTH_M)
    rpy = sub.vector("rpy", 3, np.zeros(3), lo=-MAX_ANGLE_RAD, hi=MAX_ANGLE_RAD)
    sub.done()
    return transform_from_xyz_rpy(xyz, rpy)


def _length(tbl: _Table, name: str, default=..., lo: float = 0.0):
    v = tbl.number(name, default, positive=True, hi=MAX_LENGTH_M)
    if v is not None and v < lo:
        raise tbl.error(name, f"must be at least {lo:g} m, got {v}")
    return v


def _platform(tbl: _Table, name: str) -> PlatformType:
    par = [k for k in _PARAMETRIC if tbl.has(k)]
    exp = [k for k in _EXPLICIT if tbl.has(k)]
    if par and exp:
        raise tbl.error(exp[0], f"give either the parametric layout ({', '.join(_PARAMETRIC)}) "
                        "or explicit joints (base_joints, top_joints), not both")
    if exp:
        b = tbl.matrix("base_joints", 6, 3, lo=-MAX_LENGTH_M, hi=MAX_LENGTH_M)
        t = tbl.matrix("top_joints", 6, 3, lo=-MAX_LENGTH_M, hi=MAX_LENGTH_M)
    else:
        if not par:
            raise tbl.error("base_joints", "missing: give base_joints and top_joints (six "
                            "[x, y, z] rows each) or the parametric layout keys "
                            f"({', '.join(_PARAMETRIC)})")
        b, t = parametric_layout(
            _length(tbl, "base_radius", lo=MIN_PLATE_M),
            _length(tbl, "top_radius", lo=MIN_PLATE_M),
            tbl.number("base_pair_angle_deg", lo=0.0, hi=119.0),
            tbl.number("top_pair_angle_deg", lo=0.0, hi=119.0),
        )
    for key, joints in (("base_joints", b), ("top_joints", t)):
        spread = float(np.sqrt(np.mean(np.sum((joints - joints.mean(0)) ** 2, axis=1))))
        if spread < MIN_PLATE_M:
            raise tbl.error(key if exp else key.split("_")[0] + "_radius",
                            f"the six joints span {spread:.3g} m (RMS about their centre); a "
                            f"plate needs at least {MIN_PLATE_M:g} m to carry a load")
    leg_min = _length(tbl, "leg_min", lo=MIN_LEG_M)
    leg_max = _length(tbl, "leg_max")
    if leg_min >= leg_max:
        raise tbl.error("leg_min", f"must be less than leg_max ({leg_min} >= {leg_max})")
    if leg_max - leg_min < MIN_STROKE_M:
        raise tbl.error("leg_max", f"the stroke leg_max - leg_min is {leg_max - leg_min:.3g} m; "
                        f"at least {MIN_STROKE_M:g} m")
    mja = tbl.number("max_joint_angle_deg", None, lo=0.0, hi=90.0)
    if mja is not None and mja <= 0:
        raise tbl.error("max_joint_angle_deg", f"must be positive, got {mja}")
    offset, scale = _leg_calibration(tbl, leg_min, leg_max)
    home = _length(tbl, "home_height", None)
    if home is None:
        home = default_home_height(b, t, leg_min, leg_max, offset, scale)
        if not math.isfinite(home):
            raise tbl.error("leg_max", "the legs at mid-stroke cannot span the horizontal offset "
                            "between base and top joints: no default home pose (set home_height "
                            "or change the layout)")
    lower = tbl.vector("pose_min", 6, np.full(6, -np.inf), lo=-MAX_LENGTH_M, hi=MAX_LENGTH_M)
    upper = tbl.vector("pose_max", 6, np.full(6, np.inf), lo=-MAX_LENGTH_M, hi=MAX_LENGTH_M)
    bad = np.nonzero(lower >= upper)[0]
    if bad.size:
        raise tbl.error("pose_min", f"component {bad[0]} is not below pose_max "
                        f"({lower[bad[0]]} >= {upper[bad[0]]})")
    masses = _masses(tbl)
    tbl.done()
    _check_home(tbl, b, t, home, leg_min, leg_max, mja, offset, scale)
    home_q = np.array([0, 0, home, 0, 0, 0.0])
    if np.any(home_q < lower) or np.any(home_q > upper):
        raise tbl.error("pose_min", "the home pose lies outside [pose_min, pose_max]")
    return PlatformType(name, _frozen(b), _frozen(t), leg_min, leg_max,
                        None if mja is None else math.radians(mja), home,
                        _frozen(lower), _frozen(upper), _frozen(offset), _frozen(scale), **masses)



def _masses(tbl: _Table) -> dict:
    """The mass model and actuator keys of a platform type (docs/config.md, docs/statics.md)."""
    f_lo, f_hi = LEG_FORCE_RANGE
    k_lo, k_hi = LEG_STIFFNESS_RANGE
    return {
        "top_mass": tbl.number("top_mass", 0.0, nonneg=True, hi=MAX_MASS_KG),
        "top_com": _frozen(tbl.vector("top_com", 3, np.zeros(3), lo=-MAX_LENGTH_M,
                                      hi=MAX_LENGTH_M)),
        "leg_mass": tbl.number("leg_mass", 0.0, nonneg=True, hi=MAX_MASS_KG),
        "max_leg_force": tbl.number("max_leg_force", None, lo=f_lo, hi=f_hi),
        "leg_stiffness": tbl.number("leg_stiffness", None, lo=k_lo, hi=k_hi),
    }


def _gravity(stbl: _Table) -> np.ndarray:
    g = stbl.vector("gravity", 3, np.array(STANDARD_GRAVITY), lo=-MAX_GRAVITY, hi=MAX_GRAVITY)
    if np.linalg.norm(g) > MAX_GRAVITY:
        raise stbl.error("gravity", f"|gravity| is {np.linalg.norm(g):.4g} m/s^2; at most "
                         f"{MAX_GRAVITY:g}")
    return _frozen(g)


def _payload(stbl: _Table) -> Payload | None:
    sub = stbl.table("payload")
    if sub is None:
        return None
    mass = sub.number("mass", nonneg=True, hi=MAX_MASS_KG)
    com = sub.vector("com", 3, np.zeros(3), lo=-MAX_LENGTH_M, hi=MAX_LENGTH_M)
    sub.done()
    return Payload(mass=mass, com=_frozen(com))


def _ik(tbl: _Table | None, platforms) -> IKSettings:
    """The ``[ik]`` table; the home pose must keep its legs inside the margin."""
    if tbl is None:
        return IKSettings()
    margin = tbl.number("stroke_margin", 0.0, nonneg=True, hi=MAX_STROKE_MARGIN)
    tbl.done()
    for i, p in enumerate(platforms):
        geometric = np.linalg.norm(np.array([0.0, 0.0, p.home_height]) + p.top_joints
                                   - p.base_joints, axis=1)
        legs = (geometric - p.leg_offset) / p.leg_scale  # commanded: what the stroke bounds
        lo = p.leg_min + margin * (p.leg_max - p.leg_min)
        hi = p.leg_max - margin * (p.leg_max - p.leg_min)
        bad = np.nonzero((legs < lo - 1e-12) | (legs > hi + 1e-12))[0]
        if bad.size:
            k = int(bad[0])
            raise tbl.error("stroke_margin", f"at the home pose leg {k} of platform {i + 1} "
                            f"({p.name}) is {legs[k]:.6g} m, outside the stroke kept free by "
                            f"the margin [{lo:.6g}, {hi:.6g}]")
    return IKSettings(stroke_margin=margin)


def _leg_calibration(tbl: _Table, leg_min: float, leg_max: float):
    """``leg_offset`` (6,) m and ``leg_scale`` (6,): geometric = scale * commanded + offset
    (docs/calibration.md).  Every leg's geometric stroke must stay a stroke of real legs."""
    offset = tbl.vector("leg_offset", 6, np.zeros(6), lo=-MAX_LENGTH_M, hi=MAX_LENGTH_M)
    scale = tbl.vector("leg_scale", 6, np.ones(6), lo=LEG_SCALE_RANGE[0], hi=LEG_SCALE_RANGE[1])
    short = scale * leg_min + offset
    if np.any(short < MIN_LEG_M):
        k = int(np.argmin(short))
        raise tbl.error("leg_offset", f"leg {k} would be {short[k]:.6g} m long joint to joint at "
                        f"leg_min (leg_scale * leg_min + leg_offset); at least {MIN_LEG_M:g} m")
    if np.any(scale * leg_max + offset > MAX_LENGTH_M):
        raise tbl.error("leg_offset", f"a leg would be longer than {MAX_LENGTH_M:g} m at leg_max")
    return offset, scale


def _check_home(tbl: _Table, b, t, home, leg_min, leg_max, mja, offset, scale) -> None:
    """The home pose (x = y = 0, no rotation, z = ``home``) must be a working pose: every leg
    in its stroke (commanded lengths) and within the joint-angle limit, and the legs must hold
    the top plate in all six directions (the leg Jacobian is far from singular)."""
    d = np.array([0.0, 0.0, home]) + t - b  # (6, 3) m, legs at home (R = I), base frame
    geometric = np.linalg.norm(d, axis=1)
    legs = (geometric - offset) / scale  # commanded: what the stroke bounds
    out = np.nonzero((legs < leg_min - 1e-12) | (legs > leg_max + 1e-12))[0]
    if out.size:
        k = int(out[0])
        raise tbl.error("home_height" if tbl.has("home_height") else "leg_min",
                        f"at the home pose (z = {home:.6g} m) leg {k} is {legs[k]:.6g} m, outside "
                        f"the stroke [{leg_min}, {leg_max}]")
    u = d / geometric[:, None]
    # at home both plate normals are e_z, so the angle is the same at both ends of a leg
    angle = np.degrees(np.arctan2(np.hypot(u[:, 0], u[:, 1]), u[:, 2]))
    if mja is not None and np.any(angle > mja + 1e-9):
        k = int(np.argmax(angle))
        raise tbl.error("max_joint_angle_deg",
                        f"at the home pose (z = {home:.6g} m) leg {k} makes {angle[k]:.3f} deg "
                        f"with the plate normals, above the limit of {mja} deg (raise the limit "
                        "or change the layout or home_height)")
    # dL/dq at home: rows [u_k, t_k x u_k]; rotations scaled by the plate size so the
    # condition number does not depend on units
    scale = max(float(np.sqrt(np.mean(np.sum(t**2, axis=1)))), MIN_PLATE_M)
    J = np.hstack([u, np.cross(t, u) / scale])
    sv = np.linalg.svd(J, compute_uv=False)
    cond = sv[0] / sv[-1] if sv[-1] > 0 else math.inf
    if not cond <= MAX_HOME_CONDITION:
        raise tbl.error("base_joints" if tbl.has("base_joints") else "base_radius",
                        f"the platform is singular at its home pose (leg Jacobian condition "
                        f"number {cond:.3g}): its legs cannot hold the top plate in every "
                        "direction (coincident, collinear or coplanar-with-the-legs joints?)")


def _sensitivity(tbl: _Table | None) -> Sensitivity:
    if tbl is None:
        return Sensitivity()
    lo, hi = WEIGHT_RANGE
    s = Sensitivity(
        wrt=tbl.string("wrt", "pose", choices=("pose", "legs")),
        length_scale=tbl.number("length_scale", 1.0, lo=lo, hi=hi),
        sigma_translation=tbl.number("sigma_translation", 1.0, positive=True, hi=hi),
        sigma_rotation=tbl.number("sigma_rotation", 1.0, positive=True, hi=hi),
        sigma_leg=tbl.number("sigma_leg", 1.0, positive=True, hi=hi),
    )
    for key in ("sigma_translation", "sigma_rotation", "sigma_leg"):
        if getattr(s, key) < lo:
            raise tbl.error(key, f"must be at least {lo:g}, got {getattr(s, key)}")
    tbl.done()
    return s


def config_from_dict(data: dict, source: str = "<dict>") -> Assembler:
    """Build an :class:`Assembler` from a parsed config (the TOML's dict); ``source`` names it
    in error messages.  Raises :class:`ConfigError` (and nothing else) for any bad content."""
    source = str(source)
    if files.nesting_depth(data) > files.MAX_DEPTH:
        raise ConfigError(source, "", f"nested deeper than {files.MAX_DEPTH} levels")
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
    if len(names) > MAX_PLATFORMS:
        raise stbl.error("platforms", f"{len(names)} platforms; at most {MAX_PLATFORMS} are "
                         "supported")
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
        T_if = [_xyz_rpy(_Table(entry, f"stack.interfaces[{i}]", source))
                for i, entry in enumerate(ifs)]
        T_if = np.array(T_if).reshape(n - 1, 4, 4)
    gravity = _gravity(stbl)
    payload = _payload(stbl)
    stbl.done()
    sens = _sensitivity(top.table("sensitivity"))
    hw = _hardware(top.table("hardware"), platforms)
    ik = _ik(top.table("ik"), platforms)
    top.done()
    return Assembler(name=name, platforms=platforms, T_mount=_frozen(T_mount),
                     T_interfaces=_frozen(T_if), T_tool=_frozen(T_tool), sensitivity=sens,
                     hardware=hw, source=source, description=description, gravity=gravity,
                     payload=payload, ik=ik)


def resolve_config_path(name_or_path: str | os.PathLike | None) -> Path:
    """A path, or the name of a shipped config (``assembler``, ``duo``...) -> its path.

    ``None`` means the default Assembler.
    """
    if name_or_path is None:
        name_or_path = DEFAULT_CONFIG
    p = Path(name_or_path)
    if os.path.lexists(p):
        return p
    shipped = CONFIG_DIR / f"{name_or_path}.toml"
    if p.suffix == "" and os.path.exists(shipped):
        return shipped
    return p


def shipped_configs() -> list[str]:
    """Names of the configs shipped in ``configs/``."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


def load_config(path: str | os.PathLike | None = None) -> Assembler:
    """Read a config file (or a shipped config's name; None = the default) -> :class:`Assembler`.

    Only a regular file of at most 1 MiB is read (a FIFO or a device fails at once); it must be
    UTF-8 TOML nested at most 32 levels.  Raises :class:`ConfigError` with the file, key and
    problem for any bad input.
    """
    p = resolve_config_path(path)
    src = str(p)
    try:
        text = files.read_text(p, files.MAX_CONFIG_BYTES)
    except files.FileError as exc:
        if exc.problem == "no such file":
            avail = ", ".join(shipped_configs())
            raise ConfigError(src, "", f"no such config file (shipped configs: {avail})") from None
        raise ConfigError(src, "", exc.problem) from None
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise ConfigError(src, "", f"nested deeper than {files.MAX_DEPTH} levels") from None
    except ValueError as exc:  # TOMLDecodeError, or an integer of more than 4300 digits
        raise ConfigError(src, "", f"not valid TOML: {exc}") from None
    return config_from_dict(data, src)
