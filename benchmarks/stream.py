"""Streaming benchmark: 1 kHz to three emulated platforms over pseudo-terminals.

    python benchmarks/stream.py [--seconds 10] [--rate 1000] [--config trio] [--json]
                                [--in-process] [--journal FILE]
    python benchmarks/stream.py --device firmware [--config trio] [--trial-seconds 3]
                                [--rates 25,50,...,1000] [--bauds 115200,1000000] [--json]

The emulators run in a separate process (``assemblers emulate``) unless
``--in-process``, so the streamer's timing is not disturbed by their Python threads.  The
trajectory is a smooth (1 - cos) excursion of every leg, starting and ending at rest at the home
pose, well inside every limit.  Prints frames sent / acknowledged / lost, retries, the
acknowledgement latency (p50, p99, max) and the tick period jitter (p99, max), the machine's
1-minute load average, and (``--probe-seconds``, default 2 s, run first) the jitter of the same
pacing loop with no I/O at all: the scheduler's share of the stream's jitter.  Exit status 0
when no frame was lost and the period jitter p99 is under 2 ms, else 1.

``--device firmware``: a rate search on simulated boards (the AVR firmware on simavr, one per
platform, ``hardware.simboard``) at each baud rate of ``--bauds``, and on the Python emulator
(separate process) in the same run: each candidate rate of ``--rates`` is streamed for
``--trial-seconds``, going up until one is not *sustained* (a frame not acknowledged, a
degraded or faulted stream, or more than 1 % of the ticks overrun: lock-step streaming never
loses a frame, it falls behind), then bisected ``--refine`` times between the last sustained
rate and the first that was not.  Also the acknowledgement latency (set-point written to ACK
read) at ``--latency-rate`` for every device.  Each device first gets a short warm-up stream,
not counted.  Prints a markdown table (or ``--json``).  Exit
status 0 when every device sustained at least the lowest rate.
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


def trajectory(asm, seconds: float, amplitude: float = 0.004, knots: int | None = None):
    """``t`` (T,) s and ``legs`` (T, N, 6) m: every leg moves out by up to ``amplitude`` m and
    back, (1 - cos) in time, two cycles, phase-shifted per actuator; at rest at both ends;
    ``knots`` samples (default 50 a second)."""
    from hardware.plan import home_legs

    H = home_legs(asm)
    t = np.linspace(0.0, seconds, knots or max(2, int(seconds * 50) + 1))
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


def stop_emulators(group, proc: subprocess.Popen | None) -> None:
    """Stop what serves the ports: an in-process group (or ``None``) and the emulator process
    of :func:`start_emulators` (or ``None``; killed if it does not end within 10 s)."""
    if group is not None:
        group.stop()
    if proc is not None:
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


OVERRUN_LIMIT = 0.01
"""A rate is sustained when at most this fraction of its ticks overran (started more than half
a period late)."""
DEFAULT_RATES = (25, 50, 75, 100, 150, 200, 300, 400, 500, 700, 1000)


def safe_amplitude(seconds: float) -> float:
    """The excursion (m) of :func:`trajectory` that keeps a quarter of the default limits
    (0.05 m/s, 0.5 m/s^2) over ``seconds``: peak speed 2 pi A / T, acceleration
    8 pi^2 A / T^2 (a quarter: the streamer's PCHIP resampling adds to the peaks)."""
    return min(0.004, 0.25 * 0.05 * seconds / (2 * np.pi),
               0.25 * 0.5 * seconds**2 / (8 * np.pi**2))


def trial(asm, ports, rate: float, seconds: float) -> dict:
    """Stream :func:`trajectory` (``seconds`` long) at ``rate`` to ``ports``; the numbers."""
    from hardware.streamer import Streamer

    t, legs = trajectory(asm, seconds, safe_amplitude(seconds),
                         knots=max(201, int(seconds * 50) + 1))
    with Streamer(asm, ports, rate_hz=rate) as s:
        start = s.prepare()
        plan = s.plan(t, legs, start, source="benchmark")
        summary = s.run(plan)
    lost = (summary.frames_sent - summary.frames_acked
            + (summary.ticks_planned - summary.ticks_completed) * len(ports))
    overrun = summary.overruns / max(1, summary.ticks_planned)
    return {"rate_hz": rate, "status": summary.status, "ticks": summary.ticks_planned,
            "frames_sent": summary.frames_sent, "frames_acked": summary.frames_acked,
            "frames_lost": lost, "retries": summary.retries, "overruns": summary.overruns,
            "latency_p50_ms": summary.latency_p50_ms, "latency_p99_ms": summary.latency_p99_ms,
            "latency_max_ms": summary.latency_max_ms, "jitter_p99_ms": summary.jitter_p99_ms,
            "sustained": bool(lost == 0 and summary.status == "completed"
                              and overrun <= OVERRUN_LIMIT)}


def rate_search(asm, ports, rates, seconds: float, refine: int, log=None) -> dict:
    """Walk up ``rates`` until one is not sustained, then bisect ``refine`` times; returns the
    highest sustained rate (None: not even the first), its trial, and every trial."""
    trials = []

    def run(r):
        res = trial(asm, ports, float(r), seconds)
        trials.append(res)
        if log is not None:
            log(res)
        return res

    best = failed = None
    for r in rates:
        res = run(r)
        if not res["sustained"]:
            failed = float(r)
            break
        best = res
    if best is not None and failed is not None:
        lo, hi = best["rate_hz"], failed
        for _ in range(refine):
            mid = round(0.5 * (lo + hi))
            if mid <= lo or mid >= hi:
                break
            res = run(mid)
            if res["sustained"]:
                best, lo = res, mid
            else:
                hi = mid
    return {"highest_sustained_hz": None if best is None else best["rate_hz"],
            "first_not_sustained_hz": failed, "at_highest": best, "trials": trials}


def device_search(args) -> int:
    """``--device firmware``: the rate search on simulated boards at each baud rate and on the
    Python emulator, one markdown table."""
    import assemblers
    from hardware.simboard import SimBoardError, build, start_boards

    asm = assemblers.load_config(args.config)
    n = asm.n_platforms
    rates = [float(x) for x in args.rates.split(",")]
    bauds = [int(x) for x in args.bauds.split(",")]
    try:
        firmware = build()
    except SimBoardError as exc:
        print(f"stream benchmark: {exc}", file=sys.stderr)
        return 2

    def log(res):
        print(f"  {res['rate_hz']:g} Hz: {res['status']}, lost {res['frames_lost']}, overruns "
              f"{res['overruns']}/{res['ticks']}, retries {res['retries']}, ack p50 "
              f"{res['latency_p50_ms']:.2f} ms -> {'ok' if res['sustained'] else 'not sustained'}",
              file=sys.stderr, flush=True)

    rows = []
    load0 = os.getloadavg()[0]
    devices = [("Python emulator (separate process)", "pty", None)] + [
        ("firmware on simavr (ATmega2560, 16 MHz)", f"{b} baud", b) for b in bauds]
    for name, link, baud in devices:
        print(f"{name}, {link}:", file=sys.stderr, flush=True)
        proc = group = None
        try:
            if baud is None:
                proc, ports = start_emulators(args.config, n)
            else:
                group = start_boards(asm, baud=baud, rate_hz=min(rates), firmware=firmware)
                ports = group.ports
            trial(asm, ports, min(rates), min(args.trial_seconds, 1.0))  # warm-up, not counted
            found = rate_search(asm, ports, rates, args.trial_seconds, args.refine, log)
            lat = trial(asm, ports, args.latency_rate, args.trial_seconds)
            log(lat)
        finally:
            stop_emulators(group, proc)
        rows.append({"device": name, "link": link, "baud": baud, **found, "at_latency_rate": lat})
    result = {"config": args.config, "platforms": n, "trial_seconds": args.trial_seconds,
              "rates": rates, "latency_rate_hz": args.latency_rate,
              "overrun_limit": OVERRUN_LIMIT, "cpu_count": os.cpu_count(),
              "load_avg_1min": [load0, os.getloadavg()[0]], "devices": rows}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(markdown(result))
    return 0 if all(r["highest_sustained_hz"] is not None for r in rows) else 1


def markdown(result: dict) -> str:
    """The rate search as a markdown table the README can take."""
    def ms(v):
        return "-" if v is None else f"{v:.2f}"

    top = max(result["rates"])
    lines = [
        f"Lock-step streaming to {result['platforms']} platform(s) (`{result['config']}`), "
        f"{result['trial_seconds']:g} s per trial; sustained = every set-point acknowledged, "
        f"stream completed, at most {result['overrun_limit'] * 100:g} % of ticks overrun; "
        f"{result['cpu_count']} CPUs, 1-minute load {result['load_avg_1min'][0]:.2f} -> "
        f"{result['load_avg_1min'][1]:.2f}.",
        "",
        f"| device | link | highest sustained rate | ack latency p50 / p99 there | ack latency "
        f"p50 / p99 at {result['latency_rate_hz']:g} Hz | first rate not sustained |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["devices"]:
        best, lat = r["at_highest"], r["at_latency_rate"]
        hs = r["highest_sustained_hz"]
        if hs is None:
            rate = f"< {min(result['rates']):g} Hz"
        else:
            rate = f"{hs:g} Hz" + (" (the highest tried)" if hs >= top else "")
        there = "-" if best is None else (f"{ms(best['latency_p50_ms'])} / "
                                          f"{ms(best['latency_p99_ms'])} ms")
        fail = "-" if r["first_not_sustained_hz"] is None else f"{r['first_not_sustained_hz']:g} Hz"
        lines.append(f"| {r['device']} | {r['link']} | {rate} | {there} | "
                     f"{ms(lat['latency_p50_ms'])} / {ms(lat['latency_p99_ms'])} ms | {fail} |")
    return "\n".join(lines)


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
    p.add_argument("--device", choices=("python", "firmware"), default="python",
                   help="python: the 1 kHz stream above (default); firmware: the rate search "
                        "on simulated boards at each --bauds and on the Python emulator")
    p.add_argument("--rates", default=",".join(str(r) for r in DEFAULT_RATES),
                   help="--device firmware: candidate rates in Hz, increasing")
    p.add_argument("--bauds", default="115200,1000000",
                   help="--device firmware: the simulated boards' baud rates")
    p.add_argument("--trial-seconds", type=float, default=3.0,
                   help="--device firmware: stream duration per trial (default 3)")
    p.add_argument("--refine", type=int, default=2,
                   help="--device firmware: bisection steps after the walk up (default 2)")
    p.add_argument("--latency-rate", type=float, default=50.0,
                   help="--device firmware: the rate the latency of every device is measured "
                        "at (default 50 Hz)")
    args = p.parse_args(argv)
    if args.device == "firmware":
        return device_search(args)

    import assemblers
    from hardware.emulator import EmulatorGroup, emulators_for
    from hardware.streamer import Streamer

    asm = assemblers.load_config(args.config)
    n = asm.n_platforms
    sched = "normal scheduling"
    if args.realtime:
        from hardware.timing import set_realtime

        sched = set_realtime()  # before the emulator process starts: it inherits the policy
    t, legs = trajectory(asm, args.seconds, safe_amplitude(args.seconds),
                         knots=max(201, int(args.seconds * 50) + 1))
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
        stop_emulators(group, proc)
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
