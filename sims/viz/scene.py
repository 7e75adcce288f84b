"""The Assembler as a PyBullet scene, posed from the kinematic model (no dynamics).

Every body is placed from the frames of :func:`assemblers.kinematics.api.stack_frames` for a
stack pose ``Q`` (docs/conventions.md):

* plates: platform i's base plate at ``T_world_base_i`` and top plate at ``T_world_top_i``; the
  body frame *is* the plate frame (joints of that plate at their configured coordinates), so
  ``p.getBasePositionAndOrientation(plate)`` returns the model's frame;
* legs: two parts, a thick cylinder (the actuator housing) starting at the base joint and a thin rod
  ending at the top joint, both along the world-frame leg vector ``top joint - base joint``;
* joints: small spheres at the 12 joints of every platform;
* the tool: a small sphere whose body frame is ``T_world_tool``, on a stem from the last top plate;
* an optional target marker: RGB axes (x red, y green, z blue) at ``T_target``.

Colours and shapes come from :mod:`.style`; :meth:`AssemblerScene.set_leg_colors` recolours the
legs one by one (e.g. by load, :func:`.style.value_colors`).  Headless rendering uses
``p.DIRECT`` with ``ER_TINY_RENDERER`` (:meth:`AssemblerScene.render`).  PyBullet is built in
double precision: positions and quaternions set with ``resetBasePositionAndOrientation`` read
back bit-identical or within a few 1e-17 (tested to 1e-12).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

from assemblers.geometry.api import matrix_to_quaternion, quaternion_to_matrix
from assemblers.model import Assembler

from .camera import Camera, frame_points
from .client import pybullet, quiet_stdout
from .style import (
    AXIS_COLORS,
    GREY_JOINT,
    GREY_ROD,
    TOOL_COLOR,
    Style,
    housing_colors,
    leg_parts,
    plate_outline,
    plate_slab,
    platform_colors,
    prism_mesh,
)

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
    """Frames of the stack for ``Q`` (6N,): those of :func:`assemblers.kinematics.api.stack_frames`
    (``T_mount @ T(q_1) @ T_iface_1 @ ... @ T_tool``), and every joint put into the world."""
    from assemblers.kinematics.api import kernel_arrays, stack_frames

    T_base, T_top, T_tool = stack_frames(asm, Q)
    arrs = kernel_arrays(asm)
    bj = np.einsum("nij,nkj->nki", T_base[:, :3, :3], arrs.b) + T_base[:, None, :3, 3]
    tj = np.einsum("nij,nkj->nki", T_top[:, :3, :3], arrs.t) + T_top[:, None, :3, 3]
    return StackPose(T_base, T_top, T_tool, bj, tj)


def z_to_vector_quaternion(u) -> np.ndarray:
    """(..., 4) quaternions (x, y, z, w) of the shortest rotations taking the z axis onto ``u``
    (..., 3) (normalized here; antiparallel: half a turn about x)."""
    u = np.asarray(u, dtype=np.float64)
    u = u / np.linalg.norm(u, axis=-1, keepdims=True)
    q = np.stack([-u[..., 1], u[..., 0], np.zeros(u.shape[:-1]), 1.0 + u[..., 2]], axis=-1)
    anti = u[..., 2] < -1.0 + 1e-12
    q = np.where(anti[..., None], np.array([1.0, 0.0, 0.0, 0.0]), q)  # (z x u, 1 + z.u)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


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
            with quiet_stdout():
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
        """Place every body for stack pose ``Q`` (6N,) (m, rad; docs/conventions.md order);
        ``T_target``: (4, 4) world_from_target to mark with RGB axes, or None to hide the
        marker.  Returns the :class:`StackPose` used."""
        from assemblers.kinematics.api import as_array

        n = self.asm.n_platforms
        Q = as_array(Q, "Q", (6 * n,), batch=False)
        sp = stack_pose(self.asm, Q)
        ids, st = self.ids, self.style
        q_base = matrix_to_quaternion(sp.T_base[:, :3, :3])  # (N, 4)
        q_top = matrix_to_quaternion(sp.T_top[:, :3, :3])
        legs = sp.top_joints - sp.base_joints  # (N, 6, 3) world
        u = legs / np.linalg.norm(legs, axis=-1, keepdims=True)
        q_leg = z_to_vector_quaternion(u)
        for i in range(n):
            self._place(ids.plates[i, 0], sp.T_base[i, :3, 3], q_base[i])
            self._place(ids.plates[i, 1], sp.T_top[i, :3, 3], q_top[i])
            parts = self._parts[i]
            for k in range(6):
                a, b = sp.base_joints[i, k], sp.top_joints[i, k]
                self._place(ids.housings[i, k], a + 0.5 * parts.housing * u[i, k], q_leg[i, k])
                self._place(ids.rods[i, k], b - 0.5 * parts.rod * u[i, k], q_leg[i, k])
                self._place(ids.joints[i, 0, k], a, (0, 0, 0, 1))
                self._place(ids.joints[i, 1, k], b, (0, 0, 0, 1))
            if i < n - 1 and ids.spacers[i] >= 0:
                p0 = sp.T_top[i][:3, 3]
                p1 = sp.T_base[i + 1][:3, 3]
                self._place(ids.spacers[i], 0.5 * (p0 + p1), z_to_vector_quaternion(p1 - p0))
        if ids.stem >= 0:
            p0, p1 = sp.T_top[-1][:3, 3], sp.T_tool[:3, 3]
            v = (p1 - p0) / np.linalg.norm(p1 - p0)
            p0 = p0 + st.plate_thickness * v
            self._place(ids.stem, 0.5 * (p0 + p1), z_to_vector_quaternion(v))
        self._place_T(ids.tool, sp.T_tool)
        self.set_target(T_target)
        self.Q = Q
        self.pose = sp
        return sp

    def set_leg_colors(self, rgba=None) -> None:
        """Colour every leg (housing and rod): ``rgba`` (N, 6, 4) or (N, 6, 3) in 0..1, e.g.
        :func:`.style.value_colors` of the leg forces; None restores the style's colours
        (housings in the platform's dark hue, rods grey)."""
        n = self.asm.n_platforms
        if rgba is None:
            house = np.repeat(housing_colors(n)[:, None, :], 6, axis=1)
            rod = np.broadcast_to(np.asarray(GREY_ROD), (n, 6, 4))
        else:
            c = np.asarray(rgba, dtype=np.float64)
            if c.shape not in ((n, 6, 3), (n, 6, 4)) or not np.isfinite(c).all():
                raise ValueError(f"leg colours: expected finite (N, 6, 3|4) = ({n}, 6, 3|4), "
                                 f"got {c.shape}")
            if c.shape[-1] == 3:
                c = np.concatenate([c, np.ones((n, 6, 1))], axis=-1)
            house = rod = np.clip(c, 0.0, 1.0)
        for i in range(n):
            for k in range(6):
                for body, col in ((self.ids.housings[i, k], house[i, k]),
                                  (self.ids.rods[i, k], rod[i, k])):
                    self.pb.changeVisualShape(int(body), -1, rgbaColor=[float(x) for x in col],
                                              physicsClientId=self.cid)

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
        quats = z_to_vector_quaternion(T[:3, :3].T)  # the axes (columns) as cylinder z
        for axis, body in enumerate(self.ids.target):
            self._place(body, T[:3, 3] + 0.5 * L * T[:3, axis], quats[axis])
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
