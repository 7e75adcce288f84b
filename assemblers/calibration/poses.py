"""Poses a calibration can command: random stack poses inside every limit (stroke with a
margin, joint angles, pose bounds), drawn per platform.

Each platform's limits depend on its own pose alone, so feasible poses are drawn platform by
platform (a box around home, rejection against the limits) and combined; the tool pose does not
constrain a calibration pose.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..kinematics.api import home_pose, joint_angles, leg_lengths
from ..model import Assembler

#: Fraction of each stroke kept free at both ends by default: a calibration moves the true
#: lengths by millimetres, and a planned pose must stay inside the stroke with any of them.
STROKE_MARGIN = 0.02


def feasible(asm: Assembler, Q, margin: float = STROKE_MARGIN) -> np.ndarray:
    """``Q`` (B, 6N) -> (B, N) bool: platform i of row b inside its limits (commanded legs at
    least ``margin`` x stroke from both ends, joint angles, pose bounds)."""
    n = asm.n_platforms
    L = leg_lengths(asm, Q)  # (B, N, 6), commanded
    stroke = (asm.leg_max - asm.leg_min)[:, None]
    ok = np.all((L >= asm.leg_min[:, None] + margin * stroke)
                & (L <= asm.leg_max[:, None] - margin * stroke), axis=2)
    ang = joint_angles(asm, Q).max(axis=(2, 3))  # (B, N)
    ok &= ang <= asm.max_joint_angle[None, :]
    q = Q.reshape(-1, n, 6)
    ok &= np.all((q >= asm.pose_lower.reshape(n, 6)) & (q <= asm.pose_upper.reshape(n, 6)), axis=2)
    return ok


def random_poses(asm: Assembler, count: int, rng: np.random.Generator,
                 margin: float = STROKE_MARGIN, max_draws: int = 200) -> np.ndarray:
    """``count`` stack poses (count, 6N), each platform uniform over the part of a box around
    its home pose that is inside its limits.  The box: +-stroke/2 in x, y, z and +-stroke /
    (2 x plate radius) in each angle (beyond it hardly any pose keeps every leg in its stroke)."""
    n = asm.n_platforms
    home = home_pose(asm).reshape(n, 6)
    pools = [[] for _ in range(n)]
    have = np.zeros(n, dtype=int)
    half = np.empty((n, 6))
    for i, p in enumerate(asm.platforms):
        stroke = p.leg_max - p.leg_min
        radius = max(float(np.sqrt(np.mean(np.sum(p.top_joints[:, :2] ** 2, axis=1)))), 1e-3)
        half[i] = np.array([1.0, 1.0, 1.0, 1 / radius, 1 / radius, 1 / radius]) * stroke / 2
    batch = max(256, 4 * count)
    for _ in range(max_draws):
        if np.all(have >= count):
            break
        Q = (home + rng.uniform(-1.0, 1.0, size=(batch, n, 6)) * half).reshape(batch, 6 * n)
        ok = feasible(asm, Q, margin)
        for i in range(n):
            if have[i] < count:
                pick = Q.reshape(batch, n, 6)[ok[:, i], i]
                pools[i].append(pick)
                have[i] += pick.shape[0]
    if np.any(have < count):
        i = int(np.argmin(have))
        raise InputError(f"platform {i + 1}: found only {have[i]} poses inside its limits "
                         f"(margin {margin:g} of the stroke); the limits leave no workspace")
    return np.concatenate([np.concatenate(pl)[:count] for pl in pools], axis=1)  # (count, 6N)
