"""``assemblers warmup`` and the first-run notice of every command that compiles kernels.

``assemblers warmup [--group NAME ...] [--config C] [--serial] [--check] [--json]`` compiles the
kernel groups (:mod:`assemblers.warmup`) into the persistent cache now, independent groups in
parallel processes, so that no later command waits: run it once after ``pip install``.

Without it, the first command that needs a cold group says so on stderr the moment a kernel
starts compiling (``compiling kernels for this machine, first run only, about N s``), with a
progress line, and then runs.  ``ASSEMBLERS_PRECOMPILE`` chooses how the groups compile:
``auto`` (default: ``parallel`` when the command needs two or more independent groups and the
machine has idle cores for them, else ``lazy``), ``parallel`` (independent groups in parallel
processes), ``serial`` (one process after another), ``lazy`` (each kernel compiles in the
command's process when first called; the notice is still printed) or ``off`` (nothing, not
even the notice).
"""

from __future__ import annotations

import os
import sys
import time

from .args import CLIError, add_config_arg, add_json_arg
from .render import print_json

#: The kernel groups each command needs; a command's catalog entry may say it itself with a
#: ``"kernels"`` list (that wins).  Commands not named here (emulate, stream, bench, ...)
#: compile nothing.  :func:`kernels_of` refines a few by their options (``show`` without
#: ``--target`` solves nothing; ``sweep --mc-samples N`` also runs the Monte Carlo).
COMMAND_KERNELS = {
    "info": ("kinematics",), "fk": ("kinematics",), "jacobian": ("kinematics",),
    "legs": ("kinematics",), "solve": ("ik_leaves", "ik"), "trajectory": ("ipm",),
    "show": ("ik_leaves", "ik"), "physics": ("ik_leaves", "ik"), "sweep": ("ik_leaves", "ik"),
    "robustness": ("ik_leaves", "ik", "montecarlo"), "demo": ("ik_leaves", "ik", "montecarlo"),
}
MODES = ("auto", "parallel", "serial", "lazy", "off")
#: ``auto`` compiles in parallel processes only with at least this many idle cores
#: (:func:`idle_cores`): on a busy machine the processes would share one core and only add their
#: start-up and the kernels both compile (measured: 103 s against 82 s in-process for a cold demo
#: with one core taken by another job).
AUTO_IDLE_CORES = 1.5
#: seconds over which :func:`idle_cores` measures the CPUs' idle share (10 clock ticks of
#: 100 Hz per core: a tenth of a core's resolution, enough against the 1.5 cores needed; it
#: is spent before the groups start)
IDLE_WINDOW_S = 0.1


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) CPU time of all CPUs so far, in clock ticks, from ``/proc/stat`` (Linux);
    None elsewhere.  Idle counts ``idle`` and ``iowait``; total the first eight fields (guest
    time is inside user time)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 5:
        return None
    ticks = [int(x) for x in fields[1:9]]
    return ticks[3] + ticks[4], sum(ticks)


