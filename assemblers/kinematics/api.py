"""The NumPy facade of the kinematics (docs/conventions.md): float64 NumPy arrays in and out.

Every function accepts one pose ``Q`` (6N,) or a batch (B, 6N).  Non-finite or mis-shaped input
raises :class:`assemblers.errors.InputError`.

**Backend rule (one, for every function here):** the Numba kernels of :mod:`.kernels` compute
it; a batch of fewer than :data:`PARALLEL_MIN` rows (and a single pose, a batch of one) runs on
the calling thread (``*_rows``), a larger batch on Numba's threads (``*_batch``; the same
compiled per-row code, so the same bits).  Small calls never start or wait for threads, which on
a busy machine cost up to milliseconds.  ``sensitivity`` weighs the kernel's Jacobian in NumPy.
The JAX model (:mod:`.reference`) is the reference these are tested against; it is not on this
path (``stack_arrays`` gives its arrays).

**Commanded lengths (one rule):** leg lengths in and out of this facade (``leg_lengths``,
``from_legs``, the columns of ``J_L``) are *commanded* lengths, what the actuators report and
what the strokes bound.  A calibrated platform (``leg_offset``/``leg_scale`` in the config,
docs/calibration.md) has geometric lengths, joint to joint, ``leg_scale * commanded +
leg_offset``; the kernels and the JAX reference compute geometric lengths, and the conversion
happens here (:meth:`Assembler.geometric_lengths` / :meth:`Assembler.commanded_lengths`), only for
a calibrated stack: without offsets and scales nothing changes, bit for bit.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConvergenceError, InputError
from ..geometry.api import transform_to_pose
from ..model import Assembler, StackArrays
from . import kernels as kk

PARALLEL_MIN = 2048  # rows: below this a batch runs serially (see the backend rule)
_ARRAYS_ATTR = "_jax_arrays"
_KERNEL_ATTR = "_kernel_arrays"


def stack_arrays(asm: Assembler) -> StackArrays:
    """The stack's geometry as JAX arrays (for :mod:`.reference`), built once per Assembler."""
    cached = asm.__dict__.get(_ARRAYS_ATTR)
    if cached is None:
        import jax.numpy as jnp

        from .. import _runtime

        _runtime.configure_jax()
        cached = StackArrays(*(jnp.asarray(a) for a in asm.arrays))
        asm.__dict__[_ARRAYS_ATTR] = cached  # frozen dataclass: cache beside the fields
    return cached


def kernel_arrays(asm: Assembler) -> StackArrays:
    """The stack's geometry as writable C-contiguous float64 NumPy arrays (the kernels' one
    specialization: Numba types read-only arrays apart), built once per Assembler."""
    cached = asm.__dict__.get(_KERNEL_ATTR)
    if cached is None:
        cached = StackArrays(*(np.array(a, dtype=np.float64, order="C") for a in asm.arrays))
        asm.__dict__[_KERNEL_ATTR] = cached
    return cached


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


def _rows(asm: Assembler, Q) -> tuple[np.ndarray, bool]:
    """``Q`` validated as (B, 6N) writable C float64, and whether it was a single pose."""
    Q = as_array(Q, "Q", (6 * asm.n_platforms,))
    single = Q.ndim == 1
    return np.array(Q[None] if single else Q, dtype=np.float64, order="C"), single


def _run(rows, batch, args, Q, out):
    """The backend rule: ``rows(*args, Q, out, 0, B)`` below PARALLEL_MIN rows, else
    ``batch(*args, Q, out)``."""
    if Q.shape[0] < PARALLEL_MIN:
        rows(*args, Q, out, 0, Q.shape[0])
    else:
        batch(*args, Q, out)
    return out


def home_pose(asm: Assembler) -> np.ndarray:
    """(6N,) stack pose with every platform at its home pose."""
    return np.concatenate([p.home_pose for p in asm.platforms])


def forward_kinematics(asm: Assembler, Q) -> np.ndarray:
    """Tool pose T_world_tool: ``Q`` (6N,) -> (4, 4); (B, 6N) -> (B, 4, 4)."""
    Q, single = _rows(asm, Q)
    a = kernel_arrays(asm)
    T = _run(kk.forward_rows, kk.forward_batch, (a.T_mount, a.T_after), Q,
             np.empty((Q.shape[0], 4, 4)))
    return T[0] if single else T


def stack_frames(asm: Assembler, Q):
    """World frames along the stack: ``Q`` (6N,) -> ``(T_world_base (N, 4, 4), T_world_top
    (N, 4, 4), T_world_tool (4, 4))`` (the chain ``T_mount T(q_1) T_iface_1 ... T(q_N) T_tool``);
    (B, 6N) -> the same with a leading (B,)."""
    Q, single = _rows(asm, Q)
    a = kernel_arrays(asm)
    B, n = Q.shape[0], asm.n_platforms
    bases, tops, T_ee = np.empty((B, n, 4, 4)), np.empty((B, n, 4, 4)), np.empty((B, 4, 4))
    if B < PARALLEL_MIN:
        kk.stack_frames_rows(a.T_mount, a.T_after, Q, bases, tops, T_ee, 0, B)
    else:
        kk.stack_frames_batch(a.T_mount, a.T_after, Q, bases, tops, T_ee)
    return (bases[0], tops[0], T_ee[0]) if single else (bases, tops, T_ee)


