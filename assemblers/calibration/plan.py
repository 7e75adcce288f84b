"""Which poses to measure: a D-optimal design over candidate poses, and the uncertainty a
design predicts (docs/calibration.md).

Candidates are random stack poses inside every limit (:mod:`.poses`).  Each gives six rows
``A_c`` (6, r) of the scaled, whitened identification Jacobian on the r estimable parameters
(those of the candidates together; the gauge freedoms, which no pose sees, are left out).
Selection maximizes ``log det(I + sum_c A_c^T A_c)``, the information of the measurements on
top of the prior (the parameters' prior sizes are the unit of the scaled Jacobian): greedily,
then by exchange passes (each selected pose swapped for the best candidate while that helps),
with rank-6 updates of the inverse information and of every candidate's ``A_c M^-1 A_c^T``.

A design's prediction (:func:`predict`): the covariance ``(A^T A)^-1`` of the estimable
parameters for the given measurement noise, their standard deviations, and the RMS tool
error the calibrated model is expected to have over validation poses (position m and rotation
rad: ``sqrt(mean_v tr(J_v Cov J_v^T))``), so two designs compare by what a lab cares about.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..kinematics.api import leg_lengths, tool_pose
from ..model import Assembler
from . import params as P
from .core import (
    RCOND,
    SIGMA_POSITION,
    SIGMA_ROTATION,
    evaluator,
    fitted_columns,
    identify,
    model_rows,
    single_threaded_blas,
)
from .poses import STROKE_MARGIN, random_poses

DEFAULT_FAMILIES = ("joints", "offsets", "mount", "tool")


@dataclass(frozen=True)
class Prediction:
    """What a design of ``n_poses`` poses is expected to give: ``std`` (P,) standard
    deviation of each parameter (m, rad or 1; NaN where not estimated), ``position_rms_m`` and
    ``rotation_rms_rad`` the expected RMS tool error of the calibrated model over the
    validation poses (inf when the design leaves an estimable direction unseen), ``rank`` of
    the design's Jacobian on the ``n_estimable`` estimable parameters."""

    n_poses: int
    std: np.ndarray
    position_rms_m: float
    rotation_rms_rad: float
    rank: int
    n_estimable: int

    def summary(self) -> dict:
        return {"n_poses": self.n_poses, "position_rms_m": self.position_rms_m,
                "rotation_rms_rad": self.rotation_rms_rad, "rank": self.rank,
                "n_estimable": self.n_estimable,
                "median_std": {k: float(np.nanmedian(v)) if np.isfinite(v).any() else None
                               for k, v in self._by_family().items()}}

    def _by_family(self) -> dict:
        n = (self.std.size - 12) // P.PER_PLATFORM
        return {f: self.std[i] for f, i in P.family_index(n).items()}


@dataclass(frozen=True)
class Plan:
    """A planned campaign: ``Q`` (n, 6N) stack poses, ``legs`` (n, N, 6) their commanded
    lengths (what to command), ``tool_nominal`` (n, 6) the nominal model's tool pose there;
    ``predicted`` its :class:`Prediction`, ``random`` the same for as many random candidate
    poses; ``logdet`` the design criterion; ``n_candidates``; ``options``."""

    Q: np.ndarray
    legs: np.ndarray
    tool_nominal: np.ndarray
    predicted: Prediction
    random: Prediction
    logdet: float
    n_candidates: int
    options: dict

    def summary(self) -> dict:
        return {"n_poses": int(self.Q.shape[0]), "n_candidates": self.n_candidates,
                "logdet": self.logdet, "planned": self.predicted.summary(),
                "random": self.random.summary(), "options": self.options}


class _Design:
    """Candidate blocks ``A`` (C, 6, r) and the selection's inverse information ``Minv`` and
    ``G_c = A_c Minv A_c^T`` (C, 6, 6), kept by rank-6 updates."""

    def __init__(self, A: np.ndarray):
        self.A = A
        self.C, _, self.r = A.shape
        self.reset([])

    def reset(self, selected) -> None:
        M = np.eye(self.r) + sum((self.A[c].T @ self.A[c] for c in selected), np.zeros((self.r,) * 2))
        self.Minv = np.linalg.inv(M)
        self.selected = list(selected)
        AM = self.A.reshape(-1, self.r) @ self.Minv
        self.G = np.einsum("cir,cjr->cij", AM.reshape(self.C, 6, self.r), self.A)

    def gains(self) -> np.ndarray:
        """(C,) the increase of log det M from adding each candidate."""
        return np.linalg.slogdet(np.eye(6) + self.G)[1]

    def _update(self, c: int, sign: float) -> None:
        u = self.Minv @ self.A[c].T  # (r, 6)
        S = np.eye(6) + sign * self.G[c]
        Sinv = np.linalg.inv(S)
        H = (self.A.reshape(-1, self.r) @ u).reshape(self.C, 6, 6)
        self.G -= sign * (H @ Sinv @ np.swapaxes(H, 1, 2))
        self.Minv -= sign * (u @ Sinv @ u.T)

    def add(self, c: int) -> None:
        self._update(c, 1.0)
        self.selected.append(c)

    def remove(self, c: int) -> None:
        self._update(c, -1.0)
        self.selected.remove(c)


