"""CLI commands ``solve`` and ``trajectory`` (the IK layer's I/O; the solver is
:mod:`assemblers.ik`)."""

from __future__ import annotations

import sys

import numpy as np

from .. import files
from .args import (
    MAX_POSE,
    CLIError,
    add_config_arg,
    add_json_arg,
    check_number,
    load_assembler,
    parse_numbers,
    parse_target,
)
from .render import print_json, table

#: Most starts of one solve (each is a full solve).
MAX_STARTS = 1000
#: Most samples of one trajectory (1000 s at 1 kHz).
MAX_STEPS = 1_000_000


def _target(args):
    if args.target is not None and getattr(args, "target_file", None):
        raise CLIError("give --target or --target-file, not both")
    if args.target is not None:
        return parse_target(args.target)
    if getattr(args, "target_file", None):
        from ..api import as_array

        path = args.target_file
        try:
            doc = files.read_json(path, files.MAX_CONFIG_BYTES)
        except files.FileError as exc:
            raise CLIError(f"--target-file {path}: cannot read JSON ({exc.problem})") from None
        if isinstance(doc, dict) and "T" in doc:
            return _bounded(as_array(doc["T"], f"{path}: T", (4, 4), batch=False), f"{path}: T")
        if isinstance(doc, dict) and "pose" in doc:
            from ..transforms import pose_to_transform

            pose = as_array(doc["pose"], f"{path}: pose", (6,), batch=False)
            return pose_to_transform(_bounded(pose, f"{path}: pose"))
        raise CLIError(f"--target-file {path}: expected {{\"pose\": [x, y, z, roll, "
                       "pitch, yaw]}} or {\"T\": 4x4}")
    raise CLIError("give a target: --target \"x y z roll pitch yaw\" (m, rad, world frame)")


def _bounded(a, name: str):
    """``a`` unless a component is larger than :data:`~assemblers.cli.args.MAX_POSE` in size."""
    big = np.nonzero(np.abs(a) > MAX_POSE)
    if big[0].size:
        idx = tuple(int(i[0]) for i in big)
        raise CLIError(f"{name}: value {a[idx]} at index {idx} is larger than {MAX_POSE:g} in size")
    return a


def configure_solve(p):
    add_config_arg(p)
    p.add_argument("--target", default=None, metavar='"x y z roll pitch yaw"',
                   help="tool pose target in the world frame (m, rad)")
    p.add_argument("--target-file", default=None, metavar="FILE",
                   help='JSON file: {"pose": [x, y, z, roll, pitch, yaw]} or {"T": 4x4}')
    p.add_argument("--criterion", default=None, metavar="NAME|BLEND",
                   help="fn: min ||J_Q||_F (default, or fn_legs when the config's wrt = legs); "
                        "fn_legs: ||J_L||_F; condition: cond(J); loads: sum of (leg force / "
                        "rating)^2; loads_max: the largest leg force / rating; margin: the "
                        "largest excursion from mid-stroke; compliance: the tool deflection "
                        "under the loads; even/nearest: baselines; or a blend of them such as "
                        '"fn:1,loads:0.2" (each term over its value at the even split)')
    p.add_argument("--starts", type=int, default=1,
                   help=f"number of starts (default 1, at most {MAX_STARTS})")
    add_json_arg(p)


def result_doc(asm, r) -> dict:
    from .statics import force_doc

    stroke = (r.legs - asm.leg_min[:, None]) / (asm.leg_max - asm.leg_min)[:, None]
    forces = force_doc(asm, r.Q)
    return {**(forces or {}), "success": r.success, "message": r.message, "reason": r.reason,
            "criterion": r.criterion, "cost": r.cost, "baseline_cost_even": r.baseline_cost,
            "reduction_vs_even": r.reduction, "max_violation": r.max_violation,
            "tool_error_m": r.tool_error[0], "tool_error_rad": r.tool_error[1],
            "iterations": r.iterations, "time_s": r.time_s, "Q": r.Q.tolist(),
            "legs": r.legs.tolist(), "stroke_used_fraction": stroke.tolist(),
            "platform_poses": [q.tolist()
                               for q in r.Q.reshape(-1, 6)]}


