"""Shared set-up of the statics tests: stacks with a mass model, and the rigid bodies of a stack
built independently of assemblers.statics (NumPy, from the forward kinematics' transforms)."""

import dataclasses

import numpy as np

import assemblers as A
from assemblers.geometry.api import pose_to_transform
from assemblers.model import Payload


def poses(asm, k, seed, scale=1.0):
    """Random stack poses inside the strokes (rejection), (k, 6N): home +- 2 cm, +- 0.1 rad per
    platform (times ``scale``)."""
    rng = np.random.default_rng(seed)
    lim = np.tile([0.02, 0.02, 0.02, 0.1, 0.1, 0.1], asm.n_platforms) * scale
    out = []
    while len(out) < k:
        Q = A.home_pose(asm) + rng.uniform(-lim, lim)
        L = A.leg_lengths(asm, Q)
        if np.all(L > asm.leg_min[:, None]) and np.all(L < asm.leg_max[:, None]):
            out.append(Q)
    return np.array(out)


def with_masses(asm, *, top_mass=2.5, leg_mass=0.4, stiffness=3e5, rating=None, payload=1.0,
                gravity=(0.0, 0.0, -9.81), seed=0):
    """``asm`` with a mass model: each platform's top plate a little different (mass, off-centre
    com), legs of ``leg_mass``, a payload off the tool axis, any ``gravity``."""
    rng = np.random.default_rng(seed)
    plats = []
    for p in asm.platforms:
        plats.append(dataclasses.replace(
            p, top_mass=top_mass * rng.uniform(0.7, 1.3), top_com=rng.uniform(-0.02, 0.02, 3),
            leg_mass=leg_mass * rng.uniform(0.7, 1.3), leg_stiffness=stiffness,
            max_leg_force=rating))
    pay = None if payload is None else Payload(mass=payload, com=np.array([0.02, -0.01, 0.03]))
    return dataclasses.replace(asm, platforms=tuple(plats), payload=pay,
                               gravity=np.array(gravity, dtype=np.float64))


def frames(asm, Q):
    """World frames by plain matrix products: (bases (N, 4, 4), tops (N, 4, 4), T_tool)."""
    T = np.array(asm.T_mount)
    after = list(asm.T_interfaces.reshape(-1, 4, 4)) + [asm.T_tool]
    bases, tops = [], []
    for i, q in enumerate(np.asarray(Q).reshape(-1, 6)):
        bases.append(T)
        top = T @ pose_to_transform(q)
        tops.append(top)
        T = top @ after[i]
    return np.array(bases), np.array(tops), T


def point(T, x):
    return T[:3, :3] @ np.asarray(x) + T[:3, 3]


def bodies(asm, Q):
    """Per rigid body j (top plate j with what is fixed to it): its point masses ``[(kg, x (3,)
    world)]`` and the joints ``alpha_j``, ``beta_j`` (6, 3) (top and base joints of platform j)
    and ``beta_{j+1}`` (6, 3) (base joints of platform j+1, or None), world frame."""
    bases, tops, T_tool = frames(asm, Q)
    n = asm.n_platforms
    out = []
    for j, p in enumerate(asm.platforms):
        alpha = np.array([point(tops[j], x) for x in p.top_joints])
        beta = np.array([point(bases[j], x) for x in p.base_joints])
        masses = [(p.top_mass, point(tops[j], p.top_com))]
        masses += [(p.leg_mass / 2, a) for a in alpha]
        beta_next = None
        if j + 1 < n:
            q = asm.platforms[j + 1]
            beta_next = np.array([point(bases[j + 1], x) for x in q.base_joints])
            masses += [(q.leg_mass / 2, b) for b in beta_next]
        else:
            if asm.payload is not None:
                masses.append((asm.payload.mass, point(T_tool, asm.payload.com)))
        out.append((masses, alpha, beta, beta_next))
    return out, bases, tops, T_tool


def gravity_potential(asm, Q):
    """Potential energy (J) of every mass that moves with the stack, in ``asm.gravity``."""
    bs, _, _, _ = bodies(asm, Q)
    return -sum(m * float(np.dot(asm.gravity, x)) for masses, _, _, _ in bs for m, x in masses)

