"""What the fit and the planner share: a campaign's rows prepared for the measurement model
(whitened by their standard deviations), the scaled identification Jacobian and the
identifiable subspace (column-pivoted QR).

Scaling: a parameter's column is multiplied by its prior size (:mod:`.params`) and a row by
the inverse of its standard deviation, so the scaled Jacobian ``A`` is dimensionless and its
singular values say how many standard deviations of measurement one prior-sized error moves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from ..errors import ConvergenceError, InputError
from ..geometry.api import pose_to_transform
from ..kinematics.api import from_legs, leg_lengths, stack_frames
from ..model import Assembler
from . import params as P
from .jaxmodel import Evaluator
from .measurements import Measurements, check_measurements

#: Default standard deviations of a measured pose per component (a laser tracker's order):
#: 10 um per position axis, 20 urad per rotation axis (world frame).
SIGMA_POSITION = 1e-5
SIGMA_ROTATION = 2e-5
#: A pivot of the scaled Jacobian's QR below this fraction of the largest is a direction the
#: measurements do not see (exact gauge freedoms sit near 1e-12, measured ones above 1e-4).
RCOND = 1e-7


def single_threaded_blas():
    """A context in which NumPy's and SciPy's BLAS run on the calling thread: the
    calibration's matrices are a few hundred rows, where BLAS threads only cost (on a busy
    2-core machine an SVD of 360 x 78 took 200 ms with them, 2 ms without)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def evaluator(asm: Assembler) -> Evaluator:
    """The measurement model of ``asm`` (one per Assembler, cached beside its fields)."""
    ev = asm.__dict__.get("_calibration_evaluator")
    if ev is None:
        ev = Evaluator(asm)
        asm.__dict__["_calibration_evaluator"] = ev
    return ev


def nominal_poses(asm: Assembler, legs: np.ndarray, meas: Measurements | None = None):
    """Each row's stack pose (M, 6N) in ``asm`` from commanded ``legs`` (M, N, 6); a row
    whose legs have no pose is an :class:`InputError` naming it."""
    try:
        return from_legs(asm, legs)
    except ConvergenceError:
        pass
    for m in range(legs.shape[0]):
        try:
            from_legs(asm, legs[m])
        except ConvergenceError as exc:
            where = meas.where(m) if meas is not None else f"row {m}"
            raise InputError(f"{where}: the commanded legs have no pose in the nominal model "
                             f"({exc})") from None
    raise AssertionError("unreachable")


@dataclass
class Rows:
    """A campaign ready for the model: ``L`` (M, N, 6) commanded m, ``q0`` (M, 6N) the
    nominal poses (Newton's starts), ``T_meas`` (M, N + 1, 4, 4) the measured tool and plates
    (identity where not measured), ``mask`` (N + 1,) the frames measured, ``sigma``
    (M, N + 1, 6) each residual's standard deviation (m, rad; over sqrt(weight))."""

    L: np.ndarray
    q0: np.ndarray
    T_meas: np.ndarray
    mask: np.ndarray
    sigma: np.ndarray

    @property
    def n_equations(self) -> int:
        return int(self.L.shape[0] * 6 * self.mask.sum())

    def whiten(self, r: np.ndarray) -> np.ndarray:
        """Error twists (M, N + 1, 6) -> the whitened residual vector (n_equations,)."""
        return (r / self.sigma)[:, self.mask].reshape(-1)

    def whiten_jacobian(self, J: np.ndarray) -> np.ndarray:
        """(M, N + 1, 6, P) -> (n_equations, P)."""
        return (J / self.sigma[..., None])[:, self.mask].reshape(-1, J.shape[-1])


def prepare(asm: Assembler, meas: Measurements, sigma_position: float = SIGMA_POSITION,
            sigma_rotation: float = SIGMA_ROTATION) -> Rows:
    """Check ``meas`` against ``asm`` (strokes, reachable legs) and prepare its rows."""
    check_measurements(asm, meas)
    n, M = asm.n_platforms, meas.n_rows
    q0 = nominal_poses(asm, meas.legs, meas)
    T_meas = np.tile(np.eye(4), (M, n + 1, 1, 1))
    T_meas[:, 0] = pose_to_transform(meas.tool)
    mask = np.concatenate([[True], meas.plates_measured])
    if mask[1:].any():
        T_meas[:, 1:][:, mask[1:]] = pose_to_transform(meas.plates[:, mask[1:]])
    sp = np.full(M, float(sigma_position))
    sr = np.full(M, float(sigma_rotation))
    if meas.sigma_position is not None:
        sp = np.where(np.isfinite(meas.sigma_position), meas.sigma_position, sp)
    if meas.sigma_rotation is not None:
        sr = np.where(np.isfinite(meas.sigma_rotation), meas.sigma_rotation, sr)
    w = np.ones(M) if meas.weight is None else meas.weight
    sig = np.concatenate([np.repeat(sp[:, None], 3, 1), np.repeat(sr[:, None], 3, 1)], axis=1)
    sig = np.repeat((sig / np.sqrt(w)[:, None])[:, None], n + 1, axis=1)
    return Rows(meas.legs, q0, T_meas, mask, sig)


