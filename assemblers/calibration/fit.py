"""Fit the error model to a measurement campaign: ``calibrate(asm, measurements) ->
CalibrationResult`` (docs/calibration.md).

1. The scaled, whitened identification Jacobian at the nominal model (:mod:`.core`), its
   column-pivoted QR: the estimable parameters; the rest are fixed at their nominal values and
   reported with the estimated parameters that absorb them.
2. Nonlinear least squares on the estimable parameters (SciPy's ``least_squares``, trust
   region reflective or Levenberg-Marquardt, optionally a robust loss) with the Jacobian by JAX
   forward-mode autodiff through each platform's pose from its legs (implicit derivative).
3. The covariance ``s^2 (A^T A)^-1`` at the solution (``s^2`` the a-posteriori variance factor,
   the residuals' chi-square per degree of freedom) and the standard deviations.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize

from ..errors import InputError
from ..geometry.api import so3_log
from ..kinematics.api import stack_frames
from ..model import Assembler
from . import params as P
from .core import (
    RCOND,
    SIGMA_POSITION,
    SIGMA_ROTATION,
    Identifiability,
    Rows,
    evaluator,
    fitted_columns,
    identify,
    model_rows,
    prepare,
    single_threaded_blas,
)
from .measurements import Measurements
from .poses import random_poses

LOSSES = ("linear", "soft_l1", "huber", "cauchy", "arctan")
METHODS = ("trf", "lm")
MAX_ROTATION_RESIDUAL = 0.5  # rad: a measured frame this far from the nominal one is a wrong row


@dataclass(frozen=True)
class RowResiduals:
    """Residuals per measured pose: ``position`` (M, F) m and ``rotation`` (M, F) rad, the
    norms of each measured frame's error twist (F frames: the tool, then the measured plates,
    named in ``frames``); ``whitened`` (M,) the norm of the row's residuals in standard
    deviations."""

    frames: tuple[str, ...]
    position: np.ndarray
    rotation: np.ndarray
    whitened: np.ndarray

    def rms(self) -> dict:
        """RMS over the rows of the tool's position (m) and rotation (rad) error and of the
        whitened residual per component."""
        k = 6 * len(self.frames)
        return {"position_m": float(np.sqrt(np.mean(self.position[:, 0] ** 2))),
                "rotation_rad": float(np.sqrt(np.mean(self.rotation[:, 0] ** 2))),
                "whitened": float(np.sqrt(np.mean(self.whitened ** 2) / k))}


@dataclass(frozen=True)
class CalibrationResult:
    """The result of :func:`calibrate`.

    ``assembler``: the calibrated :class:`Assembler` (it works in commanded lengths: its
    ``from_legs`` of commanded legs is the measured pose); ``config``: its config dict
    (``assemblers.model.writer.write_config`` writes it); ``names``, ``nominal``,
    ``estimate`` (P,): the full parameter vector (:mod:`.params`: joints m, offsets m, scales,
    mount/tool corrections m and rad); ``std`` (P,): standard deviations, NaN where fixed;
    ``status`` (P,): "estimated", "unidentifiable" (fixed at nominal) or "not fitted" (its
    family was left out); ``unidentifiable``: per fixed parameter ``{"name", "absorbed_by":
    [(name, coefficient), ...]}`` (the estimated parameters that take up its effect, as
    d(estimated)/d(fixed)); ``covariance`` (r, r) of the estimated parameters (in the order of
    ``identifiability.estimated``); ``before``/``after``: :class:`RowResiduals` at the nominal
    and the calibrated model; ``identifiability``: the QR of the scaled Jacobian at nominal;
    ``generic_rank``: the estimable count with generic poses (random ones); ``variance_factor``:
    chi-square per degree of freedom after the fit; ``success``, ``message``, ``nfev``,
    ``njev``, ``time_s``, ``options``."""

    assembler: Assembler
    config: dict
    names: tuple[str, ...]
    nominal: np.ndarray
    estimate: np.ndarray
    std: np.ndarray
    status: tuple[str, ...]
    unidentifiable: list
    covariance: np.ndarray
    before: RowResiduals
    after: RowResiduals
    identifiability: Identifiability
    generic_rank: int
    n_equations: int
    variance_factor: float
    success: bool
    message: str
    nfev: int
    njev: int
    time_s: float
    options: dict = field(default_factory=dict)

    @property
    def estimated(self) -> np.ndarray:
        """Indices of the estimated parameters (into the full vector)."""
        return self.identifiability.estimated

    def summary(self) -> dict:
        """A JSON-ready summary (the CLI's ``--json``)."""
        est = self.estimated
        return {
            "success": self.success, "message": self.message,
            "n_rows": int(self.before.position.shape[0]), "n_equations": self.n_equations,
            "n_parameters": int(len(self.identifiability.columns)),
            "n_estimated": int(est.size), "generic_rank": self.generic_rank,
            "n_unidentifiable": len(self.unidentifiable),
            "variance_factor": self.variance_factor,
            "before": self.before.rms(), "after": self.after.rms(),
            "nfev": self.nfev, "njev": self.njev, "time_s": self.time_s,
            "options": self.options,
            "parameters": [{"name": self.names[j], "nominal": float(self.nominal[j]),
                            "estimate": float(self.estimate[j]), "std": float(self.std[j]),
                            "unit": P.unit(len(self.assembler.platforms), int(j))}
                           for j in est],
            "unidentifiable": self.unidentifiable,
        }


def _row_residuals(asm: Assembler, rows: Rows, r: np.ndarray) -> RowResiduals:
    names = ("tool", *(f"top_{i}" for i in range(1, asm.n_platforms + 1)))
    m = rows.mask
    rw = (r / rows.sigma)[:, m].reshape(r.shape[0], -1)
    return RowResiduals(tuple(n for n, k in zip(names, m) if k),
                        np.linalg.norm(r[:, m, :3], axis=2), np.linalg.norm(r[:, m, 3:], axis=2),
                        np.linalg.norm(rw, axis=1))


def _check_orientations(asm: Assembler, rows: Rows, meas: Measurements) -> None:
    """A measured frame more than :data:`MAX_ROTATION_RESIDUAL` from the nominal model's is a
    wrong row (another frame, degrees for radians), not a calibration error."""
    _, tops, T_tool = stack_frames(asm, rows.q0)
    model = np.concatenate([T_tool[:, None], tops], axis=1)
    for f in np.nonzero(rows.mask)[0]:
        E = rows.T_meas[:, f, :3, :3] @ np.swapaxes(model[:, f, :3, :3], 1, 2)
        ang = np.linalg.norm(so3_log(E), axis=1)
        if np.any(ang > MAX_ROTATION_RESIDUAL):
            m = int(np.argmax(ang))
            what = "tool" if f == 0 else f"top plate {f}"
            raise InputError(f"{meas.where(m)}: the measured {what} orientation is {ang[m]:.3g} "
                             f"rad from the nominal model's (more than {MAX_ROTATION_RESIDUAL} "
                             "rad): another frame, degrees instead of radians, or the tracker "
                             "not registered to the world frame?")


def generic_rank(asm: Assembler, columns: np.ndarray, prior: np.ndarray, mask=None,
                 rcond: float = RCOND, seed: int = 0) -> int:
    """How many of ``columns`` generic poses identify: the rank of the scaled Jacobian at
    random poses inside the limits (enough of them for every column)."""
    count = int(np.ceil(columns.size / 6)) + 8
    Q = random_poses(asm, count, np.random.default_rng(seed))
    rows = model_rows(asm, Q, mask)
    _, J = evaluator(asm).evaluate(P.nominal_vector(asm), rows.L, rows.q0, rows.T_meas)
    A = rows.whiten_jacobian(J)[:, columns] * prior[columns]
    return identify(A, columns, rcond, spectrum=False).rank


def _unidentifiable(ident: Identifiability, names, prior, top: int = 3) -> list:
    out = []
    est = ident.estimated
    for jj, j in enumerate(ident.fixed):
        col = ident.regroup[:, jj] if ident.regroup.size else np.zeros(0)
        # A[:, j] = A[:, est] @ col: a change d of p_j (scaled) looks like est changing by col*d
        phys = col * prior[est] / prior[j]
        pick = np.argsort(-np.abs(phys))[:top]
        out.append({"name": names[j],
                    "absorbed_by": [(names[est[i]], float(phys[i])) for i in pick
                                    if abs(phys[i]) > 1e-9]})
    return out


def calibrate(asm: Assembler, measurements, *, families=("joints", "offsets", "mount", "tool"),
              prior: dict | None = None, sigma_position: float = SIGMA_POSITION,
              sigma_rotation: float = SIGMA_ROTATION, loss: str = "linear",
              f_scale: float = 3.0, method: str = "trf", rcond: float = RCOND,
              max_nfev: int = 100, name: str | None = None,
              progress: Callable[[int, float], None] | None = None) -> CalibrationResult:
    """Calibrate ``asm`` (the nominal model) from ``measurements``.

    ``measurements``: a :class:`~.measurements.Measurements` or the path of a measurement CSV.
    ``families``: which parameters to fit, of ``joints``, ``offsets``, ``scales``, ``mount``,
    ``tool`` (the others stay nominal); ``prior``: their prior sizes (the Jacobian's column
    scaling; :data:`.params.DEFAULT_PRIOR`); ``sigma_position`` m, ``sigma_rotation`` rad:
    standard deviations per component of rows that give none; ``loss``: ``least_squares``'s
    loss (``"soft_l1"``, ``"huber"``, ... are robust to outlier rows; ``f_scale`` in standard
    deviations); ``method``: "trf" or "lm" (LM only with the linear loss); ``rcond``: the
    identifiability threshold (:data:`.core.RCOND`); ``progress(evaluations, cost)``: called
    after each model evaluation.  Raises :class:`InputError` for bad measurements (a leg
    outside its stroke, a row without a pose, fewer equations than estimable parameters).
    """
    with single_threaded_blas():
        return _calibrate(asm, measurements, families, prior, sigma_position, sigma_rotation,
                          loss, f_scale, method, rcond, max_nfev, name, progress)


def _calibrate(asm, measurements, families, prior, sigma_position, sigma_rotation, loss,
               f_scale, method, rcond, max_nfev, name, progress) -> CalibrationResult:
    t_start = time.perf_counter()
    if isinstance(measurements, Measurements):
        meas = measurements
    else:
        from .measurements import read_measurements

        meas = read_measurements(measurements, asm.n_platforms)
    if loss not in LOSSES:
        raise InputError(f"loss: must be one of {', '.join(LOSSES)}, got {loss!r}")
    if method not in METHODS:
        raise InputError(f"method: must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "lm" and loss != "linear":
        raise InputError("method 'lm' takes only the linear loss (use 'trf' for a robust one)")
    n = asm.n_platforms
    rows = prepare(asm, meas, sigma_position, sigma_rotation)
    _check_orientations(asm, rows, meas)
    names, p0 = P.param_names(n), P.nominal_vector(asm)
    prior_v = P.prior_vector(n, prior)
    columns = fitted_columns(n, families)
    ev = evaluator(asm)
    r0, J0 = ev.evaluate(p0, rows.L, rows.q0, rows.T_meas)
    A0 = rows.whiten_jacobian(J0)[:, columns] * prior_v[columns]
    ident = identify(A0, columns, rcond)
    g_rank = generic_rank(asm, columns, prior_v, rows.mask, rcond)
    m_eq = rows.n_equations
    if m_eq < g_rank:
        per = 6 * int(rows.mask.sum())
        raise InputError(f"{meas.source}: {meas.n_rows} measured poses give {m_eq} equations, "
                         f"fewer than the {g_rank} identifiable parameters of this model: "
                         f"measure at least {int(np.ceil(g_rank / per))} poses (better 1.5-2x "
                         "that, planned with 'assemblers calibrate plan')")
    est = ident.estimated
    if method == "lm" and m_eq < est.size:
        raise InputError("method 'lm' needs at least as many equations as parameters")
    cache: dict = {}
    counter = {"nfev": 0}

    def full(theta):
        p = p0.copy()
        p[est] = p0[est] + prior_v[est] * theta
        return p

    def evaluate(theta):
        key = theta.tobytes()
        if key not in cache:
            cache.clear()
            r, J = ev.evaluate(full(theta), rows.L, rows.q0, rows.T_meas)
            cache[key] = (rows.whiten(r), rows.whiten_jacobian(J)[:, est] * prior_v[est], r)
            counter["nfev"] += 1
            if progress is not None:
                f = cache[key][0]
                progress(counter["nfev"], float(0.5 * f @ f) if np.all(np.isfinite(f)) else np.inf)
        return cache[key]

    x0 = np.zeros(est.size)
    cache[x0.tobytes()] = (rows.whiten(r0), rows.whiten_jacobian(J0)[:, est] * prior_v[est], r0)
    opts = dict(method=method, x_scale=1.0, xtol=1e-12, ftol=1e-12, gtol=1e-10,
                max_nfev=max_nfev)
    if method == "trf":
        opts.update(loss=loss, f_scale=f_scale)
    res = scipy.optimize.least_squares(lambda x: evaluate(x)[0], x0,
                                       jac=lambda x: evaluate(x)[1], **opts)
    p_hat = full(res.x)
    f1, A1, r1 = evaluate(res.x)  # one compiled kind of call (residuals with the Jacobian)
    if loss != "linear":
        A1 = res.jac  # scaled by the loss's weights: J^T J is its Gauss-Newton Hessian
    dof = m_eq - est.size
    vf = float(f1 @ f1 / dof) if dof > 0 else 1.0
    U, s, Vt = np.linalg.svd(A1, full_matrices=False)
    cov_theta = (Vt.T / s**2) @ Vt * vf
    cov = cov_theta * np.outer(prior_v[est], prior_v[est])
    std = np.full(p0.size, np.nan)
    std[est] = np.sqrt(np.diag(cov))
    status = ["not fitted"] * p0.size
    for j in est:
        status[j] = "estimated"
    for j in ident.fixed:
        status[j] = "unidentifiable"
    cal = P.assembler_from_vector(asm, p_hat, name=name or f"{asm.name}-calibrated",
                                  description=f"{asm.name} calibrated from {meas.source} "
                                  f"({meas.n_rows} poses)")
    ok = bool(res.success) and bool(np.all(np.isfinite(f1)))
    return CalibrationResult(
        assembler=cal.asm, config=cal.config, names=names, nominal=p0, estimate=p_hat,
        std=std, status=tuple(status), unidentifiable=_unidentifiable(ident, names, prior_v),
        covariance=cov, before=_row_residuals(asm, rows, r0),
        after=_row_residuals(asm, rows, r1), identifiability=ident, generic_rank=g_rank,
        n_equations=m_eq, variance_factor=vf, success=ok, message=str(res.message),
        nfev=int(res.nfev), njev=int(res.njev or 0), time_s=time.perf_counter() - t_start,
        options={"families": list(families), "loss": loss, "f_scale": f_scale,
                 "method": method, "rcond": rcond, "sigma_position": sigma_position,
                 "sigma_rotation": sigma_rotation, "source": meas.source})
