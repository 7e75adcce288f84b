"""CLI commands ``show``, ``animate`` and ``physics`` (PyBullet views and the physics check).

::

    assemblers show --target "0.02 0.01 1.15 0.05 0 0.1" --out pose.png   # IK, then render
    assemblers show --pose "q1 ... q6N" --out pose.png --width 800 --height 600 --yaw 60
    assemblers show --gui [--target ...]        # interactive: sliders re-solve the IK live
    assemblers animate --trajectory path.json --out path.gif [--fps 25] [--stride 2]
    assemblers physics --target "..." [--payload 0.5] [--leg-error 1e-4] [--json]

Exit status: 0 success; 1 the job ran but failed (unreachable target, physics outside tolerance);
2 bad input or no display for ``--gui``.  PyBullet is imported only when a command runs.  The
work itself is in :mod:`.render` (show, animate), :mod:`.gui` (show --gui) and :mod:`.physics`.
"""

from __future__ import annotations

import time

import numpy as np

from assemblers import files
from assemblers.cli import CLIError, check_number, load_assembler, parse_numbers
from assemblers.cli.args import (
    STACK_POSE_METAVAR,
    add_config_arg,
    add_json_arg,
    add_target_arg,
    parse_stack_pose,
    parse_target,
)
from assemblers.cli.render import print_json, table
from assemblers.errors import InputError

# ----------------------------------------------------------------------------- shared options


def _add_pose_args(p, what: str = "render") -> None:
    g = p.add_argument_group("pose (one of; default: the home pose)")
    add_target_arg(g, help=f"tool target in the world frame (m, rad): solve the IK, then {what} the "
                        "solved pose")
    g.add_argument("--pose", default=None, metavar=STACK_POSE_METAVAR,
                   help="stack pose Q: 6 numbers per platform (x y z m, roll pitch yaw rad), "
                        "bottom platform first")
    g.add_argument("--trajectory", default=None, metavar="FILE",
                   help="take the pose from a trajectory file (see --frame)")
    g.add_argument("--frame", type=int, default=-1,
                   help="sample of --trajectory to use (default -1: the last)")
    g.add_argument("--criterion", default=None,
                   help="IK criterion for --target (as `assemblers solve --criterion`: fn, fn_legs, "
                        "condition, loads, loads_max, margin, compliance, a blend such as "
                        "fn:1,loads:0.2, even, nearest; default: the config's)")


def _add_camera_args(p) -> None:
    g = p.add_argument_group("image and camera")
    g.add_argument("--width", type=int, default=640, help="image width, pixels (default 640)")
    g.add_argument("--height", type=int, default=480, help="image height, pixels (default 480)")
    g.add_argument("--yaw", type=float, default=40.0,
                   help="camera azimuth about world z, degrees (default 40)")
    g.add_argument("--pitch", type=float, default=-18.0,
                   help="camera elevation, degrees, negative looks down (default -18)")
    g.add_argument("--fov", type=float, default=40.0,
                   help="vertical field of view, degrees (default 40)")
    g.add_argument("--distance", type=float, default=None,
                   help="camera distance to its target, m (default: frame the whole robot)")
    g.add_argument("--look-at", default=None, metavar='"x y z"',
                   help="camera target point, m, world (default: the robot's centre)")
    g.add_argument("--plate", choices=("hull", "round"), default="hull",
                   help="plate shape: convex hull of the joints (default) or round")
    g.add_argument("--no-floor", action="store_true", help="leave out the checkerboard floor")


def _camera(args):
    from .camera import Camera

    for name in ("yaw", "pitch", "fov"):
        if not np.isfinite(getattr(args, name)):
            raise CLIError(f"--{name}: must be a finite number")
    if not 5.0 <= args.fov <= 150.0:
        raise CLIError(f"--fov: must be in 5..150 degrees, got {args.fov}")
    if args.distance is not None and not (np.isfinite(args.distance) and args.distance > 0):
        raise CLIError(f"--distance: must be a positive number of metres, got {args.distance}")
    look = None if args.look_at is None else tuple(parse_numbers(args.look_at, "--look-at", 3))
    return Camera(yaw_deg=args.yaw, pitch_deg=args.pitch, fov_deg=args.fov, target=look,
                  distance=args.distance)


