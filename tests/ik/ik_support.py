"""Helpers shared by the IK tests (tests/ik)."""

import dataclasses

import numpy as np

import assemblers as A
from assemblers.geometry.api import pose_to_transform, transform_to_pose
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


def eliminated(asm, T, legs=A.leg_lengths):
    """The IK of the tool target ``T`` with the last platform eliminated, in NumPy, for the
    independent SLSQP reference solves: ``full(z)``, the stack pose (6N,) whose first N-1
    platforms are at ``z`` (6(N-1),) and whose last one closes the chain to ``T``; and
    ``cons(z)``, every limit as ``g >= 0`` (leg lengths by ``legs(asm, Q)``, joint angles by the
    public API)."""
    N = asm.n_platforms
    tool_inv = np.linalg.inv(asm.T_tool)

    def full(z):
        Tb = asm.T_mount.copy()
        for i in range(N - 1):
            Tb = Tb @ pose_to_transform(z[6 * i: 6 * i + 6]) @ asm.T_interfaces[i]
        return np.concatenate([z, transform_to_pose(np.linalg.inv(Tb) @ T @ tool_inv)])

    def cons(z):
        Q = full(z)
        L = legs(asm, Q)
        return np.concatenate([(L - asm.leg_min[:, None]).ravel(),
                               (asm.leg_max[:, None] - L).ravel(),
                               (asm.max_joint_angle[:, None, None] - A.joint_angles(asm, Q)).ravel()])

    return full, cons


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
