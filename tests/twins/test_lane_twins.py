"""The Monte Carlo's lane twins (sims.robustness.lanes) against the JAX reference.

The Monte Carlo evaluates its samples in blocks of 64 lanes with its own, vectorizable copies of
two quantities (why: sims/robustness/lanes.py, measured): the stack forward kinematics
(``forward_lanes``, with ``rpy_to_matrix_near``: the perturbed angles' trigonometry by the
addition theorems) and the error twist (``twist_between_lanes``, the small-angle log).  Like the
other twins they are checked here against the reference, for several lane counts, nominal poses
near home and near the edges of the workspace, and perturbations from zero to the edge of each
twin's range; outside that range a twin must flag the lane for the scalar kernels.
"""

import numpy as np
import pytest
from backends import reference
from hypothesis import given
from hypothesis import strategies as st
from test_twins import STACKS, WORKSPACE, close, seeds, stack_poses, transforms, twin

import assemblers as A
from assemblers.geometry import api as geo_np
from assemblers.kinematics import api as kin_api
from sims.robustness import lanes as L

LANES = [1, 5, L.KB]  # lanes in use in a block (the others hold zeros)
#: size of the pose change around the nominal pose: (m, rad); "edge" is the polynomials' range
CHANGES = {"zero": (0.0, 0.0), "tiny": (1e-9, 1e-9), "mc": (3e-4, 3e-4),
           "edge": (1e-2, L.POLY_MAX)}


def forward_lanes(asm, Q0, dQ):
    """``forward_lanes`` at nominal ``Q0`` (6N,) for the changes ``dQ`` (B, 6N), B <= KB:
    returns (world_from_tool (B, 4, 4), big (B,) bool)."""
    a = kin_api.kernel_arrays(asm)
    n, B = asm.n_platforms, dQ.shape[0]
    Q0 = np.ascontiguousarray(Q0)
    ang = Q0.reshape(n, 6)[:, 3:]
    trig = np.ascontiguousarray(np.stack([np.cos(ang), np.sin(ang)], axis=-1).reshape(n, 6))
    Z = np.zeros((6 * n, L.KB))
    Z[:, :B] = dQ.T
    A_rows, big = np.empty(12 * L.KB), np.empty(L.KB, dtype=np.uint8)
    L.forward_lanes(a.T_mount, a.T_after, Q0, trig, np.ones(6 * n), Z.ravel(), 0, A_rows, big)
    T = np.zeros((B, 4, 4))
    T[:, :3, :] = A_rows.reshape(3, 4, L.KB)[:, :, :B].transpose(2, 0, 1)
    T[:, 3, 3] = 1.0
    return T, big[:B].astype(bool)


def twist_lanes(T_nom, T):
    """``twist_between_lanes`` of ``T`` (B, 4, 4), B <= KB, against ``T_nom`` (4, 4): returns
    (twists (B, 6), big (B,) bool)."""
    B = T.shape[0]
    A_rows = np.zeros((3, 4, L.KB))
    A_rows[:, :, :B] = T[:, :3, :].transpose(1, 2, 0)
    E, big = np.empty(6 * L.KB), np.zeros(L.KB, dtype=np.uint8)
    L.twist_between_lanes(A_rows.ravel(), np.ascontiguousarray(T_nom), E, big)
    return E.reshape(6, L.KB)[:, :B].T, big[:B].astype(bool)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("lanes", LANES, ids=lambda b: f"lanes{b}")
@twin
@given(seeds, st.sampled_from(list(WORKSPACE)), st.sampled_from(list(CHANGES)))
def test_forward_lanes(stack, lanes, seed, regime, change):
    """Stack FK of ``Q0 + dQ`` on the lanes equals the JAX reference to rounding, for angle
    changes up to the polynomials' range (never flagged), at poses near home and near the
    edges of the workspace."""
    asm = A.load_config(stack)
    rng = np.random.default_rng(seed)
    Q0 = stack_poses(asm, rng, (), regime)
    dp, dr = CHANGES[change]
    lim = np.tile([dp] * 3 + [dr] * 3, asm.n_platforms)
    dQ = rng.uniform(-lim, lim, size=(lanes, 6 * asm.n_platforms))
    got, big = forward_lanes(asm, Q0, dQ)
    assert not big.any()
    want = reference("kinematics", "forward")(asm, Q0 + dQ)
    close(got, want, 1e-14 * max(1.0, float(np.abs(want).max())))


@pytest.mark.parametrize("stack", ["trio"])
@twin
@given(seeds)
def test_forward_lanes_flags_angles_beyond_the_polynomials(stack, seed):
    """A lane whose angle change exceeds ``POLY_MAX`` is flagged (its value is then not used),
    its neighbours are not."""
    asm = A.load_config(stack)
    rng = np.random.default_rng(seed)
    Q0 = stack_poses(asm, rng, (), "generic")
    dQ = rng.uniform(-0.1, 0.1, size=(8, 6 * asm.n_platforms))
    dQ[3, 6 * rng.integers(asm.n_platforms) + 3 + rng.integers(3)] = 1.01 * L.POLY_MAX
    _, big = forward_lanes(asm, Q0, dQ)
    np.testing.assert_array_equal(big, np.arange(8) == 3)


#: rotation angle of the perturbation (rad): up to the small-angle branch's edge (s < 0.03)
TWIST_ANGLES = {"zero": 0.0, "tiny": 1e-9, "mc": 1e-3, "edge": 0.0299}


@pytest.mark.parametrize("lanes", LANES, ids=lambda b: f"lanes{b}")
@twin
@given(seeds, st.sampled_from(list(TWIST_ANGLES)))
def test_twist_between_lanes(lanes, seed, regime):
    """The error twist on the lanes equals the reference inside the small-angle branch (never
    flagged there); generic rotations (up to 3 rad) are flagged, every one of them."""
    rng = np.random.default_rng(seed)
    T_nom = transforms(rng, (), "generic")
    axis = rng.normal(size=(lanes, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    angle = rng.uniform(0.0, TWIST_ANGLES[regime], size=(lanes, 1))
    D = np.tile(np.eye(4), (lanes, 1, 1))
    D[:, :3, :3] = geo_np.so3_exp(axis * angle)
    D[:, :3, 3] = rng.normal(scale=1e-3, size=(lanes, 3))
    T = D @ T_nom  # world-frame perturbation of the nominal pose
    got, big = twist_lanes(T_nom, T)
    assert not big.any()
    want = reference("geometry", "twist_between")(np.broadcast_to(T_nom, T.shape), T)
    close(got, want, 2e-15)
    far = np.tile(np.eye(4), (lanes, 1, 1))
    far[:, :3, :3] = geo_np.so3_exp(axis * rng.uniform(0.04, 3.0, size=(lanes, 1)))
    assert twist_lanes(T_nom, far @ T_nom)[1].all()
