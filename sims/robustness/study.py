"""Robustness study: how much does the least-sensitive pose reduce the tool's error?

For a tool target, :func:`run_study` solves the redundant IK for the optimal pose (criterion
``fn`` = ``|| W_out J_Q W_in ||_F``, or ``fn_legs`` with ``J_L``), for the ``even`` and
``nearest`` baselines and takes random feasible poses that reach the same target
(``assemblers.ik.sample_solutions``); then it runs the same Monte Carlo disturbance
(:mod:`.montecarlo`) at every pose and compares RMS and 99th-percentile errors.  With a config's
mass model (docs/statics.md) the poses of other criteria are compared too (by default ``loads``
and the blend ``fn:1,loads:0.2``), and every pose reports the tool's load-induced deflection
(``assemblers.deflection``, a bias the random errors add to) and its largest leg force.

Every pose is simulated with the same seed, so the same random disturbances (common random
numbers): differences between poses are then much more precise than each pose's own statistical
error.  The math core (``assemblers``) never imports this module.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from assemblers.errors import InputError

from .montecarlo import Disturbance, _as_count, first_order_mean_sq, simulate
from .stats import ErrorStats

#: largest standard deviation (m, rad) of the default disturbance; see :func:`default_disturbance`
DEFAULT_SIGMA = 1e-4
_PHYSICAL = 0.01  # config sigmas at or below this (m / rad) are taken as physical values


class TargetUnreachable(RuntimeError):
    """The optimal pose could not be found: ``ik_result`` says why (``reason``, ``message``)."""

    def __init__(self, ik_result):
        super().__init__(ik_result.message)
        self.ik_result = ik_result


@dataclass(frozen=True, eq=False)
class PoseResult:
    """One stack pose of a study and its Monte Carlo statistics.

    Attributes:
        label: "fn" (or the optimized criterion's name), "even", "nearest", another criterion
            compared ("loads", ...), "random 1", ...
        kind: "optimal", "baseline", "criterion" or "random".
        Q: (6N,) stack pose (m, rad) reaching the target.
        cost: the optimized criterion's cost at ``Q`` (config weights; docs/conventions.md).
        predicted_mean_sq: m^2, first-order ``|| W_out J W_in ||_F^2`` for the study's
            disturbance (NaN for joint errors).
        stats: :class:`.stats.ErrorStats` of the tool's error twist.
        scatter: (k, 6) the first k error twists of the run (m, rad), for plots.
        ik_message: the solver's message for solved poses ("" for random ones).
        deflection: (6,) the tool's deflection under the configured loads (m, rad; world
            frame; ``assemblers.deflection``), None without a load or leg stiffnesses.
        max_leg_force_n: N, the largest |leg force| at ``Q`` (NaN without a load).
    """

    label: str
    kind: str
    Q: np.ndarray
    cost: float
    predicted_mean_sq: float
    stats: ErrorStats
    scatter: np.ndarray = field(repr=False)
    ik_message: str = ""
    deflection: np.ndarray | None = None
    max_leg_force_n: float = math.nan

    @property
    def predicted_rms(self) -> float:
        """m, first-order prediction of ``stats.rms_weighted``."""
        return math.sqrt(self.predicted_mean_sq) if self.predicted_mean_sq >= 0 else math.nan

    def to_dict(self, histograms: bool = False) -> dict:
        return {"label": self.label, "kind": self.kind, "Q": self.Q.tolist(), "cost": self.cost,
                "predicted_mean_sq_weighted_m2": _num(self.predicted_mean_sq),
                "predicted_rms_weighted_m": _num(self.predicted_rms),
                "ik_message": self.ik_message, "stats": self.stats.to_dict(histograms),
                "deflection": None if self.deflection is None else self.deflection.tolist(),
                "deflection_m": _num(self.deflection_m),
                "max_leg_force_n": _num(self.max_leg_force_n)}

    @property
    def deflection_m(self) -> float:
        """m, the size of the position part of :attr:`deflection` (NaN without one)."""
        return math.nan if self.deflection is None else float(np.linalg.norm(self.deflection[:3]))


def _num(x):
    return None if x is None or not math.isfinite(x) else float(x)


#: the metrics compared between poses: name -> (ErrorStats attribute, unit, label)
METRICS = {
    "rms_weighted": ("rms_weighted", "m", "RMS weighted error"),
    "rms_position": ("rms_position", "m", "RMS position error"),
    "rms_rotation": ("rms_rotation", "rad", "RMS rotation error"),
    "p99_position": ("p99_position", "m", "p99 position error"),
    "p99_rotation": ("p99_rotation", "rad", "p99 rotation error"),
}


@dataclass(frozen=True, eq=False)
class StudyResult:
    """Result of :func:`run_study` for one target.

    Attributes:
        config: the Assembler's name; ``n_platforms``: N.
        target: (4, 4) world_from_tool target; ``target_pose``: (6,) (x, y, z m, roll, pitch,
            yaw rad).
        criterion: the optimized criterion ("fn", "fn_legs" or "condition").
        disturbance: the :class:`.montecarlo.Disturbance` simulated.
        length_scale: m, the ``l`` of ``W_out``.
        n_samples, seed, chunk_size: Monte Carlo settings (the same for every pose).
        poses: the :class:`PoseResult` s, the optimal pose first.
        skipped: label -> why a baseline pose is missing (e.g. infeasible).
        time_s: wall time of the study (IK and Monte Carlo).
    """

    config: str
    n_platforms: int
    target: np.ndarray
    target_pose: np.ndarray
    criterion: str
    disturbance: Disturbance
    length_scale: float
    n_samples: int
    seed: int
    chunk_size: int
    poses: tuple[PoseResult, ...]
    skipped: dict
    time_s: float

    @property
    def optimal(self) -> PoseResult:
        """The optimized pose."""
        return self.poses[0]

    def pose(self, label: str) -> PoseResult:
        """The pose with this label (KeyError if absent)."""
        for p in self.poses:
            if p.label == label:
                return p
        raise KeyError(label)

    def reduction(self, label: str, metric: str = "rms_weighted") -> float:
        """``1 - metric(optimal) / metric(label)``: the fraction of pose ``label``'s error that
        the optimal pose removes (positive: the optimal pose is better).  ``metric``: a key of
        :data:`METRICS`."""
        attr = METRICS[metric][0]
        base = getattr(self.pose(label).stats, attr)
        return 1.0 - getattr(self.optimal.stats, attr) / base if base > 0 else math.nan

    def reductions(self) -> dict:
        """label -> metric -> reduction, for every pose other than the optimal one."""
        return {p.label: {m: self.reduction(p.label, m) for m in METRICS}
                for p in self.poses[1:]}

    def to_dict(self, histograms: bool = False) -> dict:
        """JSON-ready dict (units in the key names)."""
        rand = [p for p in self.poses if p.kind == "random"]
        summary = {}
        if rand:
            for m in METRICS:
                vals = np.array([self.reduction(p.label, m) for p in rand])
                summary[m] = {"mean": float(vals.mean()), "min": float(vals.min()),
                              "max": float(vals.max())}
        return {
            "config": self.config, "n_platforms": self.n_platforms,
            "target_pose": self.target_pose.tolist(), "target_T": self.target.tolist(),
            "criterion": self.criterion, "disturbance": self.disturbance.to_dict(),
            "length_scale_m": self.length_scale, "n_samples": self.n_samples, "seed": self.seed,
            "chunk_size": self.chunk_size, "time_s": self.time_s,
            "poses": [p.to_dict(histograms) for p in self.poses],
            "reductions": {k: {m: _num(v) for m, v in d.items()}
                           for k, d in self.reductions().items()},
            "random_reduction_summary": summary,
            "skipped": dict(self.skipped),
        }


def default_disturbance(asm, kinds: tuple[str, ...] | None = None) -> Disturbance:
    """The disturbance a study uses when none is given.

    ``kinds``: among "pose", "legs", "joints" (default: the config's ``[sensitivity] wrt``, i.e.
    pose noise for "pose" and actuator noise for "legs").  Standard deviations come from the
    config's ``[sensitivity]`` sigmas when they look physical (<= 0.01 m or rad), else they are
    scaled so the largest is :data:`DEFAULT_SIGMA` (0.1 mm / 0.1 mrad), keeping their ratio,
    so the study's ``W_in`` is proportional to the one the optimizer used.  Joint errors default
    to :data:`DEFAULT_SIGMA` m.
    """
    s = asm.sensitivity
    kinds = tuple(kinds) if kinds else (("legs",) if s.wrt == "legs" else ("pose",))
    bad = [k for k in kinds if k not in ("pose", "legs", "joints")]
    if bad:
        raise InputError(f"kinds: unknown disturbance {bad[0]!r} (pose, legs or joints)")
    pose = (0.0,) * 6
    if "pose" in kinds:
        st, sr = s.sigma_translation, s.sigma_rotation
        scale = 1.0 if max(st, sr) <= _PHYSICAL else DEFAULT_SIGMA / max(st, sr)
        pose = (st * scale,) * 3 + (sr * scale,) * 3
    leg = 0.0
    if "legs" in kinds:
        leg = s.sigma_leg if s.sigma_leg <= _PHYSICAL else DEFAULT_SIGMA
    joint = DEFAULT_SIGMA if "joints" in kinds else 0.0
    return Disturbance(pose_sigma=pose, leg_sigma=leg, joint_sigma=joint)


def default_study_criterion(asm, disturbance: Disturbance) -> str:
    """The criterion matching the disturbance: "fn" (J_Q) for pose noise alone, "fn_legs"
    (J_L) for actuator noise alone, else the config's default."""
    if disturbance.kinds == ("pose",):
        return "fn"
    if disturbance.kinds == ("legs",):
        return "fn_legs"
    from assemblers.ik import default_criterion

    return default_criterion(asm)


