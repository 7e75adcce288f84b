"""Synthetic calibration campaigns, for tests and teaching: a "true" Assembler made by
perturbing a nominal one, and measurements of it with noise.

The true model is measured through the public NumPy facade (``from_legs`` in commanded
lengths, ``stack_frames``), not through the fit's JAX model, so a fit that recovers it checks
the JAX model too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..geometry.api import so3_exp, transform_to_pose, twist_between
from ..kinematics.api import forward_kinematics, from_legs, stack_frames
from ..model import Assembler
from . import params as P
from .measurements import Measurements

#: Default error sizes of a simulated build (standard deviations per component).
DEFAULT_ERRORS = {"joints": 1e-3, "offsets": 5e-4, "scales": 0.0, "mount": 1e-3,
                  "mount_rotation": 1e-3, "tool": 1e-3, "tool_rotation": 1e-3}


def perturb(asm: Assembler, rng: np.random.Generator, errors: dict | None = None,
            name: str | None = None) -> tuple[Assembler, dict, np.ndarray]:
    """A "true" Assembler: every parameter of ``asm`` plus a normal error of the given size
    (``errors``: family -> standard deviation; :data:`DEFAULT_ERRORS` for the missing ones;
    joints per coordinate, m; offsets m; scales relative; mount and tool per component, m and
    rad).  Returns ``(true Assembler, its config dict, its full parameter vector)``."""
    err = dict(DEFAULT_ERRORS, **(errors or {}))
    bad = [k for k in err if k not in DEFAULT_ERRORS]
    if bad:
        raise InputError(f"unknown error family {bad[0]!r} (known: {', '.join(DEFAULT_ERRORS)})")
    n = asm.n_platforms
    size = P.prior_vector(n, err)
    p = P.nominal_vector(asm) + size * rng.standard_normal(size.size)
    out = P.assembler_from_vector(asm, p, name=name or f"{asm.name}-true",
                                  description=f"{asm.name} perturbed for a simulated campaign")
    return out.asm, out.config, p


def measure(true: Assembler, legs: np.ndarray, rng: np.random.Generator,
            sigma_position: float = 1e-5, sigma_rotation: float = 2e-5,
            plates: bool = False, source: str = "<simulated>") -> Measurements:
    """Measure the true model at commanded ``legs`` (M, N, 6) m: its tool (and, with
    ``plates``, every top plate) in the world frame, each with normal noise: ``sigma_position``
    m per position axis, a rotation vector of ``sigma_rotation`` rad per axis (world frame,
    ``R_measured = exp(noise) R_true``)."""
    legs = np.asarray(legs, dtype=np.float64)
    Q = from_legs(true, legs)  # commanded -> the true poses (the facade's rule)
    _, tops, T_tool = stack_frames(true, Q)
    M = legs.shape[0]
    frames = np.concatenate([T_tool[:, None], tops], axis=1) if plates else T_tool[:, None]
    noisy = frames.copy()
    noisy[..., :3, 3] += sigma_position * rng.standard_normal(frames.shape[:-2] + (3,))
    w = sigma_rotation * rng.standard_normal(frames.shape[:-2] + (3,))
    noisy[..., :3, :3] = so3_exp(w.reshape(-1, 3)).reshape(w.shape + (3,)) @ frames[..., :3, :3]
    poses = transform_to_pose(noisy)
    return Measurements(legs, poses[:, 0], poses[:, 1:] if plates else None,
                        lines=np.arange(2, M + 2), source=source)


def tool_errors(model: Assembler, true: Assembler, legs: np.ndarray) -> np.ndarray:
    """Tool-pose errors of ``model`` against ``true`` at commanded ``legs`` (M, N, 6):
    (M, 2) position error m and rotation error rad (norms of the error twist), noise-free."""
    T_model = forward_kinematics(model, from_legs(model, legs))
    T_true = forward_kinematics(true, from_legs(true, legs))
    tw = twist_between(T_model, T_true)
    return np.stack([np.linalg.norm(tw[..., :3], axis=-1), np.linalg.norm(tw[..., 3:], axis=-1)],
                    axis=-1)


@dataclass(frozen=True)
class Campaign:
    """A simulated campaign: ``true`` the perturbed Assembler (``true_config`` its config dict,
    ``p_true`` its full parameter vector) and ``measurements``."""

    true: Assembler
    true_config: dict
    p_true: np.ndarray
    measurements: Measurements


def simulate(asm: Assembler, legs: np.ndarray, seed: int = 0, errors: dict | None = None,
             sigma_position: float = 1e-5, sigma_rotation: float = 2e-5,
             plates: bool = False) -> Campaign:
    """Perturb ``asm`` (:func:`perturb`) and measure it at commanded ``legs`` (M, N, 6)
    (:func:`measure`), from one seed."""
    rng = np.random.default_rng(seed)
    true, cfg, p = perturb(asm, rng, errors)
    meas = measure(true, legs, rng, sigma_position, sigma_rotation, plates)
    return Campaign(true, cfg, p, meas)
