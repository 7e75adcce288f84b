"""Calibrate a simulated robot: plan the measurement poses, measure a perturbed copy, fit.

    python examples/calibrate_simulated.py [--out DIR] [--small]

The "built" robot is the default Assembler with its joints moved by about 1 mm and its leg
offsets by 0.5 mm (a seeded perturbation); a tracker measures the tool pose with 10 um / 20 urad
of noise at 40 planned poses.  Prints the held-out tool error of the nominal and the calibrated
model against the built robot, and writes the calibration report (report.md, result.json,
figures) and the calibrated config (calibrated.toml).
"""

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from _common import example_args  # noqa: E402

import assemblers  # noqa: E402
from assemblers import calibration  # noqa: E402


def main() -> None:
    out, small = example_args(__doc__, "calibration")
    asm = assemblers.load_config("duo" if small else "assembler")

    # 1. which poses to measure: D-optimal among random poses inside every limit
    plan = calibration.plan_poses(asm, n_poses=40, n_candidates=300 if small else 2000, seed=0)
    pred, rand = plan.predicted, plan.random
    print(f"planned {plan.Q.shape[0]} poses: predicted held-out error "
          f"{pred.position_rms_m * 1e6:.1f} um / {pred.rotation_rms_rad * 1e6:.1f} urad "
          f"(as many random poses: {rand.position_rms_m * 1e6:.1f} um)")

    # 2. the "built" robot and its measurements at the planned commanded legs (seeded)
    campaign = calibration.simulate_campaign(asm, plan.legs, seed=1)

    # 3. the fit: a model that works in commanded lengths, and what it cannot identify
    res = calibration.calibrate(asm, campaign.measurements)
    print(f"fit: {res.estimated.size} parameters estimated, {len(res.unidentifiable)} left at "
          f"nominal (unidentifiable), {res.time_s * 1e3:.0f} ms")

    # 4. held-out poses: tool error against the built robot, before and after
    rng = np.random.default_rng(12345)
    legs = assemblers.leg_lengths(asm, calibration.random_poses(asm, 200, rng))  # commanded
    for name, model in (("nominal", asm), ("calibrated", res.assembler)):
        e = calibration.tool_errors(model, campaign.true, legs)  # (200, 2) m, rad
        print(f"{name:>10}: held-out RMS {np.sqrt(np.mean(e[:, 0] ** 2)) * 1e6:8.1f} um, "
              f"{np.sqrt(np.mean(e[:, 1] ** 2)) * 1e6:8.1f} urad")

    calibration.write_report(res, out)
    assemblers.write_config(out / "calibrated.toml", res.config)
    print(f"wrote {out / 'report.md'} and {out / 'calibrated.toml'}")


if __name__ == "__main__":
    main()