def idle_cores(window_s: float = IDLE_WINDOW_S) -> float:
    """How many of the CPUs this process may use are idle now: on Linux their idle share over
    ``window_s`` seconds (``/proc/stat``) times their count; elsewhere the count minus the
    1-minute load average.  Why not the load average everywhere: it is a minute's mean, so
    right after other work (``pip install`` in the README's first command, a previous job) it
    still counts that work, and ``auto`` compiled in-process on a machine gone idle (measured:
    a cold demo right after a benchmark, 81 s in-process, against 51 s in parallel)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    before = _cpu_times()
    if before is not None:
        time.sleep(window_s)
        after = _cpu_times()
        if after is not None and after[1] > before[1]:
            return cores * (after[0] - before[0]) / (after[1] - before[1])
    try:
        return cores - os.getloadavg()[0]
    except OSError:  # no load average on this platform
        return cores - 1.0


def auto_mode(todo: list[str]) -> str:
    """What ``auto`` does for the cold groups ``todo``: ``parallel`` when they form two or more
    independent chains and the machine has :data:`AUTO_IDLE_CORES` idle cores
    (:func:`idle_cores`), else ``lazy`` (one chain gains nothing from a separate process)."""
    from ..warmup import chains

    if len(chains(todo)) < 2:
        return "lazy"
    return "parallel" if idle_cores() >= AUTO_IDLE_CORES else "lazy"


def kernels_of(name: str, argv: list[str] | None = None) -> tuple[str, ...]:
    """The kernel groups command ``name`` needs (its catalog's ``kernels``, else
    :data:`COMMAND_KERNELS`, refined by the options in ``argv``)."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="assemblers.commands"):
        if ep.name == name:
            try:
                spec = ep.load()
                if "kernels" in spec:
                    return tuple(spec["kernels"])
            except Exception:  # noqa: BLE001 - the dispatcher reports broken entries itself
                pass
            break
    needs = COMMAND_KERNELS.get(name, ())
    argv = argv or []
    given = {a.split("=", 1)[0] for a in argv}
    if name in ("show", "physics") and "--target" not in given:
        needs = ("kinematics",)  # a pose or a trajectory frame: nothing to solve
    if name == "sweep":
        mc = _option(argv, "--mc-samples")
        if mc not in (None, "0", "0.0", "0e0"):
            needs = (*needs, "montecarlo")
    return needs


def _option(argv: list[str], name: str) -> str | None:
    """The value of option ``name`` in a command line, without parsing the rest."""
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def _config_of(argv: list[str]) -> str | None:
    """The ``--config``/``-c`` value of a command line, without parsing the rest."""
    value = _option(argv, "--config")
    return value if value is not None else _option(argv, "-c")


def _writable(path) -> bool:
    """Whether ``path`` (or its nearest existing parent) can be written."""
    from pathlib import Path

    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    return os.access(p, os.W_OK)


class Progress:
    """The progress indication on stderr: on a terminal one line rewritten in place
    (``compiling: ik 12 s, montecarlo done 9 s  [21 s of about 45 s]``); otherwise one line
    per group as it finishes."""

    def __init__(self, estimate: float, stream=None):
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.estimate, self.t0, self.said = estimate, time.perf_counter(), set()

    def __call__(self, state) -> None:
        elapsed = time.perf_counter() - self.t0
        if self.tty:
            parts = [f"{r.name} {'done ' if r.state == 'done' else ''}"
                     f"{'FAILED ' if r.state == 'failed' else ''}{r.seconds:.0f} s"
                     for r in state.values() if r.state != "waiting"]
            line = f"  compiling: {', '.join(parts)}  [{elapsed:.0f} s of about {self.estimate:.0f} s]"
            self.stream.write("\r" + line[:150].ljust(78))
            self.stream.flush()
        for r in state.values():
            if r.state in ("done", "failed") and r.name not in self.said:
                self.said.add(r.name)
                if not self.tty:
                    what = "compiled" if r.ok else f"FAILED ({r.error[:120]})"
                    print(f"  {r.name}: {what} in {r.seconds:.1f} s", file=self.stream, flush=True)

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def compile_with_progress(names, config=None, parallel=True, stream=None):
    """Compile ``names`` (:func:`assemblers.warmup.compile_groups`) with a :class:`Progress`."""
    from ..warmup import compile_groups, estimate_seconds

    bar = Progress(estimate_seconds(names, None if parallel else 1), stream)
    try:
        return compile_groups(names, config, parallel=parallel, progress=bar)
    finally:
        bar.close()


