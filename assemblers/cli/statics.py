"""CLI command ``statics`` (leg forces, compliance and deflection at a pose or a solved target)
and the leg-force report ``solve`` prints beside the legs (docs/statics.md)."""

from __future__ import annotations

import numpy as np

from .args import (
    MAX_POSE,
    CLIError,
    add_config_arg,
    add_json_arg,
    add_stack_pose_arg,
    add_target_arg,
    load_assembler,
    parse_numbers,
    parse_target,
    stack_pose_or_home,
)
from .render import pose_str, print_json, table


def force_doc(asm, Q, payload=None, wrench=None) -> dict | None:
    """The leg forces at ``Q`` for a report: ``leg_forces_N`` (N, 6), compression positive,
    ``max_leg_force_N`` (N,) ratings (None where not given), ``fraction_of_rating`` (N, 6)
    |f| / rating (None where no rating); None when nothing loads the legs."""
    from ..statics import leg_forces
    from ..statics.loads import has_load, load_arrays

    if not has_load(load_arrays(asm, payload, wrench)):
        return None
    F = leg_forces(asm, Q, payload, wrench)
    rating = [p.max_leg_force for p in asm.platforms]
    frac = [None if r is None else (np.abs(F[i]) / r).tolist() for i, r in enumerate(rating)]
    return {"leg_forces_N": F.tolist(), "max_leg_force_N": rating, "fraction_of_rating": frac}


def force_columns(doc: dict | None, i: int) -> list[str]:
    """Platform ``i``'s cells ``force [N]`` (smallest..largest) and ``rating [%]`` (largest
    |f| over the rating) of a :func:`force_doc`; ``-`` without loads or rating."""
    if doc is None:
        return ["-", "-"]
    f = np.asarray(doc["leg_forces_N"][i])
    frac = doc["fraction_of_rating"][i]
    pct = "-" if frac is None else f"{100 * max(frac):.0f}" + ("*" if max(frac) > 1 else "")
    return [f"{f.min():+.1f}..{f.max():+.1f}", pct]


FORCE_HEADERS = ["force [N]", "rating [%]"]


def _payload(text):
    if text is None:
        return None
    v = parse_numbers(text, "--payload", bound=MAX_POSE)
    if len(v) not in (1, 4):
        raise CLIError(f"--payload: give the mass (kg) and optionally its centre of mass x y z (m, "
                       f"tool frame): 1 or 4 numbers, got {len(v)}")
    if v[0] < 0:
        raise CLIError(f"--payload: the mass must be >= 0 kg, got {v[0]}")
    return {"mass": v[0], "com": v[1:] if len(v) == 4 else [0.0, 0.0, 0.0]}


def configure_statics(p):
    add_config_arg(p)
    add_stack_pose_arg(p, "the home pose (or --target)")
    add_target_arg(p, "solve the IK for this tool pose (world frame, m, rad) first")
    p.add_argument("--criterion", default=None,
                   help="IK criterion for --target (as `assemblers solve --criterion`)")
    p.add_argument("--payload", default=None, metavar='"kg [x y z]"',
                   help="payload instead of the config's [stack] payload: mass (kg) and its "
                        "centre of mass in the tool frame (m)")
    p.add_argument("--wrench", default=None, metavar='"fx fy fz mx my mz"',
                   help="wrench on the tool at the tool point, world frame (N, N m)")
    add_json_arg(p)


def run_statics(args) -> int:
    import assemblers as A

    from ..statics.loads import has_stiffness, load_arrays

    asm = load_assembler(args)
    if args.Q is not None and args.target is not None:
        raise CLIError("give --Q or --target, not both")
    if args.criterion is not None and args.target is None:
        raise CLIError("--criterion goes with --target")
    payload = _payload(args.payload)
    wrench = None if args.wrench is None else parse_numbers(args.wrench, "--wrench", 6,
                                                            bound=1e9)
    solved = None
    if args.target is not None:
        from ..ik import solve_ik

        solved = solve_ik(asm, parse_target(args.target), args.criterion)
        if not solved.success:
            raise CLIError(f"--target: {solved.message}", status=1)
        Q = solved.Q
    else:
        Q = stack_pose_or_home(args, asm)
    doc = force_doc(asm, Q, payload, wrench)
    legs = A.leg_lengths(asm, Q)
    out = {"Q": Q.tolist(), "tool_pose": A.tool_pose(asm, Q).tolist(), "legs_m": legs.tolist(),
           "gravity": asm.gravity.tolist(), "criterion": None if solved is None else solved.criterion,
           **(doc or {"leg_forces_N": np.zeros((asm.n_platforms, 6)).tolist(),
                      "max_leg_force_N": [p.max_leg_force for p in asm.platforms],
                      "fraction_of_rating": [None] * asm.n_platforms}),
           "deflection": None, "compliance": None}
    if has_stiffness(load_arrays(asm)):
        out["compliance"] = A.compliance(asm, Q).tolist()
        out["deflection"] = A.deflection(asm, Q, payload, wrench).tolist()
    F = np.asarray(out["leg_forces_N"])
    finite = bool(np.isfinite(F).all())
    if args.json:
        print_json(out)
        return 0 if finite else 1
    if solved is not None:
        print(f"solved ({solved.criterion}): {pose_str(out['tool_pose'])}")
    if doc is None:
        print("no load: the config gives no masses (top_mass, leg_mass, payload) or gravity is 0, "
              "and no --payload or --wrench; every leg force is 0")
    rows = []
    for i in range(asm.n_platforms):
        frac = out["fraction_of_rating"][i]
        r = out["max_leg_force_N"][i]
        rows.append([i + 1] + [f"{v:+.2f}" for v in F[i]]
                    + [f"{np.abs(F[i]).max():.2f}", "-" if r is None else f"{r:g}",
                       "-" if frac is None else f"{100 * max(frac):.1f}"
                       + ("*" if max(frac) > 1 else "")])
    print("Leg forces [N], compression positive (* = above the rating):")
    print(table(["#"] + [f"leg {k}" for k in range(6)] + ["max |f|", "rating [N]", "rating [%]"],
                rows))
    if out["deflection"] is not None:
        d = np.asarray(out["deflection"])
        print(f"tool deflection under the loads: dp = {d[0] * 1e3:+.4f} {d[1] * 1e3:+.4f} "
              f"{d[2] * 1e3:+.4f} mm, dtheta = {d[3] * 1e3:+.4f} {d[4] * 1e3:+.4f} "
              f"{d[5] * 1e3:+.4f} mrad (world frame)")
        C = np.asarray(out["compliance"])
        print("tool compliance diagonal: "
              + " ".join(f"{v:.3g}" for v in np.diag(C)[:3]) + " m/N, "
              + " ".join(f"{v:.3g}" for v in np.diag(C)[3:]) + " rad/(N m)")
    if not finite:
        print("a platform is singular at this pose: its forces are not finite")
    return 0 if finite else 1
