"""CLI command group ``calibrate``: ``plan``, ``simulate`` and ``fit`` (docs/calibration.md;
the work is :mod:`assemblers.calibration`'s)."""

from __future__ import annotations

import sys
import time

import numpy as np

from .. import files
from .args import CLIError, add_config_arg, add_json_arg, check_number, load_assembler, parse_count
from .render import print_json, table

MAX_POSES = 100_000
MAX_CANDIDATES = 1_000_000
FAMILY_FLAGS = (("joints", "--no-joints"), ("offsets", "--no-offsets"), ("mount", "--no-mount"),
                ("tool", "--no-tool"))

#: the error sizes of ``calibrate simulate``'s true build: (option, default, metavar, help)
ERROR_SIZES = (
    ("--joints", "1e-3", "M", "joint position error per coordinate, m"),
    ("--offsets", "5e-4", "M", "leg offset error, m"),
    ("--leg-scales", "0", "X", "leg scale error, relative"),
    ("--mount", "1e-3", "M", "mount position error per axis, m"),
    ("--mount-rotation", "1e-3", "RAD", "mount rotation error per axis, rad"),
    ("--tool", "1e-3", "M", "tool position error per axis, m"),
    ("--tool-rotation", "1e-3", "RAD", "tool rotation error per axis, rad"),
)


def _noise_args(p) -> None:
    p.add_argument("--sigma-position", type=float, default=1e-5, metavar="M",
                   help="measurement noise per position axis, m (default 1e-5)")
    p.add_argument("--sigma-rotation", type=float, default=2e-5, metavar="RAD",
                   help="measurement noise per rotation axis, rad (default 2e-5)")


def _family_args(p) -> None:
    p.add_argument("--scales", action="store_true", help="also fit each leg's scale")
    for fam, flag in FAMILY_FLAGS:
        p.add_argument(flag, dest=f"no_{fam}", action="store_true",
                       help=f"keep the {fam} at nominal (do not fit them)")


def _families(args) -> tuple[str, ...]:
    fams = [f for f, _ in FAMILY_FLAGS if not getattr(args, f"no_{f}")]
    if args.scales:
        fams.append("scales")
    if not fams:
        raise CLIError("nothing to fit: every parameter family is switched off")
    return tuple(fams)


def _sigmas(args) -> tuple[float, float]:
    sp = check_number(args.sigma_position, "--sigma-position", 0.0, 1.0, lo_open=True)
    sr = check_number(args.sigma_rotation, "--sigma-rotation", 0.0, 1.0, lo_open=True)
    return sp, sr


def _action(sub, name: str, help: str, description: str):
    """The subcommand ``calibrate <name>``, its ``--config`` declared."""
    p = sub.add_parser(name, help=help, description=description)
    add_config_arg(p)
    return p


def configure_calibrate(p) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="{plan,simulate,fit}")
    pl = _action(sub, "plan", "choose measurement poses (D-optimal) and predict the uncertainty "
                 "they give", "Choose measurement poses inside every limit that maximize "
                 "observability (D-optimal over random candidate poses); write their commanded "
                 "legs as CSV and report the expected uncertainty.")
    pl.add_argument("--poses", default="40", metavar="N", help="poses to plan (default 40)")
    pl.add_argument("--candidates", default="2000", metavar="N",
                    help="random candidate poses to choose from (default 2000)")
    pl.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    pl.add_argument("--margin", type=float, default=0.02,
                    help="fraction of each stroke kept free at both ends (default 0.02)")
    pl.add_argument("--out", required=True, metavar="FILE", help="planned poses (CSV)")
    _noise_args(pl)
    _family_args(pl)
    add_json_arg(pl)

    si = _action(sub, "simulate", "a synthetic campaign: perturb a config, measure it with "
                 "noise", "Perturb a config by the given error sizes (the 'true' build) and "
                 "measure its tool at planned or random poses with noise; writes the "
                 "measurements CSV and the true config.")
    src = si.add_mutually_exclusive_group()
    src.add_argument("--poses", default=None, metavar="FILE",
                     help="planned poses (CSV with leg_* columns, e.g. from 'calibrate plan')")
    src.add_argument("--random", default=None, metavar="N", help="measure N random poses")
    for flag, default, metavar, text in ERROR_SIZES:
        si.add_argument(flag, type=float, default=float(default), metavar=metavar,
                        help=f"{text} (default {default})")
    si.add_argument("--plates", action="store_true",
                    help="also measure every top plate (top_<i>_* columns)")
    si.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    si.add_argument("--out", required=True, metavar="FILE", help="measurements (CSV)")
    si.add_argument("--truth", default=None, metavar="FILE",
                    help="write the true (perturbed) config here (TOML)")
    _noise_args(si)
    add_json_arg(si)

    fi = _action(sub, "fit", "fit the error model to measurements: a calibrated config and a "
                 "report", "Calibrate the config from a measurements CSV: writes the calibrated "
                 "config (TOML, loadable by --config) and optionally a report folder.")
    fi.add_argument("--measurements", required=True, metavar="FILE", help="measurements (CSV)")
    fi.add_argument("--out", required=True, metavar="FILE", help="calibrated config (TOML)")
    fi.add_argument("--report", default=None, metavar="DIR",
                    help="write report.md, result.json and figures here")
    fi.add_argument("--loss", default="linear",
                    choices=("linear", "soft_l1", "huber", "cauchy", "arctan"),
                    help="least_squares loss; soft_l1/huber/cauchy resist outlier rows")
    fi.add_argument("--f-scale", type=float, default=3.0, metavar="K",
                    help="residual (in standard deviations) where a robust loss bends (3)")
    fi.add_argument("--method", default="trf", choices=("trf", "lm"),
                    help="trust region reflective (default) or Levenberg-Marquardt")
    fi.add_argument("--truth", default=None, metavar="FILE",
                    help="a true config (from 'calibrate simulate'): report the tool error on "
                         "held-out random poses before and after")
    fi.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    _noise_args(fi)
    _family_args(fi)
    add_json_arg(fi)


