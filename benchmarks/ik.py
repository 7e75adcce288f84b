"""Least-sensitive IK: solve_ik against CasADi (IPOPT, SQP + qpOASES) and SciPy SLSQP on the same
targets in the same run, and trajectory IK.

    python benchmarks/ik.py [--targets 200] [--baseline-targets 30] [--quick] [--seed 0]
                            [--clock wall|cpu] [--markdown FILE] [--no-casadi] [--no-family]
                            [--duration 2.0] [--rate 1000]

For N = 2, 3, 4 (configs duo, trio, assembler) and, as a like-for-like family, stacks of 2 and 3
of the default Assembler's platform type (its spacers, tool and weights; built with
``config_from_dict`` from configs/assembler.toml; SLSQP baseline only):

* Random reachable targets: the tool pose (FK) of random feasible stack poses, each platform's
  pose uniform over that platform's feasible set (:func:`ik_common.random_feasible_poses`).
* ``solve_ik`` with the default criterion and options, after ``ik.warmup``.  Success:
  ``success`` True and, recomputed here through the public API, the tool pose on target to 1e-9
  m / 1e-9 rad and every limit held (to 1e-8 m / rad).  Timed per call; also reported: the part
  of the call in its optimizer runs (``IKResult.solver_time_s``, every start's compiled SQP
  call) and one run of the compiled SQP (``assemblers.ik.sqp.sqp``) alone from the same start
  (the even split, the same first BFGS matrix), without the start's computation or the report.
* CasADi (``benchmarks/casadi_ik.py``, the ``bench`` extra; skipped with a line saying so when
  casadi is not installed): IPOPT with its exact Hessian, the same on compiled C, and CasADi's
  SQP with qpOASES on compiled C (compiled once, cached), on the full 6N problem with the
  tool-pose equalities, each from our start (the even split) and from home; every solution
  re-checked here like ours (tool pose to 1e-9, limits to 1e-8, cost through the public API).
  The solvers take turns in blocks of 10 targets (interleaved), so a change of load hits all,
  and each runs back to back within a block (right after another solver, on cold caches, a
  solve takes up to twice as long).
* Costs: ours against each baseline (at or below it within a relative 1e-8: our solutions keep
  1e-9 m inside every limit, IPOPT's lie on them), the worst gap, and the best known minimum
  (the lowest verified cost any solver found) and who reached it.
* The baseline a user would write with SciPy: ``minimize(method="SLSQP")`` over the full stack
  pose from home, ``assemblers.sensitivity`` as the objective, finite-difference gradients, the
  tool pose as 6 equalities, the limits as inequalities; the first ``--baseline-targets``.
* The criterion ``condition`` (trio) and unreachable ``duo`` targets against ``method="slsqp"``;
  trajectory IK (trio, straight line + SLERP, ``--duration`` s at ``--rate`` Hz): per-step times.

``--clock cpu``: ratios from the CPU time of the process (``time.process_time``) instead of the
wall clock, for a machine shared with other jobs; both are always measured.
``--markdown FILE``: the comparison tables, as the README takes them.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import numpy as np
from ik_common import (
    LIMIT_TOL,
    TOOL_TOL,
    TOOL_TOL_FD,
    family_config,
    limit_violation,
    machine_line,
    random_feasible_poses,
    slsqp_baseline,
    tool_errors,
)

REL_TOL = 1e-8  # relative cost difference still called equal (see the docstring)
STARTS = ("even", "home")  # the baselines' starts: ours (the even split) and home
BLOCK = 10  # targets per block of the interleaving (see bench_stack)


def pct(a, q):
    return float(np.percentile(a, q)) if len(a) else float("nan")


def timed(fn, *args, **kw):
    """``(fn(*args, **kw), wall s, CPU s)``."""
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kw)
    return out, time.perf_counter() - w, time.process_time() - c


def one_sqp(asm, T, criterion):
    """One run of the compiled SQP from the even split with the first BFGS matrix solve_ik
    uses, timed alone: ``(wall s, CPU s, iterations)``."""
    from assemblers.ik import cold, sqp
    from assemblers.ik.criteria import CODES, SPECS
    from assemblers.ik.driver import SQP_TOL
    from assemblers.ik.evaluate import even_split
    from assemblers.ik.problem import n_constraints, problem

    P = problem(asm, T, criterion)
    n, m = 6 * (asm.n_platforms - 1), n_constraints(P)
    Q = np.empty(6 * asm.n_platforms)
    even_split(P, P.Q_ref, Q)
    z0, x, lam = Q[:n].copy(), np.empty(n), np.empty(m)
    B = cold.start_hessian(asm, criterion).copy()
    (_, k, _, _), w, c = timed(sqp.sqp, P, CODES[criterion], z0, SQP_TOL, 200, 0.0, x, lam, B,
                               SPECS[criterion].f_tol, sqp.B_UNSCALED)
    return w, c, int(k)


def _quiet_stdout():
    from casadi_ik import _quiet_stdout as quiet

    return quiet()


def casadi_solvers(asm, log):
    """The CasADi baselines of a stack, built once: kind -> CasadiIK (kinds that cannot be
    built are left out, with a line saying why)."""
    from casadi_ik import KINDS, CasadiIK

    out = {}
    for kind in KINDS:
        t0 = time.perf_counter()
        try:
            out[kind] = CasadiIK(asm, kind, log=log)
        except Exception as e:  # noqa: BLE001 (a baseline that cannot be built is reported)
            log(f"    CasADi {kind}: not built ({type(e).__name__}: {e})")
            continue
        log(f"    CasADi {kind}: built in {time.perf_counter() - t0:.1f} s")
    return out


def bench_stack(asm, label, k, k_fd, rng, log, with_casadi: bool):
    import assemblers as A
    from assemblers.ik import criterion_cost, even_split, warmup

    N = asm.n_platforms
    crit = A.ik.default_criterion(asm)
    Qs = random_feasible_poses(asm, k, rng)
    Ts = A.forward_kinematics(asm, Qs).reshape(-1, 4, 4)
    warmup(asm)
    for T in Ts[:3]:
        A.solve_ik(asm, T)
        one_sqp(asm, T, crit)
    r = A.solve_ik(asm, Ts[0])
    c_api = A.sensitivity(asm, r.Q)
    if not np.isclose(c_api, r.cost, rtol=1e-9, atol=0.0):
        raise SystemExit(f"{label}: assemblers.sensitivity = {c_api!r} but solve_ik cost = "
                         f"{r.cost!r} at the same pose: the baselines would optimise another "
                         "objective; aborting")
    cas = casadi_solvers(asm, log) if with_casadi else {}
    home = A.home_pose(asm)
    for s in cas.values():  # warm-up (first calls allocate)
        s.solve(Ts[0], home)

    def verify(Q, T, tol=TOOL_TOL):
        ep, er = tool_errors(asm, Q, T[None])
        return bool(ep[0] <= tol and er[0] <= tol and limit_violation(asm, Q)[0] <= LIMIT_TOL)

    rows = [{} for _ in Ts]
    reasons = Counter()
    starts = [{"even": even_split(asm, T), "home": home} for T in Ts]

    def ours(j, T):
        r, w, c = timed(A.solve_ik, asm, T)
        if not r.success:
            reasons[r.reason or r.message] += 1
        rows[j]["ours"] = dict(ok=bool(r.success) and verify(r.Q, T), wall=w, cpu=c, cost=r.cost,
                               solver=r.solver_time_s, starts=r.starts, iters=r.iterations,
                               time_s=r.time_s)

    def sqp1(j, T):
        w, c, k1 = one_sqp(asm, T, crit)
        rows[j]["sqp1"] = dict(wall=w, cpu=c, iters=k1)

    def baseline(kind, st):
        def run(j, T):
            with _quiet_stdout():  # qpOASES prints errors whatever its print level
                (Q, flag, _, it), w, c = timed(cas[kind].solve, T, starts[j][st])
            ok = verify(Q, T)
            rows[j][f"{kind}/{st}"] = dict(ok=ok, flag=flag, wall=w, cpu=c, iters=it,
                                           cost=criterion_cost(asm, Q, crit) if ok else np.inf)
        return run

    def slsqp_fd(j, T):
        if j < k_fd:
            (Qb, res), w, c = timed(slsqp_baseline, asm, T, home)
            ok = verify(Qb, T, TOOL_TOL_FD)
            rows[j]["slsqp-fd/home"] = dict(ok=ok, wall=w, cpu=c, iters=res.nit,
                                            cost=criterion_cost(asm, Qb, crit) if ok else np.inf)

    # interleaved in blocks of BLOCK targets: each solver runs a block back to back (a solve
    # right after another solver's runs on cold caches: ours took twice as long after an IPOPT
    # call), and every solver sees the same drift of the machine's load
    solvers = [ours, sqp1] + [baseline(kind, st) for kind in cas for st in STARTS] + [slsqp_fd]
    for b0 in range(0, len(Ts), BLOCK):
        for run in solvers:
            for j in range(b0, min(b0 + BLOCK, len(Ts))):
                run(j, Ts[j])
    log(f"  {label}: {k} targets done")
    return dict(label=label, N=N, crit=crit, rows=rows, reasons=dict(reasons))


def summarize(st, clock):
    """Medians, ratios and the cost comparison of one stack's rows."""
    rows = st["rows"]
    ours = [r["ours"] for r in rows]
    t = np.array([o[clock] for o in ours])
    out = dict(label=st["label"], N=st["N"], crit=st["crit"], k=len(rows),
               ok=100 * np.mean([o["ok"] for o in ours]), med=np.median(t), p95=pct(t, 95),
               # the optimizer runs on this clock: the call's time times their share of it
               solver=np.median([o[clock] * o["solver"] / o["time_s"] for o in ours]),
               # the call against its own optimizer runs, both by the wall clock (time_s)
               whole_vs_runs=np.median([o["time_s"] / o["solver"] for o in ours]),
               sqp1=np.median([r["sqp1"][clock] for r in rows]),
               starts=np.median([o["starts"] for o in ours]), reasons=st["reasons"])
    out["whole_vs_one"] = out["med"] / out["sqp1"]
    c_ours = np.array([o["cost"] if o["ok"] else np.inf for o in ours])
    names = sorted({key for r in rows for key in r if "/" in key})
    best = c_ours.copy()
    for key in names:
        cb = np.array([r[key]["cost"] if key in r else np.inf for r in rows])
        best = np.minimum(best, cb)
    out["best_ours"] = 100 * np.mean(c_ours <= best * (1 + REL_TOL))
    worst_ours = (c_ours - best) / best
    out["gap_best"] = float(np.max(worst_ours[np.isfinite(worst_ours)], initial=0.0))
    out["missed"] = [j for j in range(len(rows)) if not c_ours[j] <= best[j] * (1 + REL_TOL)]
    out["base"] = {}
    for key in names:
        sub = [j for j, r in enumerate(rows) if key in r]
        b = [rows[j][key] for j in sub]
        cb = np.array([x["cost"] for x in b])
        co = c_ours[sub]
        both = np.isfinite(cb) & np.isfinite(co)
        gap = (co[both] - cb[both]) / cb[both]
        tb = np.array([x[clock] for x in b])
        out["base"][key] = dict(
            n=len(sub), ok=100 * np.mean([x["ok"] for x in b]), med=np.median(tb),
            speed=np.median(tb) / np.median(t[sub]), iters=np.median([x["iters"] for x in b]),
            at_or_below=100 * np.mean(co[both] <= cb[both] * (1 + REL_TOL)) if both.any()
            else float("nan"),
            lower=int(np.sum(cb < co * (1 - REL_TOL))), worst=float(np.max(gap, initial=-np.inf)),
            best=100 * np.mean(cb <= best[sub] * (1 + REL_TOL)))
    return out


