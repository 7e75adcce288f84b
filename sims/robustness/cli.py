"""CLI command ``assemblers robustness``: Monte Carlo robustness study with report.

    assemblers robustness --target "x y z roll pitch yaw" [--target ...] --samples 1e6 --out DIR
        [--config FILE|NAME] [--noise pose|legs|joints[,...]] [--sigma-xyz M] [--sigma-rpy RAD]
        [--pose-dist gaussian|uniform] [--sigma-leg M] [--sigma-joint M] [--seed N]
        [--random-poses K] [--criterion fn|fn_legs|condition] [--threads N] [--no-progress]
        [--json]

Several ``--target``: one study each, reports in ``DIR/target-k/`` and a table in
``DIR/index.md``.  Exit status: 0 success, 1 a target is unreachable (the solver's reason is
printed; the other targets are still studied), 2 bad input (one line on stderr; nothing is
written to ``--out``).
"""

from __future__ import annotations

import sys

from assemblers import files
from assemblers.cli import (
    CLIError,
    add_config_arg,
    add_json_arg,
    add_target_arg,
    parse_count,
    parse_sigma,
    parse_target,
)
from assemblers.cli.render import print_json

NOISE_KINDS = ("pose", "legs", "joints")
#: Most Monte Carlo samples per pose: memory does not grow with it, time does (~1e7 samples/s
#: on 2 cores: 1e10 is about 20 minutes per pose).
MAX_SAMPLES = 10**10
#: Most random feasible poses compared (each is an IK solve and a full Monte Carlo run).
MAX_RANDOM_POSES = 1000
#: the standard deviations of the disturbance models: (option, metavar, help)
SIGMA_OPTIONS = (
    ("--sigma-xyz", "M", "pose noise: std of x, y, z of every platform, m (1 or 3 numbers; "
                         "default from the config's weights, scaled to 1e-4)"),
    ("--sigma-rpy", "RAD", "pose noise: std of roll, pitch, yaw of every platform, rad (1 or 3)"),
    ("--sigma-leg", "M", "actuator noise: std of every leg length, m (default: the config's "
                         "sigma_leg when <= 0.01, else 1e-4)"),
    ("--sigma-joint", "M", "joint-position errors: std of every joint coordinate, m "
                           "(default 1e-4)"),
)


