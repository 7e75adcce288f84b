"""Least-sensitive IK: solve_ik against a plain scipy SLSQP baseline (same run), and trajectory IK.

    python benchmarks/ik.py [--targets 200] [--baseline-targets 30] [--quick] [--seed 0]
                            [--no-family] [--duration 2.0] [--rate 1000]

For N = 2, 3, 4 (configs duo, trio, assembler) and, as a like-for-like family, stacks of 2 and 3
of the default Assembler's platform type (its spacers, tool and weights; built with
``config_from_dict`` from configs/assembler.toml):

* Random reachable targets: the tool pose (FK) of random feasible stack poses.  Each platform's
  pose is drawn uniformly over that platform's feasible set (uniform in a box of +-1.5 strokes and
  +-1 rad around home, which contains it, kept when all six legs are within stroke and every
  joint angle within its limit; checked with ``leg_lengths`` / ``joint_angles``).  Stroke and
  joint limits act per platform, so the stack pose is uniform over the stack's feasible set.
* ``solve_ik`` with the default criterion, timed per call (wall clock) after a warm-up of a few
  solves (compilation).  Success: ``success`` True and, recomputed here, the tool pose on target
  to 1e-9 m / 1e-9 rad and every limit held (to 1e-8 m / rad).
* The baseline a user would write: ``scipy.optimize.minimize(method="SLSQP")`` over the full 6N
  stack pose from home, objective ``assemblers.sensitivity`` (the config's weights; checked equal
  to ``solve_ik``'s cost at one pose, else abort), the tool pose as 6 equality residuals (position
  difference, rotation vector of ``R R_target^T``), legs and joint angles as inequalities, pose
  bounds when the config has them, scipy's finite-difference gradients, objective normalised by its
  value at the start (SLSQP's ftol is absolute), ftol 1e-10, maxiter 1000.  Run on a subset of the
  targets.  Success: tool pose on target to 1e-6 m / 1e-6 rad and limits held (to 1e-8).
* The criterion ``condition`` on the trio and unreachable ``duo`` targets (15-25 cm off home
  in x and y), ``--baseline-targets`` of each: ``solve_ik`` against ``method="slsqp"`` (SciPy's
  SLSQP on the same Numba kernel), both after a warm-up.
* Trajectory IK (N = 3, trio): a straight-line + SLERP move between two reachable tool poses,
  ``--duration`` s at ``--rate`` Hz, through ``solve_trajectory``; per-step times from
  ``TrajectoryResult.step_times_s`` (the first step is a full solve; warm-started steps follow).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import tomllib
from collections import Counter
from pathlib import Path

import numpy as np

TOOL_TOL_OURS = 1e-9  # m / rad, the requirement
TOOL_TOL_BASE = 1e-6  # m / rad, the baseline's success test
LIMIT_TOL = 1e-8  # m / rad, largest limit violation still called "held"


# ----------------------------------------------------------------------------- machine


def machine_line() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{cpu or platform.machine()}; {os.cpu_count()} CPUs ({usable} usable); "
            f"load average {load}; Python {platform.python_version()}")


# ----------------------------------------------------------------------------- configs


def family_config(n: int):
    """The default Assembler's platform type stacked n high (its spacers, tool, weights)."""
    import assemblers as A
    from assemblers.config import resolve_config_path

    path = resolve_config_path("assembler")
    data = tomllib.loads(path.read_text())
    ptype = data["stack"]["platforms"][0]
    data["name"] = f"assembler-x{n}"
    data["stack"]["platforms"] = [ptype] * n
    data["stack"]["interfaces"] = data["stack"]["interfaces"][: n - 1]
    data.pop("hardware", None)  # per-platform hardware entries are not needed here
    return A.config_from_dict(data, source=f"{path} (first {n} platforms)")


# ----------------------------------------------------------------------------- checks


def limit_violation(asm, Q) -> np.ndarray:
    """Largest limit violation (m or rad, 0 if none) of (B, 6N) poses, recomputed via the API."""
    import assemblers as A

    Q = np.atleast_2d(Q)
    L = A.leg_lengths(asm, Q)
    ang = A.joint_angles(asm, Q)
    v = np.maximum(asm.leg_min[:, None] - L, L - asm.leg_max[:, None]).max(axis=(1, 2))
    v = np.maximum(v, (ang - asm.max_joint_angle[:, None, None]).max(axis=(1, 2, 3)))
    v = np.maximum(v, (asm.pose_lower - Q).max(axis=1))
    v = np.maximum(v, (Q - asm.pose_upper).max(axis=1))
    return np.maximum(v, 0.0)