# ----------------------------------------------------------------------------- trajectory

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



# ----------------------------------------------------------------------------- tables


def f_ms(s):
    return f"{s * 1e3:.2f} ms" if s < 0.1 else f"{s * 1e3:.0f} ms"


def f_gap(g):
    return "-" if not np.isfinite(g) else f"{g:+.1e}"


_KIND = {"ipopt": "IPOPT (exact Hessian)", "ipopt-jit": "IPOPT, compiled",
         "sqp-jit": "CasADi SQP + qpOASES, compiled", "slsqp-fd": "SciPy SLSQP, FD gradients"}


def tables(sums, args, clock) -> str:
    """The comparison as markdown (what the README shows)."""
    kinds = [k for k in ("ipopt", "ipopt-jit", "sqp-jit") if any(f"{k}/even" in s["base"]
                                                                 for s in sums)]
    out = [f"`python benchmarks/ik.py` ({args.targets} random reachable targets per stack, "
           f"default criterion and options; {clock} clock; {machine_line()}):", ""]
    hdr = ["stack", "N", "solve_ik success", "solve_ik median", "its optimizer runs",
           "whole / runs", "one SQP run", "whole / one SQP"]
    hdr += [f"{_KIND[k]} from our start" for k in kinds]
    out += ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    for s in sums:
        cells = [s["label"], str(s["N"]), f"{s['ok']:.1f} %", f_ms(s["med"]), f_ms(s["solver"]),
                 f"{s['whole_vs_runs']:.2f}x", f_ms(s["sqp1"]), f"{s['whole_vs_one']:.2f}x"]
        for k in kinds:
            b = s["base"].get(f"{k}/even")
            cells.append("-" if b is None else f"{f_ms(b['med'])} = **{b['speed']:.1f}x**, "
                         f"{b['ok']:.0f} % ok")
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "Costs (relative; equal within 1e-8: our poses keep 1e-9 m inside every limit, "
            "IPOPT's lie on them): how often ours is at or below each baseline's, the worst gap "
            "(positive: ours higher), and how often each reached the best known minimum (the "
            "lowest verified cost any solver found):", ""]
    keys = [f"{k}/{st}" for k in kinds for st in STARTS] + ["slsqp-fd/home"]
    keys = [k for k in keys if any(k in s["base"] for s in sums)]
    hdr = ["stack", "ours: best known"] + [f"vs {_KIND[k.split('/')[0]]} from {k.split('/')[1]}"
                                           for k in keys]
    out += ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    for s in sums:
        cells = [s["label"], f"{s['best_ours']:.1f} % (worst {f_gap(s['gap_best'])})"]
        for k in keys:
            b = s["base"].get(k)
            cells.append("-" if b is None else
                         f"ours <= on {b['at_or_below']:.1f} %, worst {f_gap(b['worst'])}; "
                         f"it: best {b['best']:.0f} %, {b['ok']:.0f} % ok (n={b['n']})")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- main


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=200, help="random targets per stack (200)")
    ap.add_argument("--baseline-targets", type=int, default=30,
                    help="of those, how many the slow SciPy SLSQP-FD baseline solves (30)")
    ap.add_argument("--duration", type=float, default=2.0, help="trajectory duration, s (2)")
    ap.add_argument("--rate", type=float, default=1000.0, help="trajectory rate, Hz (1000)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 20 targets, 5 for SLSQP-FD, 0.2 s trajectory")
    ap.add_argument("--no-family", action="store_true",
                    help="skip the like-for-like stacks of the default platform (N = 2, 3)")
    ap.add_argument("--no-casadi", action="store_true", help="skip the CasADi baselines")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="the clock of the medians and ratios (both are measured)")
    ap.add_argument("--markdown", metavar="FILE", help="write the comparison tables here")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.quick:
        args.targets, args.baseline_targets, args.duration = 20, 5, 0.2

    import assemblers as A

    def log(msg):
        print(msg, flush=True)

    with_casadi = not args.no_casadi
    if with_casadi:
        try:
            import casadi
        except ImportError:
            with_casadi = False
            log("CasADi baselines skipped: casadi is not installed (pip install -e \".[bench]\")")
        else:
            log(f"CasADi {casadi.__version__}")
    print(f"Machine: {machine_line()}")
    print(f"IK benchmark: {args.targets} random reachable targets per stack, SLSQP-FD on the "
          f"first {args.baseline_targets}; seed {args.seed}; {args.clock} clock\n", flush=True)
    rng = np.random.default_rng(args.seed)
    stacks = [(A.load_config("duo"), "duo", True), (A.load_config("trio"), "trio", True),
              (A.load_config("assembler"), "assembler", True)]
    if not args.no_family:
        stacks += [(family_config(2), "assembler-x2", False),
                   (family_config(3), "assembler-x3", False)]
    assert [a.n_platforms for a, _, _ in stacks[:3]] == [2, 3, 4], "shipped configs changed"

    t_all = time.perf_counter()
    clock = args.clock
    sums = [summarize(bench_stack(asm, label, args.targets, args.baseline_targets, rng, log,
                                  with_casadi and cas), clock)
            for asm, label, cas in stacks]
    traj = bench_trajectory(args.duration, args.rate, rng, log)
    other = bench_other(args.baseline_targets, rng, log)
    t_all = time.perf_counter() - t_all

    print()
    for s in sums:
        notes = [f"{s['label']} ({s['crit']}): ours {s['ok']:.1f} % ok, median {f_ms(s['med'])}, "
                 f"p95 {f_ms(s['p95'])}, {s['starts']:.0f} starts"]
        if s["reasons"]:
            notes.append("failures: " + ", ".join(f"{v} x {k}" for k, v in s["reasons"].items()))
        if s["missed"]:
            notes.append(f"best known missed on targets {s['missed'][:20]}")
        for key, b in s["base"].items():
            notes.append(f"{key}: {b['ok']:.0f} % ok, median {f_ms(b['med'])} ({b['speed']:.1f}x), "
                         f"{b['iters']:.0f} iterations, lower than ours on {b['lower']}")
        print("\n  ".join(notes))
    tj = traj
    print(f"\nTrajectory IK (trio, N = 3): straight line + SLERP, {tj['dpos'] * 1e3:.1f} mm and "
          f"{np.degrees(tj['drot']):.1f} deg in {tj['duration']:g} s at {tj['rate']:g} Hz "
          f"({tj['n']} steps), endpoints: draw {tj['attempts']}")
    print(f"  solved steps {tj['ok']} / {tj['n']}; per warm-started step median {tj['med']:.3f} ms"
          f", p95 {tj['p95']:.3f} ms, max {tj['mx']:.3f} ms; first step {tj['first']:.2f} ms; "
          f"largest leg step {tj['max_leg_step'] * 1e6:.2f} um; limits held "
          f"{'yes' if tj['held'] else 'NO'}; worst tool error {tj['tool']:.1e}")
    oc, ou = other["cond"], other["unreach"]
    print(f"Criterion condition (trio, {oc['n']} targets): median {oc['med']:.2f} ms; "
          f"method='slsqp' {oc['b_med']:.2f} ms; worse than it or failed: {oc['worse']}")
    print(f"Unreachable targets (duo, {ou['n']}, 15-25 cm off home): median {ou['med']:.2f} ms "
          f"(limits held: {'yes' if ou['held'] else 'NO'}); method='slsqp' {ou['b_med']:.2f} ms")
    print(f"\nTotal benchmark time {t_all:.0f} s\n")
    md = tables(sums, args, clock)
    md += (f"\nTrajectory IK (trio, {tj['n']} steps at {tj['rate']:g} Hz): median "
           f"{tj['med']:.2f} ms, p95 {tj['p95']:.2f} ms per warm-started step; "
           f"{tj['ok']}/{tj['n']} solved; limits held: {'yes' if tj['held'] else 'no'}.\n")
    print(md)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(md)
        print(f"written: {args.markdown}")


if __name__ == "__main__":
    main()
