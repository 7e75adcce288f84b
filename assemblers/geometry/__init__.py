"""Rotations and rigid transforms: one definition per backend, the same names in each.

* :mod:`.reference`: JAX (float64, traceable, gradient-safe at the singular points); the
  reference the other backends are tested against (``tests/twins``).
* :mod:`.kernels`: Numba scalar loops writing into preallocated outputs, for other kernels.
* :mod:`.api`: NumPy (vectorized over leading axes; SciPy's ``Rotation`` where it is the natural
  tool), for scripts and the layers above.

Names in every backend: ``rpy_to_matrix``, ``matrix_to_rpy``, ``pose_to_transform``,
``transform_to_pose``, ``inverse_transform``, ``so3_exp``, ``so3_log``, ``twist_between``,
``angular_basis``.  Conventions (docs/conventions.md): a pose ``q = (x, y, z, roll, pitch,
yaw)`` is the child frame in the parent frame with ``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)``; a
transform ``T_a_b`` (4, 4) maps points of frame ``b`` into frame ``a``; rotation vectors are
``axis * angle`` (rad); the error twist is ``(dp, dtheta)``, world frame.

Nothing is imported here, so ``import assemblers.geometry.api`` does not pull in JAX or Numba.
"""
