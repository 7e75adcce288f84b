"""The Assembler as a PyBullet scene, posed from the kinematic model (no dynamics).

Every body is placed from the kinematic model for a stack pose ``Q`` (SPEC):

* plates: platform i's base plate at ``T_world_base_i`` and top plate at ``T_world_top_i``; the
  body frame *is* the plate frame of the SPEC (joints of that plate at their configured
  coordinates), so ``p.getBasePositionAndOrientation(plate)`` returns the model's frame;
* legs: two parts, a thick cylinder (the actuator housing) starting at the base joint and a thin rod
  ending at the top joint, both along the world-frame leg vector ``top joint - base joint``;
* joints: small spheres at the 12 joints of every platform;
* the tool: a small sphere whose body frame is ``T_world_tool``, on a stem from the last top plate;
* an optional target marker: RGB axes (x red, y green, z blue) at ``T_target``.

Colours: one hue per platform (plates saturated, housings a darker shade of the same hue, rods
and joints grey), so platforms are told apart at a glance.

Headless rendering uses ``p.DIRECT`` with ``ER_TINY_RENDERER`` (:meth:`AssemblerScene.render`).
PyBullet is built in double precision: positions and quaternions set with
``resetBasePositionAndOrientation`` read back bit-identical or within a few 1e-17 (tested to 1e-12).

PyBullet is imported lazily (and its build banner, which it prints on stdout, is swallowed) so the
math core and ``assemblers info`` never load it.
"""

from __future__ import annotations

import colorsys
import contextlib
import math
import os
import sys
from dataclasses import dataclass, field

import numpy as np

from assemblers.model import Assembler
from assemblers.transforms import pose_to_transform

_PB = None


def pybullet():
    """Import pybullet once, swallowing the ``pybullet build time`` banner it prints on stdout."""
    global _PB
    if _PB is None:
        with _quiet_stdout():
            import pybullet as pb
        _PB = pb
    return _PB


@contextlib.contextmanager
def _quiet_stdout():
    """Send file descriptors 1 and 2 (C-level output included) to /dev/null for the block:
    PyBullet prints a build banner (on stderr) and connection chatter we do not want in a CLI."""
    fds = []
    for stream in (sys.stdout, sys.stderr):
        try:
            fds.append(stream.fileno())
        except (AttributeError, OSError, ValueError):  # pytest capture or no real stream
            pass
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = [os.dup(fd) for fd in fds]
    try:
        with open(os.devnull, "w") as null:
            for fd in fds:
                os.dup2(null.fileno(), fd)
            yield
    finally:
        _flush_c_stdio()  # C output may be buffered: flush it while it still goes to /dev/null
        for fd, s in zip(fds, saved):
            os.dup2(s, fd)
            os.close(s)


def _flush_c_stdio() -> None:
    try:
        import ctypes
        import ctypes.util

        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").fflush(None)
    except (OSError, AttributeError, TypeError):
        pass


# ----------------------------------------------------------------------------- kinematic frames


@dataclass(frozen=True)
class StackPose:
    """World frames and joint positions of the whole stack for one pose ``Q``.

    ``T_base``, ``T_top``: (N, 4, 4) world_from_base_i and world_from_top_i; ``T_tool``: (4, 4)
    world_from_tool; ``base_joints``, ``top_joints``: (N, 6, 3) m, every joint in the world frame.
    """

    T_base: np.ndarray
    T_top: np.ndarray
    T_tool: np.ndarray
    base_joints: np.ndarray
    top_joints: np.ndarray

    def points(self) -> np.ndarray:
        """(12N + 1 + 2N, 3) m: every joint, the tool point and the plate origins (for framing)."""
        return np.concatenate([self.base_joints.reshape(-1, 3), self.top_joints.reshape(-1, 3),
                               self.T_tool[None, :3, 3], self.T_base[:, :3, 3], self.T_top[:, :3, 3]])