def configure_robustness(p):
    add_config_arg(p)
    add_target_arg(p, action="append",
                   help="tool pose target in the world frame (m, rad); repeat it for several "
                        "targets (reports in DIR/target-1, DIR/target-2, ... and DIR/index.md); "
                        "default: the config's default target (assemblers.cli.defaults)")
    p.add_argument("--samples", default="1e6", metavar="N",
                   help="Monte Carlo samples per pose (default 1e6, at most 1e10; memory does not "
                        "grow with N)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write report.md, stats.json and PNG figures into DIR")
    p.add_argument("--noise", default=None, metavar="KINDS",
                   help="disturbance: pose, legs or joints, or a comma-separated combination "
                        "(default: pose, or legs when the config's [sensitivity] wrt = legs)")
    for flag, metavar, text in SIGMA_OPTIONS[:2]:
        p.add_argument(flag, default=None, metavar=metavar, help=text)
    p.add_argument("--pose-dist", default="gaussian", choices=("gaussian", "uniform"),
                   help="pose noise distribution (uniform on +-sqrt(3) sigma: same std)")
    for flag, metavar, text in SIGMA_OPTIONS[2:]:
        p.add_argument(flag, default=None, metavar=metavar, help=text)
    p.add_argument("--seed", default="0", metavar="N", help="random seed (default 0)")
    p.add_argument("--random-poses", default="5", metavar="K",
                   help="random feasible poses reaching the target to compare (default 5, at "
                        "most 1000)")
    p.add_argument("--criterion", default=None, metavar="NAME|BLEND",
                   help="criterion of the optimal pose: fn, fn_legs, condition, loads, loads_max, "
                        "margin, compliance or a blend such as fn:1,loads:0.2 (default: fn for "
                        "pose noise, fn_legs for actuator noise, else the config's)")
    p.add_argument("--compare", default=None, metavar="NAMES",
                   help="further criteria whose poses are studied too, separated by ';' (a blend "
                        "has commas: 'loads;fn:1,loads:0.2'); default: loads and fn:1,loads:0.2 "
                        "when the config has a mass model; 'none' for none")
    p.add_argument("--threads", default=None, metavar="N",
                   help="Numba threads (default: all cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    p.add_argument("--no-figures", action="store_true", help="with --out: no PNG figures")
    add_json_arg(p)


def _disturbance(args, asm):
    from .montecarlo import Disturbance
    from .study import DEFAULT_SIGMA, default_disturbance

    if args.noise is None:
        kinds = default_disturbance(asm).kinds
    else:
        kinds = tuple(k.strip() for k in args.noise.split(",") if k.strip())
        bad = [k for k in kinds if k not in NOISE_KINDS]
        if not kinds or bad:
            raise CLIError(f"--noise: {', '.join(bad) or repr(args.noise)} is not one of "
                           f"{', '.join(NOISE_KINDS)} (comma-separated)")
    sxyz = parse_sigma(args.sigma_xyz, "--sigma-xyz", 3)
    srpy = parse_sigma(args.sigma_rpy, "--sigma-rpy", 3)
    sleg = parse_sigma(args.sigma_leg, "--sigma-leg")
    sjoint = parse_sigma(args.sigma_joint, "--sigma-joint")
    for opt, val, kind in (("--sigma-xyz", sxyz, "pose"), ("--sigma-rpy", srpy, "pose"),
                           ("--sigma-leg", sleg, "legs"), ("--sigma-joint", sjoint, "joints")):
        if val is not None and kind not in kinds:
            raise CLIError(f"{opt} is given but --noise does not include {kind!r}")
    if args.pose_dist != "gaussian" and "pose" not in kinds:
        raise CLIError("--pose-dist is given but --noise does not include 'pose'")
    base = default_disturbance(asm, kinds)
    pose = list(base.pose_sigma)
    if sxyz is not None:  # one of the two given: the other keeps its default
        pose[:3] = sxyz
    if srpy is not None:
        pose[3:] = srpy
    return Disturbance(pose_sigma=pose, pose_dist=args.pose_dist,
                       leg_sigma=sleg if sleg is not None else base.leg_sigma,
                       joint_sigma=(sjoint if sjoint is not None else
                                    (DEFAULT_SIGMA if "joints" in kinds else 0.0)))


def run_robustness(args) -> int:
    from pathlib import Path

    from assemblers.cli import load_assembler

    # validate everything before any work or any file
    targets = [parse_target(t, "--target") for t in args.target or ()]
    n_samples = parse_count(args.samples, "--samples", 1, MAX_SAMPLES)
    seed = parse_count(args.seed, "--seed", 0)
    if seed >= 2**63:
        raise CLIError("--seed: must be below 2^63")
    n_random = parse_count(args.random_poses, "--random-poses", 0, MAX_RANDOM_POSES)
    if args.out is not None:
        files.output_dir(args.out, "--out")
    if args.threads is not None:
        import numba

        threads = parse_count(args.threads, "--threads", 1)
        if threads > numba.config.NUMBA_NUM_THREADS:
            raise CLIError(f"--threads: at most {numba.config.NUMBA_NUM_THREADS} on this machine")
        numba.set_num_threads(threads)
    asm = load_assembler(args)
    if not targets:  # the one default target of every command
        from assemblers.cli.defaults import default_target, target_text

        T = default_target(asm)
        targets, args.target = [T], [target_text(T)]
    disturbance = _disturbance(args, asm)

    from .study import TargetUnreachable, run_study

    progress = False if args.no_progress else None
    if len(targets) > 1:
        return _run_many(args, asm, targets, disturbance, n_samples, seed, n_random, progress)
    try:
        study = run_study(asm, targets[0], disturbance, n_samples, seed,
                          criterion=args.criterion, n_random=n_random, progress=progress,
                          compare=_compare(args))
    except TargetUnreachable as exc:
        r = exc.ik_result
        if args.json:
            print_json(_unreachable_doc(r))
        print(f"assemblers robustness: target not reached: {r.message}", file=sys.stderr)
        return 1
    if args.out is not None:
        paths = _write(study, args.out, args.no_figures)
    if args.json:
        doc = study.to_dict(histograms=False)
        if args.out is not None:
            doc["files"] = [str(p) for p in paths]
        print_json(doc)
    else:
        from .report import terminal_summary

        print(terminal_summary(study))
        if args.out is not None:
            print(f"report: {Path(args.out) / 'report.md'} ({len(paths)} files)")
    return 0


def _unreachable_doc(r) -> dict:
    return {"success": False, "reason": r.reason, "message": r.message,
            "tool_error_m": r.tool_error[0], "tool_error_rad": r.tool_error[1]}


def _write(study, out, no_figures: bool):
    from .report import write_report

    try:
        return write_report(study, out, figures=not no_figures)
    except files.FileError as exc:
        raise CLIError(f"--out {out}: cannot write the report ({exc})") from None


def _compare(args):
    """``--compare`` as a tuple of criteria (None: the study's default)."""
    if args.compare is None:
        return None
    if args.compare.strip().lower() == "none":
        return ()
    return tuple(c.strip() for c in args.compare.split(";") if c.strip())


def _run_many(args, asm, targets, disturbance, n_samples, seed, n_random, progress) -> int:
    """Several ``--target``: one study each (same disturbance and seed), reports in
    ``DIR/target-k`` and a summary table in ``DIR/index.md``; exit 1 if any target was not
    reached (the others are still studied and written)."""
    from pathlib import Path

    from .report import terminal_summary
    from .study import TargetUnreachable, run_study

    docs, rows, failed = [], [], 0
    for k, T in enumerate(targets, 1):
        name = f"target-{k}"
        try:
            study = run_study(asm, T, disturbance, n_samples, seed, criterion=args.criterion,
                              n_random=n_random, progress=progress, compare=_compare(args))
        except TargetUnreachable as exc:
            failed += 1
            r = exc.ik_result
            print(f"assemblers robustness: {name} ({args.target[k - 1]}) not reached: "
                  f"{r.message}", file=sys.stderr)
            docs.append({"target": name, **_unreachable_doc(r)})
            rows.append(f"| {name} | `{args.target[k - 1]}` | not reached | | | |")
            continue
        paths = _write(study, Path(args.out) / name, args.no_figures) if args.out else []
        doc = {"target": name, **study.to_dict(histograms=False)}
        if paths:
            doc["files"] = [str(p) for p in paths]
        docs.append(doc)
        red = study.reductions()
        ev = red.get("even", {})
        opt = study.optimal.stats
        link = f"[{name}]({name}/report.md)" if args.out else name
        rows.append(f"| {link} | `{args.target[k - 1]}` | {opt.rms_position * 1e3:.4g} | "
                    f"{opt.p99_position * 1e3:.4g} | "
                    + " | ".join(f"{100 * ev[m]:+.1f} %" if m in ev else "-"
                                 for m in ("rms_weighted", "p99_position")) + " |")
        if not args.json:
            print(f"== {name}\n{terminal_summary(study)}\n")
    if args.out:
        out = Path(args.out)
        head = ["# Robustness studies", "",
                f"{asm.name} (N = {asm.n_platforms}), {disturbance.describe()}, "
                f"{n_samples} samples per pose, seed {seed}.", "",
                "| study | target (x y z m, roll pitch yaw rad) | optimal RMS position [mm] | "
                "optimal p99 position [mm] | reduction vs even: RMS weighted | p99 position |",
                "|---|---|---|---|---|---|"]
        files.write_text(out / "index.md", "\n".join(head + rows) + "\n", "--out")
    if args.json:
        print_json({"studies": docs})
    elif args.out:
        print(f"reports: {Path(args.out) / 'index.md'} ({len(targets)} targets)")
    return 1 if failed else 0
