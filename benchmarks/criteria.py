"""The criteria of the loads: solve times against ``fn``, what they buy on the default Assembler
with a mass model, the stroke margin's price, and the figure of docs/images/criteria.png.

    python benchmarks/criteria.py [--targets 200] [--seed 0] [--quick] [--no-times]
                                  [--no-study] [--figure docs/images/criteria.png]

* Stacks: the default Assembler with its lab-prototype mass model (configs/assembler_loaded.toml,
  N = 4) and its first 2 and 3 platforms (the last one carrying the tool flange; built with
  ``config_from_dict``).  Targets: the tool pose of random stack poses, each platform uniform
  over its feasible set (``benchmarks/ik.py``'s ``random_feasible_poses``).
* Times: ``solve_ik`` for each criterion (``fn``, ``loads``, ``loads_max``, ``margin``,
  ``compliance``, the blend ``fn:1,loads:0.2``) and a user-defined JAX criterion (N = 3: the
  sum of squared normalized forces plus a tenth of ||J_Q||_F), after ``ik.warmup``, round robin
  in blocks of 25 targets (a drift of the shared machine's speed falls on every criterion alike); CPU
  time of the calling thread (``time.thread_time``) per solve: median, p95, and the ratio of
  medians to ``fn``.  The default config's ``fn`` is timed too: the loaded config's ``fn`` pays
  for the force ratings (24 more rows, their exact derivatives).
* Study (N = 4, ``--targets``): the largest |leg force| / rating at the poses of ``even``,
  ``fn``, ``loads``, ``loads_max`` and the blend; per target the reduction of ``loads`` (and the
  others) against ``fn`` and ``even``: median, p10, p90; the price in ``fn``.  And ``fn`` with
  ``[ik] stroke_margin = 0.05``: every leg checked 5 % inside its stroke, the ``fn`` cost
  against ``fn`` without it (median and largest increase).
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ik import limit_violation, machine_line, random_feasible_poses, tool_errors  # noqa: E402

CRITERIA = ("fn", "loads", "loads_max", "margin", "compliance", "fn:1,loads:0.2")
STUDY = ("even", "fn", "loads", "loads_max", "fn:1,loads:0.2")
BLOCK = 25  # targets per criterion in each round of the timing


def loaded_stack(n: int):
    """The default Assembler with its mass model, ``n`` platforms (the last one the top type)."""
    import assemblers as A
    from assemblers.model.config import resolve_config_path

    path = resolve_config_path("assembler_loaded")
    if n == 4:
        return A.load_config(path)
    data = tomllib.loads(path.read_text())
    data["name"] = f"assembler_loaded-x{n}"
    data["stack"]["platforms"] = data["stack"]["platforms"][:n - 1] + ["hexapod_top"]
    data["stack"]["interfaces"] = data["stack"]["interfaces"][: n - 1]
    data.pop("hardware", None)
    return A.config_from_dict(data, source=f"{path} ({n} platforms)")


def user_criterion(asm):
    """A user-defined criterion: sum of squared normalized leg forces + ||J_Q||_F / 10."""
    import jax.numpy as jnp

    ratings = jnp.asarray([p.max_leg_force for p in asm.platforms])[:, None]

    def forces_and_sensitivity(Q, m):
        return jnp.sum((m.forces / ratings) ** 2) + 0.1 * jnp.sqrt(jnp.sum(m.J_Q ** 2))

    return forces_and_sensitivity


def checked(asm, T, r) -> bool:
    """Success as benchmarks/ik.py counts it: on target to 1e-9, limits held (recomputed), and
    every |leg force| within its rating (to 1e-8 relative)."""
    import assemblers as A

    if not r.success:
        return False
    ep, er = tool_errors(asm, r.Q, T)
    F = np.abs(A.leg_forces(asm, r.Q))
    rating = np.array([p.max_leg_force or np.inf for p in asm.platforms])[:, None]
    return bool(ep[0] <= 1e-9 and er[0] <= 1e-9 and limit_violation(asm, r.Q)[0] <= 1e-8
                and np.all(F <= rating * (1 + 1e-8)))


def time_criteria(n_targets: int, seed: int) -> None:
    import assemblers as A
    from assemblers.ik import solve_ik, warmup

    print("\n## Solve times (CPU time of the calling thread per solve; after ik.warmup)\n")
    print("| stack | N | criterion | success | median | p95 | median / fn |")
    print("|---|---|---|---|---|---|---|")
    for n in (2, 3, 4):
        asm = loaded_stack(n)
        rng = np.random.default_rng(seed + n)
        Ts = A.forward_kinematics(asm, random_feasible_poses(asm, n_targets, rng))
        plain = A.load_config("assembler") if n == 4 else None
        crits = list(CRITERIA) + (["user"] if n == 3 else [])
        med_fn = None
        rows = [(asm, c) for c in crits] + ([(plain, "fn")] if plain is not None else [])
        fns = [user_criterion(stack) if crit == "user" else crit for stack, crit in rows]
        for (stack, _), c in zip(rows, fns):
            warmup(stack, c)
            for T in Ts[:3]:
                solve_ik(stack, T, c)
        # round robin over the criteria in blocks of BLOCK targets: a drift of the shared
        # machine's speed during the run falls on every criterion alike (their ratios are the
        # result), and each criterion runs warm within a block (target by target, switching
        # criteria at every solve made every one ~1.5x slower: cold caches)
        times = [[] for _ in rows]
        ok = [0] * len(rows)
        for b0 in range(0, len(Ts), BLOCK):
            for k, ((stack, crit), c) in enumerate(zip(rows, fns)):
                for T in Ts[b0:b0 + BLOCK]:
                    if crit == "user" and len(times[k]) >= min(n_targets, 50):  # (slower)
                        break
                    t0 = time.thread_time()
                    r = solve_ik(stack, T, c)
                    times[k].append(time.thread_time() - t0)
                    ok[k] += checked(stack, T, r)
        for k, (stack, crit) in enumerate(rows):
            med, p95 = np.median(times[k]) * 1e3, np.percentile(times[k], 95) * 1e3
            if stack is asm and crit == "fn":
                med_fn = med
            name = "user (JAX)" if crit == "user" else crit
            label = stack.name + ("" if stack is asm else " (no masses)")
            print(f"| {label} | {n} | {name} | {100 * ok[k] / len(times[k]):.1f} % | {med:.2f} ms | "
                  f"{p95:.2f} ms | {med / med_fn:.2f} |", flush=True)


def worst_force(asm, Q) -> float:
    """Largest |leg force| / rating at the pose ``Q``."""
    import assemblers as A

    rating = np.array([p.max_leg_force for p in asm.platforms])[:, None]
    return float(np.max(np.abs(A.leg_forces(asm, Q)) / rating))


def study(n_targets: int, seed: int, figure: str | None) -> None:
    import dataclasses

    import assemblers as A
    from assemblers.ik import criterion_cost, solve_ik

    asm = loaded_stack(4)
    rng = np.random.default_rng(seed)
    Ts = A.forward_kinematics(asm, random_feasible_poses(asm, n_targets, rng))
    worst = {c: [] for c in STUDY}
    fn_cost = {c: [] for c in STUDY}
    failed = {c: 0 for c in STUDY}
    for T in Ts:
        rs = {c: solve_ik(asm, T, c) for c in STUDY}
        if not all(checked(asm, T, r) for r in rs.values()):
            for c, r in rs.items():
                failed[c] += not checked(asm, T, r)
            continue
        for c, r in rs.items():
            worst[c].append(worst_force(asm, r.Q))
            fn_cost[c].append(criterion_cost(asm, r.Q, "fn"))
    w = {c: np.asarray(v) for c, v in worst.items()}
    f = {c: np.asarray(v) for c, v in fn_cost.items()}
    used = len(w["fn"])
    print(f"\n## On the default Assembler with masses ({used} of {n_targets} random reachable "
          f"targets solved by every criterion; failures: {failed})\n")
    print("largest |leg force| / rating; reduction per target against fn and even (median, "
          "p10..p90), fn cost against fn's own optimum\n")
    print("| criterion | largest force / rating (median) | vs fn | vs even | fn cost vs fn |")
    print("|---|---|---|---|---|")
    for c in STUDY:
        red_fn = 1 - w[c] / w["fn"]
        red_even = 1 - w[c] / w["even"]
        price = f[c] / f["fn"] - 1
        print(f"| {c} | {np.median(w[c]):.3f} | {100 * np.median(red_fn):+.1f} % "
              f"({100 * np.percentile(red_fn, 10):+.1f}..{100 * np.percentile(red_fn, 90):+.1f}) | "
              f"{100 * np.median(red_even):+.1f} % ({100 * np.percentile(red_even, 10):+.1f}.."
              f"{100 * np.percentile(red_even, 90):+.1f}) | {100 * np.median(price):+.2f} % "
              f"(largest {100 * price.max():+.2f} %) |")
    # the stroke margin
    m = 0.05
    marg = dataclasses.replace(asm, ik=dataclasses.replace(asm.ik, stroke_margin=m))
    lo = asm.leg_min + m * (asm.leg_max - asm.leg_min)
    hi = asm.leg_max - m * (asm.leg_max - asm.leg_min)
    incr, inside, solved, at_stop = [], 0, 0, 0
    for T in Ts:
        free = solve_ik(asm, T, "fn")
        r = solve_ik(marg, T, "fn")
        if not (free.success and checked(asm, T, r)):
            continue
        solved += 1
        L = A.leg_lengths(asm, r.Q)
        inside += bool(np.all(L >= lo[:, None] - 1e-12) and np.all(L <= hi[:, None] + 1e-12))
        L0 = A.leg_lengths(asm, free.Q)
        at_stop += bool(np.any(L0 < lo[:, None]) or np.any(L0 > hi[:, None]))
        incr.append(r.cost / free.cost - 1)
    incr = np.asarray(incr)
    print(f"\nstroke_margin = {m}: {solved} of {n_targets} targets solved with the margin"
          + (" (the others: a leg must come closer than 5 % to a stop)" if solved < n_targets
             else "") + f"; every leg 5 % inside its stroke on {inside} of them;"
          f" without the margin fn's pose was closer on {at_stop}; "
          f"fn cost +{100 * np.median(incr):.2f} % median, +{100 * np.percentile(incr, 95):.2f} "
          f"% p95, +{100 * incr.max():.2f} % at most")
    if figure:
        plot(asm, Ts, w, f, figure)


def plot(asm, Ts, w, f, path) -> None:
    """docs/images/criteria.png: (left) the leg forces of every platform at one target's poses
    under fn, loads and the blend; (right) over the study's targets, the largest force against
    the fn cost, both relative to fn's pose."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import assemblers as A
    from assemblers.ik import solve_ik

    T = Ts[int(np.argmax(w["fn"] / w["loads"]))]  # the target where loads helps most
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = {"fn": "tab:blue", "loads": "tab:orange", "fn:1,loads:0.2": "tab:green",
              "even": "tab:gray", "loads_max": "tab:red"}
    width = 0.27
    for j, c in enumerate(("fn", "loads", "fn:1,loads:0.2")):
        F = A.leg_forces(asm, solve_ik(asm, T, c).Q)
        x = np.arange(24) + (j - 1) * width
        ax0.bar(x, F.reshape(-1), width, color=colors[c], label=c)
    ax0.axhline(asm.platforms[0].max_leg_force, color="k", lw=0.8, ls="--")
    ax0.text(0, asm.platforms[0].max_leg_force * 0.96, "rating", va="top", fontsize=8)
    ax0.set_xticks([2.5, 8.5, 14.5, 20.5], ["platform 1", "platform 2", "platform 3",
                                            "platform 4"])
    ax0.set_ylabel("leg force [N] (compression > 0)")
    ax0.set_title("one target: each leg's force")
    ax0.legend(fontsize=8)
    for c in ("even", "loads", "loads_max", "fn:1,loads:0.2"):
        ax1.scatter(100 * (f[c] / f["fn"] - 1), 100 * (w[c] / w["fn"] - 1), s=8,
                    color=colors[c], label=c, alpha=0.7)
    ax1.axhline(0, color="k", lw=0.5)
    ax1.axvline(0, color="k", lw=0.5)
    ax1.set_xlabel("||J_Q||_F against fn's optimum [%]")
    ax1.set_ylabel("largest |leg force| against fn's pose [%]")
    ax1.set_title(f"{len(w['fn'])} random targets")
    ax1.legend(fontsize=8)
    fig.suptitle("Default Assembler with a lab-prototype mass model (configs/assembler_loaded.toml)",
                 fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"\nwrote {path}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="20 targets, for a smoke run")
    p.add_argument("--no-times", action="store_true")
    p.add_argument("--no-study", action="store_true")
    p.add_argument("--figure", default=None, help="write the figure (e.g. docs/images/criteria.png)")
    args = p.parse_args(argv)
    n = 20 if args.quick else args.targets
    print(f"# benchmarks/criteria.py: {machine_line()}")
    if not args.no_times:
        time_criteria(n, args.seed)
    if not args.no_study:
        study(n, args.seed, args.figure)


if __name__ == "__main__":
    main()