def _select(A: np.ndarray, n: int, passes: int = 3) -> tuple[list[int], float]:
    """D-optimal selection of ``n`` of the candidate blocks ``A`` (C, 6, r): greedy, then
    exchange passes.  Returns the indices and ``log det(I + sum A_c^T A_c)``."""
    d = _Design(A)
    taken = np.zeros(d.C, dtype=bool)
    for _ in range(n):
        g = np.where(taken, -np.inf, d.gains())
        c = int(np.argmax(g))
        d.add(c)
        taken[c] = True
    for _ in range(passes):
        swaps = 0
        for i in list(d.selected):
            d.remove(i)
            taken[i] = False
            g = np.where(taken, -np.inf, d.gains())
            c = int(np.argmax(g))
            if g[c] <= g[i] * (1 + 1e-12):
                c = i  # keep it unless another is strictly better
            d.add(c)
            taken[c] = True
            swaps += c != i
        d.reset(d.selected)  # no drift from the updates
        if swaps == 0:
            break
    logdet = float(np.linalg.slogdet(np.linalg.inv(d.Minv))[1])
    return d.selected, logdet


def _blocks(asm: Assembler, Q: np.ndarray, columns: np.ndarray, prior: np.ndarray,
            sigma_position: float, sigma_rotation: float):
    """Scaled Jacobian blocks at poses ``Q`` (M, 6N): whitened (M, 6, p) and in metres and
    radians per prior size (M, 6, p), on ``columns``."""
    rows = model_rows(asm, Q, None, sigma_position, sigma_rotation)
    _, J = evaluator(asm).evaluate(P.nominal_vector(asm), rows.L, rows.q0, rows.T_meas)
    Js = J[:, 0][..., columns] * prior[columns]  # tool rows only: (M, 6, p)
    return Js / rows.sigma[:, 0, :, None], Js


def predict(A_design: np.ndarray, J_valid: np.ndarray, estimable: np.ndarray,
            prior: np.ndarray, n_total: int) -> Prediction:
    """The :class:`Prediction` of a design with whitened scaled blocks ``A_design`` (n, 6, r)
    on the ``estimable`` parameters (indices into the full vector, r), validation blocks
    ``J_valid`` (V, 6, r) in m and rad per prior size."""
    r = estimable.size
    M = np.einsum("nir,nis->rs", A_design, A_design)
    w, V = np.linalg.eigh(M)
    rank = int(np.sum(w > RCOND**2 * max(w[-1], 1e-300)))
    std = np.full(n_total, np.nan)
    if rank < r:
        return Prediction(A_design.shape[0], std, np.inf, np.inf, rank, r)
    cov = (V / w) @ V.T  # scaled units
    std[estimable] = prior[estimable] * np.sqrt(np.diag(cov))
    JC = J_valid @ cov  # (V, 6, r)
    var = np.einsum("vir,vir->vi", JC, J_valid)  # (V, 6): variance per component
    return Prediction(A_design.shape[0], std, float(np.sqrt(np.mean(var[:, :3].sum(1)))),
                      float(np.sqrt(np.mean(var[:, 3:].sum(1)))), rank, r)


def plan(asm: Assembler, n_poses: int = 40, *, n_candidates: int = 2000,
         n_validation: int = 200, seed: int = 0, families=DEFAULT_FAMILIES,
         prior: dict | None = None, sigma_position: float = SIGMA_POSITION,
         sigma_rotation: float = SIGMA_ROTATION, margin: float = STROKE_MARGIN,
         passes: int = 3) -> Plan:
    """Choose ``n_poses`` measurement poses of ``asm`` among ``n_candidates`` random poses
    inside every limit (commanded legs at least ``margin`` x stroke from its ends), maximizing
    the D-optimality criterion; predict the result for the noise ``sigma_position`` m /
    ``sigma_rotation`` rad (per component), and the same for as many random candidates."""
    n = asm.n_platforms
    if n_poses < 1:
        raise InputError(f"poses: need at least 1, got {n_poses}")
    if n_candidates < n_poses:
        raise InputError(f"candidates: {n_candidates} candidates cannot give {n_poses} poses")
    with single_threaded_blas():
        rng = np.random.default_rng(seed)
        Qc = random_poses(asm, n_candidates, rng, margin)
        Qv = random_poses(asm, n_validation, rng, margin)
        columns = fitted_columns(n, families)
        prior_v = P.prior_vector(n, prior)
        Ac, _ = _blocks(asm, Qc, columns, prior_v, sigma_position, sigma_rotation)
        ident = identify(Ac.reshape(-1, columns.size), columns, spectrum=False)
        keep = ident.order[: ident.rank]  # positions in columns
        est = columns[keep]
        Ac = Ac[..., keep]
        _, Jv = _blocks(asm, Qv, est, prior_v, sigma_position, sigma_rotation)
        need = int(np.ceil(ident.rank / 6))
        if n_poses < need:
            raise InputError(f"poses: {n_poses} poses give {6 * n_poses} equations, fewer than "
                             f"the {ident.rank} identifiable parameters: plan at least {need} "
                             "(better 1.5-2x that)")
        sel, logdet = _select(Ac, n_poses, passes)
        rand = rng.choice(n_candidates, n_poses, replace=False)
        pred = predict(Ac[sel], Jv, est, prior_v, P.n_params(n))
        pred_rand = predict(Ac[rand], Jv, est, prior_v, P.n_params(n))
    Q = Qc[sel]
    return Plan(Q, leg_lengths(asm, Q), tool_pose(asm, Q), pred, pred_rand, logdet,
                n_candidates, {"families": list(families), "seed": seed,
                               "sigma_position": sigma_position,
                               "sigma_rotation": sigma_rotation, "margin": margin,
                               "n_validation": n_validation})
