"""Streaming benchmark: 1 kHz to three emulated platforms over pseudo-terminals.

    python benchmarks/stream.py [--seconds 10] [--rate 1000] [--config trio] [--json]
                                [--in-process] [--journal FILE]

The emulators run in a separate process (``assemblers emulate``) unless
``--in-process``, so the streamer's timing is not disturbed by their Python threads.  The
trajectory is a smooth (1 - cos) excursion of every leg, starting and ending at rest at the home
pose, well inside every limit.  Prints frames sent / acknowledged / lost, retries, the
acknowledgement latency (p50, p99, max) and the tick period jitter (p99, max), the machine's
1-minute load average, and (``--probe-seconds``, default 2 s, run first) the jitter of the same
pacing loop with no I/O at all: the scheduler's share of the stream's jitter.  Exit status 0
when no frame was lost and the period jitter p99 is under 2 ms, else 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

JITTER_TARGET_MS = 2.0


def trajectory(asm, seconds: float, amplitude: float = 0.004):
    """``t`` (T,) s and ``legs`` (T, N, 6) m: every leg moves out by up to ``amplitude`` m and
    back, (1 - cos) in time, two cycles, phase-shifted per actuator; at rest at both ends."""
    from hardware.plan import home_legs

    H = home_legs(asm)
    t = np.linspace(0.0, seconds, max(2, int(seconds * 50) + 1))
    n = asm.n_platforms
    phase = np.linspace(0, 1, 6 * n, endpoint=False).reshape(n, 6)
    u = t[:, None, None] / seconds
    s = 0.5 * (1 - np.cos(4 * np.pi * u)) * (0.6 + 0.4 * np.cos(2 * np.pi * phase[None]))
    return t, H[None] + amplitude * s


def pacing_probe(seconds: float, rate: float) -> dict:
    """The machine's own scheduling noise: the streamer's pacing loop (sleep with a 1 us timer
    slack, then poll the clock for the last ``SPIN_S``) at ``rate`` for ``seconds`` with no I/O
    at all.  Its period jitter is a floor under the stream's: what the scheduler alone adds."""
    from hardware.timing import fine_timer_slack, paused_gc, wait_until

    dt = 1.0 / rate
    n = max(2, int(seconds * rate))
    starts = np.empty(n)
    clock, sleep = time.perf_counter, time.sleep
    with paused_gc(), fine_timer_slack():  # what the streamer's loop runs under
        t0 = clock() + 0.001
        slip = 0.0
        for k in range(n):
            deadline = t0 + k * dt + slip
            ts = wait_until(deadline, clock, sleep)
            if ts - deadline > 0.5 * dt:
                slip += ts - deadline
            starts[k] = ts
    jit = np.abs(np.diff(starts) - dt) * 1e3
    return {"probe_seconds": seconds, "probe_jitter_p99_ms": float(np.percentile(jit, 99)),
            "probe_jitter_max_ms": float(jit.max())}