def tool_errors(asm, Q, T_targets):
    """(position m, rotation rad) between FK(Q) and the targets, (B,) each."""
    from scipy.spatial.transform import Rotation

    import assemblers as A

    T = A.forward_kinematics(asm, np.atleast_2d(Q)).reshape(-1, 4, 4)
    Tt = np.asarray(T_targets).reshape(-1, 4, 4)
    ep = np.linalg.norm(T[:, :3, 3] - Tt[:, :3, 3], axis=1)
    R = T[:, :3, :3] @ np.transpose(Tt[:, :3, :3], (0, 2, 1))
    er = np.linalg.norm(Rotation.from_matrix(R).as_rotvec(), axis=1)
    return ep, er


# ----------------------------------------------------------------------------- targets


def random_feasible_poses(asm, k: int, rng: np.random.Generator, batch: int = 100_000):
    """(k, 6N) stack poses, each platform uniform over its own feasible set."""
    import assemblers as A

    N = asm.n_platforms
    home = A.home_pose(asm)
    stroke = np.repeat(asm.leg_max - asm.leg_min, 6).reshape(N, 6)
    half = np.concatenate([1.5 * stroke[:, :3], np.ones((N, 3))], axis=1).reshape(-1)
    lo = np.maximum(home - half, asm.pose_lower)
    hi = np.minimum(home + half, asm.pose_upper)
    found = [[] for _ in range(N)]
    reach = np.zeros(6 * N)
    for _ in range(1000):
        Q = rng.uniform(lo, hi, size=(batch, 6 * N))
        L = A.leg_lengths(asm, Q)
        ang = A.joint_angles(asm, Q)
        ok = ((L >= asm.leg_min[:, None]) & (L <= asm.leg_max[:, None])).all(axis=2)
        ok &= (ang <= asm.max_joint_angle[:, None, None]).all(axis=(2, 3))
        for i in range(N):
            q = Q[ok[:, i], 6 * i: 6 * i + 6]
            found[i].extend(q)
            if len(q):
                reach[6 * i: 6 * i + 6] = np.maximum(reach[6 * i: 6 * i + 6],
                                                     np.abs(q - home[6 * i: 6 * i + 6]).max(0))
        if min(len(f) for f in found) >= k:
            break
    else:
        raise RuntimeError(f"{asm.name}: too few feasible poses found")
    # the sampling box must contain each feasible set: nothing accepted near its edge
    frac = float((reach / half).max())
    if frac > 0.95:
        raise RuntimeError(f"{asm.name}: feasible poses reach {frac:.0%} of the sampling box")
    Q = np.concatenate([np.asarray(f[:k]) for f in found], axis=1)
    assert limit_violation(asm, Q).max() == 0.0
    return Q


# ----------------------------------------------------------------------------- the baseline


def slsqp_baseline(asm, T_target, Q0, maxiter: int = 1000, ftol: float = 1e-10):
    """A plain scipy SLSQP on the full stack pose, finite-difference gradients (what a user
    would write with the public NumPy API).  Returns (Q, scipy result)."""
    from scipy.optimize import minimize
    from scipy.spatial.transform import Rotation

    import assemblers as A

    p_t, R_t = T_target[:3, 3], T_target[:3, :3]
    has_angle = np.isfinite(asm.max_joint_angle)
    f0 = A.sensitivity(asm, Q0)

    def cost(Q):
        return A.sensitivity(asm, Q) / f0

    def tool_residual(Q):
        T = A.forward_kinematics(asm, Q)
        return np.concatenate([T[:3, 3] - p_t, Rotation.from_matrix(T[:3, :3] @ R_t.T).as_rotvec()])

    def limits(Q):
        L = A.leg_lengths(asm, Q)
        parts = [(L - asm.leg_min[:, None]).ravel(), (asm.leg_max[:, None] - L).ravel()]
        if has_angle.any():
            ang = A.joint_angles(asm, Q)[has_angle]
            parts.append((asm.max_joint_angle[has_angle][:, None, None] - ang).ravel())
        return np.concatenate(parts)

    bounds = None
    if np.isfinite(asm.pose_lower).any() or np.isfinite(asm.pose_upper).any():
        bounds = [(lo if np.isfinite(lo) else None, hi if np.isfinite(hi) else None)
                  for lo, hi in zip(asm.pose_lower, asm.pose_upper, strict=True)]
    res = minimize(cost, Q0, method="SLSQP", bounds=bounds,
                   constraints=[{"type": "eq", "fun": tool_residual},
                                {"type": "ineq", "fun": limits}],
                   options={"maxiter": maxiter, "ftol": ftol})
    return res.x, res