def _style(args):
    from .style import Style

    return Style(plate=args.plate, floor=not args.no_floor)


def _load_trajectory_for(args, asm):
    from assemblers.model.io import load_trajectory

    tr = load_trajectory(args.trajectory)
    if tr.n_platforms != asm.n_platforms:
        raise CLIError(f"{args.trajectory}: has {tr.n_platforms} platform(s) but the Assembler "
                       f"'{asm.name}' has {asm.n_platforms}; pass the matching --config")
    return tr


def _resolve_pose(args, asm):
    """The pose to show: (Q (6N,), T_target (4, 4) or None, ik_result or None, source str)."""
    import assemblers as A

    given = [x for x in ("target", "pose", "trajectory") if getattr(args, x) is not None]
    if len(given) > 1:
        raise CLIError(f"give only one of --target, --pose, --trajectory (got {', '.join(given)})")
    if args.pose is not None:
        Q = parse_stack_pose(args.pose, asm, "--pose")
        return Q, None, None, "pose"
    if args.trajectory is not None:
        tr = _load_trajectory_for(args, asm)
        k = args.frame
        if not -tr.n_steps <= k < tr.n_steps:
            raise CLIError(f"--frame: {k} is outside the trajectory's {tr.n_steps} samples")
        T_t = None if tr.T_target is None else tr.T_target[k]
        return tr.Q[k], T_t, None, f"trajectory frame {k % tr.n_steps}"
    if args.target is not None:
        T = parse_target(args.target)
        r = A.solve_ik(asm, T, criterion=args.criterion)
        return r.Q, T, r, "target"
    return A.home_pose(asm), None, None, "home"


# ----------------------------------------------------------------------------- show


def configure_show(p):
    add_config_arg(p)
    _add_pose_args(p)
    p.add_argument("--out", default=None, metavar="FILE.png",
                   help="write the rendered image here (PNG; headless, no display needed)")
    p.add_argument("--gui", action="store_true",
                   help="open the PyBullet GUI with sliders for the target pose (needs a display)")
    p.add_argument("--gui-seconds", type=float, default=None, metavar="S",
                   help="close the GUI by itself after S seconds (demos, scripted checks)")
    p.add_argument("--legs", choices=("auto", "platform", "load"), default="auto",
                   help="leg colours: each platform's hue, or the leg's load (|force| over its "
                        "max_leg_force, else over the largest force; docs/statics.md); auto: "
                        "load when the config has a mass model (default)")
    _add_camera_args(p)
    add_json_arg(p)


def load_colors(asm, Q):
    """Leg colours by load: ``(rgba (N, 6, 4), legend dict)``; the colormap's ends are no load
    and the rating (or, without ratings, the largest force at ``Q``)."""
    from assemblers.statics import leg_forces

    from .style import value_colors

    F = np.abs(leg_forces(asm, Q))
    rating = np.array([np.nan if p.max_leg_force is None else p.max_leg_force
                       for p in asm.platforms])[:, None]
    rated = bool(np.isfinite(rating).all())
    x = F / rating if rated else F / max(float(F.max()), 1e-300)
    legend = {"by": "load", "quantity": "|f| / max_leg_force" if rated else "|f| / max |f|",
              "colormap": "plasma", "max_force_n": float(F.max()),
              "max_fraction_of_rating": float(np.max(F / rating)) if rated else None}
    return value_colors(x, 0.0, 1.0, cmap="plasma"), legend


def _leg_colors(args, asm, Q):
    from assemblers.statics.loads import has_load, load_arrays

    by = args.legs
    if by == "auto":
        by = "load" if has_load(load_arrays(asm)) else "platform"
    if by == "platform":
        return None, {"by": "platform"}
    if not has_load(load_arrays(asm)):
        raise CLIError("--legs load: the config has no mass model (top_mass, leg_mass, payload; "
                       "docs/statics.md): every leg force is 0")
    return load_colors(asm, Q)