def model_rows(asm: Assembler, Q: np.ndarray, mask=None, sigma_position=SIGMA_POSITION,
               sigma_rotation=SIGMA_ROTATION) -> Rows:
    """Rows for stack poses ``Q`` (M, 6N) of ``asm`` whose "measurements" are the model's own
    frames (zero residuals): for Jacobians of candidate poses."""
    n, M = asm.n_platforms, Q.shape[0]
    L = leg_lengths(asm, Q)
    _, tops, T_tool = stack_frames(asm, Q)
    T_meas = np.concatenate([T_tool[:, None], tops], axis=1)
    mask = np.concatenate([[True], np.zeros(n, bool)]) if mask is None else np.asarray(mask)
    sig = np.tile(np.repeat([sigma_position, sigma_rotation], 3), (M, n + 1, 1))
    return Rows(L, np.array(Q, dtype=np.float64), T_meas, mask, sig.astype(np.float64))


@dataclass(frozen=True)
class Identifiability:
    """The identifiable subspace of a scaled Jacobian ``A`` (m, p) (columns: the fitted
    parameters ``columns``, indices into the full vector).

    ``rank``; ``order`` (p,) the QR's column order (positions in ``columns``): the first
    ``rank`` are estimated, the rest fixed at nominal; ``pivots`` (min(m, p),) the QR's
    ``|R_jj|``; ``singular_values`` (min(m, p),) of ``A`` (the identifiability spectrum);
    ``regroup`` (rank, p - rank): how each fixed column is absorbed by the estimated ones
    (``A[:, fixed_j] ~= A[:, est] @ regroup[:, j]``)."""

    columns: np.ndarray
    rank: int
    order: np.ndarray
    pivots: np.ndarray
    singular_values: np.ndarray
    regroup: np.ndarray
    rcond: float

    @property
    def estimated(self) -> np.ndarray:
        """Indices (into the full vector) of the estimated parameters, (rank,)."""
        return self.columns[self.order[: self.rank]]

    @property
    def fixed(self) -> np.ndarray:
        """Indices (into the full vector) of the parameters fixed at nominal, (p - rank,)."""
        return self.columns[self.order[self.rank:]]


def identify(A: np.ndarray, columns: np.ndarray, rcond: float = RCOND,
             spectrum: bool = True) -> Identifiability:
    """Column-pivoted QR of the scaled Jacobian ``A`` (m, p): the leading pivots above
    ``rcond`` times the first are the estimable parameters, the rest are combinations of them
    (fixed at nominal).  Also the singular values of ``A`` (with ``spectrum``)."""
    if A.shape[0] == 0:
        return Identifiability(columns, 0, np.arange(A.shape[1]), np.zeros(0), np.zeros(0),
                               np.zeros((0, A.shape[1])), rcond)
    R, order = scipy.linalg.qr(A, mode="r", pivoting=True)
    d = np.abs(np.diag(R))
    below = np.nonzero(d <= rcond * d[0])[0] if d[0] > 0 else np.arange(d.size)
    rank = int(below[0]) if below.size else d.size
    R11, R12 = R[:rank, :rank], R[:rank, rank:]
    regroup = scipy.linalg.solve_triangular(R11, R12) if rank else np.zeros((0, A.shape[1]))
    sv = np.linalg.svd(A, compute_uv=False) if spectrum else np.zeros(0)
    return Identifiability(np.asarray(columns), rank, order, d, sv, regroup, rcond)


def fitted_columns(n: int, families) -> np.ndarray:
    """Indices of the full vector in the given families (:data:`.params.FAMILIES`)."""
    idx = P.family_index(n)
    bad = [f for f in families if f not in idx]
    if bad:
        raise InputError(f"unknown parameter family {bad[0]!r} (families: "
                         f"{', '.join(P.FAMILIES)})")
    return np.sort(np.concatenate([idx[f] for f in families]))
