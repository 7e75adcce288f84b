"""Helpers shared by the IK kernel tests (test_fastik, test_fastsqp)."""

import dataclasses

import numpy as np

import assemblers as A
from assemblers.kinematics.api import home_pose


def feasible_poses(asm, k, seed):
    """Random feasible stack poses near home (rejection), (k, 6N)."""
    rng = np.random.default_rng(seed)
    lim = np.tile([0.01, 0.01, 0.01, 0.05, 0.05, 0.05], asm.n_platforms)
    out = []
    while len(out) < k:
        Q = home_pose(asm) + rng.uniform(-lim, lim)
        if np.all(A.leg_lengths(asm, Q) >= asm.leg_min[:, None]) and \
                np.all(A.leg_lengths(asm, Q) <= asm.leg_max[:, None]):
            out.append(Q)
    return np.array(out)


def with_pose_bounds(asm):
    """``asm`` with finite pose bounds on some coordinates of every platform (home +- margin)."""
    plats = []
    for p in asm.platforms:
        lo = np.full(6, -np.inf)
        hi = np.full(6, np.inf)
        lo[[0, 4]] = [-0.004, -0.03]
        hi[[2, 5]] = [p.home_height + 0.005, 0.04]
        plats.append(dataclasses.replace(p, pose_lower=lo, pose_upper=hi))
    return dataclasses.replace(asm, platforms=tuple(plats))


def with_loads(asm, seed=0):
    """``asm`` with a mass model (plates of slightly different masses, off-centre), leg masses,
    ratings, stiffnesses and a payload off the tool axis (docs/statics.md)."""
    from assemblers.model import Payload

    rng = np.random.default_rng(seed)
    plats = tuple(dataclasses.replace(
        p, top_mass=2.5 * rng.uniform(0.7, 1.3), top_com=rng.uniform(-0.02, 0.02, 3),
        leg_mass=0.4, max_leg_force=150.0, leg_stiffness=3e5) for p in asm.platforms)
    return dataclasses.replace(asm, platforms=plats,
                               payload=Payload(mass=1.0, com=np.array([0.02, -0.01, 0.03])))
