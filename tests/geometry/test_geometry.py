"""Rotations and transforms (assemblers.geometry) against closed forms and SciPy.
(Backend against backend: tests/twins.)"""

import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import assemblers as A
from assemblers.geometry import reference as lie
from assemblers.geometry.api import pose_to_transform


@given(st.lists(st.floats(-3.0, 3.0), min_size=3, max_size=3))
def test_so3_log_exp_round_trip(w):
    w = np.array(w)
    if np.linalg.norm(w) > np.pi - 1e-6:
        w = w / np.linalg.norm(w) * (np.pi - 1e-3)
    R = np.asarray(lie.so3_exp(jnp.asarray(w)))
    from scipy.spatial.transform import Rotation

    np.testing.assert_allclose(R, Rotation.from_rotvec(w).as_matrix(), atol=1e-14)
    np.testing.assert_allclose(np.asarray(lie.so3_log(jnp.asarray(R))), w, atol=1e-9)


def test_so3_log_near_pi():
    from scipy.spatial.transform import Rotation

    for axis in np.eye(3).tolist() + [[1, 1, 0], [0.3, -0.2, 0.9]]:
        a = np.array(axis) / np.linalg.norm(axis)
        w = a * (np.pi - 1e-7)
        R = Rotation.from_rotvec(w).as_matrix()
        np.testing.assert_allclose(np.asarray(lie.so3_log(jnp.asarray(R))), w, atol=1e-6)


@given(st.lists(st.floats(-1.2, 1.2), min_size=6, max_size=6))
def test_numpy_and_jax_transforms_agree(q):
    q = np.array(q)
    T_np = pose_to_transform(q)
    np.testing.assert_allclose(np.asarray(lie.pose_to_transform(jnp.asarray(q))), T_np, atol=1e-15)
    np.testing.assert_allclose(A.transform_to_pose(T_np), q, atol=1e-12)
    np.testing.assert_allclose(np.asarray(lie.transform_to_pose(jnp.asarray(T_np))), q, atol=1e-12)