# ----------------------------------------------------------------------------- one stack


def pct(a, q):
    return float(np.percentile(a, q)) if len(a) else float("nan")


def bench_stack(asm, label, k, k_base, rng, log):
    import assemblers as A

    N = asm.n_platforms
    Qs = random_feasible_poses(asm, k, rng)
    Ts = A.forward_kinematics(asm, Qs).reshape(-1, 4, 4)

    # warm-up: compile (or load from the persistent cache) every path a solve can take
    # (main solve, even-split repair, closest pose), then a few real solves
    from assemblers.ik import warmup

    warmup(asm)
    for T in Ts[:3]:
        A.solve_ik(asm, T)
    # the baseline's objective is the solver's cost: check it at one solved pose
    r = A.solve_ik(asm, Ts[0])
    c_api = A.sensitivity(asm, r.Q)
    if not np.isclose(c_api, r.cost, rtol=1e-9, atol=0.0):
        raise SystemExit(f"{label}: assemblers.sensitivity = {c_api!r} but solve_ik cost = "
                         f"{r.cost!r} at the same pose: the baseline would optimise another "
                         "objective; aborting")
    log(f"  {label}: objective check OK (sensitivity {c_api:.12g} = solve_ik cost {r.cost:.12g})")

    times, ok, costs, reasons, iters = np.empty(k), np.zeros(k, bool), np.empty(k), Counter(), []
    cpu = np.empty(k)
    Q_ours = np.empty((k, 6 * N))
    for j, T in enumerate(Ts):
        t0, c0 = time.perf_counter(), time.process_time()
        r = A.solve_ik(asm, T)
        times[j], cpu[j] = time.perf_counter() - t0, time.process_time() - c0
        Q_ours[j], costs[j], ok[j] = r.Q, r.cost, r.success
        iters.append(r.iterations)
        if not r.success:
            reasons[r.reason or r.message] += 1
    ep, er = tool_errors(asm, Q_ours, Ts)
    viol = limit_violation(asm, Q_ours)
    verified = ok & (ep <= TOOL_TOL_OURS) & (er <= TOOL_TOL_OURS) & (viol <= LIMIT_TOL)
    claimed_but_not = int((ok & ~verified).sum())

    # baseline on a subset (it is slow), from home
    kb = min(k_base, k)
    home = A.home_pose(asm)
    slsqp_baseline(asm, Ts[0], home, maxiter=3)  # warm-up of the API calls it makes
    b_times, b_ok, b_costs, b_nit = np.empty(kb), np.zeros(kb, bool), np.empty(kb), []
    b_cpu = np.empty(kb)
    for j in range(kb):
        t0, c0 = time.perf_counter(), time.process_time()
        Qb, res = slsqp_baseline(asm, Ts[j], home)
        b_times[j], b_cpu[j] = time.perf_counter() - t0, time.process_time() - c0
        b_nit.append(res.nit)
        bep, ber = tool_errors(asm, Qb, Ts[j][None])
        b_ok[j] = (bep[0] <= TOOL_TOL_BASE and ber[0] <= TOOL_TOL_BASE
                   and limit_violation(asm, Qb)[0] <= LIMIT_TOL)
        b_costs[j] = A.sensitivity(asm, Qb)
    common = verified[:kb] & b_ok
    ratio = b_costs[common] / costs[:kb][common]

    out = dict(
        label=label, N=N, k=k, kb=kb, wrt=asm.sensitivity.wrt,
        ok=100 * verified.mean(), med=1e3 * np.median(times), p95=1e3 * pct(times, 95),
        mx=1e3 * times.max(), iters=float(np.median(iters)), reasons=dict(reasons),
        claimed_but_not=claimed_but_not,
        ours_sub_med=1e3 * np.median(times[:kb]),
        b_ok=100 * b_ok.mean(), b_med=1e3 * np.median(b_times), b_p95=1e3 * pct(b_times, 95),
        b_iters=float(np.median(b_nit)),
        cpu_med=1e3 * np.median(cpu), b_cpu_med=1e3 * np.median(b_cpu),
        n_common=int(common.sum()),
        cost_ratio=float(ratio.mean()) if ratio.size else float("nan"),
        cost_ratio_min=float(ratio.min()) if ratio.size else float("nan"),
        base_worse=int((ratio > 1 + 1e-6).sum()), base_better=int((ratio < 1 - 1e-6).sum()),
    )
    out["speed"] = out["b_med"] / out["med"]
    log(f"  {label:14s} N={N} ours {out['ok']:6.2f}% med {out['med']:7.2f} ms "
        f"p95 {out['p95']:7.2f} ms | SLSQP-FD {out['b_ok']:6.1f}% med {out['b_med']:8.1f} ms "
        f"| x{out['speed']:.0f} | cost ratio {out['cost_ratio']:.4f}")
    return out