def run_calibrate(args) -> int:
    return {"plan": _plan, "simulate": _simulate, "fit": _fit}[args.action](args)


def _um(x: float) -> str:
    return f"{x * 1e6:.2f}"


def _plan(args) -> int:
    from ..calibration.measurements import format_plan
    from ..calibration.plan import plan

    asm = load_assembler(args)
    n_poses = parse_count(args.poses, "--poses", 1, MAX_POSES)
    n_cand = parse_count(args.candidates, "--candidates", 1, MAX_CANDIDATES)
    margin = check_number(args.margin, "--margin", 0.0, 0.45)
    sp, sr = _sigmas(args)
    files.output_path(args.out, "--out")  # before any work
    pl = plan(asm, n_poses, n_candidates=n_cand, seed=args.seed, families=_families(args),
              sigma_position=sp, sigma_rotation=sr, margin=margin)
    files.write_text(args.out, format_plan(pl.legs, pl.tool_nominal), "--out")
    doc = pl.summary()
    doc["out"] = args.out
    if args.json:
        print_json(doc)
        return 0
    print(f"{n_poses} poses of {n_cand} candidates -> {args.out} (D-optimal, log det "
          f"{pl.logdet:.1f})")
    print(f"expected tool error after calibration (RMS over random poses, noise "
          f"{sp:g} m / {sr:g} rad):")
    rows = [[lab, _um(p.position_rms_m), _um(p.rotation_rms_rad), f"{p.rank}/{p.n_estimable}"]
            for lab, p in (("planned", pl.predicted), (f"random {n_poses}", pl.random))]
    print(table(["poses", "position um", "rotation urad", "rank"], rows))
    med = pl.predicted.summary()["median_std"]
    units = {"joints": "mm", "offsets": "mm", "mount": "mm/mrad", "tool": "mm/mrad"}
    print("median expected std: " + ", ".join(
        f"{k} {v * 1e3:.3g} {units[k]}" if k in units else f"{k} {v:.3g}"
        for k, v in med.items() if v is not None))
    return 0


def _simulate(args) -> int:
    from ..calibration.measurements import read_plan, write_measurements
    from ..calibration.poses import random_poses
    from ..calibration.simulate import measure, perturb
    from ..kinematics.api import leg_lengths
    from ..model.writer import write_config

    asm = load_assembler(args)
    sp, sr = _sigmas(args)
    errors = {}
    for key, val in (("joints", args.joints), ("offsets", args.offsets),
                     ("scales", args.leg_scales), ("mount", args.mount),
                     ("mount_rotation", args.mount_rotation), ("tool", args.tool),
                     ("tool_rotation", args.tool_rotation)):
        errors[key] = check_number(val, f"--{key.replace('_', '-')}", 0.0, 0.1)
    files.output_path(args.out, "--out")
    if args.truth:
        files.output_path(args.truth, "--truth")
    rng = np.random.default_rng(args.seed)
    if args.poses:
        legs = read_plan(args.poses, asm.n_platforms)
    else:
        count = parse_count(args.random or "40", "--random", 1, MAX_POSES)
        legs = leg_lengths(asm, random_poses(asm, count, rng))
    from ..calibration.measurements import Measurements, check_measurements

    check_measurements(asm, Measurements(legs, np.zeros((legs.shape[0], 6)),
                                         source=args.poses or "<random>"))
    true, cfg, _ = perturb(asm, rng, errors)
    meas = measure(true, legs, rng, sp, sr, args.plates, source=args.out)
    write_measurements(args.out, meas, "--out")
    if args.truth:
        write_config(args.truth, cfg, header=f"'true' build of {asm.name} for a simulated "
                     f"calibration campaign (seed {args.seed})", what="--truth")
    doc = {"out": args.out, "truth": args.truth, "n_poses": int(legs.shape[0]),
           "errors": errors, "sigma_position": sp, "sigma_rotation": sr,
           "plates": bool(args.plates), "seed": args.seed}
    if args.json:
        print_json(doc)
    else:
        print(f"{legs.shape[0]} simulated measurements -> {args.out}"
              + (f"; true config -> {args.truth}" if args.truth else ""))
    return 0