def run_show(args) -> int:
    if args.gui and args.out:
        raise CLIError("give --out (headless image) or --gui (window), not both")
    if not args.gui and not args.out:
        raise CLIError("give --out FILE.png to render an image, or --gui to open a window")
    check_number(args.gui_seconds, "--gui-seconds", 0.0)
    if args.gui:
        from .gui import display_available

        ok, why = display_available()
        if not ok:
            raise CLIError(f"--gui needs a display: {why}; render headless with --out FILE.png")
    else:
        files.output_path(args.out, "--out")  # before any work
    asm = load_assembler(args)
    cam, style = _camera(args), _style(args)
    Q, T_target, ik, source = _resolve_pose(args, asm)
    if args.gui:
        from .gui import GuiError, run_gui

        try:
            return run_gui(asm, Q, T_target, style, args.criterion, args.gui_seconds)
        except GuiError as exc:
            raise CLIError(str(exc), exc.status) from None
    from .render import render_pose, save_image

    colors, legend = _leg_colors(args, asm, Q)
    t0 = time.perf_counter()
    img = render_pose(asm, Q, T_target, args.width, args.height, cam, style, leg_colors=colors)
    render_s = time.perf_counter() - t0
    path = save_image(img, args.out)
    import assemblers as A

    tool = A.tool_pose(asm, Q)
    doc = {"out": str(path), "width": args.width, "height": args.height, "source": source,
           "Q": Q.tolist(), "tool_pose": tool.tolist(), "render_s": render_s,
           "leg_colors": legend}
    if ik is not None:
        doc["ik"] = {"success": ik.success, "message": ik.message, "reason": ik.reason,
                     "cost": ik.cost, "max_violation": ik.max_violation,
                     "tool_error_m": ik.tool_error[0], "tool_error_rad": ik.tool_error[1]}
    if args.json:
        print_json(doc)
    else:
        print(f"wrote {path} ({args.width}x{args.height}, {source}, {render_s * 1e3:.0f} ms)")
        print("tool pose: x={:+.4f} y={:+.4f} z={:+.4f} m  roll={:+.4f} pitch={:+.4f} "
              "yaw={:+.4f} rad".format(*tool))
        if legend["by"] == "load":
            print(f"legs coloured by load ({legend['quantity']}, plasma: dark 0 .. yellow 1); "
                  f"largest leg force {legend['max_force_n']:.1f} N")
        if ik is not None and not ik.success:
            print(f"target NOT reached: {ik.message}; drew the closest pose found")
    return 0 if ik is None or ik.success else 1


# ----------------------------------------------------------------------------- animate


def configure_animate(p):
    add_config_arg(p)
    p.add_argument("--trajectory", required=True, metavar="FILE",
                   help="trajectory file (assemblers trajectory ... --out FILE)")
    p.add_argument("--out", required=True, metavar="FILE.gif|FILE.mp4",
                   help="animation to write: .gif (Pillow) or .mp4 (H.264; ffmpeg from PATH or "
                   "the imageio-ffmpeg package)")
    p.add_argument("--fps", type=float, default=None,
                   help="frames per second (default: real time from the trajectory's t)")
    p.add_argument("--stride", type=int, default=None,
                   help="use every n-th sample (default: 1 with --fps; in real time, about 25 "
                        "frames per second)")
    p.add_argument("--workers", type=int, default=None,
                   help="rendering processes (default: one per CPU core, at most 8; 1 below 24 "
                        "frames)")
    p.add_argument("--no-target", action="store_true", help="do not draw the targets")
    p.add_argument("--no-caption", action="store_true", help="no time stamp in the corner")
    _add_camera_args(p)
    add_json_arg(p)


def run_animate(args) -> int:
    from assemblers.model.config import load_config
    from assemblers.model.io import load_trajectory

    from .render import animate

    if args.workers is not None and not 1 <= args.workers <= 64:
        raise CLIError(f"--workers: must be in 1..64, got {args.workers}")
    check_number(args.fps, "--fps", 0.0, 1000.0, lo_open=True)
    if args.stride is not None and not 1 <= args.stride <= 1_000_000:
        raise CLIError(f"--stride: must be in 1..1000000, got {args.stride}")
    camera = _camera(args)
    files.output_path(args.out, "--out")
    tr = load_trajectory(args.trajectory)
    if args.config is None and tr.config:  # the trajectory names the config it was solved for
        try:
            asm = load_config(tr.config)
        except InputError:  # not found here: fall back to the default, checked below
            asm = load_assembler(args)
    else:
        asm = load_assembler(args)
    info = animate(asm, tr, args.out, fps=args.fps, stride=args.stride, width=args.width,
                   height=args.height, camera=camera, style=_style(args),
                   show_target=not args.no_target, show_caption=not args.no_caption,
                   workers=args.workers)
    if args.json:
        print_json(info)
    else:
        print(f"wrote {info['out']}: {info['frames']} frames (stride {info['stride']}), "
              f"{info['duration_s']:.2f} s at {info['fps']:.1f} fps ({info['render_s']:.1f} s to "
              "render)")
    return 0


