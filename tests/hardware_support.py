"""Helpers shared by the hardware tests (``tests/hardware/test_hardware_*.py``).

``hang_guard``: an autouse-able fixture that dumps every thread's stack and exits if a test hangs
for 60 s (a streamer or emulator thread stuck on a pty would otherwise stall the whole suite);
import it into a test module with ``from hardware_support import hang_guard  # noqa: F401``.
``journal_acked``: the set-point ticks a journal says were acknowledged, in order.
``killed_on_exit``: a started process killed at the end of a ``with`` block if still running.
"""

from __future__ import annotations

import contextlib
import faulthandler

import pytest

HANG_S = 60


@pytest.fixture(autouse=True)
def hang_guard():
    faulthandler.dump_traceback_later(HANG_S, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@contextlib.contextmanager
def killed_on_exit(p):
    """``with killed_on_exit(p):`` the process ``p`` (a ``subprocess.Popen``) is killed when the
    block ends and it is still running (a failed check must not leave it behind; unlike
    ``Popen``'s own ``with``, which waits for it)."""
    try:
        yield p
    finally:
        if p.poll() is None:
            p.kill()


def journal_acked(records, platform):
    """Set-point ticks the journal ``records`` say were acknowledged by ``platform``, in order
    (a SETPOINT ``tx`` gives its sequence number's tick; an ACK of it with a latency and no
    note counts, and so does one noted "late": the reply to a set-point given up on when the
    stream stopped; an ACK reporting a fault state carries that as its note and does not)."""
    seq_tick = {}
    acked = []
    for r in records:
        if r.get("platform") != platform:
            continue
        if r["ev"] == "tx" and r["type"] == "SETPOINT":
            seq_tick[r["seq"]] = r["tick"]
        elif (r["ev"] == "rx" and r["type"] == "ACK" and r.get("of") == "SETPOINT"
              and (("latency_ms" in r and "note" not in r) or r.get("note") == "late")):
            acked.append(seq_tick[r["seq"]])
    return acked


ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def write_trajectory(path, asm, duration=3.0, amplitude=0.0008, knots=16):
    """A trajectory file for ``asm``: every leg out by ``amplitude`` m and back, (1 - cos) in
    time, at rest at both ends at the home pose; returns ``str(path)``."""
    import numpy as np

    from assemblers.model.io import Trajectory, save_trajectory
    from hardware.plan import home_legs

    H = home_legs(asm)
    t = np.linspace(0, duration, knots)
    s = 0.5 * (1 - np.cos(2 * np.pi * t / duration))
    legs = H[None] + amplitude * s[:, None, None]
    save_trajectory(path, Trajectory(t=t, Q=np.zeros((knots, 6 * asm.n_platforms)), legs=legs,
                                     config=asm.source))
    return str(path)


def start_stream(traj, ports, *extra, stdout=None, stderr=None, config="duo"):
    """``assemblers stream`` in a process of its own (the host as a user runs it)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "assemblers.cli", "stream", "--config", config,
           "--trajectory", traj, "--rate", "100"]
    for p in ports:
        cmd += ["--port", p]
    return subprocess.Popen(cmd + list(extra), stdout=stdout or subprocess.PIPE,
                            stderr=stderr or subprocess.PIPE, text=True, env=env, cwd=ROOT)


def wait_for(cond, timeout=30.0, what="the condition", proc=None):
    """Poll ``cond()`` every 2 ms until true; fail after ``timeout`` s (or if ``proc`` exits)."""
    import time

    deadline = time.monotonic() + timeout
    while not cond():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process exited ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


def first_stop_after(emu, t_fault):
    """Seconds from ``t_fault`` (perf_counter) to the first STOP the emulator received."""
    times = [t for t in emu.stop_times if t >= t_fault]
    return None if not times else times[0] - t_fault
