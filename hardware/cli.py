"""``assemblers emulate`` and ``assemblers stream`` (registered in :mod:`assemblers.cli`).

Exit status of ``stream``: 0 every set-point delivered and acknowledged within the stream
quality limits; 1 a fault while streaming (every platform was stopped; the summary says what
was executed), a degraded stream (delivered, but past a quality limit), a device that reports
a fault at the start, or a device that does not answer; 2 bad input (arguments, files, ports,
a journal that cannot be written, controllers that are not the configured ones) or a plan
that breaks a limit (nothing was sent); 130 interrupted by a signal (every platform was
stopped).  A closed stdout or stderr pipe while streaming stops the stream (exit 1).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import select
import stat
import sys
import time

from assemblers.cli import CLIError, add_config_arg, add_json_arg


def add_emulator_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--platforms", "-n", type=int, default=None,
                   help="number of emulated controllers (default: one per platform of the config)")
    p.add_argument("--fault", action="append", default=[], metavar="KEY=VALUE",
                   help="Python emulator: inject a fault, e.g. drop-reply=0.01, "
                        "drop-reply-at=120, at-ticks=true, corrupt-reply=0.001, delay-s=0.2, "
                        "disconnect-after=500, device-fault-after=300, estop-after=300, "
                        "ack-when-faulted=true, times=1 (repeatable; see docs/hardware.md)")
    p.add_argument("--seed", type=int, default=None,
                   help="Python emulator: seed of the fault injection (default 0)")
    p.add_argument("--tau", type=float, default=None,
                   help="Python emulator: actuator time constant in s (default 0.02)")
    p.add_argument("--realtime", action="store_true",
                   help="Python emulator: run with real-time scheduling (Linux SCHED_FIFO; "
                        "needs CAP_SYS_NICE)")


def make_group(asm, args):
    """Emulators from parsed :func:`add_emulator_arguments` options; ValueError on bad ones."""
    from .emulator import EmulatorGroup, FaultPlan, emulators_for

    n = asm.n_platforms if args.platforms is None else args.platforms
    tau = 0.02 if args.tau is None else args.tau
    if not 1 <= n <= 64:
        raise ValueError(f"--platforms must be between 1 and 64, got {n}")
    if not (tau > 0 and math.isfinite(tau)):
        raise ValueError(f"--tau must be a positive number of seconds, got {tau}")
    faults = FaultPlan.parse(args.fault)
    return EmulatorGroup(emulators_for(asm, n=n, faults=faults, seed=args.seed or 0, tau_s=tau))


def _print(text: str, file) -> bool:
    """Print; False (and the descriptor pointed at /dev/null, so the interpreter's last flush
    cannot fail too) when the reader has gone away."""
    try:
        print(text, file=file, flush=True)
        return True
    except (BrokenPipeError, OSError, ValueError):
        _to_devnull(file)
        return False


def _to_devnull(file) -> None:
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, file.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):
        pass


class _OutputWatch:
    """Notices, while streaming, that the reader of stdout or stderr has gone (a pipe or socket
    whose other end closed): nobody could see the stream's output or its summary any more.
    :meth:`check` raises ``BrokenPipeError`` then (the stream stops the platforms)."""

    def __init__(self, every_s: float = 0.05):
        self.every_s = every_s
        self._next = 0.0
        self._poll = select.poll() if hasattr(select, "poll") else None
        self._names = {}
        for name, f in (("stdout", sys.stdout), ("stderr", sys.stderr)):
            try:
                fd = f.fileno()
                mode = os.fstat(fd).st_mode
            except (OSError, ValueError, AttributeError):
                continue
            if self._poll is not None and (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
                self._poll.register(fd, 0)  # POLLERR/POLLHUP are always reported
                self._names[fd] = name

    def check(self) -> None:
        if not self._names:
            return
        now = time.perf_counter()
        if now < self._next:
            return
        self._next = now + self.every_s
        for fd, ev in self._poll.poll(0):
            if ev & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
                raise BrokenPipeError(f"{self._names.get(fd, fd)} was closed by its reader")


# ---------------------------------------------------------------------------------- emulate
DEVICES = ("python", "firmware")
_PYTHON_ONLY = ("fault", "seed", "tau", "realtime")
_FIRMWARE_ONLY = ("baud", "rate", "max_step")


def configure_emulate(p: argparse.ArgumentParser) -> None:
    from .simboard import add_board_arguments

    p.description = ("Run emulated platform controllers on pseudo-terminals: prints the port "
                     "of each (one per line, bottom platform first) and serves them until "
                     "Ctrl-C.  Pass the ports to 'assemblers stream --port ...'.  --device "
                     "python (the default): the Python emulator, with fault injection; --device "
                     "firmware: the AVR firmware (firmware/, built with make if needed) on "
                     "simulated ATmega2560 boards in simavr, one per platform.")
    add_config_arg(p)
    p.add_argument("--device", choices=DEVICES, default="python",
                   help="python: the Python emulator (default; fast, fault injection); "
                        "firmware: the firmware a lab flashes, on simulated boards "
                        "(docs/firmware.md)")
    add_emulator_arguments(p)
    add_board_arguments(p)
    add_json_arg(p)


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _given(args, name: str) -> bool:
    v = getattr(args, name)
    return bool(v) if isinstance(v, (bool, list)) else v is not None


class _Null:
    def write(self, s):
        return len(s)

    def flush(self):
        pass


def run_emulate(args) -> int:
    import assemblers

    wrong = _FIRMWARE_ONLY if args.device == "python" else _PYTHON_ONLY
    for name in wrong:
        if _given(args, name):
            other = "firmware" if args.device == "python" else "python"
            raise CLIError(f"{_option(name)} goes with --device {other}, not --device "
                           f"{args.device}")
    asm = assemblers.load_config(args.config)
    if args.device == "firmware":
        return _emulate_firmware(asm, args)

    from .emulator import serve
    from .timing import set_realtime

    try:
        group = make_group(asm, args)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    if args.realtime:
        print(f"assemblers emulate: {set_realtime()}", file=sys.stderr)
    if args.json:
        for e in group.emulators:
            e.open()
        print(json.dumps({"ports": group.ports}), flush=True)
        out = _Null()
    else:
        out = sys.stdout
    n = len(group.emulators)
    print(f"assemblers emulate: {n} emulated controller(s); stream with: assemblers stream "
          + " ".join(f"--port {e.open()}" for e in group.emulators)
          + " ...   (Ctrl-C to stop)", file=sys.stderr, flush=True)
    return serve(group, out=out, err=sys.stderr, summary_json=sys.stdout if args.json else None)


def _emulate_firmware(asm, args) -> int:
    """``--device firmware``: build the firmware if needed, start one simulated board per
    platform (:mod:`hardware.simboard`), print the ports, serve until a stop signal."""
    from . import simboard

    try:
        configs = simboard.configs_from_args(asm, args)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    try:
        firmware = simboard.build()
    except simboard.SimBoardError as exc:
        raise CLIError(str(exc).replace("\n", " | "), status=1) from None
    group = simboard.SimBoardGroup(configs, firmware)

    def started(g):
        if args.json:
            print(json.dumps({"ports": g.ports}), flush=True)
        bauds = sorted({c.baud for c in g.configs})
        print(f"assemblers emulate: {len(g.boards)} simulated board(s) (the AVR firmware on "
              f"simavr, {'/'.join(str(b) for b in bauds)} baud, flash {firmware.flash} B, RAM "
              f"{firmware.ram} B); stream with: assemblers stream "
              + " ".join(f"--port {p}" for p in g.ports) + " ...   (Ctrl-C to stop)",
              file=sys.stderr, flush=True)

    try:
        return simboard.serve(group, out=_Null() if args.json else sys.stdout, err=sys.stderr,
                              summary_json=sys.stdout if args.json else None, on_start=started)
    except simboard.SimBoardError as exc:
        raise CLIError(str(exc).replace("\n", " | "), status=1) from None


# ---------------------------------------------------------------------------------- stream
def configure_stream(p: argparse.ArgumentParser) -> None:
    p.description = ("Stream a trajectory (or a move to one tool pose) to the platforms over "
                     "their serial links, in lock-step, after checking the whole plan against "
                     "every actuator's stroke, velocity and acceleration limits.")
    add_config_arg(p)
    p.add_argument("--trajectory", "-t", metavar="FILE",
                   help="trajectory file (assemblers-trajectory JSON: t, Q, legs)")
    p.add_argument("--target", metavar="'x y z roll pitch yaw'",
                   help="tool pose to move to (m, rad); solved with assemblers.solve_ik")
    p.add_argument("--port", "-p", action="append", default=None, metavar="URL",
                   help="serial port of a platform (repeat once per platform, bottom first); "
                        "any pyserial URL; default: hardware.platform[i].port of the config")
    p.add_argument("--rate", type=float, default=None, metavar="HZ",
                   help="stream rate, 1..1000 Hz (default: hardware.rate_hz of the config)")
    p.add_argument("--journal", "-j", metavar="FILE", default=None,
                   help="write every frame sent and received to FILE (JSON lines)")
    p.add_argument("--dry-run", action="store_true",
                   help="check the plan and print its frames (hex and decoded); send nothing")
    p.add_argument("--frames", type=int, default=20, metavar="N",
                   help="--dry-run: print the first and last N/2 ticks (0: all; default 20)")
    p.add_argument("--interp", choices=("pchip", "linear"), default="pchip",
                   help="interpolation of the trajectory onto the stream grid (default pchip)")
    p.add_argument("--start-delay", type=float, default=0.0, metavar="S",
                   help="wait S seconds (heartbeats) before the first set-point")
    p.add_argument("--hold", type=float, default=0.0, metavar="S",
                   help="hold S seconds (heartbeats) after the last set-point")
    p.add_argument("--clear-faults", action="store_true",
                   help="clear latched ESTOP/DEVICE/LIMIT faults before streaming")
    p.add_argument("--realtime", action="store_true",
                   help="stream with real-time scheduling (Linux SCHED_FIFO; needs "
                        "CAP_SYS_NICE); tighter timing on a busy machine")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_json_arg(p)


def _parse_target(text: str):
    parts = text.replace(",", " ").split()
    try:
        vals = [float(x) for x in parts]
    except ValueError:
        raise CLIError(f"--target must be six numbers 'x y z roll pitch yaw' (m, rad), got "
                       f"{text!r}") from None
    if len(vals) != 6:
        raise CLIError(f"--target must be six numbers 'x y z roll pitch yaw' (m, rad), got "
                       f"{len(vals)}")
    import math

    if not all(math.isfinite(v) for v in vals):
        raise CLIError(f"--target must be finite numbers, got {text!r}")
    return vals


def _solve_target(asm, pose):
    import numpy as np

    import assemblers

    try:
        solve_ik = assemblers.solve_ik
    except (AttributeError, ImportError) as exc:
        raise CLIError(f"--target needs the inverse kinematics solver (assemblers.solve_ik), "
                       f"which is not available in this installation ({exc}); give a "
                       "--trajectory instead") from None
    T = assemblers.pose_to_transform(np.asarray(pose, dtype=float))
    res = solve_ik(asm, T)
    if not getattr(res, "success", False):
        raise CLIError(f"target {pose} cannot be reached: {getattr(res, 'message', 'no solution')}"
                       " (nothing was sent)")
    return np.asarray(res.legs, dtype=float).reshape(asm.n_platforms, 6)


def _load(args):
    """(asm, t (T,), legs (T, N, 6), source, meta) from the arguments (``meta``: the
    trajectory file's, ``{}`` for a target)."""
    import numpy as np

    import assemblers
    from assemblers.model.io import load_trajectory

    if (args.trajectory is None) == (args.target is None):
        raise CLIError("give exactly one of --trajectory FILE or --target 'x y z roll pitch yaw'")
    if args.trajectory is not None:
        tr = load_trajectory(args.trajectory)
        config = args.config if args.config is not None else tr.config
        asm = assemblers.load_config(config)
        if tr.n_platforms != asm.n_platforms:
            raise CLIError(f"{args.trajectory}: legs are for {tr.n_platforms} platforms but the "
                           f"config {asm.source} has {asm.n_platforms}")
        return asm, np.asarray(tr.t), np.asarray(tr.legs), args.trajectory, tr.meta or {}
    pose = _parse_target(args.target)
    asm = assemblers.load_config(args.config)
    legs = _solve_target(asm, pose)
    return asm, np.zeros(1), legs[None], f"target {pose}", {}


def _check_numbers(args) -> None:
    import math

    if args.rate is not None and not (1.0 <= args.rate <= 1000.0):
        raise CLIError(f"--rate must be between 1 and 1000 Hz, got {args.rate:g}")
    for name in ("start_delay", "hold"):
        v = getattr(args, name)
        if not (math.isfinite(v) and v >= 0):
            raise CLIError(f"--{name.replace('_', '-')} must be a non-negative number of "
                           f"seconds, got {v}")
    if args.frames < 0:
        raise CLIError(f"--frames must be >= 0, got {args.frames}")


def run_stream(args) -> int:
    _check_numbers(args)
    asm, t, legs, source, meta = _load(args)
    rate = asm.hardware.rate_hz if args.rate is None else args.rate
    planned = meta.get("rate_hz") if meta.get("timing") == "time-optimal" else None
    if isinstance(planned, (int, float)) and rate > planned * (1 + 1e-9):
        # its samples are a bang-bang profile at the planned rate: interpolating between them
        # for a faster stream can ask more acceleration than the plan did (docs/hardware.md)
        _print(f"assemblers stream: warning: {source} was time-scaled for streaming at "
               f"{planned:g} Hz or slower; at {rate:g} Hz the interpolation between its samples "
               f"may exceed a limit: plan it with 'assemblers trajectory ... --rate {rate:g}'",
               sys.stderr)
    if 1.0 / rate >= asm.hardware.watchdog_s:
        raise CLIError(f"--rate {rate:g}: set-points {1 / rate:g} s apart would trip the devices' "
                       f"watchdog ({asm.hardware.watchdog_s:g} s): raise the rate")
    if args.dry_run:
        return _dry_run(args, asm, t, legs, rate, source)
    return _stream(args, asm, t, legs, rate, source)


def _dry_run(args, asm, t, legs, rate, source) -> int:
    from . import protocol as P
    from .plan import calibrations, home_legs, plan_trajectory, to_counts
    from .streamer import dry_run_frames

    cals = calibrations(asm)
    start = None
    note = "the actuators are assumed to rest at the trajectory's first point (no device asked)"
    if args.target is not None:
        start = to_counts(home_legs(asm)[None], cals)[0]
        note = "the actuators are assumed to rest at the home pose (no device asked)"
    plan = plan_trajectory(t, legs, cals, rate, start, interp=args.interp, source=source)
    K = plan.n_ticks
    show = list(range(K)) if args.frames == 0 or args.frames >= K else sorted(
        set(range(args.frames - args.frames // 2)) | set(range(K - args.frames // 2, K)))
    frames = dict(zip(show, dry_run_frames(asm, plan, show), strict=True))  # only those shown
    rows = []
    for k in show:
        for i, fb in enumerate(frames[k]):
            f = P.decode(fb).frames[0]
            rows.append({"tick": k, "t": float(plan.t[k]), "platform": i, "hex": fb.hex(),
                         "decoded": P.describe(f),
                         "legs_m": [round(float(x), 9) for x in plan.legs[k, i]]})
    info = {"dry_run": True, "source": source, "config": asm.source, "rate_hz": rate,
            "ticks": K, "ramp_ticks": plan.n_ramp, "duration_s": plan.duration_s,
            "platforms": plan.n_platforms, "frames_total": K * plan.n_platforms,
            "frame_bytes": P.HEADER_LEN + P.PAYLOAD_LEN[P.MsgType.SETPOINT] + P.CRC_LEN
            if K else 0, "assumption": note,
            "all_within_limits": True, "frames": rows}
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    print(f"dry run: {source} on {asm.source}: {K} ticks at {rate:g} Hz "
          f"({plan.duration_s:.3f} s, {plan.n_ramp} of approach ramp), {plan.n_platforms} "
          f"platform(s), {K * plan.n_platforms} SETPOINT frames of {info['frame_bytes']} bytes")
    print(f"every frame passed the plan check and the safety gate; {note}; nothing was sent")
    prev = None
    for r in rows:
        if prev is not None and r["tick"] > prev + 1:
            print(f"... ({r['tick'] - prev - 1} ticks not shown; --frames 0 shows all)")
        prev = r["tick"]
        print(f"tick {r['tick']:>6} t={r['t']:+.4f}s p{r['platform']}  {r['hex']}")
        print(f"{'':>21}{r['decoded']}")
    return 0


def _stream(args, asm, t, legs, rate, source) -> int:
    from .link import LinkError
    from .streamer import DeviceNotReady, Streamer, StreamError

    watch = _OutputWatch()
    bars: list = []  # the bar is made at the first tick, so errors before it print cleanly
    show_bar = not args.no_progress and not args.json
    if show_bar:
        from tqdm import tqdm

    def progress(done, total):
        watch.check()  # a closed stdout/stderr stops the stream
        if show_bar:
            if not bars:
                bars.append(tqdm(total=total, unit="tick", file=sys.stderr, desc="stream",
                                 leave=True, mininterval=0.2))
            bars[0].update(done - bars[0].n)

    if args.realtime:
        from .timing import set_realtime

        _print(f"assemblers stream: {set_realtime()}", sys.stderr)
    try:
        streamer = Streamer(asm, args.port, rate_hz=rate, journal=args.journal,
                            clear_faults=args.clear_faults, interp=args.interp,
                            progress=progress)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    for w in streamer.warnings:
        _print(f"assemblers stream: warning: {w}", sys.stderr)
    try:
        with streamer:
            from .plan import check_trajectory

            check_trajectory(t, legs, streamer.cals, rate, args.interp)  # before opening ports
            try:
                start = streamer.prepare()
                plan = streamer.plan(t, legs, start, source)
                summary = streamer.run(plan, start_delay_s=args.start_delay, hold_s=args.hold)
            except LinkError as exc:
                raise CLIError(f"{exc} (no set-point was sent)") from None
            except (DeviceNotReady, StreamError) as exc:
                raise CLIError(f"{exc} (no set-point was sent)", status=1) from None
    finally:
        for bar in bars:
            try:
                bar.close()
            except (OSError, ValueError):
                _to_devnull(sys.stderr)
    if summary.journal_error:
        _print(f"assemblers stream: warning: the journal {summary.journal} could not be written "
               f"completely: {summary.journal_error}", sys.stderr)
    text = json.dumps(summary.to_dict(), indent=1) if args.json else summary.table()
    delivered = _print(text, sys.stdout)
    status = summary.exit_status
    return status if delivered or status else 1
