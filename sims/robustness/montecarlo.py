"""Monte Carlo of internal disturbances through the exact nonlinear kinematics: the Python API.

Each sample perturbs the stack at a nominal pose ``Q`` (6N,), recomputes the tool pose with the
exact forward kinematics (never the linearization) and records the tool's error twist
``e = (dp, dtheta)`` (docs/conventions.md): ``dp`` (m) the position change in the world frame,
``dtheta`` (rad) the rotation vector of ``R_perturbed R_nominal^T``, world frame.

Disturbance models (:class:`Disturbance`; any combination):

* **pose** noise: every platform's pose parameter ``q_i,k`` gets an independent zero-mean error of
  standard deviation ``pose_sigma[k]`` (Gaussian, or uniform on ``+-sqrt(3) sigma`` so that
  ``sigma`` is the standard deviation in both cases);
* **legs** (actuator) noise: every leg length gets a Gaussian error of std ``leg_sigma`` (m) and
  each platform's pose is recovered from its six legs by Newton to ``tol`` (1e-12 m) from the
  nominal pose (a chord iteration over lanes, :func:`.lanes.legs_newton_lanes`, with
  ``kinematics.kernels.from_legs_platform`` for the rare lanes it does not settle);
* **joints** (manufacturing) errors: every coordinate of every base and top joint (in its plate's
  frame) gets a Gaussian error of std ``joint_sigma`` (m); the actuators hold their nominal lengths
  (plus leg noise if any) and each platform's pose is recovered by Newton with the perturbed joints.

Order when combined: legs and joints first (Newton), then the pose noise is added to the pose
Newton found (a compliance on top of the actuators).

Randomness (:mod:`.rng`) is counter-based, so a sample is a pure function of ``(seed, s)``, and
the statistics (:mod:`.stats`) are merged in chunk order: they depend on the seed and the chunk
size only, never on the thread count.  Memory is fixed: chunks (:mod:`.chunks`) run as tasks
of a few chunks on a thread pool, each task in its own rows of fixed buffers, merged in chunk
order as they finish.  Entry points: :func:`simulate`, :func:`sample_errors`,
:func:`first_order_mean_sq`.
"""

from __future__ import annotations

import math
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np

from assemblers.errors import InputError

from .chunks import run_chunks
from .rng import seed_key
from .stats import CHUNK_FIELDS, HIST_BINS, ErrorStats, StreamingStats

POSE_DISTS = ("gaussian", "uniform")
TASK_CHUNKS = 4  # chunks per task of simulate's thread pool


