"""The backend matrix of the twin tests: one uniform batched callable per backend and quantity.

In the style of jaxlie's ``general_group_test``: a test names a quantity and receives, through
:func:`over_backends`, each backend's implementation of it as ``f(*arrays)`` taking and
returning NumPy arrays with any leading batch shape (per-pose Numba kernels are looped over the
flattened batch; JAX functions are ``vmap``ped).  The first backend, ``reference`` (JAX), is the
oracle; :func:`reference` gives it for the expected value.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

import assemblers as A
from assemblers.geometry import api as geo_np
from assemblers.geometry import kernels as geo_nb
from assemblers.geometry import reference as geo_jax
from assemblers.kinematics import api as kin_api
from assemblers.kinematics import kernels as kk
from assemblers.kinematics import reference as kin_jax

BATCH_SHAPES = [(), (1,), (5,), (2, 3)]  # the facade takes () and (B,) only


def _batched(fn, n_in_dims, n_out):
    """``fn`` on single examples -> a callable over leading axes (flattened, then a loop)."""

    def call(*xs):
        xs = [np.asarray(x, dtype=np.float64) for x in xs]
        lead = xs[0].shape[: xs[0].ndim - n_in_dims[0]]
        flat = [x.reshape((-1,) + x.shape[x.ndim - d:]) for x, d in zip(xs, n_in_dims, strict=True)]
        rows = [fn(*(f[k] for f in flat)) for k in range(flat[0].shape[0])]
        out = np.array(rows).reshape(lead + n_out)
        return out

    return call


def _jax(fn, n_in_dims, n_out):
    jf = jax.jit(fn)
    return _batched(lambda *x: np.asarray(jf(*x)), n_in_dims, n_out)


def _nb(kernel, out_shape):
    def one(*x):
        out = np.empty(out_shape)
        kernel(*[np.ascontiguousarray(a) for a in x], out)
        return out

    return one


def _nb_rpy(R):
    out = np.empty((3, 3))
    geo_nb.rpy_to_matrix(R[0], R[1], R[2], out)
    return out


def _nb_E(rpy):
    E, dE = np.empty((3, 3)), np.empty((3, 3, 3))
    geo_nb.angular_basis(rpy[1], rpy[2], E, dE)
    return E


def _nb_pose_T(q):
    T = np.empty((4, 4))
    geo_nb.pose_to_transform(np.ascontiguousarray(q), 0, T)
    return T


def _nb_T_pose(T):
    q = np.empty(6)
    geo_nb.transform_to_pose(np.ascontiguousarray(T), q, 0)
    return q


GEOMETRY = {
    "rpy_to_matrix": ((1,), (3, 3), {
        "reference": geo_jax.rpy_to_matrix, "numba": _nb_rpy, "numpy": geo_np.rpy_to_matrix}),
    "matrix_to_rpy": ((2,), (3,), {
        "reference": geo_jax.matrix_to_rpy, "numba": _nb(geo_nb.matrix_to_rpy, (3,)),
        "numpy": geo_np.matrix_to_rpy}),
    "angular_basis": ((1,), (3, 3), {
        "reference": geo_jax.angular_basis, "numba": _nb_E, "numpy": geo_np.angular_basis}),
    "pose_to_transform": ((1,), (4, 4), {
        "reference": geo_jax.pose_to_transform, "numba": _nb_pose_T,
        "numpy": geo_np.pose_to_transform}),
    "transform_to_pose": ((2,), (6,), {
        "reference": geo_jax.transform_to_pose, "numba": _nb_T_pose,
        "numpy": geo_np.transform_to_pose}),
    "inverse_transform": ((2,), (4, 4), {
        "reference": geo_jax.inverse_transform, "numba": _nb(geo_nb.inverse_transform, (4, 4)),
        "numpy": geo_np.inverse_transform}),
    "so3_exp": ((1,), (3, 3), {
        "reference": geo_jax.so3_exp, "numba": _nb(geo_nb.so3_exp, (3, 3)),
        "numpy": geo_np.so3_exp}),
    "so3_log": ((2,), (3,), {
        "reference": geo_jax.so3_log, "numba": _nb(geo_nb.so3_log, (3,)),
        "numpy": geo_np.so3_log}),
    "twist_between": ((2, 2), (6,), {
        "reference": geo_jax.twist_between, "numba": _nb(geo_nb.twist_between, (6,)),
        "numpy": geo_np.twist_between}),
}


def geometry_backends(name):
    """``[(backend name, batched callable)]`` of a geometry quantity, the reference first."""
    dims, out, impls = GEOMETRY[name]
    res = []
    for b, fn in impls.items():
        if b == "reference":
            res.append((b, _jax(fn, dims, out)))
        elif b == "numpy":
            res.append((b, fn))  # vectorized already
        else:
            res.append((b, _batched(fn, dims, out)))
    return res


def _stack_kernel(name, out_tail, args, serial):
    """A kinematics kernel over (..., 6N) as one call on all rows: the serial ``*_rows`` driver
    (``serial``, told the row range) or the threaded ``*_batch`` one."""

    def call(asm, Q):
        a = kin_api.kernel_arrays(asm)
        lead = Q.shape[:-1]
        Qf = np.ascontiguousarray(Q.reshape(-1, Q.shape[-1]))
        out = np.empty((Qf.shape[0],) + out_tail(asm))
        getattr(kk, name)(*args(a), Qf, out, *((0, Qf.shape[0]) if serial else ()))
        return out.reshape(lead + out_tail(asm))

    return call


def _stack_api(fn):
    def call(asm, Q):
        lead = Q.shape[:-1]
        out = fn(asm, Q.reshape(-1, Q.shape[-1]) if len(lead) != 1 else Q)
        return out.reshape(lead + out.shape[1:]) if len(lead) != 1 else out

    return call


def _stack_jax(fn):
    vf = jax.jit(jax.vmap(fn, in_axes=(None, 0)))

    def call(asm, Q):
        lead = Q.shape[:-1]
        out = np.asarray(vf(A.stack_arrays(asm), Q.reshape(-1, Q.shape[-1])))
        return out.reshape(lead + out.shape[1:])

    return call


_FK = (lambda asm: (4, 4), lambda a: (a.T_mount, a.T_after))
_LEGS = (lambda asm: (asm.n_platforms, 6), lambda a: (a.b, a.t))
_ANG = (lambda asm: (asm.n_platforms, 6, 2), lambda a: (a.b, a.t))
_JQ = (lambda asm: (6, 6 * asm.n_platforms), lambda a: (a.T_mount, a.T_after))
_JL = (lambda asm: (6, 6 * asm.n_platforms), lambda a: (a.b, a.t, a.T_mount, a.T_after))

KINEMATICS = {
    "forward": (kin_jax.forward, "forward", _FK, A.forward_kinematics),
    "legs": (kin_jax.stack_legs, "legs", _LEGS, A.leg_lengths),
    "joint_angles": (kin_jax.stack_joint_angles, "joint_angles", _ANG, A.joint_angles),
    "jacobian_pose": (kin_jax.jacobian_pose, "jacobian_pose", _JQ, A.jacobian),
    "jacobian_legs": (kin_jax.jacobian_legs, "jacobian_legs", _JL,
                      lambda asm, Q: A.jacobian(asm, Q, "legs")),
}


def kinematics_backends(name):
    """``[(backend, f(asm, Q (..., 6N)))]``: the JAX reference, the serial and the threaded
    Numba drivers, and the public facade."""
    ref, kern, (tail, args), public = KINEMATICS[name]
    return [("reference", _stack_jax(ref)),
            ("numba-serial", _stack_kernel(f"{kern}_rows", tail, args, True)),
            ("numba-threads", _stack_kernel(f"{kern}_batch", tail, args, False)),
            ("api", _stack_api(public))]


def over_backends(kind, name):
    """Parametrize a test over every non-reference backend of a quantity: the test receives
    ``backend`` (callable) and ``ref`` (the reference callable)."""
    pairs = geometry_backends(name) if kind == "geometry" else kinematics_backends(name)
    ref = pairs[0][1]
    return pytest.mark.parametrize("backend,ref", [(f, ref) for _, f in pairs[1:]],
                                   ids=[b for b, _ in pairs[1:]])


def over_shapes():
    return pytest.mark.parametrize("shape", BATCH_SHAPES, ids=lambda s: f"batch{s}")


def reference(kind, name):
    pairs = geometry_backends(name) if kind == "geometry" else kinematics_backends(name)
    return pairs[0][1]
