"""First run on an empty cache against warm runs: ``assemblers demo`` and ``assemblers solve``.

Each run is a fresh process (``python -m assemblers ...``) with ``ASSEMBLERS_CACHE_DIR`` set to a
new temporary folder for a cold run, and that same folder again for the warm run right after,
so every technique is measured back to back on one machine::

    python benchmarks/coldstart.py                      # demo and solve: cold, then warm
    python benchmarks/coldstart.py --commands solve --techniques lazy,serial,parallel
    python benchmarks/coldstart.py --techniques warmup  # `assemblers warmup`, then the command
    python benchmarks/coldstart.py --profile solve      # which kernels take the compile time
    python benchmarks/coldstart.py --variant no-inline  # the kernels without inline="always"
    python benchmarks/coldstart.py --profile solve --env NUMBA_OPT=2   # less LLVM optimisation

Techniques (``ASSEMBLERS_PRECOMPILE`` of the dispatcher, :mod:`assemblers.cli.warmup`):
``lazy`` every kernel compiles in the command's process when first called (the behaviour before
the warm-up machinery), ``serial`` the command's kernel groups compile first, one process after
another, ``parallel`` (the default) independent groups in parallel processes, ``warmup`` an
explicit ``assemblers warmup`` (every group) before the command.

Variants (``--variant``) copy ``assemblers/`` and ``sims/`` into a temporary tree, rewrite the
kernels and run from there: ``no-inline`` drops ``inline="always"`` (Numba IR inlining) from
every kernel, to measure what forced inlining costs in compile time (and ``--warm-repeat`` runs
what it costs at run time).  The machine's load average is printed with every row: on a shared
machine, compare techniques measured in the same invocation (ratios), not absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = "0.02 0.01 1.07 0.05 0.0 0.1"  # the demo's default target
COMMANDS = {
    "solve": ["solve", "--target", TARGET],
    "demo": ["demo", "--samples", "2e5"],  # --out is added per run
    "info": ["info"],
    "robustness": ["robustness", "--target", TARGET, "--samples", "2e5", "--no-progress"],
}
TECHNIQUES = ("lazy", "serial", "parallel", "warmup")


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _run(argv: list[str], env: dict, cwd: Path, pythonpath: Path | None = None) -> dict:
    """One fresh process ``python -m assemblers ARGV``: wall time to its exit and to its last
    line of output (the issue's measure: "to the demo's last line"; the rest is the interpreter's
    teardown, about half a second with Numba's compiled libraries loaded), CPU time of it and
    its children, exit status and the last lines it printed on stderr."""
    env = dict(env, PYTHONUNBUFFERED="1")  # each line's time is when it is printed
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath) + os.pathsep + env.get("PYTHONPATH", "")
    before = os.times()
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "assemblers", *argv], cwd=cwd, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(p.stderr), daemon=True)
    reader.start()
    last = None
    for _ in p.stdout:
        last = time.perf_counter()
    p.wait()
    wall = time.perf_counter() - t0
    last_line = wall if last is None else last - t0  # nothing printed: the end
    reader.join()
    after = os.times()
    cpu = (after.children_user - before.children_user
           + after.children_system - before.children_system)
    return {"argv": argv, "wall_s": wall, "last_line_s": last_line, "cpu_s": cpu,
            "rc": p.returncode, "stderr_tail": "".join(err).strip().splitlines()[-3:],
            "load": _loadavg()}


def _argv(cmd: str, out: Path) -> list[str]:
    argv = list(COMMANDS[cmd])
    if cmd in ("demo", "robustness"):
        argv += ["--out", str(out / cmd)]
    return argv


def measure(cmd: str, technique: str, *, warm_repeat: int = 1, pythonpath: Path | None = None,
            keep: bool = False) -> list[dict]:
    """Cold run of ``cmd`` with ``technique`` on an empty cache, then ``warm_repeat`` warm
    runs on the cache it left."""
    cache = Path(tempfile.mkdtemp(prefix="assemblers-coldstart-"))
    out = cache / "out"
    env = dict(os.environ, ASSEMBLERS_CACHE_DIR=str(cache / "cache"), MPLBACKEND="Agg",
               ASSEMBLERS_PRECOMPILE="parallel" if technique == "warmup" else technique)
    env.pop("NUMBA_CACHE_DIR", None)
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    rows = []
    try:
        if technique == "warmup":
            r = _run(["warmup"], env, ROOT, pythonpath)
            rows.append({"command": "warmup", "run": "cold", "technique": technique, **r})
        r = _run(_argv(cmd, out), env, ROOT, pythonpath)
        rows.append({"command": cmd, "run": "cold" if technique != "warmup" else "after warmup",
                     "technique": technique, **r})
        for _ in range(warm_repeat):
            r = _run(_argv(cmd, out), env, ROOT, pythonpath)
            rows.append({"command": cmd, "run": "warm", "technique": technique, **r})
    finally:
        if not keep:
            shutil.rmtree(cache, ignore_errors=True)
    return rows


# ------------------------------------------------------------------------ variants of the kernels


def variant_tree(name: str) -> Path:
    """A copy of ``assemblers/`` and ``sims/`` with the kernels rewritten for ``name``."""
    tmp = Path(tempfile.mkdtemp(prefix=f"assemblers-{name}-"))
    for pkg in ("assemblers", "sims"):
        shutil.copytree(ROOT / pkg, tmp / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp / "configs").symlink_to(ROOT / "configs")  # the shipped configs, found beside the code
    if name == "no-inline":
        pat = re.compile(r',\s*inline\s*=\s*"always"')
        n = 0
        for path in tmp.rglob("*.py"):
            text = path.read_text()
            new, k = pat.subn("", text)
            if k:
                path.write_text(new)
                n += k
        print(f"variant no-inline: removed inline=\"always\" from {n} kernels", file=sys.stderr)
    else:
        raise SystemExit(f"unknown variant {name!r} (known: no-inline)")
    return tmp


# ------------------------------------------------------------------------ compile profile


def profile_child(out_path: str, argv: list[str]) -> int:
    """Run ``assemblers ARGV`` in this process with a listener on Numba's compile events and
    write ``[{"name", "args", "start", "end", "depth"}]`` to ``out_path``."""
    import importlib

    importlib.import_module("assemblers")  # before Numba: it points Numba at the cache under test
    from numba.core import event

    records, stack = [], []

    class Rec(event.Listener):
        def on_start(self, ev):
            stack.append((time.perf_counter(), time.thread_time()))

        def on_end(self, ev):
            t0, c0 = stack.pop()
            disp = ev.data.get("dispatcher")
            py = getattr(disp, "py_func", None)
            name = (f"{py.__module__}.{py.__qualname__}" if py is not None else str(disp))
            records.append({"name": name, "args": str(ev.data.get("args")), "start": t0,
                            "end": time.perf_counter(), "cpu": time.thread_time() - c0,
                            "depth": len(stack)})

    event.register("numba:compile", Rec())
    from assemblers.cli.main import main

    t0 = time.perf_counter()
    try:
        rc = main(argv)
    finally:
        Path(out_path).write_text(json.dumps({"records": records,
                                              "wall_s": time.perf_counter() - t0}))
    return rc


PROBE = """
import sys, time, numpy as np, assemblers
asm = assemblers.load_config("assembler")
base = np.array([0.02, 0.01, 1.07, 0.05, 0.0, 0.1])
rng = np.random.default_rng(0)
assemblers.ik.warmup(asm)
cpu = []
for _ in range(int(sys.argv[1])):
    T = assemblers.pose_to_transform(base + rng.uniform(-1, 1, 6) * [0.01, 0.01, 0.01, 0.03, 0.03, 0.03])
    c0 = time.thread_time()
    assemblers.solve_ik(asm, T)
    cpu.append(time.thread_time() - c0)
print(float(np.median(cpu)))
"""


def probe(env: dict, n: int, pythonpath: Path | None = None) -> float:
    """Median CPU time (s, of the solving thread) of ``n`` warm solves near the default target,
    in a fresh process on the cache of ``env``: what a compile option costs at run time."""
    env = dict(env)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath) + os.pathsep + env.get("PYTHONPATH", "")
    p = subprocess.run([sys.executable, "-c", PROBE, str(n)], cwd=ROOT, env=env,
                       capture_output=True, text=True, check=True)
    return float(p.stdout.strip().splitlines()[-1])


def profile(cmd: str, pythonpath: Path | None = None, top: int = 25, n_probe: int = 0) -> dict:
    """Cold run of ``cmd`` in one process (``lazy``), every kernel's compile time: inclusive
    (with the kernels it calls) and exclusive (its own), one row per specialization."""
    cache = Path(tempfile.mkdtemp(prefix="assemblers-profile-"))
    env = dict(os.environ, ASSEMBLERS_CACHE_DIR=str(cache / "cache"), MPLBACKEND="Agg",
               ASSEMBLERS_PRECOMPILE="lazy")
    env.pop("NUMBA_CACHE_DIR", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath) + os.pathsep + env.get("PYTHONPATH", "")
    out_json = cache / "profile.json"
    try:
        p = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--profile-child",
                            str(out_json), "--", *_argv(cmd, cache)], cwd=ROOT, env=env,
                           check=False, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"assemblers {cmd} failed (exit {p.returncode}): "
                             f"{p.stderr.strip()[-2000:]}")
        data = json.loads(out_json.read_text())
        probe_s = probe(env, n_probe, pythonpath) if n_probe else None
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    recs = sorted(data["records"], key=lambda r: r["start"])
    for r in recs:
        inner = [c for c in recs if c is not r and c["start"] >= r["start"] and c["end"] <= r["end"]
                 and c["depth"] == r["depth"] + 1]
        r["incl_s"] = r["end"] - r["start"]
        r["excl_s"] = r["incl_s"] - sum(c["end"] - c["start"] for c in inner)
        r["excl_cpu_s"] = r["cpu"] - sum(c["cpu"] for c in inner)
    total = sum(r["incl_s"] for r in recs if r["depth"] == 0)
    total_cpu = sum(r["cpu"] for r in recs if r["depth"] == 0)
    by_name: dict[str, list] = {}
    for r in recs:
        by_name.setdefault(r["name"], []).append(r)
    return {"command": cmd, "wall_s": data["wall_s"], "compile_s": total,
            "solve_cpu_median_s": probe_s,
            "compile_cpu_s": total_cpu, "load": _loadavg(),
            "kernels": sorted(({"name": n, "specializations": len(rs),
                                "excl_s": sum(r["excl_s"] for r in rs),
                                "excl_cpu_s": sum(r["excl_cpu_s"] for r in rs),
                                "args": [r["args"] for r in rs]} for n, rs in by_name.items()),
                              key=lambda d: -d["excl_cpu_s"])[:top]}


def _difference(sig: str, sigs: list[str]) -> str:
    """``sig`` with the part it shares with every other of ``sigs`` elided (front and back)."""
    import os.path

    others = [x for x in sigs if x != sig] or [sig]
    head = min(len(os.path.commonprefix([sig, x])) for x in others)
    tail = min(len(os.path.commonprefix([sig[::-1], x[::-1]])) for x in others)
    head = sig.rfind(", ", 0, head) + 2 if ", " in sig[:head] else 0
    mid = sig[head:len(sig) - tail] if tail < len(sig) - head else sig[head:]
    return ("... " if head else "") + mid[:300] + (" ..." if tail else "")


# ------------------------------------------------------------------------ main


def _table(rows: list[dict]) -> str:
    head = (f"{'command':<11} {'run':<13} {'technique':<9} {'last line [s]':>13} {'wall [s]':>9} "
            f"{'cpu [s]':>8} rc  load")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['command']:<11} {r['run']:<13} {r['technique']:<9} "
                     f"{r['last_line_s']:13.1f} {r['wall_s']:9.1f} {r['cpu_s']:8.1f} {r['rc']:>2}  "
                     f"{r['load']}")
    return "\n".join(lines)


def _print_profile(doc: dict, args) -> None:
    """The per-kernel compile times of ``--profile`` as text."""
    print(f"cold `assemblers {args.profile}`{' (' + args.variant + ')' if args.variant else ''}"
          f": {doc['wall_s']:.1f} s in the command, {doc['compile_s']:.1f} s compiling "
          f"({doc['compile_cpu_s']:.1f} s CPU of the compiling thread; load {doc['load']})")
    if doc["solve_cpu_median_s"] is not None:
        print(f"warm solve, median CPU of {args.probe}: "
              f"{doc['solve_cpu_median_s'] * 1e3:.3f} ms")
    print(f"{'kernel':<58} {'spec':>4} {'own CPU [s]':>11} {'own wall [s]':>12}")
    for k in doc["kernels"]:
        print(f"{k['name'][:58]:<58} {k['specializations']:>4} {k['excl_cpu_s']:11.2f} "
              f"{k['excl_s']:12.2f}")
    for k in doc["kernels"]:  # where a kernel compiles twice: the argument types
        if k["specializations"] > 1 and k["name"].startswith(("assemblers", "sims")):
            print(f"\n{k['name']} (where the signatures differ):")
            for a in k["args"]:
                print(f"  {_difference(a, k['args'])}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--profile-child"]:
        return profile_child(argv[1], argv[3:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--commands", default="demo,solve",
                   help=f"comma-separated, of {', '.join(COMMANDS)} (default demo,solve)")
    p.add_argument("--techniques", default="parallel",
                   help=f"comma-separated, of {', '.join(TECHNIQUES)} (default parallel)")
    p.add_argument("--warm-repeat", type=int, default=1, help="warm runs after each cold one")
    p.add_argument("--variant", default=None, help="no-inline: kernels without forced inlining")
    p.add_argument("--profile", default=None, metavar="COMMAND",
                   help="per-kernel compile times of a cold COMMAND (one process)")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="set an environment variable in the measured processes, e.g. NUMBA_OPT=2 "
                        "(LLVM optimisation level of the compiled kernels; default 3)")
    p.add_argument("--probe", type=int, default=0, metavar="N",
                   help="with --profile: then the median CPU time of N warm solves")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = p.parse_args(argv)
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"--env: expected NAME=VALUE, got {item!r}")
        os.environ[name] = value  # inherited by every process measured
    tree = variant_tree(args.variant) if args.variant else None
    try:
        if args.profile:
            doc = profile(args.profile, tree, n_probe=args.probe)
            if args.json:
                print(json.dumps(doc, indent=2))
            else:
                _print_profile(doc, args)
            return 0
        rows = []
        for cmd in args.commands.split(","):
            if cmd not in COMMANDS:
                raise SystemExit(f"--commands: unknown {cmd!r} (known: {', '.join(COMMANDS)})")
            for tech in args.techniques.split(","):
                if tech not in TECHNIQUES:
                    raise SystemExit(f"--techniques: unknown {tech!r} (known: "
                                     f"{', '.join(TECHNIQUES)})")
                rows += measure(cmd, tech, warm_repeat=args.warm_repeat, pythonpath=tree)
                if not args.json:
                    print(_table(rows[-(args.warm_repeat + 1 + (tech == 'warmup')):]), flush=True)
        if args.json:
            print(json.dumps({"cpus": os.cpu_count(), "variant": args.variant, "rows": rows},
                             indent=2))
        else:
            print("\n" + _table(rows))
        return 0 if all(r["rc"] == 0 for r in rows) else 1
    finally:
        if tree is not None:
            shutil.rmtree(tree, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