# ----------------------------------------------------------------------------- trajectory


def bench_trajectory(duration, rate, rng, log):
    import assemblers as A
    from assemblers.ik import straight_line, warmup

    asm = A.load_config("trio")
    warmup(asm, trajectory=True)
    # two reachable tool poses (FK of two random feasible stack poses) whose whole straight-line
    # move is reachable: a coarse 21-sample pass decides (and warms up the warm-started path)
    for attempt in range(50):  # noqa: B007 (reported below)
        Qs = random_feasible_poses(asm, 2, rng)
        T_from, T_to = A.forward_kinematics(asm, Qs).reshape(-1, 4, 4)
        t, Ts = straight_line(T_from, T_to, 1.0, 20.0)
        if A.solve_trajectory(asm, t, Ts).ok:
            break
    else:
        raise RuntimeError("no reachable straight-line move found in 50 draws")

    t, Ts = straight_line(T_from, T_to, duration, rate)
    t0 = time.perf_counter()
    tr = A.solve_trajectory(asm, t, Ts)
    wall = time.perf_counter() - t0
    steps = tr.step_times_s[1:]  # warm-started steps; step 0 is a full solve
    ep, er = tool_errors(asm, tr.Q, Ts)
    viol = limit_violation(asm, tr.Q)
    dpos = np.linalg.norm(T_to[:3, 3] - T_from[:3, 3])
    from scipy.spatial.transform import Rotation

    drot = np.linalg.norm(Rotation.from_matrix(T_to[:3, :3] @ T_from[:3, :3].T).as_rotvec())
    out = dict(
        attempts=attempt + 1, n=len(t), duration=duration, rate=rate, dpos=dpos, drot=drot,
        ok=int(tr.success.sum()), first=1e3 * tr.step_times_s[0],
        med=1e3 * np.median(steps), p95=1e3 * pct(steps, 95), mx=1e3 * steps.max(),
        per_step_wall=1e3 * wall / len(t), max_leg_step=tr.max_leg_step,
        held=bool(viol.max() <= LIMIT_TOL), viol=float(viol.max()),
        tool=float(max(ep.max(), er.max())), messages=len(tr.messages),
    )
    log(f"  trajectory trio: {out['n']} steps, {out['ok']} solved, median step "
        f"{out['med']:.3f} ms")
    return out


