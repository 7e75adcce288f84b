"""One property suite over every backend of the geometry and the kinematics (tests/twins).

Each quantity (rotations, pose <-> transform, rigid inverse, so3 exp/log, error twist; stack FK,
legs, joint angles, J_Q, J_L) is checked on every backend (:mod:`backends`: Numba kernels,
NumPy/SciPy, the public facade, the threaded and the serial drivers) against the JAX reference,
for several batch shapes, with inputs drawn near the identity, in general position, near pi
rotations and near the edges of the workspace (poses far enough out that legs pass their
strokes).
"""

import numpy as np
import pytest
from backends import over_backends, over_shapes
from hypothesis import given, settings
from hypothesis import strategies as st

import assemblers as A

ROTATIONS = ["zero", "tiny", "small", "generic", "near_pi"]
twin = settings(max_examples=8, deadline=None)


def rotvecs(rng, shape, regime):
    """(*shape, 3) rotation vectors of a regime."""
    axis = rng.normal(size=shape + (3,))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    angle = {"zero": lambda: np.zeros(shape), "tiny": lambda: rng.uniform(0, 1e-8, shape),
             "small": lambda: rng.uniform(1e-7, 1e-3, shape),
             "generic": lambda: rng.uniform(0, 3.0, shape),
             "near_pi": lambda: np.pi - rng.uniform(0, 1e-6, shape)}[regime]()
    return axis * angle[..., None]


def rotations(rng, shape, regime):
    return A.geometry.api.so3_exp(rotvecs(rng, shape, regime))


def poses(rng, shape, regime):
    """(*shape, 6) poses, pitch inside (-1.4, 1.4) rad (away from gimbal lock)."""
    p = rng.normal(scale=0.3, size=shape + (3,))
    if regime in ("zero", "tiny"):
        rpy = rng.uniform(-1e-8, 1e-8, shape + (3,))
    else:
        rpy = rng.uniform([-3.1, -1.4, -3.1], [3.1, 1.4, 3.1], shape + (3,))
    return np.concatenate([p, rpy], axis=-1)


def transforms(rng, shape, regime):
    T = np.zeros(shape + (4, 4))
    T[..., :3, :3] = rotations(rng, shape, regime)
    T[..., :3, 3] = rng.normal(scale=0.5, size=shape + (3,))
    T[..., 3, 3] = 1.0
    return T


def close(a, b, atol):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=atol)


seeds = st.integers(0, 2**32 - 1)


def geometry_twin(name, regimes):
    """A geometry twin test over every batch shape and every backend of ``name``, on drawn seeds
    and rotation regimes (``regimes``)."""

    def wrap(test):
        return over_shapes()(over_backends("geometry", name)(twin(given(
            seeds, st.sampled_from(regimes))(test))))

    return wrap


def rpys(rng, shape, regime):
    """(*shape, 3) roll, pitch, yaw: the angles of :func:`poses`."""
    return poses(rng, shape, regime)[..., 3:]


def same_as_reference(name, draw, atol, regimes=("zero", "generic")):
    """A twin test of ``name``: every backend on ``draw(rng, shape, regime)`` against the JAX
    reference, to ``atol``."""

    @geometry_twin(name, list(regimes))
    def test(backend, ref, shape, seed, regime):
        x = draw(np.random.default_rng(seed), shape, regime)
        close(backend(x), ref(x), atol)

    test.__doc__ = f"{name}: every backend against the JAX reference."
    return test


test_rpy_to_matrix = same_as_reference("rpy_to_matrix", rpys, 1e-15)
test_matrix_to_rpy = same_as_reference(
    "matrix_to_rpy", lambda *draw: A.geometry.api.rpy_to_matrix(rpys(*draw)), 1e-13)
test_angular_basis = same_as_reference("angular_basis", rpys, 1e-15)
test_pose_to_transform = same_as_reference("pose_to_transform", poses, 1e-15)


@geometry_twin("transform_to_pose", ["zero", "generic"])
def test_transform_to_pose_inverts_pose_to_transform(backend, ref, shape, seed, regime):
    q = poses(np.random.default_rng(seed), shape, regime)
    T = A.geometry.api.pose_to_transform(q)
    close(backend(T), ref(T), 1e-13)
    close(backend(T), q, 1e-12)


@geometry_twin("inverse_transform", ROTATIONS)
def test_inverse_transform(backend, ref, shape, seed, regime):
    T = transforms(np.random.default_rng(seed), shape, regime)
    close(backend(T), ref(T), 1e-15)
    close(backend(T) @ T, np.broadcast_to(np.eye(4), T.shape), 1e-14)


test_so3_exp = same_as_reference("so3_exp", rotvecs, 1e-14, ROTATIONS)


@geometry_twin("so3_log", ROTATIONS)
def test_so3_log(backend, ref, shape, seed, regime):
    """The log equals the reference (up to the sign of the axis at pi, where both are right)
    and exp inverts it; near pi the axis is read from the symmetric part in every backend."""
    w = rotvecs(np.random.default_rng(seed), shape, regime)
    R = A.geometry.api.so3_exp(w)
    got, want = backend(R), ref(R)
    if regime == "near_pi":
        sign = np.where(np.sum(got * want, axis=-1, keepdims=True) < 0, -1.0, 1.0)
        close(got * sign, want, 1e-6)
        close(A.geometry.api.so3_exp(got), R, 1e-12)
    else:
        close(got, want, 1e-12)
        close(got, w, 1e-9)


@geometry_twin("twist_between", ["zero", "tiny", "small", "generic"])
def test_twist_between(backend, ref, shape, seed, regime):
    rng = np.random.default_rng(seed)
    T0 = transforms(rng, shape, "generic")
    D = transforms(rng, shape, regime)
    T1 = T0 @ D
    close(backend(T0, T1), ref(T0, T1), 1e-12)


