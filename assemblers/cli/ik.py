"""CLI commands ``solve`` and ``trajectory`` (the IK layer's I/O; the solver is
:mod:`assemblers.ik`)."""

from __future__ import annotations

import sys

import numpy as np

from .. import files
from ..errors import ConvergenceError, InputError
from .args import (
    MAX_POSE,
    TARGET_METAVAR,
    CLIError,
    add_config_arg,
    add_json_arg,
    add_target_arg,
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


def _target(args, asm):
    if args.target is not None and getattr(args, "target_file", None):
        raise CLIError("give --target or --target-file, not both")
    if args.target is not None:
        return parse_target(args.target)
    if getattr(args, "target_file", None):
        from ..kinematics.api import as_array

        path = args.target_file
        try:
            doc = files.read_json(path, files.MAX_CONFIG_BYTES)
        except files.FileError as exc:
            raise CLIError(f"--target-file {path}: cannot read JSON ({exc.problem})") from None
        if isinstance(doc, dict) and "T" in doc:
            return _bounded(as_array(doc["T"], f"{path}: T", (4, 4), batch=False), f"{path}: T")
        if isinstance(doc, dict) and "pose" in doc:
            from ..geometry.api import pose_to_transform

            pose = as_array(doc["pose"], f"{path}: pose", (6,), batch=False)
            return pose_to_transform(_bounded(pose, f"{path}: pose"))
        raise CLIError(f"--target-file {path}: expected {{\"pose\": [x, y, z, roll, "
                       "pitch, yaw]}} or {\"T\": 4x4}")
    from .defaults import default_target

    return default_target(asm)  # the one default target of every command (cli/defaults.py)


def _bounded(a, name: str):
    """``a`` unless a component is larger than :data:`~assemblers.cli.args.MAX_POSE` in size."""
    big = np.nonzero(np.abs(a) > MAX_POSE)
    if big[0].size:
        idx = tuple(int(i[0]) for i in big)
        raise CLIError(f"{name}: value {a[idx]} at index {idx} is larger than {MAX_POSE:g} in size")
    return a


def configure_solve(p):
    add_config_arg(p)
    add_target_arg(p)
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
    T = _target(args, asm)
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
    p.description = (
        "IK along a straight line + SLERP (--to) or through timed targets (--targets), written "
        "as a trajectory file for 'assemblers stream' or 'assemblers animate'.  Without "
        "--duration a --to move is time-optimal: as fast as the actuators' velocity and "
        "acceleration limits allow (the config's [hardware] calibration, with a safety factor), "
        "sampled at the stream rate.  The output says how long the move takes, which limit "
        "binds, and whether the file streams as it is.")
    add_config_arg(p)
    p.add_argument("--from", dest="from_", default=None, metavar=TARGET_METAVAR,
                   help="start tool pose (default: the tool at the home pose)")
    p.add_argument("--to", default=None, metavar=TARGET_METAVAR,
                   help="end tool pose of a straight-line + SLERP move")
    p.add_argument("--targets", default=None, metavar="FILE",
                   help="timed tool targets instead of --from/--to: CSV with a header "
                        "t,x,y,z,roll,pitch,yaw (s, m, rad, world frame) or JSON "
                        '{"t": [...], "poses": [[x, y, z, roll, pitch, yaw], ...]}')
    p.add_argument("--duration", type=float, default=None,
                   help="s: a smooth (quintic, rest-to-rest) move of this duration instead of "
                        "the time-optimal one; a duration too short for the actuators is "
                        "reported with the shortest that is not")
    p.add_argument("--time-optimal", action="store_true",
                   help="time-optimal timing along the path (the default for --to without "
                        "--duration; with --targets: re-time the targets' path, their times "
                        "only give the order)")
    p.add_argument("--rate", type=float, default=None,
                   help="samples per second, and the stream rate the timing is checked at "
                        "(default: the config's hardware rate_hz)")
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

    from ..geometry.api import pose_to_transform
    from ..kinematics.api import as_array

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


def _peak_doc(p) -> dict | None:
    if p is None:
        return None
    return {"limit": p.limit, "platform": p.platform, "actuator": p.actuator, "value": p.value,
            "bound": p.bound, "fraction": p.fraction if p.limit != "stroke" else None,
            "t_s": p.t_s}


def _timing_problem(rep, timing: str, duration: float, rate: float) -> str | None:
    """One line saying why the plan would not stream at ``rate`` (None: it would)."""
    if rep.stroke is not None:
        return (f"{rep.stroke.describe()}: the config's soft limits are tighter than the "
                "stroke the IK keeps; no timing fixes that")
    if rep.feasible:
        return None
    b = rep.binding
    what = {"quintic": f"--duration {duration:g} s is too fast",
            "targets": "the targets' times are too fast"}.get(timing, "too fast")
    return f"{what} for the actuators at {rate:g} Hz: {b.describe()}"


def run_trajectory(args) -> int:
    from tqdm import tqdm

    from ..ik import solve_trajectory, straight_line
    from ..ik import timescale as ts
    from ..kinematics.api import forward_kinematics, home_pose
    from ..model.io import Trajectory, save_trajectory

    if (args.targets is None) == (args.to is None):
        raise CLIError("give --to (a straight-line move) or --targets FILE (timed targets), "
                       "one of them")
    files.output_path(args.out, "--out")  # before any work: nothing is solved for nothing
    check_number(args.duration, "--duration", 0.0, lo_open=True)
    check_number(args.rate, "--rate", 0.0, 10_000.0, lo_open=True)
    if args.targets is not None:
        if args.from_ is not None:
            raise CLIError("--from goes with --to, not with --targets")
        if args.duration is not None:
            raise CLIError("--duration goes with --to; a --targets file has its own times "
                           "(--time-optimal re-times them)")
        t, Ts = read_targets(args.targets)
        asm = load_assembler(args)
        timing = "time-optimal" if args.time_optimal else "targets"
    else:
        if args.duration is not None and args.time_optimal:
            raise CLIError("give --duration (a smooth move of that duration) or --time-optimal "
                           "(as fast as the actuators allow, the default), not both")
        timing = "quintic" if args.duration is not None else "time-optimal"
        asm = load_assembler(args)
    rate = asm.hardware.rate_hz if args.rate is None else args.rate
    if timing == "quintic" and args.duration * rate > MAX_STEPS:
        raise CLIError(f"--duration x --rate: {args.duration * rate:.3g} samples; at "
                       f"most {MAX_STEPS}")
    if args.to is not None:
        T_from = (forward_kinematics(asm, home_pose(asm)) if args.from_ is None
                  else parse_target(args.from_, "--from"))
        T_to = parse_target(args.to, "--to")
        if timing == "quintic":
            t, Ts = straight_line(T_from, T_to, args.duration, rate)
        else:
            t = np.linspace(0.0, 1.0, ts.PATH_SAMPLES)  # the path parameter
            Ts = ts.path_targets([0.0, 1.0], np.stack([T_from, T_to]), t)
    bar = tqdm(total=len(t), desc="trajectory IK", unit="step", file=sys.stderr,
               disable=args.json or not sys.stderr.isatty())
    res = solve_trajectory(asm, t, Ts, args.criterion, progress=lambda k: bar.update(1))
    bar.close()
    doc = {"ok": res.ok, "timing": timing, "rate_hz": rate, "ik_steps": int(len(t)),
           "failed_steps": sorted(res.messages),
           "median_step_ms": float(np.median(res.step_times_s) * 1e3),
           "cost_first": float(res.cost[0]), "cost_last": float(res.cost[-1]),
           "solvers": res.solvers, "out": args.out}
    if not res.ok:
        k = min(res.messages)
        where = (f"path sample {k} ({t[k] * 100:.1f} % along the line)"
                 if timing == "time-optimal" and args.to is not None
                 else f"step {k} (t = {t[k]:.3f} s)")
        doc["problem"] = f"{where} not reachable: {res.messages[k]}; nothing written"
        if args.json:
            print_json(doc)
        else:
            print(f"FAILED: {len(t)} IK steps; {doc['problem']}")
        return 1
    limits = ts.ActuatorLimits.from_assembler(asm)
    tool_dev = None
    if timing == "time-optimal":
        keys = (np.asarray(t), Ts) if args.targets is not None else ([0.0, 1.0],
                                                                     np.stack([T_from, T_to]))
        mv = ts.time_optimal_path(asm, res, *keys, rate)
        if mv.t.shape[0] > MAX_STEPS:
            raise CLIError(f"the time-optimal move takes {mv.duration_s:.6g} s: "
                           f"{mv.t.shape[0]} samples at {rate:g} Hz; at most {MAX_STEPS}")
        out_t, out_Q, out_legs, out_T = mv.t, mv.Q, mv.legs, mv.T_target
        rep, tool_dev = mv.report, mv.tool_error
        doc["safety_factor"] = mv.scaling.safety
        doc["sample_rate_hz"] = mv.scaling.sample_rate_hz
        doc["time_optimal_s"] = mv.duration_s
    else:
        out_t, out_Q, out_legs, out_T = res.t, res.Q, res.legs, res.T_target
        rep = ts.stream_report(out_t, out_legs, limits, rate)
    duration = float(out_t[-1] - out_t[0])
    problem = _timing_problem(rep, timing, args.duration or duration, rate)
    hint = ""
    if problem is not None and rep.stroke is None and timing != "time-optimal":
        try:  # what would pass: the time-optimal move along the same path, a longer duration
            if args.to is not None:
                opt = ts.time_optimal_move(asm, T_from, T_to, rate, args.criterion)
                shortest = ts.quintic_min_duration(asm, T_from, T_to, rate, res, args.criterion)
            else:
                opt, shortest = ts.time_optimal_path(asm, res, t, Ts, rate), None
        except (InputError, ConvergenceError):
            opt = shortest = None
        doc["time_optimal_s"] = None if opt is None else opt.duration_s
        doc["min_duration_s"] = shortest
        parts = []
        if shortest is not None:
            parts.append(f"--duration {shortest:g} or longer passes")
        if opt is not None:
            how = "omit --duration" if args.to is not None else "--time-optimal"
            parts.append(f"the time-optimal move ({how}) takes {opt.duration_s:.3f} s")
        hint = "; ".join(parts)
    max_step = float(np.abs(np.diff(out_legs, axis=0)).max()) if len(out_t) > 1 else 0.0
    doc.update({"steps": int(len(out_t)), "duration_s": duration, "max_leg_step_m": max_step,
                "streamable": problem is None, "problem": problem, "hint": hint or None,
                "limits": {"rate_hz": rate, "binding": rep.binding.limit,
                           "velocity": _peak_doc(rep.velocity),
                           "acceleration": _peak_doc(rep.acceleration),
                           "stroke": _peak_doc(rep.stroke)},
                "tool_deviation_m": None if tool_dev is None else tool_dev[0],
                "tool_deviation_rad": None if tool_dev is None else tool_dev[1]})
    meta = {"criterion": res.criterion, "max_leg_step_m": max_step, "rate_hz": rate,
            "duration_s": duration, "timing": timing, "streamable": problem is None,
            "binding": _peak_doc(rep.binding)}
    if timing == "time-optimal":
        meta["safety_factor"] = doc["safety_factor"]
        meta["sample_rate_hz"] = doc["sample_rate_hz"]
    save_trajectory(args.out, Trajectory(t=out_t, Q=out_Q, legs=out_legs, config=asm.source,
                                         T_target=out_T, meta=meta))
    if problem is not None:
        print(f"assemblers trajectory: warning: NOT STREAMABLE: {problem}"
              + (f"; {hint}" if hint else ""), file=sys.stderr)
    if args.json:
        print_json(doc)
        return 0
    solvers = ", ".join(f"{v} {k}" for k, v in res.solvers.items())
    if timing == "time-optimal":
        print(f"OK: time-optimal move of {duration:.3f} s for streaming at {rate:g} Hz, "
              f"planned to {doc['safety_factor'] * 100:g} % of the limits ({len(out_t)} "
              f"samples, {doc['sample_rate_hz']:g} a second)")
    else:
        print(f"OK: {len(out_t)} samples, {duration:.3f} s"
              + (f" at {rate:g} Hz" if timing == "quintic" else ""))
    print(f"binding limit: {rep.binding.describe()}")
    other = rep.acceleration if rep.binding is rep.velocity else rep.velocity
    print(f"other peak:    {other.describe()}")
    print(f"path: {len(t)} IK steps, median {doc['median_step_ms']:.2f} ms ({solvers}); largest "
          f"leg step {max_step * 1e3:.3f} mm"
          + ("" if tool_dev is None else f"; tool within {tool_dev[0] * 1e6:.2g} um and "
             f"{tool_dev[1] * 1e6:.2g} urad of the path between the IK samples"))
    if problem is None:
        lower = " (and any lower rate)" if timing == "time-optimal" else ""
        print(f"streamable at {rate:g} Hz{lower}: every limit kept")
    else:
        print(f"NOT STREAMABLE: {problem}" + (f"; {hint}" if hint else ""))
    print(f"wrote {args.out}")
    return 0
