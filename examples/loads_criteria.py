"""Leg forces of a loaded robot, and poses chosen for them: fn against loads and a blend.

    python examples/loads_criteria.py [--out DIR] [--small]

The default Assembler with its lab-prototype mass model (configs/assembler_loaded.toml: plates,
legs, a payload, gravity).  One target solved three ways: `fn` (least sensitive), `loads` (least
sum of squared force / rating) and the blend `fn:1,loads:0.2`.  Prints each pose's largest leg
force, its share of the rating and its ||J_Q||_F, the tool's compliance and the deflection under
the loads at the `fn` pose, and draws forces.png: every leg's force in each pose.
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
    asm = assemblers.load_config("assembler_loaded")                # N = 4, with masses
    T_target = assemblers.pose_to_transform([0.02, 0.01, 1.07, 0.05, 0.0, 0.1])  # m, rad, world
    rating = np.array([p.max_leg_force for p in asm.platforms])     # (N,) N per leg

    forces = {}
    for criterion in ("fn", "loads", "fn:1,loads:0.2"):
        r = assemblers.solve_ik(asm, T_target, criterion=criterion, restarts=0 if small else None)
        assert r.success, r.message
        F = assemblers.leg_forces(asm, r.Q)                        # (N, 6) N, compression > 0
        forces[criterion] = F
        share = np.abs(F).max(axis=1) / rating
        print(f"{criterion:>15}: largest |force| {np.abs(F).max():6.1f} N "
              f"({share.max() * 100:4.1f} % of its rating), "
              f"||J_Q||_F {np.linalg.norm(assemblers.jacobian(asm, r.Q)):.4f}")
        if criterion == "fn":
            C = assemblers.compliance(asm, r.Q)                    # (6, 6) tool compliance
            d = assemblers.deflection(asm, r.Q)                    # (6,) m, rad: under the loads
            print(f"{'':>15}  tool deflection under the loads {np.linalg.norm(d[:3]) * 1e3:.3f} mm"
                  f", compliance along z {C[2, 2] * 1e6:.3f} um/N")

    fig, ax = plt.subplots(figsize=(8, 3.4), dpi=100)
    x = np.arange(forces["fn"].size)
    for k, (c, F) in enumerate(forces.items()):
        ax.bar(x + (k - 1) * 0.28, F.ravel(), width=0.28, label=c)
    ax.axhline(rating.max(), color="0.4", ls="--", lw=0.8)
    ax.set_xticks(x[::6] + 2.5, [f"platform {i + 1}" for i in range(asm.n_platforms)])
    ax.set_ylabel("leg force [N] (compression > 0)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "forces.png")
    print(f"wrote {out / 'forces.png'}")


if __name__ == "__main__":
    main()
