"""A Monte Carlo robustness study of one target: how much lower is the tool's error at the
least-sensitive pose than at the baselines and at random poses reaching the same target?

    python examples/robustness_report.py [--out DIR] [--small]

Writes robustness/report.md, stats.json and the PNG figures (the same as ``assemblers
robustness --target "..." --out DIR``; docs/robustness.md explains every number).
"""

from _common import example_args

import assemblers
from sims.robustness import Disturbance, run_study, terminal_summary, write_report


def main() -> None:
    out, small = example_args(__doc__, "robustness")

    asm = assemblers.load_config("assembler")
    T_target = assemblers.pose_to_transform([0.02, 0.01, 1.07, 0.05, 0.0, 0.1])   # m, rad, world
    # 0.1 mm / 0.1 mrad of independent error on every pose parameter of every platform
    noise = Disturbance(pose_sigma=[1e-4, 1e-4, 1e-4, 1e-4, 1e-4, 1e-4])
    study = run_study(asm, T_target, noise, n_samples=2_000 if small else 200_000, seed=0,
                      n_random=2 if small else 5, progress=False)
    print(terminal_summary(study))

    paths = write_report(study, out)
    print(f"wrote {len(paths)} files to {out}: {', '.join(p.name for p in paths)}")


if __name__ == "__main__":  # worker processes (sweeps, rendering) import this file
    main()
