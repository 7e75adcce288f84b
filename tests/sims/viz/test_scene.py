"""The PyBullet scene (sims.viz.scene) posed from the kinematic model, and headless rendering
of one pose (DIRECT mode only; no display needed)."""

import colorsys

import numpy as np
import pytest

import assemblers as A
from assemblers.geometry.api import matrix_to_quaternion, quaternion_to_matrix
from assemblers.kinematics import reference as K
from sims.viz import scene as S
from sims.viz.camera import Camera
from sims.viz.render import render_pose
from sims.viz.style import Style, leg_parts, platform_hues, value_colors

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def scene(default_asm):
    with S.AssemblerScene(default_asm) as sc:
        yield sc


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_body_poses_equal_kinematic_model(default_asm, scene, near_home, seed):
    """Plates and tool as PyBullet stores them equal the model's frames (JAX stack_frames and
    forward_kinematics) to 1e-12: PyBullet keeps poses in float64."""
    asm = default_asm
    Q = near_home(asm, seed)
    T = A.pose_to_transform(A.tool_pose(asm, Q)) if seed == 2 else None
    scene.set_pose(Q, T)
    T_base, T_top, T_tool = (np.asarray(x) for x in K.stack_frames(A.stack_arrays(asm), Q))
    for i in range(asm.n_platforms):
        np.testing.assert_allclose(scene.body_pose(scene.ids.plates[i, 0]), T_base[i], atol=1e-12)
        np.testing.assert_allclose(scene.body_pose(scene.ids.plates[i, 1]), T_top[i], atol=1e-12)
    np.testing.assert_allclose(scene.body_pose(scene.ids.tool), T_tool, atol=1e-12)
    np.testing.assert_allclose(scene.body_pose(scene.ids.tool), A.forward_kinematics(asm, Q),
                               atol=1e-12)
    # raw read-back of what was set: the position is bit-identical, the quaternion within an ulp
    set_T = scene.pose.T_tool
    pos, quat = scene.pb.getBasePositionAndOrientation(int(scene.ids.tool))
    assert np.array_equal(pos, set_T[:3, 3])
    np.testing.assert_allclose(quat, matrix_to_quaternion(set_T[:3, :3]), atol=2e-16)


def test_legs_span_their_joints(default_asm, scene, near_home):
    """Housing starts at the base joint, rod ends at the top joint, along the leg; joint spheres
    sit on the joints; leg lengths equal the model's."""
    asm = default_asm
    Q = near_home(asm, 7)
    sp = scene.set_pose(Q)
    L = A.leg_lengths(asm, Q)
    for i in range(asm.n_platforms):
        parts = leg_parts(asm.platforms[i].leg_min, asm.platforms[i].leg_max)
        assert parts.housing + parts.rod > asm.platforms[i].leg_max  # overlap over the stroke
        for k in range(6):
            Th = scene.body_pose(scene.ids.housings[i, k])
            Tr = scene.body_pose(scene.ids.rods[i, k])
            a = Th[:3, 3] - 0.5 * parts.housing * Th[:3, 2]
            b = Tr[:3, 3] + 0.5 * parts.rod * Tr[:3, 2]
            np.testing.assert_allclose(a, sp.base_joints[i, k], atol=1e-12)
            np.testing.assert_allclose(b, sp.top_joints[i, k], atol=1e-12)
            assert np.linalg.norm(b - a) == pytest.approx(L[i, k], abs=1e-12)
            np.testing.assert_allclose(scene.body_pose(scene.ids.joints[i, 1, k])[:3, 3],
                                       sp.top_joints[i, k], atol=1e-15)


def test_target_marker_axes(default_asm, scene):
    T = A.pose_to_transform([0.1, -0.05, 1.0, 0.3, -0.2, 0.5])
    scene.set_pose(A.home_pose(default_asm), T)
    L = scene.style.marker_length
    for axis, body in enumerate(scene.ids.target):
        Tb = scene.body_pose(body)
        np.testing.assert_allclose(Tb[:3, 2], T[:3, axis], atol=1e-12)  # cylinder z = the axis
        np.testing.assert_allclose(Tb[:3, 3], T[:3, 3] + 0.5 * L * T[:3, axis], atol=1e-12)


def test_quaternion_helpers():
    rng = np.random.default_rng(3)
    for _ in range(50):
        R = A.pose_to_transform(np.r_[0, 0, 0, rng.uniform(-3, 3, 3)])[:3, :3]
        np.testing.assert_allclose(quaternion_to_matrix(matrix_to_quaternion(R)), R, atol=1e-14)
        u = rng.normal(size=3)
        u /= np.linalg.norm(u)
        np.testing.assert_allclose(quaternion_to_matrix(S.z_to_vector_quaternion(u))[:, 2], u,
                                   atol=1e-14)
    np.testing.assert_allclose(quaternion_to_matrix(S.z_to_vector_quaternion([0, 0, -1]))[:, 2],
                               [0, 0, -1], atol=1e-15)


