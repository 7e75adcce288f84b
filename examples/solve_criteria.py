"""Solve the IK of one target with every criterion and compare them.

    python examples/solve_criteria.py [--out DIR] [--small]

Prints one row per criterion (its own cost, ||J_Q||_F and ||J_L||_F at the pose it found, the
legs' use of their stroke) and draws criteria.png: the per-platform leg lengths of each
solution against the stroke limits.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _common import example_args  # noqa: E402

import assemblers  # noqa: E402


def main() -> None:
    out, small = example_args(__doc__)
    out.mkdir(parents=True, exist_ok=True)

    asm = assemblers.load_config("assembler")                    # the default Assembler, N = 4
    T_target = assemblers.pose_to_transform([0.02, 0.01, 1.07, 0.05, 0.0, 0.1])  # m, rad, world

    assemblers.ik.warmup(asm)  # load (or compile) the kernels, so the times below are the solver's
    rows, solutions = [], {}
    for criterion in ("fn", "fn_legs", "condition", "even", "nearest"):
        r = assemblers.solve_ik(asm, T_target, criterion=criterion)
        assert r.success, r.message
        solutions[criterion] = r
        fro_q = np.linalg.norm(assemblers.jacobian(asm, r.Q, wrt="pose"))   # ||J_Q||_F
        fro_l = np.linalg.norm(assemblers.jacobian(asm, r.Q, wrt="legs"))   # ||J_L||_F
        stroke = (r.legs - asm.leg_min[:, None]) / (asm.leg_max - asm.leg_min)[:, None]
        rows.append((criterion, r.cost, fro_q, fro_l, stroke.min(), stroke.max(), r.time_s * 1e3))

    print(f"{'criterion':<10} {'cost':>9} {'||J_Q||_F':>10} {'||J_L||_F':>10} {'stroke used':>12} "
          f"{'ms':>6}")
    for c, cost, fq, fl, smin, smax, ms in rows:
        print(f"{c:<10} {cost:9.4f} {fq:10.4f} {fl:10.4f} {smin * 100:5.0f}-{smax * 100:3.0f} % "
              f"{ms:6.1f}")
    r = solutions["fn"]
    print(f"fn: ||J_Q||_F {r.reduction * 100:.2f} % below the even split ({r.baseline_cost:.4f})")

    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=100)
    N = asm.n_platforms
    for k, (c, r) in enumerate(solutions.items()):
        x = np.arange(N) + (k - 2) * 0.15
        mid = r.legs.mean(axis=1)
        ax.errorbar(x, mid, yerr=[mid - r.legs.min(axis=1), r.legs.max(axis=1) - mid], fmt="o",
                    capsize=3, label=c)
    for limit in (asm.leg_min, asm.leg_max):  # (N,) m, each platform's stroke
        ax.hlines(limit, np.arange(N) - 0.4, np.arange(N) + 0.4, colors="0.6", linestyles="dashed")
    ax.set_xticks(range(N), [f"platform {i + 1}" for i in range(N)])
    ax.set_ylabel("leg length [m]")
    ax.set_title("leg lengths per criterion (bars: min-max of the six legs; dashed: stroke)",
                 fontsize=10)
    ax.legend(fontsize=8, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
    fig.tight_layout()
    fig.savefig(out / "criteria.png")
    print(f"wrote {out / 'criteria.png'}")


if __name__ == "__main__":  # worker processes (sweeps, rendering) import this file
    main()