def bench_other(n: int, rng, log) -> dict:
    """The criterion ``condition`` on the trio and unreachable ``duo`` targets: ours
    (method="auto") against method="slsqp" (SciPy's SLSQP on the same Numba kernel), ``n``
    targets each, both timed after a warm-up."""
    import assemblers as A

    out = {}
    asm = A.load_config("trio")
    Ts = A.forward_kinematics(asm, random_feasible_poses(asm, n, rng)).reshape(-1, 4, 4)
    for method in ("auto", "slsqp"):
        A.solve_ik(asm, Ts[0], "condition", method=method)
    times = {"auto": [], "slsqp": []}
    worse = 0
    for T in Ts:
        res = {}
        for method in ("auto", "slsqp"):
            t0 = time.perf_counter()
            res[method] = A.solve_ik(asm, T, "condition", method=method)
            times[method].append(time.perf_counter() - t0)
        if not res["auto"].success or res["auto"].cost > res["slsqp"].cost * (1 + 1e-7):
            worse += 1
    out["cond"] = dict(med=1e3 * np.median(times["auto"]), b_med=1e3 * np.median(times["slsqp"]),
                       worse=worse, n=n)
    log(f"  condition trio: ours median {out['cond']['med']:.2f} ms, SLSQP "
        f"{out['cond']['b_med']:.2f} ms, {worse} of {n} worse or failed")

    asm = A.load_config("duo")
    T_home = A.forward_kinematics(asm, A.home_pose(asm))
    targets = []
    while len(targets) < n:  # +-15..25 cm off home in x and y: mostly out of reach
        T = T_home.copy()
        T[:2, 3] += rng.uniform(0.15, 0.25, 2) * rng.choice([-1.0, 1.0], 2)
        if not A.solve_ik(asm, T).success:
            targets.append(T)
    times = {"auto": [], "slsqp": []}
    held = True
    for T in targets:
        for method in ("auto", "slsqp"):
            t0 = time.perf_counter()
            r = A.solve_ik(asm, T, method=method)
            times[method].append(time.perf_counter() - t0)
            held &= (not r.success) and r.max_violation == 0.0
    out["unreach"] = dict(med=1e3 * np.median(times["auto"]),
                          b_med=1e3 * np.median(times["slsqp"]), held=held, n=n)
    log(f"  unreachable duo: ours median {out['unreach']['med']:.2f} ms, SLSQP "
        f"{out['unreach']['b_med']:.2f} ms")
    return out