class _Progress:
    """Progress lines on stderr, at most every half second."""

    def __init__(self, enabled: bool):
        self.enabled, self.last = enabled, 0.0

    def __call__(self, nfev: int, cost: float) -> None:
        now = time.monotonic()
        if self.enabled and now - self.last > 0.5:
            self.last = now
            print(f"calibrate fit: evaluation {nfev}, cost {cost:.6g}", file=sys.stderr,
                  flush=True)


def _fit(args) -> int:
    from ..calibration.fit import calibrate
    from ..calibration.measurements import read_measurements
    from ..model.config import load_config
    from ..model.writer import write_config

    asm = load_assembler(args)
    sp, sr = _sigmas(args)
    f_scale = check_number(args.f_scale, "--f-scale", 0.0, 1e6, lo_open=True)
    files.output_path(args.out, "--out")
    if args.report:
        files.output_dir(args.report, "--report")
    truth = load_config(args.truth) if args.truth else None
    meas = read_measurements(args.measurements, asm.n_platforms)
    res = calibrate(asm, meas, families=_families(args), sigma_position=sp, sigma_rotation=sr,
                    loss=args.loss, f_scale=f_scale, method=args.method,
                    progress=_Progress(not args.quiet))
    holdout = _holdout(asm, res.assembler, truth) if truth is not None else None
    write_config(args.out, res.config, header=f"{res.assembler.description}; written by "
                 "'assemblers calibrate fit' (docs/calibration.md)", what="--out")
    if args.report:
        from ..calibration.report import write_report

        write_report(res, args.report, holdout)
    doc = res.summary()
    doc.update(out=args.out, report=args.report, holdout=holdout)
    if args.json:
        print_json(doc)
        return 0 if res.success else 1
    b, a = doc["before"], doc["after"]
    print(f"{'converged' if res.success else 'NOT converged'}: {res.message} ({res.nfev} "
          f"evaluations, {res.time_s:.2f} s); calibrated config -> {args.out}")
    rows = [["before", _um(b["position_m"]), _um(b["rotation_rad"]), f"{b['whitened']:.3g}"],
            ["after", _um(a["position_m"]), _um(a["rotation_rad"]), f"{a['whitened']:.3g}"]]
    if holdout:
        rows += [["held-out nominal", _um(holdout["before"][0]), _um(holdout["before"][1]), ""],
                 ["held-out calibrated", _um(holdout["after"][0]), _um(holdout["after"][1]), ""]]
    print(table(["tool residual RMS", "position um", "rotation urad", "whitened"], rows))
    print(f"{doc['n_estimated']} parameters estimated, {doc['n_unidentifiable']} not identifiable"
          f" (fixed at nominal), variance factor {res.variance_factor:.3f}"
          + (f"; report -> {args.report}" if args.report else ""))
    return 0 if res.success else 1


def _holdout(nominal, calibrated, truth, count: int = 200, seed: int = 12345) -> dict:
    """RMS tool error (position m, rotation rad) of the nominal and the calibrated model
    against ``truth`` at ``count`` random poses (commanded legs of the nominal model)."""
    from ..calibration.poses import random_poses
    from ..calibration.simulate import tool_errors
    from ..kinematics.api import leg_lengths

    if truth.n_platforms != nominal.n_platforms:
        raise CLIError(f"--truth: {truth.n_platforms} platforms; the config has "
                       f"{nominal.n_platforms}")
    legs = leg_lengths(nominal, random_poses(nominal, count, np.random.default_rng(seed)))
    e0, e1 = tool_errors(nominal, truth, legs), tool_errors(calibrated, truth, legs)
    rms = lambda e: [float(np.sqrt(np.mean(e[:, 0] ** 2))), float(np.sqrt(np.mean(e[:, 1] ** 2)))]
    return {"n": count, "before": rms(e0), "after": rms(e1)}
