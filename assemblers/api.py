"""The NumPy-facing Python API (SPEC): arrays in and out are float64 NumPy.

Every function accepts one pose ``Q`` (6N,) or a batch (B, 6N); batches run as one ``vmap``ped,
jit-compiled call (compiled once per stack size and reused; the compilation is cached on disk).
Non-finite or mis-shaped input raises :class:`assemblers.errors.InputError`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from . import kinematics as K
from .errors import ConvergenceError, InputError
from .model import Assembler, StackArrays
from .transforms import transform_to_pose

_ARRAYS_ATTR = "_jax_arrays"


def stack_arrays(asm: Assembler) -> StackArrays:
    """The stack's geometry as JAX arrays, built once per Assembler and reused."""
    cached = asm.__dict__.get(_ARRAYS_ATTR)
    if cached is None:
        cached = StackArrays(*(jnp.asarray(a) for a in asm.arrays))
        asm.__dict__[_ARRAYS_ATTR] = cached  # frozen dataclass: cache beside the fields
    return cached


def _weights(asm: Assembler, wrt: str):
    s = asm.sensitivity
    return jnp.asarray(s.w_out), jnp.asarray(s.w_in(asm.n_platforms, wrt))


# Jitted kernels: single and batched.  ``arrs`` is an argument (not a constant), so one
# compilation serves every Assembler with the same number of platforms.
_fk = jax.jit(K.forward)
_fk_b = jax.jit(jax.vmap(K.forward, in_axes=(None, 0)))
_legs = jax.jit(K.stack_legs)
_legs_b = jax.jit(jax.vmap(K.stack_legs, in_axes=(None, 0)))
_angles = jax.jit(K.stack_joint_angles)
_angles_b = jax.jit(jax.vmap(K.stack_joint_angles, in_axes=(None, 0)))
_jac = jax.jit(K.jacobian, static_argnames="wrt")
_jac_b = jax.jit(jax.vmap(K.jacobian, in_axes=(None, 0, None)), static_argnums=2)
_sens = jax.jit(K.sensitivity, static_argnames="wrt")
_sens_b = jax.jit(jax.vmap(K.sensitivity, in_axes=(None, 0, None, None, None)), static_argnums=4)