@dataclass(frozen=True, eq=False)
class Disturbance:
    """An internal disturbance model (any combination of the three; zero means off).

    Attributes:
        pose_sigma: (6,) std of every platform's pose error per component (x, y, z m; roll,
            pitch, yaw rad), or (6N,) one per platform parameter.
        pose_dist: "gaussian" or "uniform" (uniform on ``+-sqrt(3) sigma``: same std).
        leg_sigma: m, std of each actuator's length error (Gaussian).
        joint_sigma: m, std of each coordinate of each base and top joint (Gaussian, plate frame).
    """

    pose_sigma: tuple = (0.0,) * 6
    pose_dist: str = "gaussian"
    leg_sigma: float = 0.0
    joint_sigma: float = 0.0

    def __post_init__(self):
        try:
            ps = np.array(self.pose_sigma, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise InputError("Disturbance.pose_sigma: must be numbers") from None
        if ps.size == 0 or ps.size % 6:
            raise InputError(f"Disturbance.pose_sigma: 6 or 6N numbers, got {ps.size}")
        if not (np.isfinite(ps).all() and (ps >= 0).all()):
            raise InputError("Disturbance.pose_sigma: must be finite and >= 0")
        object.__setattr__(self, "pose_sigma", tuple(float(x) for x in ps))
        if self.pose_dist not in POSE_DISTS:
            raise InputError(f"Disturbance.pose_dist: one of {POSE_DISTS}, got {self.pose_dist!r}")
        for name in ("leg_sigma", "joint_sigma"):
            v = getattr(self, name)
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise InputError(f"Disturbance.{name}: must be a number") from None
            if not (math.isfinite(v) and v >= 0):
                raise InputError(f"Disturbance.{name}: must be finite and >= 0, got {v}")
            object.__setattr__(self, name, v)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The active models, among "pose", "legs", "joints"."""
        out = []
        if any(self.pose_sigma):
            out.append("pose")
        if self.leg_sigma > 0:
            out.append("legs")
        if self.joint_sigma > 0:
            out.append("joints")
        return tuple(out)

    def pose_std(self, n_platforms: int) -> np.ndarray:
        """(6N,) std of each pose parameter (m, rad)."""
        ps = np.asarray(self.pose_sigma)
        if ps.size == 6:
            return np.tile(ps, n_platforms)
        if ps.size != 6 * n_platforms:
            raise InputError(f"Disturbance.pose_sigma: {ps.size} numbers for {n_platforms} "
                             f"platforms (want 6 or {6 * n_platforms})")
        return ps.copy()

    def describe(self) -> str:
        """One line for people, with units."""
        parts = []
        if "pose" in self.kinds:
            ps = np.asarray(self.pose_sigma)
            if ps.size == 6:
                parts.append(f"pose ({self.pose_dist}) sigma xyz = "
                             f"{', '.join(f'{x:.3g}' for x in ps[:3])} m, rpy = "
                             f"{', '.join(f'{x:.3g}' for x in ps[3:])} rad")
            else:
                parts.append(f"pose ({self.pose_dist}) per-parameter sigma")
        if self.leg_sigma > 0:
            parts.append(f"legs sigma = {self.leg_sigma:.3g} m")
        if self.joint_sigma > 0:
            parts.append(f"joints sigma = {self.joint_sigma:.3g} m")
        return "; ".join(parts) if parts else "none"

    def to_dict(self) -> dict:
        return {"pose_sigma": list(self.pose_sigma), "pose_dist": self.pose_dist,
                "leg_sigma_m": self.leg_sigma, "joint_sigma_m": self.joint_sigma,
                "kinds": list(self.kinds)}


@dataclass(frozen=True, eq=False)
class Samples:
    """Individual samples (debug path, ``simulate(..., return_samples=True)``).

    ``errors`` (n, 6) twists (m, rad, world frame); ``Q`` (n, 6N) perturbed stack poses (m, rad);
    ``legs`` (n, N, 6) m commanded leg lengths; ``b``/``t`` (n, N, 6, 3) m perturbed joints
    (equal to the nominal ones without joint noise); ``ok`` (n,) bool Newton converged.
    """

    errors: np.ndarray
    Q: np.ndarray
    legs: np.ndarray
    b: np.ndarray
    t: np.ndarray
    ok: np.ndarray


MAX_RETURN_SAMPLES = 1_000_000


def _as_count(x, name: str, lo: int = 1) -> int:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise InputError(f"{name}: must be an integer, got {x!r}") from None
    if not (math.isfinite(v) and v == int(v) and v >= lo):
        raise InputError(f"{name}: must be an integer >= {lo}, got {x!r}")
    return int(v)


def _prepare(asm, Q, disturbance: Disturbance):
    """The kernels' arguments for a run at ``Q`` (6N,): geometry, the nominal legs and tool
    pose, the nominal angles' (cos, sin) and the inverse leg Jacobians (chord Newton)."""
    from assemblers.kinematics import api, kernels

    if not isinstance(disturbance, Disturbance):
        raise InputError("disturbance: must be a sims.robustness.Disturbance")
    n = asm.n_platforms
    Q = np.ascontiguousarray(api.as_array(Q, "Q", (6 * n,), batch=False))
    a = api.kernel_arrays(asm)
    L_nom = np.ascontiguousarray(api.leg_lengths(asm, Q))
    T_nom = api.forward_kinematics(asm, Q)
    pose_sig = np.ascontiguousarray(disturbance.pose_std(n))
    ang = Q.reshape(n, 6)[:, 3:]
    trig = np.ascontiguousarray(np.stack([np.cos(ang), np.sin(ang)], axis=-1).reshape(n, 6))
    Jinv = np.zeros((n, 6, 6))  # inverse leg Jacobians at Q (chord Newton, legs_newton_lanes)
    Jl, R = np.empty((6, 6)), np.empty((3, 3))
    for i in range(n):
        kernels.platform_leg_jacobian(a.b[i], a.t[i], Q, 6 * i, Jl, R)
        try:
            Jinv[i] = np.linalg.inv(Jl)
        except np.linalg.LinAlgError:  # singular: no chord steps, every lane goes scalar
            Jinv[i] = 0.0
    return (a.b, a.t, a.T_mount, a.T_after, Q, trig, L_nom, Jinv, T_nom, pose_sig,
            disturbance.pose_dist == "uniform", disturbance.leg_sigma, disturbance.joint_sigma)


def simulate(asm, Q, disturbance: Disturbance, n_samples, seed: int = 0, *,
             chunk_size: int = 16384, progress: bool | None = False, desc: str | None = None,
             return_samples: bool = False, tol: float = 1e-12, max_iter: int = 30):
    """Monte Carlo statistics of the tool's error twist at the stack pose ``Q``.

    Args:
        asm: the :class:`assemblers.Assembler`.
        Q: (6N,) nominal stack pose (m, rad), bottom platform first.
        disturbance: a :class:`Disturbance`.
        n_samples: number of samples (an integer; ``1e8`` is accepted); memory does not grow
            with it.
        seed: integer >= 0; the same seed gives the same numbers on any thread count.
        chunk_size: samples per chunk (the unit of parallel work and of the merge order).
        progress: a tqdm bar on stderr (None: only when stderr is a terminal).
        desc: label of the progress bar.
        return_samples: also return the individual :class:`Samples` (True: all, <= 1e6; an
            integer k: the first k) -- the very samples of the statistics (debugging, tests).
        tol: m, Newton tolerance on the leg lengths (legs / joints models); max_iter its cap.

    Returns:
        :class:`.stats.ErrorStats` (with ``length_scale`` from the config), or
        ``(ErrorStats, Samples)`` with ``return_samples``.
    """
    n_samples = _as_count(n_samples, "n_samples")
    chunk_size = _as_count(chunk_size, "chunk_size")
    seed = _as_count(seed, "seed", lo=0)
    if not (math.isfinite(tol) and tol > 0):
        raise InputError(f"tol: must be a positive number, got {tol}")
    max_iter = _as_count(max_iter, "max_iter")
    args = _prepare(asm, Q, disturbance)
    n_store = 0
    if return_samples:
        want = n_samples if return_samples is True else _as_count(return_samples,
                                                                   "return_samples")
        if want > MAX_RETURN_SAMPLES:
            raise InputError(f"return_samples: at most {MAX_RETURN_SAMPLES} samples can be "
                             f"returned, asked for {want}")
        n_store = min(want, n_samples)
    outs = _sample_outputs(n_store, asm.n_platforms)
    key = seed_key(seed)
    ls = float(asm.sensitivity.length_scale)
    acc = StreamingStats(ls)
    n_chunks = -(-n_samples // chunk_size)
    # the chunks run as tasks of up to TASK_CHUNKS consecutive chunks on a pool of threads
    # (run_chunks releases the GIL), up to two tasks per thread in flight, each in its own rows
    # of the buffers, merged in chunk order as they finish: no thread waits for a batch's
    # slowest chunk.  One thread, or one chunk: no pool.  (Numba's prange over the chunks, before,
    # compiled the whole chunk kernel a second time: 13 s of a first run.)
    threads = min(n_chunks, numba.get_num_threads())
    slots = 2 * threads if threads > 1 else 1
    per_task = max(1, min(TASK_CHUNKS, -(-n_chunks // slots)))
    rows = slots * TASK_CHUNKS  # (the same for every sample count: fixed memory)
    # buffers, reused: fresh pages cost a fault each (slow in some sandboxes)
    counts = np.zeros(rows, dtype=np.int64)
    recs = np.zeros((rows, CHUNK_FIELDS))
    hists = np.zeros((rows, 2, HIST_BINS), dtype=np.int64)
    failed = np.zeros(rows, dtype=np.int64)
    tail = (ls, float(tol), max_iter, key, counts, recs, hists, failed, *outs)

    def task(c0, r0, k):  # chunks c0 .. c0 + k - 1 into rows r0 .. r0 + k - 1
        run_chunks(r0, r0 + k, c0 - r0, chunk_size, n_samples, *args, *tail)

    bar = None
    if progress is None or progress:
        from tqdm import tqdm

        bar = tqdm(total=n_samples, desc=desc or "Monte Carlo", unit="sample", unit_scale=True,
                   disable=None if progress is None else False, leave=False)

    def merge(r0, k):
        acc.merge(counts[r0:r0 + k], recs[r0:r0 + k], hists[r0:r0 + k], failed[r0:r0 + k])
        if bar is not None:
            bar.update(int(counts[r0:r0 + k].sum() + failed[r0:r0 + k].sum()))

    pool = ThreadPoolExecutor(threads, thread_name_prefix="montecarlo") if threads > 1 else None
    pending = deque()  # (future, first row, chunks) in chunk order
    try:
        for t, c0 in enumerate(range(0, n_chunks, per_task)):
            if len(pending) == slots:  # the oldest task's rows are the ones this task takes
                fut, r, k = pending.popleft()
                fut.result()
                merge(r, k)
            r0, k = (t % slots) * per_task, min(per_task, n_chunks - c0)
            for a in (counts, recs, hists, failed):
                a[r0:r0 + k] = 0
            if pool is None:
                task(c0, r0, k)
                merge(r0, k)
            else:
                pending.append((pool.submit(task, c0, r0, k), r0, k))
        while pending:
            fut, r, k = pending.popleft()
            fut.result()
            merge(r, k)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()
    stats = acc.result()
    if not return_samples:
        return stats
    e, Qs, L, bb, tt, ok = outs
    return stats, Samples(errors=e, Q=Qs, legs=L, b=bb, t=tt, ok=ok)


def _sample_outputs(n_store: int, n: int):
    return (np.empty((n_store, 6)), np.empty((n_store, 6 * n)), np.empty((n_store, n, 6)),
            np.empty((n_store, n, 6, 3)), np.empty((n_store, n, 6, 3)),
            np.empty(n_store, dtype=np.bool_))


def sample_errors(asm, Q, disturbance: Disturbance, n_samples, seed: int = 0, *,
                  tol: float = 1e-12, max_iter: int = 30) -> Samples:
    """The first ``n_samples`` (<= 1e6) samples one by one: the same numbers that
    :func:`simulate` with the same seed puts into its statistics.  See :class:`Samples`."""
    return simulate(asm, Q, disturbance, n_samples, seed, tol=tol, max_iter=max_iter,
                    return_samples=True)[1]


def first_order_mean_sq(asm, Q, disturbance: Disturbance) -> float:
    """First-order prediction (docs/conventions.md) of ``E || W_out e ||^2`` (m^2) for pose and leg noise:
    ``|| W_out J_Q W_pose ||_F^2 + || W_out J_L sigma_leg ||_F^2``, ``W_out`` from the config.
    Joint errors have no closed-form Jacobian here: NaN if ``joint_sigma > 0``."""
    import assemblers

    if disturbance.joint_sigma > 0:
        return float("nan")
    w_out = asm.sensitivity.w_out[:, None]
    total = 0.0
    if "pose" in disturbance.kinds:
        J = assemblers.jacobian(asm, Q, wrt="pose")
        total += float(np.sum((w_out * J * disturbance.pose_std(asm.n_platforms)[None, :]) ** 2))
    if disturbance.leg_sigma > 0:
        J = assemblers.jacobian(asm, Q, wrt="legs")
        total += float(np.sum((w_out * J * disturbance.leg_sigma) ** 2))
    return total


__all__ = ["MAX_RETURN_SAMPLES", "POSE_DISTS", "Disturbance", "ErrorStats", "Samples",
           "first_order_mean_sq", "sample_errors", "seed_key", "simulate"]
