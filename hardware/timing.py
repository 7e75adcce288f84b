"""Timing for the streamer, the emulator and ``benchmarks/stream.py``: the pacing wait, the
thread's timer slack, the garbage-collector pause and real-time scheduling.

* :func:`wait_until` sleeps until :data:`SPIN_S` before a deadline, then polls the clock up to
  it: a sleep wakes up tens of microseconds late (timer slack, scheduler wake-up), a poll does
  not.  A tick therefore never starts early and, on an idle machine, starts within
  microseconds of its deadline.
* :func:`paused_gc` is the one place the cyclic garbage collector is paused: the streaming
  loop and the emulator's serving loop make no reference cycles (their garbage is freed by
  reference counting), and a full collection over everything the process imported (JAX,
  SciPy) costs tens of milliseconds, a stalled tick.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

SPIN_S = 0.0002
"""The last SPIN_S seconds before a deadline are spent polling the clock instead of sleeping."""
TIMER_SLACK_NS = 1000
"""The streaming thread's timer slack (Linux default 50 us: sleeps would wake up late)."""


def wait_until(deadline: float, clock: Callable[[], float] = time.perf_counter,
               sleep: Callable[[float], object] = time.sleep,
               stop: Callable[[], bool] | None = None) -> float:
    """Sleep until :data:`SPIN_S` before ``deadline`` (``clock`` seconds), then poll the clock up
    to it; returns the clock reading, never earlier than ``deadline`` unless ``stop()`` turned
    true after a sleep that ended early (``sleep`` may return early, e.g. woken by a signal)."""
    while True:
        now = clock()
        if deadline - now <= SPIN_S:
            break
        sleep(deadline - now - SPIN_S)
        if stop is not None and stop():
            return clock()
    ts = clock()
    while ts < deadline:
        ts = clock()
    return ts


def set_timer_slack(ns: int | None) -> int | None:
    """Set the calling thread's timer slack (Linux ``prctl(PR_SET_TIMERSLACK)``), so that
    ``time.sleep`` wakes up within about ``ns`` of its deadline; returns the previous value, or
    None where this is not available (other systems: nothing changes)."""
    if ns is None or not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        old = libc.prctl(30, 0, 0, 0, 0)  # PR_GET_TIMERSLACK
        if old < 0 or libc.prctl(29, ctypes.c_ulong(max(1, int(ns))), 0, 0, 0) != 0:
            return None
        return int(old)
    except (OSError, AttributeError):
        return None


@contextmanager
def paused_gc(*, collect: bool = True) -> Iterator[None]:
    """Pause the cyclic garbage collector for the block: collect first (unless ``collect`` is
    false, when the caller collected at a better moment), freeze the surviving objects so no
    later collection walks them, disable; restore everything on the way out."""
    was = gc.isenabled()
    if collect:
        gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        if was:
            gc.enable()


@contextmanager
def fine_timer_slack(ns: int = TIMER_SLACK_NS) -> Iterator[None]:
    """:func:`set_timer_slack` for the block, the previous slack restored afterwards."""
    old = set_timer_slack(ns)
    try:
        yield
    finally:
        set_timer_slack(old)


def set_realtime(priority: int = 50) -> str:
    """Switch this process to real-time scheduling (Linux ``SCHED_FIFO`` at ``priority``), so
    that other busy processes cannot delay it; returns what happened, in words (it never
    raises: without the permission it says so and nothing changes).  Child processes inherit
    the policy."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (AttributeError, OSError) as exc:
        return f"real-time scheduling not available ({exc}); running with normal priority"
    return f"real-time scheduling: SCHED_FIFO priority {priority}"
