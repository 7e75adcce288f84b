"""CLI command ``assemblers sweep``: workspace and sensitivity maps over many tool targets.

    assemblers sweep --out DIR [--config NAME|FILE[,NAME|FILE...]] [--frame home|world]
        [--x "MIN MAX"] [--y ...] [--z ...] [--roll ...] [--pitch ...] [--yaw ...]
        [--grid N | --grid "NX NY NZ NROLL NPITCH NYAW" | --random N] [--seed N]
        [--criterion NAME|BLEND] [--mc-samples N] [--mc-noise KINDS]
        [--workers N | --dask tcp://HOST:8786] [--batch N] [--format parquet|csv]
        [--no-maps] [--no-progress] [--json]

Rerunning the same command resumes an interrupted sweep (finished targets are skipped); a
finished sweep only redraws its maps and summary.  Exit status: 0 the sweep is complete (some
targets may be unreachable: that is a result), 1 it ran but is incomplete (targets raised, a
worker died; rerun to resume), 2 bad input (one line on stderr; nothing written), 130
interrupted (Ctrl-C or SIGTERM; rerun to resume).
"""

from __future__ import annotations

import json
import sys

from assemblers.cli import CLIError, add_config_arg, add_json_arg, parse_numbers

from .spec import AXES, FORMATS, FRAMES, SweepFailed, SweepSpec, parse_count, read_config

AXIS_DEFAULTS = {"x": "-0.1 0.1", "y": "-0.1 0.1", "z": "-0.05 0.05",
                 "roll": "0", "pitch": "0", "yaw": "0"}
DEFAULT_GRID = 5


def configure_sweep(p):
    add_config_arg(p)
    for a in p._actions:  # the same option, documented as a list here
        if "--config" in a.option_strings:
            a.help = ("config file(s) or shipped config name(s), comma-separated: every target "
                      "is solved for each (default: the default Assembler)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output directory: sweep.json, parts/, results.parquet|csv, summary.md, "
                        "maps/*.png; rerun with the same options to resume")
    p.add_argument("--frame", default="home",
                   help="home: the box is an offset from each config's home tool pose "
                        "(default); world: absolute tool poses (then give --x, --y and --z)")
    for a, unit in zip(("x", "y", "z", "roll", "pitch", "yaw"), ("m",) * 3 + ("rad",) * 3):
        p.add_argument(f"--{a}", default=None, metavar='"MIN MAX"',
                       help=f"range of {a}, {unit}, or one value (default "
                            f"{AXIS_DEFAULTS[a]!r} with --frame home)")
    p.add_argument("--grid", default=None, metavar="N",
                   help=f"grid targets: N points on every axis with a range, or 6 counts "
                        f"(x y z roll pitch yaw) (default {DEFAULT_GRID})")
    p.add_argument("--random", default=None, metavar="N",
                   help="N targets uniform in the box instead of a grid (from --seed)")
    p.add_argument("--seed", default="0", metavar="N",
                   help="seed of the random targets and the Monte Carlo (default 0)")
    p.add_argument("--criterion", default=None, metavar="NAME",
                   help="IK criterion: fn, fn_legs, condition, loads, loads_max, margin, "
                        "compliance, even, nearest or a blend such as fn:1,loads:0.2 (default: "
                        "the config's, fn or fn_legs)")
    p.add_argument("--restarts", default="0", metavar="N",
                   help="basin steps of solve_ik's global layer per target (default 0: one start "
                        "per target, for throughput; solve_ik's own default is 4 on 4 or more platforms)")
    p.add_argument("--mc-samples", default="0", metavar="N",
                   help="Monte Carlo samples per reached target at the optimal and the even pose "
                        "(default 0: none)")
    p.add_argument("--mc-noise", default=None, metavar="KINDS",
                   help="Monte Carlo disturbance: pose, legs, joints, comma-separated (default: "
                        "the config's, as in 'assemblers robustness')")
    p.add_argument("--workers", default=None, metavar="N",
                   help="local worker processes (default: all cores; 0: in this process)")
    p.add_argument("--dask", default=None, metavar="ADDRESS",
                   help="run on a Dask distributed cluster, e.g. tcp://scheduler:8786 "
                        "(pip install 'assemblers[cluster]')")
    p.add_argument("--batch", default=None, metavar="N",
                   help="targets per task (default: about 8 tasks per worker, each at most "
                        "about 2 s of work and 4096 targets)")
    p.add_argument("--format", default="parquet", metavar="FMT",
                   help="parquet (default) or csv")
    p.add_argument("--no-maps", action="store_true", help="no PNG maps")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_json_arg(p)


def _int(text, name: str, lo: int, hi: int | None = None) -> int:
    return parse_count(str(text).strip(), name, lo, hi)


def _range(text: str, name: str) -> tuple[float, float]:
    vals = parse_numbers(text, name)
    if len(vals) not in (1, 2):
        raise CLIError(f"{name}: give \"MIN MAX\" or one value, got {len(vals)} numbers")
    return (vals[0], vals[-1])


