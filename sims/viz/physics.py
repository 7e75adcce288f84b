"""The physics check: does the kinematic model match a physical assembly driven by its legs?

:func:`physics_check` builds the dynamic model (:class:`.dynamics.PhysicsModel`: rigid plates,
two-link prismatic legs closed by ball joints, gravity and a payload), commands it with the leg
lengths of a pose, lets it settle and compares every plate and the tool with the kinematic model
as error twists (docs/conventions.md); :func:`leg_error_study` then offsets every leg and compares
the tool's response with ``J_L @ dL`` and with the exact kinematics.  The settled axial force of
every leg is in :attr:`PhysicsReport.leg_forces_n`.  docs/visualization.md has the numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from assemblers.geometry.api import twist_between
from assemblers.model import Assembler

from .dynamics import PhysicsModel, PhysicsParams
from .scene import stack_pose
from .style import Style

# ----------------------------------------------------------------------------- the check


@dataclass
class PhysicsReport:
    """Result of :func:`physics_check` (SI units; errors of the simulation against the model).

    ``tool_error_m`` / ``tool_error_rad``: norm of the tool twist's position / rotation part;
    ``tool_twist``: (6,) the twist (docs/conventions.md); ``plate_error_m`` /
    ``plate_error_rad``: (N,) the same for every top plate; ``leg_error_m``: largest
    |simulated - commanded| leg length;
    ``joint_gap_m``: largest ball-joint opening; ``leg_forces_n``: (N, 6) N, the settled axial
    force of every leg's motor (positive pushes its two plates apart: the leg is in compression),
    at the pose (before any leg-error study); ``leg_force_n``: (N,) its largest magnitude per
    platform; ``mount_force_n``: (3,) load on the mount (at rest: the total weight, +z);
    ``leg_error``: the injected-error study or None.
    """

    Q: np.ndarray
    T_model: np.ndarray
    T_sim: np.ndarray
    tool_twist: np.ndarray
    tool_error_m: float
    tool_error_rad: float
    plate_error_m: np.ndarray
    plate_error_rad: np.ndarray
    leg_error_m: float
    joint_gap_m: float
    leg_force_n: np.ndarray
    mount_force_n: np.ndarray
    total_mass_kg: float
    settle: dict
    params: PhysicsParams
    wall_s: float
    leg_error: dict | None = None
    extra: dict = field(default_factory=dict)
    leg_forces_n: np.ndarray | None = None

    def within(self, tol_m: float = 1e-3, tol_rad: float = 1e-3) -> bool:
        return self.tool_error_m <= tol_m and self.tool_error_rad <= tol_rad

    def to_dict(self) -> dict:
        """JSON-ready dict (lists, floats)."""

        def conv(x):
            if isinstance(x, np.ndarray):
                return x.tolist()
            if isinstance(x, dict):
                return {k: conv(v) for k, v in x.items()}
            if isinstance(x, (np.floating, np.integer)):
                return x.item()
            if isinstance(x, (np.bool_,)):
                return bool(x)
            return x

        d = {k: conv(getattr(self, k)) for k in (
            "Q", "T_model", "T_sim", "tool_twist", "tool_error_m", "tool_error_rad",
            "plate_error_m", "plate_error_rad", "leg_error_m", "joint_gap_m", "leg_force_n",
            "mount_force_n", "total_mass_kg", "settle", "wall_s", "leg_error", "extra",
            "leg_forces_n")}
        d["params"] = asdict(self.params)
        return d


def leg_error_study(model: PhysicsModel, Q, legs, dL) -> dict:
    """Command ``legs + dL`` (N, 6) m, settle, and compare the tool's simulated error twist
    (against the simulated pose at ``legs``) with the Jacobian's first-order prediction
    ``J_L @ dL`` and with the exact kinematic answer (forward kinematics of the legs).

    Returns ``{"dL", "twist_sim", "twist_pred", "twist_exact", "rel_error_vs_pred",
    "rel_error_vs_exact", "settle"}`` (twists (6,), docs/conventions.md; relative errors are
    ``|a - b| / |b|`` over the 6-vector, m and rad mixed as in the unweighted twist)."""
    from assemblers.kinematics.api import forward_kinematics, from_legs, jacobian

    asm = model.asm
    T_nom = model.tool_pose()
    settle = model.move_to(legs + dL)
    T_err = model.tool_pose()
    twist_sim = twist_between(T_nom, T_err)
    pred = jacobian(asm, Q, wrt="legs") @ np.asarray(dL).reshape(-1)
    Q_exact = from_legs(asm, legs + dL, initial=Q)
    exact = twist_between(forward_kinematics(asm, Q), forward_kinematics(asm, Q_exact))
    model.move_to(legs)  # back to the nominal pose
    return {
        "dL": np.asarray(dL), "twist_sim": twist_sim, "twist_pred": pred, "twist_exact": exact,
        "rel_error_vs_pred": float(np.linalg.norm(twist_sim - pred) / np.linalg.norm(pred)),
        "rel_error_vs_exact": float(np.linalg.norm(twist_sim - exact) / np.linalg.norm(exact)),
        "settle": settle,
    }


def physics_check(asm: Assembler, Q, params: PhysicsParams | None = None, leg_error: float = 1e-4,
                  seed: int = 0, style: Style | None = None) -> PhysicsReport:
    """Simulate the Assembler commanded with the leg lengths of ``Q`` (6N,) and compare.

    ``leg_error``: m; when > 0, every leg is then also commanded ``+-leg_error`` off (random signs
    from ``seed``) and :func:`leg_error_study` compares the tool's response with ``J_L @ dL``.
    Returns a :class:`PhysicsReport`.
    """
    import time

    from assemblers.kinematics.api import as_array, forward_kinematics, leg_lengths

    t0 = time.perf_counter()
    params = params or PhysicsParams()
    Q = as_array(Q, "Q", (6 * asm.n_platforms,), batch=False)
    legs = leg_lengths(asm, Q)
    Q_start = None if params.start == "home" else Q
    with PhysicsModel(asm, Q_start, params, style) as model:
        settle = model.move_to(legs)
        T_model = forward_kinematics(asm, Q)
        T_sim = model.tool_pose()
        tw = twist_between(T_model, T_sim)
        sp = stack_pose(asm, Q)
        T_top = model.top_frames()
        ptw = twist_between(sp.T_top, T_top)  # (N, 6)
        forces = model.leg_forces()
        report = PhysicsReport(
            Q=Q, T_model=T_model, T_sim=T_sim, tool_twist=tw,
            tool_error_m=float(np.linalg.norm(tw[:3])), tool_error_rad=float(np.linalg.norm(tw[3:])),
            plate_error_m=np.linalg.norm(ptw[:, :3], axis=1),
            plate_error_rad=np.linalg.norm(ptw[:, 3:], axis=1),
            leg_error_m=float(np.max(np.abs(model.leg_positions() - legs))),
            joint_gap_m=model.joint_gaps(), leg_force_n=np.abs(forces).max(axis=1),
            mount_force_n=model.mount_force(),
            total_mass_kg=float(sum(model.masses) + 6 * asm.n_platforms
                                * (params.housing_kg + params.rod_kg)),
            settle=settle, params=params, wall_s=0.0, leg_forces_n=forces)
        if leg_error > 0:
            rng = np.random.default_rng(seed)
            dL = leg_error * rng.choice([-1.0, 1.0], size=legs.shape)
            report.leg_error = leg_error_study(model, Q, legs, dL)
    report.wall_s = time.perf_counter() - t0
    return report