# ----------------------------------------------------------------------------- main


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=200, help="random targets per stack (200)")
    ap.add_argument("--baseline-targets", type=int, default=30,
                    help="of those, how many the slow SLSQP baseline solves (30)")
    ap.add_argument("--duration", type=float, default=2.0, help="trajectory duration, s (2)")
    ap.add_argument("--rate", type=float, default=1000.0, help="trajectory rate, Hz (1000)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 20 targets, 5 for the baseline, 0.2 s trajectory")
    ap.add_argument("--no-family", action="store_true",
                    help="skip the like-for-like stacks of the default platform (N = 2, 3)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.quick:
        args.targets, args.baseline_targets, args.duration = 20, 5, 0.2

    import assemblers as A

    def log(msg):
        print(msg, flush=True)

    print(f"Machine: {machine_line()}")
    print(f"IK benchmark: {args.targets} random reachable targets per stack, SLSQP baseline on "
          f"the first {args.baseline_targets}; seed {args.seed}\n", flush=True)
    rng = np.random.default_rng(args.seed)
    stacks = [(A.load_config("duo"), "duo"), (A.load_config("trio"), "trio"),
              (A.load_config("assembler"), "assembler")]
    if not args.no_family:
        stacks += [(family_config(2), "assembler-x2"), (family_config(3), "assembler-x3")]
    assert [a.n_platforms for a, _ in stacks[:3]] == [2, 3, 4], "shipped configs changed"

    t_all = time.perf_counter()
    rows = [bench_stack(asm, label, args.targets, args.baseline_targets, rng, log)
            for asm, label in stacks]
    traj = bench_trajectory(args.duration, args.rate, rng, log)
    other = bench_other(args.baseline_targets, rng, log)
    t_all = time.perf_counter() - t_all

    print(f"\nsolve_ik (default criterion) vs plain SLSQP with finite differences "
          f"(ours: {args.targets} targets; baseline: first {args.baseline_targets}):")
    hdr = (f"  {'stack':14s} {'N':>2s} {'cost':>4s} | {'ours ok':>8s} {'median':>8s} {'p95':>8s} "
           f"{'iters':>5s} | {'SLSQP ok':>8s} {'median':>9s} {'p95':>9s} {'iters':>5s} | "
           f"{'speed':>6s} | {'cost base/ours':>15s}")
    print(hdr)
    print("  " + "-" * (len(hdr) - 2))
    for r in rows:
        print(f"  {r['label']:14s} {r['N']:2d} {'J_L' if r['wrt'] == 'legs' else 'J_Q':>4s} | "
              f"{r['ok']:7.2f}% {r['med']:6.2f}ms {r['p95']:6.2f}ms {r['iters']:5.0f} | "
              f"{r['b_ok']:7.1f}% {r['b_med']:7.1f}ms {r['b_p95']:7.1f}ms {r['b_iters']:5.0f} | "
              f"x{r['speed']:5.0f} | {r['cost_ratio']:8.5f} (n={r['n_common']})")
    print("  (speed = SLSQP median / ours median; cost base/ours = mean over targets both solved, "
          ">1 means ours is lower)")
    for r in rows:
        notes = []
        if r["reasons"]:
            notes.append("failures: " + ", ".join(f"{v} x {k}" for k, v in r["reasons"].items()))
        if r["claimed_but_not"]:
            notes.append(f"{r['claimed_but_not']} reported success but failed the recheck")
        notes.append(f"ours max {r['mx']:.1f} ms; ours median on the baseline's subset "
                     f"{r['ours_sub_med']:.2f} ms")
        notes.append(f"median process CPU time ours {r['cpu_med']:.2f} ms, SLSQP-FD "
                     f"{r['b_cpu_med']:.1f} ms (x{r['b_cpu_med'] / r['cpu_med']:.0f})")
        notes.append(f"baseline lower cost on {r['base_better']}, higher on {r['base_worse']}, "
                     f"lowest ratio {r['cost_ratio_min']:.4f}")
        print(f"  {r['label']}: " + "; ".join(notes))

    tj = traj
    print(f"\nTrajectory IK (trio, N = 3): straight line + SLERP, {tj['dpos'] * 1e3:.1f} mm and "
          f"{np.degrees(tj['drot']):.1f} deg in {tj['duration']:g} s at {tj['rate']:g} Hz "
          f"({tj['n']} steps);\n  endpoints: FK of random feasible poses, draw {tj['attempts']} "
          "the first whose whole move is reachable")
    print(f"  solved steps          {tj['ok']} / {tj['n']}"
          + (f"  ({tj['messages']} failed)" if tj["messages"] else ""))
    print(f"  per-step time         median {tj['med']:.3f} ms, p95 {tj['p95']:.3f} ms, "
          f"max {tj['mx']:.3f} ms (warm-started steps, step_times_s)")
    print(f"  first step (full)     {tj['first']:.2f} ms; wall / steps {tj['per_step_wall']:.3f} ms")
    print(f"  largest leg step      {tj['max_leg_step'] * 1e6:.2f} um")
    print(f"  limits held           {'yes' if tj['held'] else 'NO'} (max violation "
          f"{tj['viol']:.1e}); worst tool error {tj['tool']:.1e} m/rad")
    oc, ou = other["cond"], other["unreach"]
    print(f"\nCriterion condition (trio, {oc['n']} targets): median {oc['med']:.2f} ms; "
          f"method='slsqp' {oc['b_med']:.2f} ms; worse than it or failed: {oc['worse']}")
    print(f"Unreachable targets (duo, {ou['n']}, 15-25 cm off home): median {ou['med']:.2f} ms "
          f"(closest feasible pose included; limits held: {'yes' if ou['held'] else 'NO'}); "
          f"method='slsqp' {ou['b_med']:.2f} ms")
    print(f"\nTotal benchmark time {t_all:.0f} s")

    print("\nSummary (README-ready):")
    print(f"  Machine: {machine_line()}")
    print(f"  `python benchmarks/ik.py` ({args.targets} random reachable targets per stack, "
          f"default criterion; SLSQP baseline = scipy SLSQP on all 6N variables with "
          f"finite-difference gradients, first {args.baseline_targets} targets):")
    print("  | stack | N | success | median | p95 | SLSQP-FD success | SLSQP-FD median | "
          "speed-up | SLSQP cost / ours |")
    print("  |---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"  | {r['label']} | {r['N']} | {r['ok']:.1f} % | {r['med']:.1f} ms | "
              f"{r['p95']:.1f} ms | {r['b_ok']:.0f} % | {r['b_med']:.0f} ms | "
              f"{r['speed']:.0f}x | {r['cost_ratio']:.4f} |")
    print(f"  Trajectory IK (trio, N = 3, {tj['n']} steps at {tj['rate']:g} Hz): median "
          f"{tj['med']:.2f} ms, p95 {tj['p95']:.2f} ms per warm-started step; largest leg step "
          f"{tj['max_leg_step'] * 1e6:.1f} um; limits held: {'yes' if tj['held'] else 'no'}; "
          f"{tj['ok']}/{tj['n']} steps solved.")
    print(f"  `condition` (trio): median {oc['med']:.1f} ms (method='slsqp' {oc['b_med']:.1f} ms); "
          f"unreachable duo target: median {ou['med']:.1f} ms (method='slsqp' "
          f"{ou['b_med']:.1f} ms).")


if __name__ == "__main__":
    main()