# ----------------------------------------------------------------------------- physics


def configure_physics(p):
    add_config_arg(p)
    _add_pose_args(p, what="simulate")
    g = p.add_argument_group("physics")
    g.add_argument("--payload", type=float, default=None, metavar="KG",
                   help="point mass at the tool, kg (default 0.5; a config with a mass model "
                        "is simulated with its own masses and payload, docs/statics.md)")
    g.add_argument("--leg-error", type=float, default=1e-4, metavar="M",
                   help="then offset every leg by +-M metres (random signs) and compare the tool's "
                        "response with J_L @ dL (default 1e-4; 0 skips it)")
    g.add_argument("--seed", type=int, default=0, help="seed of the leg-error signs")
    g.add_argument("--solver", choices=("dantzig", "si"), default="dantzig",
                   help="PyBullet constraint solver: dantzig (direct MLCP, default) or si "
                        "(iterative sequential impulses)")
    g.add_argument("--iterations", type=int, default=200,
                   help="solver iterations for --solver si (default 200)")
    g.add_argument("--timestep", type=float, default=1e-3, help="time step, s (default 0.001)")
    g.add_argument("--start", choices=("home", "pose"), default="home",
                   help="bodies start at the home pose and the legs drive them (default), or "
                        "start at the kinematic pose")
    g.add_argument("--tol-position", type=float, default=1e-3, metavar="M",
                   help="pass if the tool is within this of the model (default 1e-3 m)")
    g.add_argument("--tol-rotation", type=float, default=1e-3, metavar="RAD",
                   help="and within this rotation (default 1e-3 rad)")
    add_json_arg(p)


def _physics_params(args):
    from .physics import PhysicsParams

    checks = (("--payload", args.payload, 0, 1e3), ("--leg-error", args.leg_error, 0, 0.05),
              ("--timestep", args.timestep, 1e-5, 0.02))
    for name, v, lo, hi in checks:
        if v is None:
            continue
        if not (np.isfinite(v) and lo <= v <= hi):
            raise CLIError(f"{name}: must be in [{lo:g}, {hi:g}], got {v}")
    if not 1 <= args.iterations <= 100000:
        raise CLIError(f"--iterations: must be in 1..100000, got {args.iterations}")
    if not 0 <= args.seed < 2**63:
        raise CLIError(f"--seed: must be in 0..2^63-1, got {args.seed}")
    check_number(args.tol_position, "--tol-position", 0.0, lo_open=True)
    check_number(args.tol_rotation, "--tol-rotation", 0.0, lo_open=True)
    return PhysicsParams(payload_kg=0.5 if args.payload is None else args.payload, solver=args.solver,
                         solver_iterations=args.iterations, timestep_s=args.timestep,
                         start=args.start)


def run_physics(args) -> int:
    from .dynamics import uses_config_masses
    from .physics import physics_check

    params = _physics_params(args)
    asm = load_assembler(args)
    if args.payload is not None and uses_config_masses(asm, params):
        raise CLIError(f"--payload: the config '{asm.name}' has a mass model (its [stack] payload "
                       "is simulated); change the payload there")
    Q, T_target, ik, source = _resolve_pose(args, asm)
    if ik is not None and not ik.success:
        raise CLIError(f"target not reached: {ik.message}", 1)
    rep = physics_check(asm, Q, params, leg_error=args.leg_error, seed=args.seed)
    ok = rep.within(args.tol_position, args.tol_rotation)
    le = rep.leg_error
    if le is not None:
        ok = ok and le["rel_error_vs_pred"] <= 0.1
    if rep.leg_force_error is not None:  # the quasi-static leg forces, on the same masses
        ok = ok and rep.leg_force_error <= 0.01
    if args.json:
        doc = rep.to_dict()
        doc.update({"source": source, "pass": ok, "tol_position_m": args.tol_position,
                    "tol_rotation_rad": args.tol_rotation})
        print_json(doc)
        return 0 if ok else 1
    _print_physics(asm, rep, source, ok, args)
    return 0 if ok else 1