def print_result(asm, r, load_s: float | None = None) -> None:
    from .statics import FORCE_HEADERS, force_columns

    d = result_doc(asm, r)
    loaded = "leg_forces_N" in d
    status = "SOLVED" if r.success else "NOT REACHED"
    load = "" if load_s is None else f"; kernels loaded or compiled first in {load_s:.2f} s"
    print(f"{status}: {r.message}   ({r.criterion}, {r.iterations} iterations, "
          f"{r.time_s * 1e3:.1f} ms{load})")
    rows = []
    for i, q in enumerate(r.Q.reshape(-1, 6)):
        st = np.array(d["stroke_used_fraction"][i]) * 100
        rows.append([i + 1, f"{q[0]:+.4f}", f"{q[1]:+.4f}", f"{q[2]:.4f}", f"{q[3]:+.4f}",
                     f"{q[4]:+.4f}", f"{q[5]:+.4f}", f"{r.legs[i].min():.4f}-{r.legs[i].max():.4f}",
                     f"{st.min():.0f}-{st.max():.0f}"] + (force_columns(d, i) if loaded else []))
    print(table(["#", "x [m]", "y [m]", "z [m]", "roll", "pitch", "yaw", "legs [m]",
                 "stroke [%]"] + (FORCE_HEADERS if loaded else []), rows))
    base = "n/a" if r.baseline_cost is None else f"{r.baseline_cost:.6g}"
    red = "" if r.reduction is None else f"  ->  {r.reduction * 100:.2f} % lower than even"
    print(f"cost ({r.criterion}) = {r.cost:.6g}   even baseline = {base}{red}")
    print(f"residuals: tool {r.tool_error[0]:.2e} m, {r.tool_error[1]:.2e} rad; "
          f"largest limit violation {r.max_violation:.2e}")


def run_solve(args) -> int:
    from ..ik import solve_ik, warmup

    asm = load_assembler(args)
    T = _target(args)
    if args.starts < 1:
        raise CLIError("--starts: must be at least 1")
    if args.starts > MAX_STARTS:
        raise CLIError(f"--starts: at most {MAX_STARTS}, got {args.starts}")
    # load (or compile) the kernels first, so the time reported is the solver's own
    load_s = warmup(asm, args.criterion)
    r = solve_ik(asm, T, args.criterion, n_starts=args.starts)
    if args.json:
        print_json({**result_doc(asm, r), "load_s": load_s})
    else:
        print_result(asm, r, load_s)
    return 0 if r.success else 1


def configure_trajectory(p):
    add_config_arg(p)
    p.add_argument("--from", dest="from_", default=None, metavar='"x y z roll pitch yaw"',
                   help="start tool pose (default: the tool at the home pose)")
    p.add_argument("--to", default=None, metavar='"x y z roll pitch yaw"',
                   help="end tool pose of a straight-line + SLERP move")
    p.add_argument("--targets", default=None, metavar="FILE",
                   help="timed tool targets instead of --from/--to: CSV with a header "
                        "t,x,y,z,roll,pitch,yaw (s, m, rad, world frame) or JSON "
                        '{"t": [...], "poses": [[x, y, z, roll, pitch, yaw], ...]}')
    p.add_argument("--duration", type=float, default=2.0, help="s (default 2)")
    p.add_argument("--rate", type=float, default=100.0, help="samples per second (default 100)")
    p.add_argument("--criterion", default=None, metavar="NAME|BLEND",
                   help="IK criterion of every step (as `assemblers solve --criterion`; the "
                        "baselines even and nearest are not tracked)")
    p.add_argument("--out", required=True, help="trajectory file to write (JSON)")
    add_json_arg(p)