class _FirstCompile:
    """What a listener on Numba's ``numba:compile`` event calls (it fires only when a kernel
    really compiles, never for one loaded from the cache).  Unless the mode is ``lazy``, the
    cold groups the command needs start compiling in parallel processes as the command starts
    (:meth:`start`); at the command's first compile it prints the notice and waits for them
    before letting the command go on (it then loads them from the cache; only the one kernel
    being compiled at that moment is compiled here too)."""

    def __init__(self, todo: list[str], config: str | None, mode: str, stream=None):
        self.todo, self.config, self.mode = todo, config, mode
        self.stream = stream or sys.stderr
        self.fired, self.t0, self.ticker, self.stop = False, 0.0, None, None
        self.bar = None  # the progress indication, once the notice is out
        self.state = {}  # what compile_groups returned
        self.done = self.halt = None  # the compiling thread's Events (start)

    def start(self) -> None:
        """Start compiling the groups at once, silently, in a thread that runs
        :func:`assemblers.warmup.compile_groups` (its processes do the work), before the
        command reaches its first kernel: that moment only prints the notice and waits (a
        first demo reached it 0.5 s later).  A command that never compiles (bad input found
        in its own checks) stops them in :meth:`close`: no notice, no processes left.  Once
        only; nothing in ``lazy`` mode."""
        if self.mode == "lazy" or self.done is not None:
            return
        import threading

        from ..warmup import compile_groups

        self.done, self.halt = threading.Event(), threading.Event()

        def run():
            try:
                self.state = compile_groups(self.todo, self.config,
                                            parallel=self.mode != "serial",
                                            progress=self._progress, stop=self.halt)
            finally:
                self.done.set()

        self.t0 = time.perf_counter()
        threading.Thread(target=run, daemon=True).start()

    def _progress(self, state) -> None:
        if self.bar is not None:
            self.bar(state)

    def on_start(self, event) -> None:  # numba.core.event.Listener
        if self.fired:
            return
        self.fired = True
        from ..warmup import estimate_seconds, processes

        parallel = self.mode != "serial"
        n_proc = len(processes(self.todo))  # chains packed onto the cores
        how = ("in this process" if self.mode == "lazy" else
               f"{n_proc} processes in parallel" if parallel and n_proc > 1 else "one process")
        est = estimate_seconds(self.todo, 1 if self.mode == "lazy" or not parallel else None)
        print(f"assemblers: compiling kernels for this machine, first run only, about {est:.0f} s "
              f"({', '.join(self.todo)}; {how}); `assemblers warmup` does it ahead of time",
              file=self.stream, flush=True)
        if self.mode == "lazy":
            self.t0 = time.perf_counter()
            self._start_ticker(est)
            return
        self.start()  # (already started with the command, see first_compile_notice)
        bar = Progress(est, self.stream)
        bar.t0 = self.t0
        self.bar = bar  # its progress shows from now on
        # an Event, not Thread.join: Python 3.11 takes a join interrupted by Ctrl-C for the
        # thread's end, and close() would leave its processes running
        while not self.done.wait(0.1):
            pass
        bar.close()
        for r in self.state.values():
            if not r.ok:
                print(f"assemblers: could not pre-compile {r.name} ({r.error[:200]}); the "
                      "command compiles what it needs itself", file=self.stream, flush=True)
        print(f"assemblers: kernels compiled in {time.perf_counter() - self.t0:.0f} s and cached "
              "for the next runs", file=self.stream, flush=True)

    def on_end(self, event) -> None:
        pass

    def notify(self, event) -> None:
        if event.is_start:
            self.on_start(event)

    def _start_ticker(self, est: float) -> None:
        """Lazy mode: the kernels compile in this thread (LLVM releases the GIL), a thread
        shows the seconds on a terminal."""
        if not getattr(self.stream, "isatty", lambda: False)():
            return
        import threading

        self.stop = threading.Event()

        def tick():
            while not self.stop.wait(0.5):
                self.stream.write(f"\r  compiling: {time.perf_counter() - self.t0:.0f} s of "
                                  f"about {est:.0f} s ")
                self.stream.flush()

        self.ticker = threading.Thread(target=tick, daemon=True)
        self.ticker.start()

    def close(self) -> None:
        if self.done is not None and not self.done.is_set():
            # no kernel compiled (bad input), or interrupted while waiting: stop the groups
            # (compile_groups kills its processes; none is left behind)
            self.halt.set()
            self.done.wait(5.0)
        if self.stop is not None:
            self.stop.set()
            self.ticker.join(1.0)
            self.stream.write("\n")
        if self.fired and self.mode == "lazy":
            print(f"assemblers: kernels compiled within {time.perf_counter() - self.t0:.0f} s and "
                  "cached for the next runs", file=self.stream, flush=True)


