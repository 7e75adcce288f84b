"""How the Assembler is drawn: the :class:`Style`, the colours and the shapes of the parts.

Pure geometry and colour (no PyBullet): the plates' outlines and prism meshes, the two parts of
every leg, and one hue per platform (plates saturated, housings a darker shade of the same hue,
rods and joints grey), so platforms are told apart at a glance.  :func:`value_colors` maps a
per-leg quantity (N, 6) onto a colormap for :meth:`sims.viz.scene.AssemblerScene.set_leg_colors`.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np


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
    """(M, 2) points -> (H, 2) hull vertices, counter-clockwise (SciPy's Qhull; fewer than three
    points, or collinear ones, are returned as given, without duplicates)."""
    from scipy.spatial import ConvexHull, QhullError

    pts = np.unique(np.asarray(pts, dtype=np.float64).reshape(-1, 2), axis=0)
    if len(pts) < 3:
        return pts
    try:
        return pts[ConvexHull(pts).vertices]  # 2-D: counter-clockwise
    except QhullError:  # all on one line
        return pts


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


def value_colors(values, lo: float | None = None, hi: float | None = None,
                 cmap: str = "viridis") -> np.ndarray:
    """RGBA colours (..., 4) of ``values`` (any shape, e.g. (N, 6) leg forces in N) on the
    matplotlib colormap ``cmap``, ``lo`` .. ``hi`` (default: the values' range) mapped onto
    its ends; non-finite values are grey."""
    from matplotlib import colormaps

    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    lo = float(np.min(v[finite])) if lo is None and finite.any() else (lo or 0.0)
    hi = float(np.max(v[finite])) if hi is None and finite.any() else (hi or 1.0)
    x = np.clip((v - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.full(v.shape, 0.5)
    rgba = colormaps[cmap](np.where(finite, x, 0.0))
    rgba[~finite] = (0.5, 0.5, 0.5, 1.0)
    return rgba