# ----------------------------------------------------------------------------- rendering


def _hue_mask(img, hue, tol=0.035):
    hsv = np.array([colorsys.rgb_to_hsv(*(px / 255.0)) for px in img.reshape(-1, 3)])
    dh = np.abs((hsv[:, 0] - hue + 0.5) % 1.0 - 0.5)
    return ((dh < tol) & (hsv[:, 1] > 0.35) & (hsv[:, 2] > 0.15)).reshape(img.shape[:2])


def _project(points, view, proj, w, h):
    V = np.array(view).reshape(4, 4).T
    P = np.array(proj).reshape(4, 4).T
    X = P @ V @ np.c_[points, np.ones(len(points))].T
    ndc = X[:2] / X[3]
    return np.c_[(ndc[0] + 1) / 2 * w, (1 - ndc[1]) / 2 * h]


def test_render_shows_the_robot(default_asm, scene, near_home):
    """Against the empty scene (floor only) from the same camera, the robot changes the pixels
    inside its projected bounding box and almost none outside; every platform's hue is there."""
    asm = default_asm
    Q = near_home(asm, 4)
    w, h = 200, 150
    scene.set_pose(Q)
    view, proj = scene.view_projection(w, h)
    cam_points = scene.scene_points()
    img = scene.render(w, h, points=cam_points)
    saved = {b: scene.pb.getBasePositionAndOrientation(b) for b in scene.ids.robot()}
    for b in saved:
        scene.pb.resetBasePositionAndOrientation(b, [0, 0, -1000], [0, 0, 0, 1])
    empty = scene.render(w, h, points=cam_points)
    for b, (p, q) in saved.items():
        scene.pb.resetBasePositionAndOrientation(b, p, q)
    assert img.shape == (h, w, 3) and img.dtype == np.uint8
    diff = np.abs(img.astype(int) - empty.astype(int)).sum(axis=2) > 30
    uv = _project(cam_points, view, proj, w, h)
    (u0, v0), (u1, v1) = uv.min(0) - 3, uv.max(0) + 3
    assert 0 <= u0 and u1 <= w and 0 <= v0 and v1 <= h  # auto-framing keeps it all in view
    inside = np.zeros_like(diff)
    inside[int(v0):int(np.ceil(v1)), int(u0):int(np.ceil(u1))] = True
    assert diff[inside].mean() > 0.2  # the robot covers a good part of its box
    # outside the box only the shadow may differ
    assert diff[~inside].sum() < 0.15 * diff[inside].sum()
    for hue in platform_hues(asm.n_platforms):
        assert _hue_mask(img, hue).sum() > 40, f"platform hue {hue:.2f} missing"
        assert _hue_mask(empty, hue).sum() == 0


def test_render_pose_api_and_camera(default_asm):
    Q = A.home_pose(default_asm)
    a = render_pose(default_asm, Q, width=96, height=72)
    b = render_pose(default_asm, Q, width=96, height=72, camera=Camera(yaw_deg=130))
    c = render_pose(default_asm, Q, width=96, height=72,
                    style=Style(plate="round", floor=False))
    assert a.shape == (72, 96, 3) and not np.array_equal(a, b) and not np.array_equal(a, c)
    with pytest.raises(A.InputError, match="width"):
        render_pose(default_asm, Q, width=4, height=72)


def test_leg_colors(default_asm, scene):
    """Per-leg colours (e.g. by load): every housing and rod takes its own colour, the render
    changes, and None restores the style's colours."""
    n = default_asm.n_platforms
    scene.set_pose(A.home_pose(default_asm))
    before = scene.render(120, 90)
    forces = np.arange(6 * n, dtype=float).reshape(n, 6)
    rgba = value_colors(forces, cmap="coolwarm")
    scene.set_leg_colors(rgba)

    def color(body):
        return np.array(scene.pb.getVisualShapeData(int(body), physicsClientId=scene.cid)[0][7])

    for i in range(n):
        for k in range(6):
            np.testing.assert_allclose(color(scene.ids.housings[i, k]), rgba[i, k], atol=1e-6)
            np.testing.assert_allclose(color(scene.ids.rods[i, k]), rgba[i, k], atol=1e-6)
    assert not np.allclose(rgba[0, 0], rgba[-1, -1])  # the colormap's two ends
    colored = scene.render(120, 90)
    assert np.abs(colored.astype(int) - before.astype(int)).sum() > 0
    scene.set_leg_colors(None)
    np.testing.assert_array_equal(scene.render(120, 90), before)
    with pytest.raises(ValueError, match="leg colours"):
        scene.set_leg_colors(np.zeros((n, 5, 4)))