def _print_physics(asm, rep, source, ok, args) -> None:
    from assemblers.geometry.api import transform_to_pose

    from .dynamics import gravity_vector, uses_config_masses

    prm = rep.params
    g = gravity_vector(asm, prm)
    own = uses_config_masses(asm, prm)
    pay = (asm.payload.mass if asm.payload is not None else 0.0) if own else prm.payload_kg
    print(f"PyBullet physics check of '{asm.name}' ({asm.n_platforms} platforms) at the {source} "
          f"pose")
    print(f"model: {rep.total_mass_kg:.2f} kg moving ({'the config' if own else 'drawn'}'s "
          f"masses), payload {pay:g} kg, gravity {np.linalg.norm(g):g} m/s^2; solver {prm.solver}"
          + (f" ({prm.solver_iterations} iterations)" if prm.solver == "si" else "")
          + f", dt {prm.timestep_s * 1e3:g} ms; start at {prm.start}, legs ramped over "
          f"{rep.settle['ramp_s']:.2f} s, settled {rep.settle['settle_s']:.2f} s later"
          + ("" if rep.settle["settled"] else " (NOT settled)"))
    pk, ps = transform_to_pose(rep.T_model), transform_to_pose(rep.T_sim)
    rows = [[name, f"{a:+.6f}", f"{b:+.6f}", f"{(b - a) * 1e3:+.4f}"]
            for name, a, b in zip(("x [m]", "y [m]", "z [m]", "roll [rad]", "pitch [rad]",
                                   "yaw [rad]"), pk, ps)]
    print(table(["tool", "model", "simulated", "diff [mm|mrad]"], rows))
    model_f = rep.model_leg_forces_n
    rows = [[i + 1, f"{e * 1e3:.3g}", f"{r * 1e3:.3g}", f"{f:.1f}"]
            + ([f"{np.abs(model_f[i]).max():.1f}"] if model_f is not None else [])
            for i, (e, r, f) in enumerate(zip(rep.plate_error_m, rep.plate_error_rad,
                                              rep.leg_force_n))]
    print(table(["platform", "top plate err [mm]", "[mrad]", "max |leg force| [N]"]
                + (["leg_forces model [N]"] if model_f is not None else []), rows))
    if model_f is not None:
        print(f"settled leg forces against assemblers.leg_forces on the same masses: largest "
              f"difference {rep.leg_force_error * 100:.3g} % of the largest force (tolerance 1 %)")
    print(f"tool error: {rep.tool_error_m * 1e3:.3g} mm, {rep.tool_error_rad * 1e3:.3g} mrad "
          f"(tolerance {args.tol_position * 1e3:g} mm, {args.tol_rotation * 1e3:g} mrad); "
          f"largest joint gap {rep.joint_gap_m:.2g} m, leg length error {rep.leg_error_m:.2g} m")
    print(f"load on the mount: {rep.mount_force_n[2]:.2f} N vertical; weight of the moving parts "
          f"{rep.total_mass_kg * np.linalg.norm(g):.2f} N")
    le = rep.leg_error
    if le is not None:
        e = float(np.max(np.abs(le["dL"])))
        print(f"\nleg errors of +-{e * 1e3:g} mm on every leg: tool twist (world frame) "
              "[mm | mrad]")
        rows = [[name, f"{s * 1e3:+.4f}", f"{p * 1e3:+.4f}", f"{x * 1e3:+.4f}"]
                for name, s, p, x in zip(("dx", "dy", "dz", "dthx", "dthy", "dthz"),
                                         le["twist_sim"], le["twist_pred"], le["twist_exact"])]
        print(table(["", "simulated", "J_L @ dL", "exact FK"], rows))
        print(f"|sim - J_L dL| / |J_L dL| = {le['rel_error_vs_pred'] * 100:.3g} %   "
              f"|sim - exact| / |exact| = {le['rel_error_vs_exact'] * 100:.3g} %")
    print(f"\n{'PASS' if ok else 'FAIL'} ({rep.wall_s:.1f} s)")