STACKS = ["duo", "trio", "assembler"]
WORKSPACE = {"home": 1e-9, "generic": 1.0, "edge": 2.5}  # scale of the draw around home


def stack_poses(asm, rng, shape, regime):
    N = asm.n_platforms
    lim = np.tile([0.03, 0.03, 0.03, 0.15, 0.15, 0.15], N) * WORKSPACE[regime]
    return A.home_pose(asm) + rng.uniform(-lim, lim, size=shape + (6 * N,))


KIN_TOL = {"forward": 2e-15, "legs": 2e-15, "joint_angles": 1e-13, "jacobian_pose": 2e-14,
           "jacobian_legs": 1e-11}
KIN_SHAPES = [(), (1,), (7,), (2, 3)]


def kinematics_twin(name):
    @pytest.mark.parametrize("stack", STACKS)
    @pytest.mark.parametrize("shape", KIN_SHAPES, ids=lambda s: f"batch{s}")
    @over_backends("kinematics", name)
    @twin
    @given(seeds, st.sampled_from(list(WORKSPACE)))
    def test(backend, ref, shape, stack, seed, regime):
        asm = A.load_config(stack)
        Q = stack_poses(asm, np.random.default_rng(seed), shape, regime)
        want = ref(asm, Q)
        scale = max(1.0, float(np.abs(want).max()))
        close(backend(asm, Q), want, KIN_TOL[name] * scale)

    test.__doc__ = f"{name}: every backend against the JAX reference."
    return test


test_forward_kinematics = kinematics_twin("forward")
test_leg_lengths = kinematics_twin("legs")
test_joint_angles = kinematics_twin("joint_angles")
test_jacobian_pose = kinematics_twin("jacobian_pose")
test_jacobian_legs = kinematics_twin("jacobian_legs")


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("shape", [(), (4,)], ids=lambda s: f"batch{s}")
@twin
@given(seeds, st.sampled_from(list(WORKSPACE)))
def test_stack_frames(shape, stack, seed, regime):
    """The frames along the stack (the facade's, on the Numba kernel) against the JAX reference."""
    import jax

    from assemblers.kinematics import api, reference

    asm = A.load_config(stack)
    Q = stack_poses(asm, np.random.default_rng(seed), shape, regime)
    got = api.stack_frames(asm, Q)
    f = reference.stack_frames if not shape else jax.vmap(reference.stack_frames, in_axes=(None, 0))
    for a, b in zip(got, f(A.stack_arrays(asm), Q), strict=True):
        close(a, b, 1e-14)


@pytest.mark.parametrize("stack", STACKS)
@twin
@given(seeds, st.sampled_from(list(WORKSPACE)))
def test_jacobian_pose_contract(stack, seed, regime):
    """The second-derivative kernel ``gQ = sum_ij K_ij dJ_ij/dQ`` (what every sensitivity
    gradient goes through) against JAX autodiff of ``sum(K * J_Q(Q))``; and the derivative of
    the leg Jacobian's rows, contracted with weights (one leg, and six accumulated), against
    autodiff of the JAX leg Jacobian."""
    import jax
    import jax.numpy as jnp

    from assemblers.geometry import kernels as geo_nb
    from assemblers.kinematics import api, kernels, reference

    asm = A.load_config(stack)
    rng = np.random.default_rng(seed)
    Q = stack_poses(asm, rng, (), regime)
    n = asm.n_platforms
    Kw = rng.normal(size=(6, 6 * n))
    a = api.kernel_arrays(asm)
    J, bases, tops = np.empty((6, 6 * n)), np.empty((n, 4, 4)), np.empty((n, 4, 4))
    T_ee, tmp, gQ = np.empty((4, 4)), np.empty((4, 4)), np.zeros(6 * n)
    kernels.jacobian_pose(a.T_mount, a.T_after, Q, J, bases, tops, T_ee, tmp)
    kernels.jacobian_pose_contract(Kw, J, Q, bases, tops, T_ee, gQ)
    arrs = A.stack_arrays(asm)
    want = jax.grad(lambda Q_: jnp.sum(Kw * reference.jacobian_pose(arrs, Q_)))(jnp.asarray(Q))
    close(gQ, want, 1e-12 * max(1.0, float(np.abs(want).max())))
    b, t, q = a.b[0], a.t[0], Q[:6]
    dJl = np.asarray(jax.jacfwd(lambda q_: reference.platform_leg_jacobian(b, t, q_))(jnp.asarray(q)))
    R = np.empty((3, 3))
    geo_nb.rpy_to_matrix(q[3], q[4], q[5], R)
    E, dE = np.empty((3, 3)), np.empty((3, 3, 3))
    geo_nb.angular_basis(q[4], q[5], E, dE)
    Pm = rng.normal(size=(6, 6))  # a weight per leg and row entry
    out = np.zeros(6)
    for k in range(6):
        Rt = R @ t[k]
        v = q[:3] + Rt - b[k]
        one = np.zeros(6)
        kernels.leg_jacobian_row_contract(v, Rt, np.linalg.norm(v), E, dE, Pm[k], one)
        close(one, Pm[k] @ dJl[k], 1e-12 * max(1.0, float(np.abs(Pm[k] @ dJl[k]).max())))
        kernels.leg_jacobian_row_contract(v, Rt, np.linalg.norm(v), E, dE, Pm[k], out)
    want = np.einsum("kc,kcj->j", Pm, dJl)  # the six legs' contractions, accumulated
    close(out, want, 1e-12 * max(1.0, float(np.abs(want).max())))