def start_emulators(config: str, n: int) -> tuple[subprocess.Popen, list[str]]:
    cmd = [sys.executable, "-m", "assemblers.cli", "emulate", "--config", config,
           "--platforms", str(n)]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env=env)
    ports = []
    deadline = time.monotonic() + 60
    while len(ports) < n:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"emulator exited: {proc.stderr.read()}")
        ports.append(line.strip())
        if time.monotonic() > deadline:
            raise RuntimeError("emulator did not start")
    return proc, ports


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0, help="stream duration (default 10)")
    p.add_argument("--rate", type=float, default=1000.0, help="stream rate in Hz (default 1000)")
    p.add_argument("--config", default="trio", help="config (default trio: 3 platforms)")
    p.add_argument("--in-process", action="store_true", help="emulators in a thread of this "
                   "process instead of a separate process")
    p.add_argument("--journal", default=None, help="write the journal here")
    p.add_argument("--realtime", action="store_true", help="real-time scheduling (SCHED_FIFO) "
                   "for the streamer and the emulators, if permitted")
    p.add_argument("--probe-seconds", type=float, default=2.0, help="first run the pacing loop "
                   "alone, with no I/O, for this long: the machine's own jitter (0: skip)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args(argv)

    import assemblers
    from hardware.emulator import EmulatorGroup, emulators_for
    from hardware.streamer import Streamer

    asm = assemblers.load_config(args.config)
    n = asm.n_platforms
    sched = "normal scheduling"
    if args.realtime:
        from hardware.timing import set_realtime

        sched = set_realtime()  # before the emulator process starts: it inherits the policy
    t, legs = trajectory(asm, args.seconds)
    probe = pacing_probe(args.probe_seconds, args.rate) if args.probe_seconds > 0 else {}
    group = proc = None
    if args.in_process:
        group = EmulatorGroup(emulators_for(asm))
        ports = group.start()
    else:
        proc, ports = start_emulators(args.config, n)
    try:
        with Streamer(asm, ports, rate_hz=args.rate, journal=args.journal) as s:
            start = s.prepare()
            plan = s.plan(t, legs, start, source="benchmark")
            summary = s.run(plan)
    finally:
        if group is not None:
            group.stop()
        if proc is not None:
            proc.terminate()
            try:
                proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    lost = summary.frames_sent - summary.frames_acked
    result = {
        "rate_hz": args.rate, "seconds": args.seconds, "platforms": n,
        "emulators": "in-process thread" if args.in_process else "separate process",
        "ticks": summary.ticks_planned, "frames_sent": summary.frames_sent,
        "frames_acked": summary.frames_acked, "frames_lost": lost, "retries": summary.retries,
        "latency_p50_ms": summary.latency_p50_ms, "latency_p99_ms": summary.latency_p99_ms,
        "latency_max_ms": summary.latency_max_ms, "jitter_p99_ms": summary.jitter_p99_ms,
        "jitter_max_ms": summary.jitter_max_ms, "lateness_p99_ms": summary.lateness_p99_ms,
        "overruns": summary.overruns, "duration_s": summary.duration_s,
        "status": summary.status, "scheduling": sched,
        "cpu_count": os.cpu_count(), "load_avg_1min": os.getloadavg()[0], **probe,
    }
    def ms(v):
        return "-" if v is None else f"{v:.3f}"

    if args.json:
        print(json.dumps(result, indent=1))
    else:
        rows = [
            ("stream", f"{args.rate:g} Hz x {args.seconds:g} s to {n} platforms "
                       f"({result['emulators']})"),
            ("status", summary.status),
            ("scheduling", sched),
            ("frames sent / acked", f"{summary.frames_sent} / {summary.frames_acked}"),
            ("frames lost", str(lost)),
            ("retries", str(summary.retries)),
            ("ack latency p50 / p99 / max",
             f"{ms(summary.latency_p50_ms)} / {ms(summary.latency_p99_ms)} / "
             f"{ms(summary.latency_max_ms)} ms"),
            ("period jitter p99 / max",
             f"{ms(summary.jitter_p99_ms)} / {ms(summary.jitter_max_ms)} ms "
             f"(target p99 < {JITTER_TARGET_MS:g} ms)"),
            ("tick lateness p99", f"{ms(summary.lateness_p99_ms)} ms"),
            ("pacing loop alone, no I/O",
             "-" if not probe else f"jitter p99 / max {ms(probe['probe_jitter_p99_ms'])} / "
             f"{ms(probe['probe_jitter_max_ms'])} ms over {args.probe_seconds:g} s (the "
             "machine's scheduling noise)"),
            ("machine", f"{os.cpu_count()} CPUs, 1-min load average "
                        f"{result['load_avg_1min']:.2f}"),
            ("overruns", str(summary.overruns)),
            ("wall time", f"{summary.duration_s:.2f} s"),
        ]
        w = max(len(a) for a, _ in rows)
        for a, b in rows:
            print(f"{a.ljust(w)}  {b}")
        for f in summary.faults:
            print(f"FAULT platform {f.platform}: {f.kind}: {f.message}")
    ok = lost == 0 and summary.ok and (summary.jitter_p99_ms or 0) < JITTER_TARGET_MS
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