def build_spec(args):
    """The :class:`~sims.sweeps.spec.SweepSpec` of parsed arguments (CLIError / SweepError on
    bad input; reads the config files, writes nothing)."""
    if args.frame not in FRAMES:
        raise CLIError(f"--frame: one of {', '.join(FRAMES)}, got {args.frame!r}")
    if args.frame == "world":
        missing = [f"--{a}" for a in ("x", "y", "z") if getattr(args, a) is None]
        if missing:
            raise CLIError(f"--frame world: give {', '.join(missing)} (absolute positions, m)")
    ranges = [_range(getattr(args, a) if getattr(args, a) is not None else AXIS_DEFAULTS[a],
                     f"--{a}") for a in AXES]
    lo, hi = [r[0] for r in ranges], [r[1] for r in ranges]
    if args.grid is not None and args.random is not None:
        raise CLIError("--grid and --random: give one of them")
    if args.random is not None:
        mode, counts, n_random = "random", (1,) * 6, _int(args.random, "--random", 1)
    else:
        mode, n_random = "grid", 0
        vals = parse_numbers(args.grid, "--grid") if args.grid is not None else [DEFAULT_GRID]
        if len(vals) not in (1, 6):
            raise CLIError(f"--grid: give one count or 6 (x y z roll pitch yaw), got {len(vals)}")
        for v in vals:
            if v != int(v) or v < 1:
                raise CLIError(f"--grid: counts must be integers >= 1, got {args.grid!r}")
        if len(vals) == 1:  # every axis with a range gets N points, fixed axes one
            counts = tuple(int(vals[0]) if lo_a < hi_a else 1 for lo_a, hi_a in zip(lo, hi))
        else:
            counts = tuple(int(v) for v in vals)
    seed = _int(args.seed, "--seed", 0)
    if seed >= 2**63:
        raise CLIError("--seed: must be below 2^63")
    mc_samples = _int(args.mc_samples, "--mc-samples", 0)
    mc_noise = None
    if args.mc_noise is not None:
        mc_noise = tuple(k.strip() for k in args.mc_noise.split(",") if k.strip())
    names = [c.strip() for c in (args.config or "assembler").split(",")]
    if not all(names):
        raise CLIError(f"--config: empty name in {args.config!r}")
    configs = [read_config(n) for n in names]
    return SweepSpec(configs=configs, lo=lo, hi=hi, mode=mode, counts=counts,
                     n_random=n_random, frame=args.frame, criterion=args.criterion, seed=seed,
                     mc_samples=mc_samples, mc_noise=mc_noise,
                     restarts=_int(args.restarts, "--restarts", 0))


def _executor(args):
    if args.dask is not None and args.workers is not None:
        raise CLIError("--dask and --workers: give one of them (Dask workers are started with "
                       "'dask worker')")
    if args.dask is not None:
        if not args.dask.strip():
            raise CLIError("--dask: give the scheduler address, e.g. tcp://host:8786")
        return args.dask.strip()
    if args.workers is not None:
        from .workers import max_workers

        n = _int(args.workers, "--workers", 0)
        if n > max_workers():
            raise CLIError(f"--workers: at most {max_workers()} (4 per CPU) on this machine, got "
                           f"{args.workers!r}")
        return n
    return None


def run_sweep(args) -> int:
    import signal

    from .driver import run_sweep as run
    from .maps import finite_or_null, report
    from .output import SweepOutput

    if args.format not in FORMATS:
        raise CLIError(f"--format: one of {', '.join(FORMATS)}, got {args.format!r}")
    batch = _int(args.batch, "--batch", 1) if args.batch is not None else None
    executor = _executor(args)
    spec = build_spec(args)
    SweepOutput(args.out, spec, args.format).check()  # before connecting to anything

    def on_term(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, on_term)
    status = 0
    try:
        sweep = run(spec, args.out, fmt=args.format, executor=executor, batch=batch,
                    progress=False if args.no_progress else None)
    except SweepFailed as exc:
        print(f"assemblers sweep: incomplete: {exc}", file=sys.stderr)
        sweep, status = exc.run, 1
    except KeyboardInterrupt:
        print(f"assemblers sweep: interrupted; finished rows are saved in {args.out}, rerun the "
              f"same command to resume", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, old)
    for name, why in (sweep.repaired if sweep is not None else []):
        print(f"assemblers sweep: {name}: {why}; not merged, its targets are solved again",
              file=sys.stderr)
    try:
        doc = report(args.out, maps=not args.no_maps)
    except OSError as exc:  # the rows are saved; only the summary or a map could not be written
        raise CLIError(f"cannot write the summary in {args.out} ({exc.strerror or exc}); the "
                       f"results are saved, rerun to redraw", status=1) from None
    if sweep is not None:
        doc["run"] = sweep.to_dict()
    if args.json:
        print(json.dumps(finite_or_null(doc), indent=2, allow_nan=False))
    else:
        print(doc["table"])
        if sweep is not None:
            print(f"\nthis run: {sweep.new} targets in {sweep.wall_s:.1f} s "
                  f"({sweep.throughput:.3g} targets/s, {sweep.executor}, {sweep.workers} "
                  f"worker(s), {sweep.batch} per task); {sweep.n_before} were already done")
        print(f"results: {doc['results'] or 'incomplete (rerun to resume)'}; "
              f"{len(doc['files'])} report files in {args.out}")
    return status
