"""The camera: PyBullet's yaw / pitch / field of view, framed automatically on a set of points."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .client import pybullet


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