def read_targets(path: str):
    """Timed tool targets from CSV (header ``t,x,y,z,roll,pitch,yaw``) or JSON (``{"t": [...],
    "poses": [[x, y, z, roll, pitch, yaw], ...]}``): ``(t (T,) s, T (T, 4, 4))``.  Errors name
    the file and the row or key; times must be finite and strictly increasing."""
    import csv

    from ..api import as_array
    from ..transforms import pose_to_transform

    cols = ["t", "x", "y", "z", "roll", "pitch", "yaw"]
    try:
        text = files.read_text(path)
    except files.FileError as exc:
        raise CLIError(f"--targets {path}: cannot read ({exc.problem})") from None
    if path.lower().endswith(".json"):
        try:
            doc = files.parse_json(text, path)
        except files.FileError as exc:
            raise CLIError(f"--targets {exc}") from None
        if not isinstance(doc, dict) or "t" not in doc or "poses" not in doc:
            raise CLIError(f'--targets {path}: expected {{"t": [...], "poses": [[x, y, z, roll, '
                           'pitch, yaw], ...]}')
        t = as_array(doc["t"], f"{path}: t", ())
        poses = as_array(doc["poses"], f"{path}: poses", (6,))
    else:
        rows = list(csv.reader(text.splitlines()))
        if not rows or [c.strip() for c in rows[0]] != cols:
            raise CLIError(f"--targets {path}: the first line must be the header "
                           f"{','.join(cols)}")
        if len(rows) > MAX_STEPS + 1:
            raise CLIError(f"--targets {path}: {len(rows) - 1} rows; at most {MAX_STEPS} targets")
        vals = []
        for i, row in enumerate(rows[1:], start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != 7:
                raise CLIError(f"--targets {path}: line {i}: expected 7 values, got {len(row)}")
            vals.append(parse_numbers(",".join(row), f"--targets {path}: line {i}", 7))
        if not vals:
            raise CLIError(f"--targets {path}: no targets")
        arr = np.array(vals)
        t, poses = arr[:, 0], arr[:, 1:]
    if t.ndim != 1 or poses.ndim != 2 or t.shape[0] != poses.shape[0]:
        raise CLIError(f"--targets {path}: t and poses must have the same length")
    if t.shape[0] < 1:
        raise CLIError(f"--targets {path}: no targets")
    if t.shape[0] > MAX_STEPS:
        raise CLIError(f"--targets {path}: {t.shape[0]} targets; at most {MAX_STEPS}")
    _bounded(poses, f"--targets {path}: poses")
    if np.any(np.diff(t) <= 0):
        k = int(np.nonzero(np.diff(t) <= 0)[0][0]) + 1
        raise CLIError(f"--targets {path}: times must increase strictly (target {k}: "
                       f"t = {t[k]} after {t[k - 1]})")
    return t, np.stack([pose_to_transform(p) for p in poses])


def run_trajectory(args) -> int:
    from tqdm import tqdm

    from ..api import forward_kinematics, home_pose
    from ..ik import solve_trajectory, straight_line
    from ..model.io import Trajectory, save_trajectory

    if (args.targets is None) == (args.to is None):
        raise CLIError("give --to (a straight-line move) or --targets FILE (timed targets), "
                       "one of them")
    files.output_path(args.out, "--out")  # before any work: nothing is solved for nothing
    if args.targets is not None:
        if args.from_ is not None:
            raise CLIError("--from goes with --to, not with --targets")
        t, Ts = read_targets(args.targets)
        asm = load_assembler(args)
    else:
        check_number(args.duration, "--duration", 0.0, lo_open=True)
        check_number(args.rate, "--rate", 0.0, 10_000.0, lo_open=True)
        if args.duration * args.rate > MAX_STEPS:
            raise CLIError(f"--duration x --rate: {args.duration * args.rate:.3g} samples; at "
                           f"most {MAX_STEPS}")
        asm = load_assembler(args)
        T_from = (forward_kinematics(asm, home_pose(asm)) if args.from_ is None
                  else parse_target(args.from_, "--from"))
        T_to = parse_target(args.to, "--to")
        t, Ts = straight_line(T_from, T_to, args.duration, args.rate)
    bar = tqdm(total=len(t), desc="trajectory IK", unit="step", file=sys.stderr,
               disable=args.json or not sys.stderr.isatty())
    res = solve_trajectory(asm, t, Ts, args.criterion, progress=lambda k: bar.update(1))
    bar.close()
    doc = {"ok": res.ok, "steps": int(len(t)), "failed_steps": sorted(res.messages),
           "max_leg_step_m": res.max_leg_step,
           "median_step_ms": float(np.median(res.step_times_s) * 1e3),
           "cost_first": float(res.cost[0]), "cost_last": float(res.cost[-1]),
           "solvers": res.solvers, "out": args.out}
    if res.ok:
        save_trajectory(args.out, Trajectory(
            t=res.t, Q=res.Q, legs=res.legs, config=asm.source, T_target=res.T_target,
            meta={"criterion": res.criterion, "max_leg_step_m": res.max_leg_step,
                  "rate_hz": args.rate if args.targets is None else None,
                  "duration_s": float(t[-1] - t[0])}))
    if args.json:
        print_json(doc)
    else:
        print(f"{'OK' if res.ok else 'FAILED'}: {len(t)} steps, largest leg step "
              f"{res.max_leg_step * 1e3:.3f} mm, median step {doc['median_step_ms']:.2f} ms "
              f"({', '.join(f'{v} {k}' for k, v in res.solvers.items())})")
        if res.ok:
            print(f"wrote {args.out}")
        else:
            k = min(res.messages)
            print(f"step {k} (t = {t[k]:.3f} s) not reachable: {res.messages[k]}; nothing written")
    return 0 if res.ok else 1