class first_compile_notice:
    """``with first_compile_notice(name, argv): run the command``, used by the dispatcher.

    When a kernel group the command needs is not compiled yet (a few milliseconds to check,
    no import of Numba), the groups start compiling in parallel processes at once, and a
    listener waits for the moment a kernel really starts compiling in the command (bad input
    fails before that, without a word about kernels, and stops the groups): then the notice,
    and the command waits for the groups (see :class:`_FirstCompile`).  Everything compiled:
    nothing happens at all."""

    def __init__(self, name: str, argv: list[str]):
        self.name, self.argv, self.listener, self.first = name, argv, None, None

    def __enter__(self):
        mode = os.environ.get("ASSEMBLERS_PRECOMPILE", "auto")
        if mode not in MODES:
            mode = "auto"
        if mode == "off":
            return self
        needs = kernels_of(self.name, self.argv)
        if not needs:
            return self
        from ..warmup import cold, numba_cache

        todo = cold(needs)
        if not todo:
            return self
        if mode == "auto":
            mode = auto_mode(todo)
        if mode != "lazy" and not _writable(numba_cache()):
            mode = "lazy"  # children could not leave their kernels where this process looks
        first = _FirstCompile(todo, _config_of(self.argv), mode)
        first.start()  # before importing Numba (0.2 s): the groups' processes start now
        from numba.core import event

        class Listener(event.Listener):  # Numba checks the base class
            def on_start(self, e):
                first.on_start(e)

            def on_end(self, e):
                pass

        self.first, self.listener = first, Listener()
        event.register("numba:compile", self.listener)
        return self

    def __exit__(self, *exc):
        if self.listener is not None:
            from numba.core import event

            event.unregister("numba:compile", self.listener)
            self.first.close()
        return False


# ----------------------------------------------------------------------------- the command


def configure_warmup(p):
    add_config_arg(p)
    p.add_argument("--group", action="append", default=None, metavar="NAME",
                   help="compile only this kernel group (repeat it; default: every group)")
    p.add_argument("--serial", action="store_true",
                   help="one group after another instead of parallel processes")
    p.add_argument("--check", action="store_true",
                   help="only say which groups are compiled (exit 1 when one is not)")
    add_json_arg(p)


def run_warmup(args) -> int:
    from ..warmup import cold, estimate_seconds, groups, is_compiled, numba_cache

    known = groups()
    names = args.group or list(known)
    bad = [n for n in names if n not in known]
    if bad:
        raise CLIError(f"--group: unknown kernel group {bad[0]!r} (known: {', '.join(known)})")
    if args.check:
        doc = {"cache": str(numba_cache()),
               "groups": {n: is_compiled(known[n]) for n in names}}
        if args.json:
            print_json(doc)
        else:
            for n, ok in doc["groups"].items():
                print(f"{n:<12} {'compiled' if ok else 'not compiled':<13} {known[n].help}")
            print(f"cache: {doc['cache']}")
        return 0 if all(doc["groups"].values()) else 1
    todo = cold(names)
    t0 = time.perf_counter()
    state = {}
    if todo:
        est = estimate_seconds(todo, 1 if args.serial else None)
        if not args.json:
            print(f"compiling {', '.join(todo)} for this machine, about {est:.0f} s "
                  f"({'one after another' if args.serial else 'in parallel processes'})",
                  flush=True)
        state = compile_with_progress(todo, args.config, not args.serial)
    wall = time.perf_counter() - t0
    ok = all(r.ok for r in state.values())
    doc = {"cache": str(numba_cache()), "wall_s": wall, "ok": ok,
           "groups": {n: {"compiled_now": n in state, "ok": state[n].ok if n in state else True,
                          "seconds": state[n].seconds if n in state else 0.0,
                          "error": state[n].error if n in state else ""} for n in names}}
    if args.json:
        print_json(doc)
    elif todo:
        print(f"{'done' if ok else 'FAILED'} in {wall:.1f} s; cache: {doc['cache']}")
        for r in state.values():
            if not r.ok:
                print(f"  {r.name}: {r.error}")
    else:
        print(f"already compiled ({', '.join(names)}); cache: {doc['cache']}")
    return 0 if ok else 1
