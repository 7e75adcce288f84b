"""Core commands on the kinematics: ``info``, ``fk``, ``jacobian``, ``legs``."""

from __future__ import annotations

import sys

import numpy as np

from .args import (
    MAX_POSE,
    CLIError,
    add_config_arg,
    add_json_arg,
    add_stack_pose_arg,
    load_assembler,
    parse_numbers,
    stack_pose_or_home,
)
from .render import pose_str, print_json, table

# ----------------------------------------------------------------------------------- info


def configure_info(p):
    add_config_arg(p)
    add_json_arg(p)


def run_info(args) -> int:
    import assemblers as A

    asm = load_assembler(args)
    Q = A.home_pose(asm)
    legs = A.leg_lengths(asm, Q)
    T = A.forward_kinematics(asm, Q)
    tool = A.transform_to_pose(T)
    ang = A.joint_angles(asm, Q)
    s_pose = A.sensitivity(asm, Q, wrt="pose")
    s_legs = A.sensitivity(asm, Q, wrt="legs")
    cost = s_pose if asm.sensitivity.wrt == "pose" else s_legs
    plats = []
    for i, p in enumerate(asm.platforms):
        plats.append({
            "index": i + 1, "type": p.name,
            "base_radius_m": float(np.mean(np.linalg.norm(p.base_joints[:, :2], axis=1))),
            "top_radius_m": float(np.mean(np.linalg.norm(p.top_joints[:, :2], axis=1))),
            "leg_min_m": p.leg_min, "leg_max_m": p.leg_max,
            "max_joint_angle_deg": None if p.max_joint_angle is None
            else float(np.degrees(p.max_joint_angle)),
            "home_height_m": p.home_height,
            "home_legs_m": legs[i].tolist(),
            "home_max_joint_angle_deg": float(np.degrees(ang[i].max())),
        })
    doc = {
        "name": asm.name, "description": asm.description, "config": asm.source,
        "n_platforms": asm.n_platforms, "platforms": plats,
        "home_pose_Q": Q.tolist(), "home_tool_pose": tool.tolist(),
        "sensitivity": {"wrt": asm.sensitivity.wrt, "cost": cost,
                        "fro_J_Q": s_pose if _unit(asm, "pose") else None,
                        "fro_J_L": s_legs if _unit(asm, "legs") else None,
                        "weighted_pose": s_pose, "weighted_legs": s_legs,
                        "length_scale": asm.sensitivity.length_scale},
    }
    if args.json:
        print_json(doc)
        return 0
    print(f"{asm.name}: {asm.n_platforms} platform(s)  [{asm.source}]")
    if asm.description:
        print(f"  {asm.description}")
    print()
    rows = [[d["index"], d["type"], f"{d['base_radius_m']:.3f}", f"{d['top_radius_m']:.3f}",
             f"{d['leg_min_m']:.3f}-{d['leg_max_m']:.3f}",
             "-" if d["max_joint_angle_deg"] is None else f"{d['max_joint_angle_deg']:.1f}",
             f"{d['home_height_m']:.4f}", f"{d['home_max_joint_angle_deg']:.1f}"]
            for d in plats]
    print(table(["#", "type", "base r [m]", "top r [m]", "stroke [m]", "joint lim [deg]",
                 "home z [m]", "home joint [deg]"], rows))
    print("\nLeg lengths at home [m]:")
    print(table(["#"] + [f"leg {k}" for k in range(6)],
                [[i + 1] + [f"{v:.5f}" for v in legs[i]] for i in range(asm.n_platforms)]))
    print(f"\nHome tool pose: {pose_str(tool)}")
    print(f"Sensitivity at home ({asm.sensitivity.wrt}, config weights): {cost:.6g}"
          f"   [weighted pose: {s_pose:.6g}, weighted legs: {s_legs:.6g}]")
    return 0


def _unit(asm, wrt) -> bool:
    s = asm.sensitivity
    if s.length_scale != 1.0:
        return False
    if wrt == "pose":
        return s.sigma_translation == 1.0 and s.sigma_rotation == 1.0
    return s.sigma_leg == 1.0


# ----------------------------------------------------------------------------------- fk


def configure_fk(p):
    add_config_arg(p)
    add_stack_pose_arg(p)
    add_json_arg(p)