def as_array(x, name: str, shape_tail: tuple[int, ...], *, batch: bool = True) -> np.ndarray:
    """Validate an array argument: float64, finite, shape ``shape_tail`` or (B, *shape_tail)."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name}: must be an array of numbers") from None
    nd = len(shape_tail)
    ok = a.shape[a.ndim - nd:] == shape_tail and (a.ndim == nd or (batch and a.ndim == nd + 1))
    if not ok:
        want = f"{shape_tail}" + (f" or (B, {', '.join(map(str, shape_tail))})" if batch else "")
        raise InputError(f"{name}: expected shape {want}, got {a.shape}")
    if not np.isfinite(a).all():
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise InputError(f"{name}: non-finite value {a[idx]} at index {idx}")
    return a


def _Q(asm: Assembler, Q) -> np.ndarray:
    return as_array(Q, "Q", (6 * asm.n_platforms,))


def home_pose(asm: Assembler) -> np.ndarray:
    """(6N,) stack pose with every platform at its home pose."""
    return np.concatenate([p.home_pose for p in asm.platforms])


# Batches at least this large go to the Numba kernels (assemblers.fastkin), which run about 5x
# faster than XLA's CPU code for these tiny per-pose matrices (benchmarks/kinematics.py).
NUMBA_BATCH_MIN = 512


def forward_kinematics(asm: Assembler, Q) -> np.ndarray:
    """Tool pose T_world_tool: ``Q`` (6N,) -> (4, 4); (B, 6N) -> (B, 4, 4)."""
    Q = _Q(asm, Q)
    if Q.ndim == 2 and Q.shape[0] >= NUMBA_BATCH_MIN:
        from . import fastkin

        return fastkin.forward_np(asm.arrays, Q)
    f = _fk if Q.ndim == 1 else _fk_b
    return np.asarray(f(stack_arrays(asm), Q))


def leg_lengths(asm: Assembler, Q) -> np.ndarray:
    """Leg lengths (m): ``Q`` (6N,) -> (N, 6); (B, 6N) -> (B, N, 6)."""
    Q = _Q(asm, Q)
    f = _legs if Q.ndim == 1 else _legs_b
    return np.asarray(f(stack_arrays(asm), Q))


def joint_angles(asm: Assembler, Q) -> np.ndarray:
    """Leg-to-plate-normal angles (rad), base and top end: (6N,) -> (N, 6, 2); batched (B, N, 6, 2)."""
    Q = _Q(asm, Q)
    f = _angles if Q.ndim == 1 else _angles_b
    return np.asarray(f(stack_arrays(asm), Q))


def jacobian(asm: Assembler, Q, wrt: str = "pose") -> np.ndarray:
    """``J_Q`` (wrt="pose") or ``J_L`` (wrt="legs"): (6N,) -> (6, 6N); (B, 6N) -> (B, 6, 6N).

    Rows: tool twist (dp m, dtheta rad), world frame; columns: pose parameters (m, rad) or
    leg lengths (m), bottom platform first.
    """
    if wrt not in ("pose", "legs"):
        raise InputError(f"wrt: must be 'pose' or 'legs', got {wrt!r}")
    Q = _Q(asm, Q)
    if wrt == "pose" and (Q.ndim == 1 or Q.shape[0] >= NUMBA_BATCH_MIN):
        from . import fastkin

        if Q.ndim == 1:
            return fastkin.jacobian_pose_np(asm.arrays, Q[None])[0]
        return fastkin.jacobian_pose_np(asm.arrays, Q)
    if Q.ndim == 1:
        return np.asarray(_jac(stack_arrays(asm), Q, wrt=wrt))
    return np.asarray(_jac_b(stack_arrays(asm), Q, wrt))


def sensitivity(asm: Assembler, Q, wrt: str | None = None):
    """Weighted cost ``|| W_out J W_in ||_F`` with the config's weights (SPEC).

    ``wrt``: "pose" or "legs" (default: the config's ``[sensitivity] wrt``).
    Returns a float for one pose, (B,) for a batch.
    """
    wrt = wrt or asm.sensitivity.wrt
    if wrt not in ("pose", "legs"):
        raise InputError(f"wrt: must be 'pose' or 'legs', got {wrt!r}")
    Q = _Q(asm, Q)
    w_out, w_in = _weights(asm, wrt)
    if Q.ndim == 1:
        return float(_sens(stack_arrays(asm), Q, w_out, w_in, wrt=wrt))
    return np.asarray(_sens_b(stack_arrays(asm), Q, w_out, w_in, wrt))


def from_legs(asm: Assembler, L, initial=None, tol: float = 1e-12, max_iter: int = 50):
    """Stack pose from leg lengths, each platform by its own forward kinematics (Newton).

    ``L``: (N, 6) m or (B, N, 6); ``initial``: (6N,) or (B, 6N) start (default: home).
    Returns ``Q`` (6N,) or (B, 6N) whose legs match ``L`` to ``tol`` (m).  Raises
    :class:`ConvergenceError` naming the platforms (and batch rows) that did not converge: a pose
    whose legs do not match is never returned.
    """
    n = asm.n_platforms
    L = as_array(L, "L", (n, 6))
    if np.any(L <= 0):
        raise InputError("L: leg lengths must be positive")
    if not (np.isfinite(tol) and tol > 0):
        raise InputError(f"tol: must be a positive number, got {tol}")
    q0 = home_pose(asm) if initial is None else as_array(initial, "initial", (6 * n,))
    from . import fastkin  # Newton in Numba: ~1 us per iteration, no per-iteration dispatch

    arrs = asm.arrays
    if L.ndim == 2:
        Q = np.array(q0 if q0.ndim == 1 else q0[0], dtype=np.float64)
        err, it = np.empty(n), np.empty(n, dtype=np.int64)
        fastkin.from_legs_stack(arrs.b, arrs.t, L, Q, float(tol), int(max_iter), err, it)
    else:
        Q = np.array(np.broadcast_to(q0, (L.shape[0], 6 * n)), dtype=np.float64)
        err, it = np.empty(L.shape[:2]), np.empty(L.shape[:2], dtype=np.int64)
        fastkin.from_legs_batch(arrs.b, arrs.t, np.ascontiguousarray(L), Q, float(tol),
                                int(max_iter), err, it)
    ok = err <= tol
    if not ok.all():
        bad = np.argwhere(~ok)
        first = tuple(int(i) for i in bad[0])
        where = (f"platform {first[-1] + 1}" if L.ndim == 2
                 else f"batch row {first[0]}, platform {first[1] + 1}")
        raise ConvergenceError(
            f"from_legs: Newton did not converge for {len(bad)} platform(s), first {where} "
            f"(residual {err[first]:.3g} m after {max_iter} iterations): the legs may be "
            "unreachable for this geometry, or the start pose too far")
    return Q


def tool_pose(asm: Assembler, Q) -> np.ndarray:
    """Tool pose as (x, y, z, roll, pitch, yaw): (6N,) -> (6,); (B, 6N) -> (B, 6)."""
    T = forward_kinematics(asm, Q)
    return transform_to_pose(T)