def stack_pose(asm: Assembler, Q) -> StackPose:
    """Frames of the stack for ``Q`` (6N,) in NumPy float64, the same chain as
    :func:`assemblers.kinematics.stack_frames` (``T_mount @ T(q_1) @ T_iface_1 @ ... @ T_tool``)."""
    n = asm.n_platforms
    Q = np.asarray(Q, dtype=np.float64).reshape(n, 6)
    arrs = asm.arrays
    T_q = pose_to_transform(Q)  # (N, 4, 4)
    A = np.array(arrs.T_mount)
    bases, tops = [], []
    for i in range(n):
        top = A @ T_q[i]
        bases.append(A)
        tops.append(top)
        A = top @ arrs.T_after[i]
    T_base, T_top = np.stack(bases), np.stack(tops)
    bj = np.einsum("nij,nkj->nki", T_base[:, :3, :3], arrs.b) + T_base[:, None, :3, 3]
    tj = np.einsum("nij,nkj->nki", T_top[:, :3, :3], arrs.t) + T_top[:, None, :3, 3]
    return StackPose(T_base, T_top, A, bj, tj)


# ----------------------------------------------------------------------------- rotations


def matrix_to_quaternion(R) -> np.ndarray:
    """(3, 3) rotation -> (4,) unit quaternion (x, y, z, w), PyBullet's order (Shepperd's method,
    accurate to machine precision for every rotation)."""
    R = np.asarray(R, dtype=np.float64)
    tr = R[0, 0] + R[1, 1] + R[2, 2]
    if tr > 0.0:
        s = 2.0 * math.sqrt(1.0 + tr)
        q = [(R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s, 0.25 * s]
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        s = 2.0 * math.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2])
        q = [0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s, (R[2, 1] - R[1, 2]) / s]
    elif R[1, 1] > R[2, 2]:
        s = 2.0 * math.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2])
        q = [(R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s, (R[0, 2] - R[2, 0]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1])
        q = [(R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s, (R[1, 0] - R[0, 1]) / s]
    q = np.array(q)
    return q / np.linalg.norm(q)


def quaternion_to_matrix(q) -> np.ndarray:
    """(4,) quaternion (x, y, z, w) -> (3, 3) rotation, float64."""
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def z_to_vector_quaternion(u) -> np.ndarray:
    """(4,) quaternion (x, y, z, w) of the shortest rotation taking the z axis onto unit ``u`` (3,)."""
    u = np.asarray(u, dtype=np.float64)
    u = u / np.linalg.norm(u)
    c = u[2]
    if c < -1.0 + 1e-12:  # antiparallel: half a turn about x
        return np.array([1.0, 0.0, 0.0, 0.0])
    q = np.array([-u[1], u[0], 0.0, 1.0 + c])  # (z x u, 1 + z.u), normalised
    return q / np.linalg.norm(q)


# ----------------------------------------------------------------------------- geometry and style


@dataclass(frozen=True)
class Style:
    """How the Assembler is drawn (all lengths in metres).

    ``plate``: "hull" (the convex hull of the plate's joints, grown by ``plate_margin``: a rounded
    hexagon for the usual paired layout) or "round" (a disc through the farthest joint plus the
    margin).  Base plates lie below their joints, top plates above them, ``plate_thickness`` thick.
    ``housing_radius`` / ``rod_radius``: the two parts of every leg; ``joint_radius``: the joint
    spheres; ``tool_radius``: the tool sphere; ``marker_length``: the target axes.
    """

    plate: str = "hull"
    plate_thickness: float = 0.008
    plate_margin: float = 0.02
    joint_radius: float = 0.011
    housing_radius: float = 0.011
    rod_radius: float = 0.0055
    tool_radius: float = 0.014
    stem_radius: float = 0.006
    marker_length: float = 0.09
    marker_radius: float = 0.0035
    floor: bool = True


GREY_ROD = (0.78, 0.78, 0.80, 1.0)
GREY_JOINT = (0.25, 0.25, 0.27, 1.0)
TOOL_COLOR = (0.95, 0.85, 0.10, 1.0)
AXIS_COLORS = ((0.9, 0.1, 0.1, 1.0), (0.1, 0.75, 0.1, 1.0), (0.1, 0.25, 0.95, 1.0))


def platform_hues(n: int) -> np.ndarray:
    """(n,) hues in [0, 1): one per platform, bottom to top, spread over blue..orange..purple
    (avoiding pure red/green/blue, used by the axes markers)."""
    if n == 1:
        return np.array([0.58])
    return (0.58 + 0.72 * np.arange(n) / (n - 1)) % 1.0


def platform_colors(n: int) -> np.ndarray:
    """(n, 4) RGBA plate colours, one saturated hue per platform (see :func:`platform_hues`)."""
    return np.array([(*colorsys.hsv_to_rgb(h, 0.75, 0.92), 1.0) for h in platform_hues(n)])


def housing_colors(n: int) -> np.ndarray:
    """(n, 4) RGBA leg-housing colours: a darker shade of each platform's hue."""
    return np.array([(*colorsys.hsv_to_rgb(h, 0.8, 0.55), 1.0) for h in platform_hues(n)])


def convex_hull_2d(pts) -> np.ndarray:
    """(M, 2) points -> (H, 2) hull vertices, counter-clockwise (Andrew's monotone chain)."""
    pts = sorted({(float(x), float(y)) for x, y in np.asarray(pts)})
    if len(pts) < 3:
        return np.array(pts)

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


def plate_outline(joints, style: Style, n_round: int = 10) -> np.ndarray:
    """(H, 2) m: the plate's outline in its frame's xy plane, counter-clockwise.

    ``joints``: (6, 3) m, the plate's joints in its frame.  "hull": convex hull of discs of radius
    ``plate_margin`` around the joints (a rounded hexagon); "round": a 48-gon through the farthest
    joint plus the margin, centred on the frame origin.
    """
    xy = np.asarray(joints)[:, :2]
    if style.plate == "round":
        r = float(np.max(np.linalg.norm(xy, axis=1))) + style.plate_margin
        a = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        return r * np.stack([np.cos(a), np.sin(a)], 1)
    if style.plate != "hull":
        raise ValueError(f"plate style must be 'hull' or 'round', got {style.plate!r}")
    a = np.linspace(0, 2 * np.pi, 6 * n_round, endpoint=False)
    ring = style.plate_margin * np.stack([np.cos(a), np.sin(a)], 1)
    return convex_hull_2d((xy[:, None, :] + ring[None]).reshape(-1, 2))


def prism_mesh(outline, z0: float, z1: float):
    """A flat-shaded prism over ``outline`` (H, 2), from z0 to z1 (m).

    Returns ``(vertices (V, 3), indices (3F,), normals (V, 3))`` for ``p.createVisualShape``;
    every face has its own vertices so the tiny renderer shades it flat.
    """
    P = np.asarray(outline, dtype=np.float64)
    H = len(P)
    c = P.mean(axis=0)
    verts, normals, idx = [], [], []

    def face(vs, n):
        base = len(verts)
        verts.extend(vs)
        normals.extend([n] * len(vs))
        return base

    # top and bottom: triangle fans around the centroid
    for z, n, flip in ((z1, (0, 0, 1), False), (z0, (0, 0, -1), True)):
        b = face([(c[0], c[1], z)] + [(x, y, z) for x, y in P], n)
        for k in range(H):
            tri = [b, b + 1 + k, b + 1 + (k + 1) % H]
            idx.extend([tri[0], tri[2], tri[1]] if flip else tri)
    for k in range(H):
        p0, p1 = P[k], P[(k + 1) % H]
        d = p1 - p0
        n = np.array([d[1], -d[0], 0.0]) / max(np.hypot(*d), 1e-12)
        b = face([(p0[0], p0[1], z0), (p1[0], p1[1], z0), (p1[0], p1[1], z1), (p0[0], p0[1], z1)],
                 tuple(n))
        idx.extend([b, b + 1, b + 2, b, b + 2, b + 3])
    return np.array(verts), np.array(idx, dtype=np.int64), np.array(normals, dtype=np.float64)


@dataclass(frozen=True)
class LegParts:
    """Lengths (m) of a leg's two parts: ``housing`` from the base joint, ``rod`` from the top
    joint; they overlap for every length in the stroke when ``housing + rod > leg_max``."""

    housing: float
    rod: float


def leg_parts(leg_min: float, leg_max: float) -> LegParts:
    """Part lengths for a stroke [leg_min, leg_max] m: each part at most 0.92 leg_min (so the rod
    never pokes through the base joint) and together 1.1 leg_max where possible."""
    each = min(0.55 * leg_max, 0.92 * leg_min)
    return LegParts(each, each)


def plate_slab(joints, is_top: bool, thickness: float) -> tuple[float, float]:
    """z range (m) of a plate's slab in its frame: below the joints for a base plate, above them
    for a top plate."""
    z = np.asarray(joints)[:, 2]
    return (float(z.max()), float(z.max()) + thickness) if is_top else (
        float(z.min()) - thickness, float(z.min()))


# ----------------------------------------------------------------------------- camera


@dataclass(frozen=True)
class Camera:
    """A PyBullet camera (angles in degrees, as PyBullet takes them).

    ``yaw_deg``: azimuth about the world z axis, ``pitch_deg``: elevation (negative looks down),
    both as in ``p.computeViewMatrixFromYawPitchRoll`` / ``resetDebugVisualizerCamera``;
    ``fov_deg``: vertical field of view; ``target`` (3,) m and ``distance`` m: None frames the
    whole scene automatically (:func:`frame_points`).
    """

    yaw_deg: float = 40.0
    pitch_deg: float = -18.0
    fov_deg: float = 40.0
    target: tuple[float, float, float] | None = None
    distance: float | None = None
    margin: float = 1.08


def _view_rotation(pb, yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """(3, 3) rows: camera right, up, backward (OpenGL) axes in the world frame."""
    V = np.array(pb.computeViewMatrixFromYawPitchRoll([0, 0, 0], 1.0, yaw_deg, pitch_deg, 0.0, 2))
    return V.reshape(4, 4).T[:3, :3]  # PyBullet returns column-major


def frame_points(points, cam: Camera, aspect: float) -> tuple[np.ndarray, float]:
    """Camera target (3,) m and distance m so that every point in ``points`` (M, 3) is in view
    of a pinhole camera with ``cam``'s yaw/pitch/fov and ``aspect`` = width / height, with
    ``cam.margin`` to spare.  Exact for a pinhole: a point at camera-plane offset ``x`` and depth
    offset ``z`` (towards the camera) is inside when ``d >= |x| / tan(fov/2) + z``."""
    pb = pybullet()
    R = _view_rotation(pb, cam.yaw_deg, cam.pitch_deg)
    P = np.asarray(points, dtype=np.float64) @ R.T  # camera axes: right, up, back
    tv = math.tan(math.radians(cam.fov_deg) / 2) / cam.margin
    th = tv * aspect
    lo, hi = P.min(axis=0), P.max(axis=0)
    c = 0.5 * (lo + hi)
    d = max(np.max(np.abs(P[:, 0] - c[0]) / th + (P[:, 2] - c[2])),
            np.max(np.abs(P[:, 1] - c[1]) / tv + (P[:, 2] - c[2])), 1e-3)
    return R.T @ c, float(d)


def scene_points(asm: Assembler, pose: StackPose, style: Style, T_target=None) -> np.ndarray:
    """(M, 3) m, world: the points a camera must see for ``pose``: every joint, the tool, eight
    points on every plate's rim and, when given, the ends of the target marker's axes."""
    pts = [pose.points()]
    r = np.array([float(np.max(np.linalg.norm(p.top_joints[:, :2], axis=1))) + style.plate_margin
                  for p in asm.platforms])
    for T in (pose.T_base, pose.T_top):
        for a in np.linspace(0, 2 * np.pi, 8, endpoint=False):
            off = np.array([np.cos(a), np.sin(a), 0.0])
            pts.append(T[:, :3, 3] + r[:, None] * (T[:, :3, :3] @ off))
    if T_target is not None:
        T_target = np.asarray(T_target, dtype=np.float64)
        pts.append(T_target[None, :3, 3] + style.marker_length * T_target[:3, :3].T)
        pts.append(T_target[None, :3, 3])
    return np.concatenate(pts)


# ----------------------------------------------------------------------------- the scene


@dataclass
class SceneIds:
    """PyBullet body ids.  ``plates``: (N, 2) [base, top]; ``joints``: (N, 2, 6) [base, top];
    ``housings``, ``rods``: (N, 6); ``tool``, ``stem``: ints; ``target``: 3 axis bodies or empty;
    ``spacers``: (N-1,) interface spacers (-1 where none); ``floor``: int or -1."""

    plates: np.ndarray
    joints: np.ndarray
    housings: np.ndarray
    rods: np.ndarray
    tool: int
    stem: int
    spacers: np.ndarray
    floor: int = -1
    target: list = field(default_factory=list)

    def robot(self) -> list[int]:
        """Every body of the robot (plates, legs, joints, spacers, stem, tool), not the floor or
        the target marker."""
        ids = [self.plates, self.joints, self.housings, self.rods, self.spacers,
               np.array([self.stem, self.tool])]
        return [int(b) for a in ids for b in np.ravel(a) if b >= 0]


class AssemblerScene:
    """The Assembler in a PyBullet client, posed kinematically (no dynamics).

    ``asm``: the Assembler; ``client``: an existing PyBullet client id, or None to connect one in
    ``mode`` ("direct", headless; or "gui"); ``style``: :class:`Style`.  Use as a context manager
    or call :meth:`close`.  :meth:`set_pose` places every body for a stack pose ``Q`` (6N,) and an
    optional target ``T_target`` (4, 4); :meth:`render` returns an (H, W, 3) uint8 image.
    """

    def __init__(self, asm: Assembler, client: int | None = None, mode: str = "direct",
                 style: Style | None = None):
        self.pb = pb = pybullet()
        self.asm = asm
        self.style = style or Style()
        self._own = client is None
        if client is None:
            with _quiet_stdout():
                client = pb.connect(pb.GUI if mode == "gui" else pb.DIRECT)
            if client < 0:
                raise RuntimeError(f"could not connect to PyBullet ({mode})")
        self.cid = client
        self.Q = None
        self.T_target = None
        self._build()

    # -- construction
    def _visual(self, shape, color, **kw) -> int:
        return self.pb.createVisualShape(shape, rgbaColor=list(color), physicsClientId=self.cid, **kw)

    def _body(self, visual: int) -> int:
        return self.pb.createMultiBody(baseMass=0.0, baseCollisionShapeIndex=-1,
                                       baseVisualShapeIndex=visual, physicsClientId=self.cid)

    def _plate_visual(self, joints, is_top: bool, color) -> int:
        st = self.style
        z0, z1 = plate_slab(joints, is_top, st.plate_thickness)
        v, idx, nrm = prism_mesh(plate_outline(joints, st), z0, z1)
        return self._visual(self.pb.GEOM_MESH, color, vertices=v.tolist(), indices=idx.tolist(),
                            normals=nrm.tolist())

    def _build(self) -> None:
        pb, asm, st = self.pb, self.asm, self.style
        n = asm.n_platforms
        colors, hcolors = platform_colors(n), housing_colors(n)
        plates = np.full((n, 2), -1, dtype=np.int64)
        joints = np.full((n, 2, 6), -1, dtype=np.int64)
        housings = np.full((n, 6), -1, dtype=np.int64)
        rods = np.full((n, 6), -1, dtype=np.int64)
        self._parts = []
        joint_vis = self._visual(pb.GEOM_SPHERE, GREY_JOINT, radius=st.joint_radius)
        rod_vis_cache: dict = {}
        for i, plat in enumerate(asm.platforms):
            plates[i, 0] = self._body(self._plate_visual(plat.base_joints, False, colors[i]))
            plates[i, 1] = self._body(self._plate_visual(plat.top_joints, True, colors[i]))
            parts = leg_parts(plat.leg_min, plat.leg_max)
            self._parts.append(parts)
            key = (parts.housing, parts.rod, i)
            if key not in rod_vis_cache:
                rod_vis_cache[key] = (
                    self._visual(pb.GEOM_CYLINDER, hcolors[i], radius=st.housing_radius,
                                 length=parts.housing),
                    self._visual(pb.GEOM_CYLINDER, GREY_ROD, radius=st.rod_radius, length=parts.rod))
            hv, rv = rod_vis_cache[key]
            for k in range(6):
                housings[i, k] = self._body(hv)
                rods[i, k] = self._body(rv)
                joints[i, 0, k] = self._body(joint_vis)
                joints[i, 1, k] = self._body(joint_vis)
        # interface spacers: a short post between top plate i and base plate i+1
        spacers = np.full(max(n - 1, 0), -1, dtype=np.int64)
        self._spacer_len = np.zeros(max(n - 1, 0))
        for i in range(n - 1):
            gap = np.linalg.norm(asm.T_interfaces[i][:3, 3])
            if gap > 2 * st.plate_thickness + 1e-4:
                length = gap - 2 * st.plate_thickness
                self._spacer_len[i] = length
                spacers[i] = self._body(self._visual(
                    pb.GEOM_CYLINDER, (0.55, 0.55, 0.58, 1.0), radius=0.35 * self._plate_radius(i),
                    length=length))
        self._stem_len = float(np.linalg.norm(asm.T_tool[:3, 3]))
        stem = -1
        if self._stem_len > st.plate_thickness + 1e-4:
            stem = self._body(self._visual(pb.GEOM_CYLINDER, GREY_ROD, radius=st.stem_radius,
                                           length=self._stem_len - st.plate_thickness))
        tool = self._body(self._visual(pb.GEOM_SPHERE, TOOL_COLOR, radius=st.tool_radius))
        floor = -1
        if st.floor:
            floor = self._make_floor()
        self.ids = SceneIds(plates, joints, housings, rods, tool, stem, spacers, floor)

    def _plate_radius(self, i: int) -> float:
        return float(np.max(np.linalg.norm(self.asm.platforms[i].top_joints[:, :2], axis=1)))

    def _make_floor(self) -> int:
        """A large light-grey checkerboard just below the mount plate (visual only)."""
        pb, st = self.pb, self.style
        z = float(self.asm.T_mount[2, 3]) + float(self.asm.platforms[0].base_joints[:, 2].min()) \
            - st.plate_thickness - 1e-3
        tiles, size = 10, 0.2
        verts, idx, nrm = [], [], []
        # two interleaved meshes (light and dark squares) make the checkerboard
        bodies = []
        for parity, color in ((0, (0.86, 0.86, 0.86, 1.0)), (1, (0.74, 0.74, 0.75, 1.0))):
            verts, idx = [], []
            for a in range(tiles):
                for b in range(tiles):
                    if (a + b) % 2 != parity:
                        continue
                    x0, y0 = (a - tiles / 2) * size, (b - tiles / 2) * size
                    base = len(verts)
                    verts += [(x0, y0, 0), (x0 + size, y0, 0), (x0 + size, y0 + size, 0),
                              (x0, y0 + size, 0)]
                    idx += [base, base + 1, base + 2, base, base + 2, base + 3]
            nrm = [(0, 0, 1)] * len(verts)
            vis = self._visual(pb.GEOM_MESH, color, vertices=verts, indices=idx, normals=nrm)
            body = self._body(vis)
            x, y = float(self.asm.T_mount[0, 3]), float(self.asm.T_mount[1, 3])
            pb.resetBasePositionAndOrientation(body, [x, y, z], [0, 0, 0, 1],
                                               physicsClientId=self.cid)
            bodies.append(body)
        self._floor_bodies = bodies
        return bodies[0]

    def _ensure_target_marker(self) -> None:
        if self.ids.target:
            return
        st, pb = self.style, self.pb
        for c in AXIS_COLORS:
            vis = self._visual(pb.GEOM_CYLINDER, c, radius=st.marker_radius, length=st.marker_length)
            self.ids.target.append(self._body(vis))

    # -- posing
    def _place(self, body: int, pos, quat) -> None:
        self.pb.resetBasePositionAndOrientation(int(body), [float(x) for x in pos],
                                                [float(x) for x in quat], physicsClientId=self.cid)

    def _place_T(self, body: int, T) -> None:
        self._place(body, T[:3, 3], matrix_to_quaternion(T[:3, :3]))

    def set_pose(self, Q, T_target=None) -> StackPose:
        """Place every body for stack pose ``Q`` (6N,) (m, rad; SPEC order); ``T_target``: (4, 4)
        world_from_target to mark with RGB axes, or None to hide the marker.  Returns the
        :class:`StackPose` used."""
        from assemblers.api import as_array

        Q = as_array(Q, "Q", (6 * self.asm.n_platforms,), batch=False)
        sp = stack_pose(self.asm, Q)
        ids, st = self.ids, self.style
        for i in range(self.asm.n_platforms):
            self._place_T(ids.plates[i, 0], sp.T_base[i])
            self._place_T(ids.plates[i, 1], sp.T_top[i])
            parts = self._parts[i]
            for k in range(6):
                a, b = sp.base_joints[i, k], sp.top_joints[i, k]
                u = (b - a) / np.linalg.norm(b - a)
                quat = z_to_vector_quaternion(u)
                self._place(ids.housings[i, k], a + 0.5 * parts.housing * u, quat)
                self._place(ids.rods[i, k], b - 0.5 * parts.rod * u, quat)
                self._place(ids.joints[i, 0, k], a, (0, 0, 0, 1))
                self._place(ids.joints[i, 1, k], b, (0, 0, 0, 1))
            if i < self.asm.n_platforms - 1 and ids.spacers[i] >= 0:
                p0 = sp.T_top[i][:3, 3]
                p1 = sp.T_base[i + 1][:3, 3]
                u = (p1 - p0) / np.linalg.norm(p1 - p0)
                self._place(ids.spacers[i], 0.5 * (p0 + p1), z_to_vector_quaternion(u))
        if ids.stem >= 0:
            p0, p1 = sp.T_top[-1][:3, 3], sp.T_tool[:3, 3]
            u = (p1 - p0) / np.linalg.norm(p1 - p0)
            p0 = p0 + st.plate_thickness * u
            self._place(ids.stem, 0.5 * (p0 + p1), z_to_vector_quaternion(u))
        self._place_T(ids.tool, sp.T_tool)
        self.set_target(T_target)
        self.Q = Q
        self.pose = sp
        return sp

    def set_target(self, T_target) -> None:
        """Mark ``T_target`` (4, 4) world_from_target with RGB axes (None hides the marker)."""
        if T_target is None:
            for b in self.ids.target:
                self._place(b, (0, 0, -1000.0), (0, 0, 0, 1))
            self.T_target = None
            return
        T = np.asarray(T_target, dtype=np.float64)
        self._ensure_target_marker()
        L = self.style.marker_length
        for axis, body in enumerate(self.ids.target):
            u = T[:3, axis]
            self._place(body, T[:3, 3] + 0.5 * L * u, z_to_vector_quaternion(u))
        self.T_target = T

    def body_pose(self, body: int) -> np.ndarray:
        """(4, 4) world_from_body of a body as PyBullet stores it (float64)."""
        pos, quat = self.pb.getBasePositionAndOrientation(int(body), physicsClientId=self.cid)
        T = np.eye(4)
        T[:3, :3] = quaternion_to_matrix(quat)
        T[:3, 3] = pos
        return T

    # -- rendering
    def scene_points(self) -> np.ndarray:
        """(M, 3) m: points that must be in view (joints, plate rims, tool, target marker)."""
        if self.Q is None:
            raise RuntimeError("set_pose() first")
        return scene_points(self.asm, self.pose, self.style, self.T_target)

    def view_projection(self, width: int, height: int, camera: Camera | None = None,
                        points=None) -> tuple[list, list]:
        """PyBullet view and projection matrices for ``camera`` (auto-framed on ``points``
        (M, 3), default :meth:`scene_points`, where the camera's target/distance are None)."""
        pb = self.pb
        cam = camera or Camera()
        target, dist = cam.target, cam.distance
        if target is None or dist is None:
            t_auto, d_auto = frame_points(self.scene_points() if points is None else points, cam,
                                          width / height)
            target = t_auto if target is None else target
            dist = d_auto if dist is None else dist
        view = pb.computeViewMatrixFromYawPitchRoll([float(x) for x in target], float(dist),
                                                    cam.yaw_deg, cam.pitch_deg, 0.0, 2)
        proj = pb.computeProjectionMatrixFOV(cam.fov_deg, width / height, max(0.01, dist / 50),
                                             dist * 20)
        return view, proj

    def render(self, width: int = 640, height: int = 480, camera: Camera | None = None,
               points=None) -> np.ndarray:
        """Render the scene headless with the tiny renderer: (height, width, 3) uint8 RGB."""
        pb = self.pb
        view, proj = self.view_projection(width, height, camera, points)
        _, _, rgba, _, _ = pb.getCameraImage(
            width, height, view, proj, renderer=pb.ER_TINY_RENDERER, shadow=1,
            lightDirection=[0.6, -0.4, 1.0], lightColor=[1, 1, 1], lightDistance=5.0,
            lightAmbientCoeff=0.55, lightDiffuseCoeff=0.5, lightSpecularCoeff=0.08,
            physicsClientId=self.cid)
        img = np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)
        return np.ascontiguousarray(img[:, :, :3])

    # -- lifetime
    def close(self) -> None:
        if self._own and self.cid is not None:
            with contextlib.suppress(Exception):
                self.pb.disconnect(physicsClientId=self.cid)
        self.cid = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