def run_study(asm, T_target, disturbance: Disturbance | None = None, n_samples=1_000_000,
              seed: int = 0, *, criterion: str | None = None,
              baselines: tuple[str, ...] = ("even", "nearest"), n_random: int = 5,
              chunk_size: int = 16384, n_scatter: int = 2000, n_starts: int = 1,
              progress: bool | None = None, solve_kwargs: dict | None = None,
              compare: tuple[str, ...] | None = None) -> StudyResult:
    """Monte Carlo comparison of the optimal pose with baselines and random poses for one target.

    Args:
        asm: the :class:`assemblers.Assembler`.
        T_target: (4, 4) world_from_tool target (m).
        disturbance: what to simulate (default: :func:`default_disturbance`).
        n_samples: Monte Carlo samples per pose (fixed memory whatever the count).
        seed: integer >= 0: the Monte Carlo seed (the same disturbances at every pose) and the
            seed of the random feasible poses.
        criterion: the optimized criterion, "fn", "fn_legs", "condition", a criterion of the
            loads or a blend such as "fn:1,loads:0.2" (docs/statics.md; default:
            :func:`default_study_criterion`).
        compare: further criteria whose poses are studied too (kind "criterion"); None: "loads"
            and "fn:1,loads:0.2" when the config has a mass model, else none.
        baselines: baseline criteria to compare with ("even", "nearest").
        n_random: random feasible poses reaching the target (``ik.sample_solutions``).
        chunk_size: Monte Carlo chunk size.
        n_scatter: error samples kept per pose for scatter plots.
        n_starts: IK starts for the optimal pose.
        progress: tqdm bars on stderr (None: only on a terminal; False: never).
        solve_kwargs: extra keyword arguments for ``assemblers.solve_ik``.

    Returns a :class:`StudyResult`.  Raises :class:`TargetUnreachable` when the optimal pose
    cannot be found (the IK result says why), :class:`assemblers.InputError` on bad input.
    """
    import assemblers
    from assemblers import ik
    from assemblers.geometry.api import transform_to_pose
    from assemblers.kinematics.api import as_array

    t0 = time.perf_counter()
    T_target = as_array(T_target, "T_target", (4, 4), batch=False)
    disturbance = disturbance if disturbance is not None else default_disturbance(asm)
    if not isinstance(disturbance, Disturbance):
        raise InputError("disturbance: must be a sims.robustness.Disturbance")
    if not disturbance.kinds:
        raise InputError("disturbance: every sigma is zero; nothing to simulate")
    from assemblers.ik.custom import resolve
    from assemblers.statics.loads import has_load, has_stiffness, load_arrays

    criterion = criterion or default_study_criterion(asm, disturbance)
    if criterion in ("even", "nearest"):
        raise InputError(f"criterion: {criterion!r} is a baseline (see baselines), not optimized")
    criterion = resolve(criterion)
    loaded = has_load(load_arrays(asm))
    if compare is None:
        compare = ("loads", "fn:1,loads:0.2") if loaded else ()
    compare = tuple(c for c in (resolve(c) for c in compare) if c != criterion)
    for b in baselines:
        if b not in ("even", "nearest"):
            raise InputError(f"baselines: 'even' or 'nearest', got {b!r}")
    if not (isinstance(n_random, int | np.integer) and n_random >= 0):
        raise InputError(f"n_random: must be an integer >= 0, got {n_random!r}")
    n_samples = int(_as_count(n_samples, "n_samples"))
    seed = int(_as_count(seed, "seed", 0))
    kw = dict(solve_kwargs or {})

    res = assemblers.solve_ik(asm, T_target, criterion=criterion, n_starts=n_starts, **kw)
    if not res.success:
        raise TargetUnreachable(res)
    entries = [(criterion, "optimal", res.Q, res.message)]
    skipped = {}
    for names, kind in ((baselines, "baseline"), (compare, "criterion")):
        for c in names:
            rc = assemblers.solve_ik(asm, T_target, criterion=c, **kw)
            if rc.success:
                entries.append((c, kind, rc.Q, rc.message))
            else:
                skipped[c] = rc.message
    if n_random:
        rand = _random_solutions(asm, T_target, n_random, seed)
        for i, q in enumerate(rand):
            entries.append((f"random {i + 1}", "random", q, ""))
        if len(rand) < n_random:
            skipped["random"] = f"only {len(rand)} of {n_random} random feasible poses found"

    poses = []
    for label, kind, Q, msg in entries:
        Q = np.array(Q, dtype=np.float64)
        k = min(n_scatter, n_samples)
        stats, smp = simulate(asm, Q, disturbance, n_samples, seed, chunk_size=chunk_size,
                              progress=progress, desc=f"{label:>9}", return_samples=max(k, 1))
        scatter = np.ascontiguousarray(smp.errors[smp.ok][:k])
        Q.setflags(write=False)
        scatter.setflags(write=False)
        poses.append(PoseResult(
            label=label, kind=kind, Q=Q, cost=ik.criterion_cost(asm, Q, criterion),
            predicted_mean_sq=first_order_mean_sq(asm, Q, disturbance), stats=stats,
            scatter=scatter, ik_message=msg,
            deflection=(assemblers.deflection(asm, Q) if loaded and has_stiffness(load_arrays(asm))
                        else None),
            max_leg_force_n=(float(np.abs(assemblers.leg_forces(asm, Q)).max()) if loaded
                             else math.nan)))
    T_target = T_target.copy()
    T_target.setflags(write=False)
    return StudyResult(
        config=asm.name, n_platforms=asm.n_platforms, target=T_target,
        target_pose=transform_to_pose(T_target), criterion=criterion, disturbance=disturbance,
        length_scale=float(asm.sensitivity.length_scale), n_samples=n_samples, seed=seed,
        chunk_size=int(chunk_size), poses=tuple(poses), skipped=skipped,
        time_s=time.perf_counter() - t0)


def _random_solutions(asm, T_target, n: int, seed: int) -> np.ndarray:
    """Up to ``n`` random feasible poses reaching the target: ``ik.sample_solutions`` with its
    default spread, then narrower and wider ones when too few draws are feasible (the even split
    it samples around can itself be infeasible far from home)."""
    from assemblers import ik

    found = np.zeros((0, 6 * asm.n_platforms))
    for k, spread in enumerate((1.0, 0.5, 0.25, 2.0)):
        more = ik.sample_solutions(asm, T_target, n - len(found), seed=seed + k, spread=spread)
        found = np.concatenate([found, np.reshape(more, (-1, 6 * asm.n_platforms))])
        if len(found) >= n:
            break
    return found[:n]


def run_studies(asm, targets, disturbance: Disturbance | None = None, n_samples=1_000_000,
                seed: int = 0, **kwargs) -> tuple[StudyResult, ...]:
    """:func:`run_study` for each (4, 4) target of ``targets`` (same settings and seed).
    Unreachable targets raise :class:`TargetUnreachable` (the first one met)."""
    return tuple(run_study(asm, T, disturbance, n_samples, seed, **kwargs) for T in targets)