def run_fk(args) -> int:
    import assemblers as A

    asm = load_assembler(args)
    Q = stack_pose_or_home(args, asm)
    T = A.forward_kinematics(asm, Q)
    legs = A.leg_lengths(asm, Q)
    ang = np.degrees(A.joint_angles(asm, Q))
    in_stroke = (legs >= asm.leg_min[:, None]) & (legs <= asm.leg_max[:, None])
    doc = {"Q": Q.tolist(), "T_world_tool": T.tolist(), "tool_pose": A.transform_to_pose(T).tolist(),
           "legs": legs.tolist(), "legs_in_stroke": bool(in_stroke.all()),
           "max_joint_angle_deg": ang.max(axis=(1, 2)).tolist()}
    if args.json:
        print_json(doc)
        return 0
    print(f"Tool pose: {pose_str(doc['tool_pose'])}")
    print("T_world_tool:")
    print(np.array2string(T, precision=6, suppress_small=True))
    print("\nLeg lengths [m] (* = outside stroke):")
    rows = []
    for i in range(asm.n_platforms):
        rows.append([i + 1] + [f"{legs[i, k]:.5f}" + ("" if in_stroke[i, k] else "*")
                               for k in range(6)] + [f"{ang[i].max():.1f}"])
    print(table(["#"] + [f"leg {k}" for k in range(6)] + ["max joint [deg]"], rows))
    return 0


# ----------------------------------------------------------------------------------- jacobian


def configure_jacobian(p):
    add_config_arg(p)
    add_stack_pose_arg(p)
    p.add_argument("--wrt", choices=("pose", "legs"), default="pose",
                   help="J_Q (pose parameters) or J_L (leg lengths); default pose")
    add_json_arg(p)


def run_jacobian(args) -> int:
    import assemblers as A

    asm = load_assembler(args)
    Q = stack_pose_or_home(args, asm)
    J = A.jacobian(asm, Q, wrt=args.wrt)
    fro = float(np.linalg.norm(J))
    cost = A.sensitivity(asm, Q, wrt=args.wrt)
    finite = bool(np.isfinite(J).all())
    doc = {"wrt": args.wrt, "J": J.tolist(), "frobenius_norm": fro, "weighted_cost": cost,
           "condition_number": float(np.linalg.cond(J)) if finite else float("nan")}
    name = "J_Q" if args.wrt == "pose" else "J_L"
    if not finite:  # J_L at a pose where a platform's legs cannot hold it (singular)
        print(f"assemblers jacobian: {name} is not finite at this pose (a platform is singular "
              "there); non-finite entries are null in --json", file=sys.stderr)
    if args.json:
        print_json(doc)
        return 0 if finite else 1
    print(f"{name} (6 x {J.shape[1]}); rows dx dy dz [m], dthx dthy dthz [rad], world frame:")
    with np.printoptions(precision=4, suppress=True, linewidth=200):
        print(J)
    print(f"\n||{name}||_F = {fro:.6g}   weighted cost (config weights) = {cost:.6g}   "
          f"cond = {doc['condition_number']:.4g}")
    return 0 if finite else 1


# ----------------------------------------------------------------------------------- legs


def configure_legs(p):
    add_config_arg(p)
    p.add_argument("--legs", required=True, metavar='"L1 ... L6N"',
                   help="leg lengths in metres, 6 per platform, bottom platform first")
    add_json_arg(p)


def run_legs(args) -> int:
    import assemblers as A

    from ..errors import ConvergenceError

    asm = load_assembler(args)
    L = np.array(parse_numbers(args.legs, "--legs", 6 * asm.n_platforms,
                               bound=MAX_POSE)).reshape(-1, 6)
    try:
        Q = A.from_legs(asm, L)
    except ConvergenceError as exc:
        raise CLIError(str(exc), status=1) from None
    tool = A.tool_pose(asm, Q)
    doc = {"Q": Q.tolist(), "tool_pose": tool.tolist()}
    if args.json:
        print_json(doc)
        return 0
    for i, q in enumerate(Q.reshape(-1, 6)):
        print(f"platform {i + 1}: {pose_str(q)}")
    print(f"tool:       {pose_str(tool)}")
    return 0