def leg_lengths(asm: Assembler, Q) -> np.ndarray:
    """Commanded leg lengths (m; the geometric ones for a stack without leg calibration):
    ``Q`` (6N,) -> (N, 6); (B, 6N) -> (B, N, 6)."""
    Q, single = _rows(asm, Q)
    a = kernel_arrays(asm)
    L = _run(kk.legs_rows, kk.legs_batch, (a.b, a.t), Q,
             np.empty((Q.shape[0], asm.n_platforms, 6)))
    L = asm.commanded_lengths(L)
    return L[0] if single else L


def joint_angles(asm: Assembler, Q) -> np.ndarray:
    """Leg-to-plate-normal angles (rad), base and top end: (6N,) -> (N, 6, 2); batched (B, N, 6, 2)."""
    Q, single = _rows(asm, Q)
    a = kernel_arrays(asm)
    ang = _run(kk.joint_angles_rows, kk.joint_angles_batch, (a.b, a.t), Q,
               np.empty((Q.shape[0], asm.n_platforms, 6, 2)))
    return ang[0] if single else ang


def _check_wrt(wrt: str) -> None:
    if wrt not in ("pose", "legs"):
        raise InputError(f"wrt: must be 'pose' or 'legs', got {wrt!r}")


def jacobian(asm: Assembler, Q, wrt: str = "pose") -> np.ndarray:
    """``J_Q`` (wrt="pose") or ``J_L`` (wrt="legs"): (6N,) -> (6, 6N); (B, 6N) -> (B, 6, 6N).

    Rows: tool twist (dp m, dtheta rad), world frame; columns: pose parameters (m, rad) or
    commanded leg lengths (m), bottom platform first.  ``J_L`` is NaN where a leg Jacobian is
    singular.
    """
    _check_wrt(wrt)
    Q, single = _rows(asm, Q)
    a = kernel_arrays(asm)
    out = np.empty((Q.shape[0], 6, Q.shape[1]))
    if wrt == "pose":
        _run(kk.jacobian_pose_rows, kk.jacobian_pose_batch, (a.T_mount, a.T_after), Q, out)
    else:
        _run(kk.jacobian_legs_rows, kk.jacobian_legs_batch, (a.b, a.t, a.T_mount, a.T_after),
             Q, out)
        if asm.legs_calibrated:  # d(geometric)/d(commanded) = leg_scale, column by column
            out *= asm.leg_scale.reshape(-1)
    return out[0] if single else out


def sensitivity(asm: Assembler, Q, wrt: str | None = None):
    """Weighted cost ``|| W_out J W_in ||_F`` with the config's weights (docs/conventions.md).

    ``wrt``: "pose" or "legs" (default: the config's ``[sensitivity] wrt``).
    Returns a float for one pose, (B,) for a batch.
    """
    wrt = wrt or asm.sensitivity.wrt
    _check_wrt(wrt)
    J = jacobian(asm, Q, wrt)
    s = asm.sensitivity
    M = s.w_out[:, None] * J * s.w_in(asm.n_platforms, wrt)
    cost = np.sqrt(np.sum(M * M, axis=(-2, -1)))
    return float(cost) if cost.ndim == 0 else cost


def from_legs(asm: Assembler, L, initial=None, tol: float = 1e-12, max_iter: int = 50):
    """Stack pose from leg lengths, each platform by its own forward kinematics (Newton with
    backtracking, in Numba).

    ``L``: (N, 6) m or (B, N, 6), commanded lengths (see the module's rule); ``initial``: (6N,)
    or (B, 6N) start (default: home).  Returns ``Q`` (6N,) or (B, 6N) whose legs match ``L`` to
    ``tol`` (m, geometric).  Raises
    :class:`ConvergenceError` naming the platforms (and batch rows) that did not converge: a pose
    whose legs do not match is never returned.
    """
    n = asm.n_platforms
    L = asm.geometric_lengths(as_array(L, "L", (n, 6)))
    if np.any(L <= 0):
        raise InputError("L: leg lengths must be positive")
    if not (np.isfinite(tol) and tol > 0):
        raise InputError(f"tol: must be a positive number, got {tol}")
    q0 = home_pose(asm) if initial is None else as_array(initial, "initial", (6 * n,))
    single = L.ndim == 2
    Lb = np.array(L[None] if single else L, dtype=np.float64, order="C")
    B = Lb.shape[0]
    Q = np.array(np.broadcast_to(q0 if q0.ndim == 1 or not single else q0[0], (B, 6 * n)),
                 dtype=np.float64, order="C")
    err, it = np.empty((B, n)), np.empty((B, n), dtype=np.int64)
    a = kernel_arrays(asm)
    args = (a.b, a.t, Lb, Q, float(tol), int(max_iter), err, it)
    if B < PARALLEL_MIN:
        kk.from_legs_rows(*args, 0, B)
    else:
        kk.from_legs_batch(*args)
    ok = err <= tol
    if not ok.all():
        bad = np.argwhere(~ok)
        first = tuple(int(i) for i in bad[0])
        where = (f"platform {first[1] + 1}" if single
                 else f"batch row {first[0]}, platform {first[1] + 1}")
        raise ConvergenceError(
            f"from_legs: Newton did not converge for {len(bad)} platform(s), first {where} "
            f"(residual {err[first]:.3g} m after {max_iter} iterations): the legs may be "
            "unreachable for this geometry, or the start pose too far")
    return Q[0] if single else Q


def tool_pose(asm: Assembler, Q) -> np.ndarray:
    """Tool pose as (x, y, z, roll, pitch, yaw): (6N,) -> (6,); (B, 6N) -> (B, 6)."""
    return transform_to_pose(forward_kinematics(asm, Q))
