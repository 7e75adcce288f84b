"""Shared pieces of the IK benchmarks (benchmarks/ik.py): the machine, the configs, random
reachable targets, independent rechecks through the public API, the SciPy SLSQP baseline."""

from __future__ import annotations

import os
import platform
import tomllib
from pathlib import Path

import numpy as np

TOOL_TOL = 1e-9  # m / rad, the requirement (ours and the CasADi baselines)
TOOL_TOL_FD = 1e-6  # m / rad, the finite-difference SLSQP baseline's success test
LIMIT_TOL = 1e-8  # m / rad, largest limit violation still called "held"


def machine_line() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{cpu or platform.machine()}; {os.cpu_count()} CPUs ({usable} usable); "
            f"load average {load}; Python {platform.python_version()}")


def family_config(n: int):
    """The default Assembler's platform type stacked n high (its spacers, tool, weights)."""
    import assemblers as A
    from assemblers.model.config import resolve_config_path

    path = resolve_config_path("assembler")
    data = tomllib.loads(path.read_text())
    ptype = data["stack"]["platforms"][0]
    data["name"] = f"assembler-x{n}"
    data["stack"]["platforms"] = [ptype] * n
    data["stack"]["interfaces"] = data["stack"]["interfaces"][: n - 1]
    data.pop("hardware", None)  # per-platform hardware entries are not needed here
    return A.config_from_dict(data, source=f"{path} (first {n} platforms)")


def limit_violation(asm, Q) -> np.ndarray:
    """Largest limit violation (m or rad, 0 if none) of (B, 6N) poses, recomputed via the API."""
    import assemblers as A

    Q = np.atleast_2d(Q)
    L = A.leg_lengths(asm, Q)
    ang = A.joint_angles(asm, Q)
    v = np.maximum(asm.leg_min[:, None] - L, L - asm.leg_max[:, None]).max(axis=(1, 2))
    v = np.maximum(v, (ang - asm.max_joint_angle[:, None, None]).max(axis=(1, 2, 3)))
    v = np.maximum(v, (asm.pose_lower - Q).max(axis=1))
    v = np.maximum(v, (Q - asm.pose_upper).max(axis=1))
    return np.maximum(v, 0.0)


def tool_errors(asm, Q, T_targets):
    """(position m, rotation rad) between FK(Q) and the targets, (B,) each."""
    from scipy.spatial.transform import Rotation

    import assemblers as A

    T = A.forward_kinematics(asm, np.atleast_2d(Q)).reshape(-1, 4, 4)
    Tt = np.asarray(T_targets).reshape(-1, 4, 4)
    ep = np.linalg.norm(T[:, :3, 3] - Tt[:, :3, 3], axis=1)
    R = T[:, :3, :3] @ np.transpose(Tt[:, :3, :3], (0, 2, 1))
    er = np.linalg.norm(Rotation.from_matrix(R).as_rotvec(), axis=1)
    return ep, er


def random_feasible_poses(asm, k: int, rng: np.random.Generator, batch: int = 100_000):
    """(k, 6N) stack poses, each platform uniform over its own feasible set."""
    import assemblers as A

    N = asm.n_platforms
    home = A.home_pose(asm)
    stroke = np.repeat(asm.leg_max - asm.leg_min, 6).reshape(N, 6)
    half = np.concatenate([1.5 * stroke[:, :3], np.ones((N, 3))], axis=1).reshape(-1)
    lo = np.maximum(home - half, asm.pose_lower)
    hi = np.minimum(home + half, asm.pose_upper)
    found = [[] for _ in range(N)]
    reach = np.zeros(6 * N)
    for _ in range(1000):
        Q = rng.uniform(lo, hi, size=(batch, 6 * N))
        L = A.leg_lengths(asm, Q)
        ang = A.joint_angles(asm, Q)
        ok = ((L >= asm.leg_min[:, None]) & (L <= asm.leg_max[:, None])).all(axis=2)
        ok &= (ang <= asm.max_joint_angle[:, None, None]).all(axis=(2, 3))
        for i in range(N):
            q = Q[ok[:, i], 6 * i: 6 * i + 6]
            found[i].extend(q)
            if len(q):
                reach[6 * i: 6 * i + 6] = np.maximum(reach[6 * i: 6 * i + 6],
                                                     np.abs(q - home[6 * i: 6 * i + 6]).max(0))
        if min(len(f) for f in found) >= k:
            break
    else:
        raise RuntimeError(f"{asm.name}: too few feasible poses found")
    # the sampling box must contain each feasible set: nothing accepted near its edge
    frac = float((reach / half).max())
    if frac > 0.95:
        raise RuntimeError(f"{asm.name}: feasible poses reach {frac:.0%} of the sampling box")
    Q = np.concatenate([np.asarray(f[:k]) for f in found], axis=1)
    assert limit_violation(asm, Q).max() == 0.0
    return Q


def slsqp_baseline(asm, T_target, Q0, maxiter: int = 1000, ftol: float = 1e-10):
    """A plain scipy SLSQP on the full stack pose, finite-difference gradients (what a user
    would write with the public NumPy API).  Returns (Q, scipy result)."""
    from scipy.optimize import minimize
    from scipy.spatial.transform import Rotation

    import assemblers as A

    p_t, R_t = T_target[:3, 3], T_target[:3, :3]
    has_angle = np.isfinite(asm.max_joint_angle)
    f0 = A.sensitivity(asm, Q0)

    def cost(Q):
        return A.sensitivity(asm, Q) / f0

    def tool_residual(Q):
        T = A.forward_kinematics(asm, Q)
        return np.concatenate([T[:3, 3] - p_t, Rotation.from_matrix(T[:3, :3] @ R_t.T).as_rotvec()])

    def limits(Q):
        L = A.leg_lengths(asm, Q)
        parts = [(L - asm.leg_min[:, None]).ravel(), (asm.leg_max[:, None] - L).ravel()]
        if has_angle.any():
            ang = A.joint_angles(asm, Q)[has_angle]
            parts.append((asm.max_joint_angle[has_angle][:, None, None] - ang).ravel())
        return np.concatenate(parts)

    bounds = None
    if np.isfinite(asm.pose_lower).any() or np.isfinite(asm.pose_upper).any():
        bounds = [(lo if np.isfinite(lo) else None, hi if np.isfinite(hi) else None)
                  for lo, hi in zip(asm.pose_lower, asm.pose_upper, strict=True)]
    res = minimize(cost, Q0, method="SLSQP", bounds=bounds,
                   constraints=[{"type": "eq", "fun": tool_residual},
                                {"type": "ineq", "fun": limits}],
                   options={"maxiter": maxiter, "ftol": ftol})
    return res.x, res
