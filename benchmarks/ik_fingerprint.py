"""A deterministic fingerprint of the IK solvers: iterations, starts, solver and cost per target.

    python benchmarks/ik_fingerprint.py --out before.json
    python benchmarks/ik_fingerprint.py --compare before.json     # exit 1 on any difference

No timing: the same code paths on the same targets give the same iterates, so the iteration
counts and costs of a fixed set of targets tell whether a refactoring kept the compiled solvers
equivalent (same algorithms, same arithmetic).  Only public names are used, so a fingerprint
written before a change of layout compares with one written after it.  Targets: the tool poses
(a NumPy product of the chain, independent of the kinematics under test) of seeded random
stack poses near home (+-2 cm, +-0.1 rad per platform), on ``duo``, ``trio``
and ``assembler``; every criterion on a few of them; ``method="ipm"`` and ``"slsqp"``;
unreachable ``duo`` targets; a short warm-started trajectory.  Costs are compared to a relative
1e-12 (bit-identical arithmetic gives 0), everything else exactly.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def _fk(asm, Q):
    """T_world_tool of ``Q`` (6N,) by a NumPy product of the chain: the targets must not depend
    on the kinematics backend under test (its last bits may change with it)."""
    from assemblers.geometry.api import pose_to_transform

    T = np.array(asm.T_mount)
    for i in range(asm.n_platforms):
        T = T @ pose_to_transform(Q[6 * i: 6 * i + 6])
        T = T @ (asm.T_interfaces[i] if i < asm.n_platforms - 1 else asm.T_tool)
    return T


def _targets(asm, k, seed, scale=1.0):
    import assemblers as A

    rng = np.random.default_rng(seed)
    lim = np.tile([0.02, 0.02, 0.02, 0.1, 0.1, 0.1], asm.n_platforms) * scale
    return [_fk(asm, A.home_pose(asm) + rng.uniform(-lim, lim)) for _ in range(k)]


def _row(r) -> dict:
    return {"success": bool(r.success), "iterations": int(r.iterations), "starts": int(r.starts),
            "solver": (r.extra or {}).get("solver"), "calls": (r.extra or {}).get("jax_calls"),
            "cost": float(r.cost),
            "baseline": None if r.baseline_cost is None else float(r.baseline_cost),
            "reason": r.reason}


def fingerprint(k: int = 12) -> dict:
    import assemblers as A
    from assemblers.ik import solve_trajectory, straight_line

    out: dict = {}
    for name in ("duo", "trio", "assembler"):
        asm = A.load_config(name)
        out[f"{name}/default"] = [_row(A.solve_ik(asm, T)) for T in _targets(asm, k, 1)]
        out[f"{name}/n_starts=3"] = [_row(A.solve_ik(asm, T, n_starts=3))
                                     for T in _targets(asm, 3, 2)]
    trio = A.load_config("trio")
    for crit in ("fn", "fn_legs", "condition", "even", "nearest"):
        out[f"trio/{crit}"] = [_row(A.solve_ik(trio, T, crit)) for T in _targets(trio, 4, 3)]
    for method in ("ipm", "slsqp"):
        out[f"trio/method={method}"] = [_row(A.solve_ik(trio, T, method=method))
                                        for T in _targets(trio, 3, 4)]
    duo = A.load_config("duo")
    far = []
    for T in _targets(duo, 4, 5):
        T = np.array(T)
        T[:2, 3] += [0.2, -0.15]
        far.append(_row(A.solve_ik(duo, T)))
    out["duo/unreachable"] = far
    T0 = _fk(trio, A.home_pose(trio))
    T1 = _targets(trio, 1, 6)[0]
    t, Ts = straight_line(T0, T1, 0.1, 1000.0)
    res = solve_trajectory(trio, t, Ts)
    # the step times are not part of it; the first step's iterations are in its solve
    out["trio/trajectory"] = {"ok": res.ok, "solvers": dict(sorted(res.solvers.items())),
                              "cost": [float(c) for c in res.cost],
                              "max_leg_step": float(res.max_leg_step)}
    return out


def compare(a: dict, b: dict, rtol: float = 1e-12) -> list[str]:
    """Differences between two fingerprints, one line each."""
    diffs = []

    def same(x, y):
        if isinstance(x, float) and isinstance(y, float):
            return x == y or abs(x - y) <= rtol * max(abs(x), abs(y))
        return x == y

    for key in sorted(set(a) | set(b)):
        if key not in a or key not in b:
            diffs.append(f"{key}: only in {'the first' if key in a else 'the second'}")
            continue
        x, y = a[key], b[key]
        if isinstance(x, list):
            for i, (rx, ry) in enumerate(zip(x, y, strict=True)):
                for f in rx:
                    if not same(rx[f], ry[f]):
                        diffs.append(f"{key}[{i}].{f}: {rx[f]!r} != {ry[f]!r}")
        else:
            for f in x:
                if f == "cost":
                    bad = [i for i, (u, v) in enumerate(zip(x[f], y[f], strict=True))
                           if not same(u, v)]
                    if bad:
                        diffs.append(f"{key}.cost differs at steps {bad[:10]}")
                elif not same(x[f], y[f]):
                    diffs.append(f"{key}.{f}: {x[f]!r} != {y[f]!r}")
    return diffs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="write the fingerprint (JSON) here")
    ap.add_argument("--compare", help="compare with a fingerprint written before")
    ap.add_argument("--targets", type=int, default=12, help="default-criterion targets per stack")
    args = ap.parse_args(argv)
    fp = fingerprint(args.targets)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(fp, f, indent=1)
    if args.compare:
        with open(args.compare) as f:
            diffs = compare(json.load(f), fp)
        n = sum(len(v) if isinstance(v, list) else 1 for v in fp.values())
        print("\n".join(diffs) if diffs else f"identical: {n} solves and a trajectory")
        return 1 if diffs else 0
    if not args.out:
        json.dump(fp, sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
