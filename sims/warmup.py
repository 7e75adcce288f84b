"""The ``sims`` kernel groups for ``assemblers warmup`` and the first-run compile (entry points
``assemblers.kernels`` in ``pyproject.toml``; see :mod:`assemblers.warmup`).  The catalog
entries are plain data; the warm functions import what they need."""

from __future__ import annotations

montecarlo = {"help": "Monte Carlo robustness: the 64-lane sample kernels and the statistics",
              "warm": "sims.warmup:warm_montecarlo",
              "sentinels": ["robustness/chunks.run_chunks", "robustness/stats."],
              "seconds": 14.0, "order": 40}  # measured (coldstart.py): 13-16 s


def warm_montecarlo(config: str | None = None) -> None:
    """A few samples of every disturbance model at the home pose, with samples returned (as a
    study keeps them for its scatter plots), and the first-order prediction of the error (J_Q
    and J_L): the very kernels ``assemblers robustness`` runs (the Jacobians compiled in the
    command's process, after the groups, before this: 0.7 s of a first demo)."""
    from assemblers.kinematics.api import home_pose
    from assemblers.model.config import load_config
    from sims.robustness.montecarlo import Disturbance, first_order_mean_sq, simulate

    asm = load_config(config)
    Q = home_pose(asm)
    simulate(asm, Q, Disturbance(pose_sigma=[1e-4] * 6, leg_sigma=1e-4, joint_sigma=1e-4), 64,
             return_samples=8)
    first_order_mean_sq(asm, Q, Disturbance(pose_sigma=[1e-4] * 6, leg_sigma=1e-4))
