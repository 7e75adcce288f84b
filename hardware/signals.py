"""Signals as one controlled interruption (the streamer's stop, the emulator's end).

:class:`SignalGuard` catches every signal that would otherwise end or suspend the process
(:data:`STOP_SIGNALS`: SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2, SIGALRM, SIGTSTP/TTIN/TTOU,
SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, where the system has them).  SIGKILL and SIGSTOP cannot be
caught (the devices' watchdog covers them); SIGPIPE stays ignored, as Python sets it, so a closed
pipe shows up as ``BrokenPipeError`` where it is written; SIGSEGV/SIGBUS/SIGFPE/SIGILL are
faults of the interpreter itself and are left to it.

Two modes.  *Raising* (the default): the first signal raises :class:`Interrupted` (a
``KeyboardInterrupt``) in the main thread at once, as Ctrl-C does.  *Recording*
(``guard.raising = False``, while set-points are in flight): the handler only records the
signal and wakes the select loop through ``signal.set_wakeup_fd`` (:attr:`SignalGuard.wake_fd`);
the streaming loop calls :meth:`SignalGuard.check` at its own safe points, so its bookkeeping is
never cut in half.  After the first signal every further one is recorded, never raised, so
nothing cuts the clean-up short.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

_NAMES = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGTSTP",
          "SIGTTIN", "SIGTTOU", "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF")
STOP_SIGNALS: tuple[int, ...] = tuple(getattr(signal, n) for n in _NAMES if hasattr(signal, n))
"""The signals the streamer turns into a controlled stop."""
END_SIGNALS: tuple[int, ...] = tuple(getattr(signal, n) for n in
                                     ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")
                                     if hasattr(signal, n))
"""The signals that end the emulator (it may be suspended: a stalled device is a test case)."""


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Interrupted(KeyboardInterrupt):
    """A stop signal (or Ctrl-C) interrupted the work; ``signum`` (None for a plain
    KeyboardInterrupt) and ``name``."""

    def __init__(self, signum: int | None = None):
        self.signum = signum
        self.name = "KeyboardInterrupt" if signum is None else signal_name(signum)
        super().__init__(self.name)


class SignalGuard:
    """Catch ``signals`` (default :data:`STOP_SIGNALS`) between :meth:`install` and
    :meth:`uninstall` (or as a context manager).  ``received``: ``(perf_counter time, name)`` of
    every signal caught, in order.  A no-op off the main thread (handlers cannot be set there)."""

    def __init__(self, signals: tuple[int, ...] = STOP_SIGNALS):
        self.signals = signals
        self.raising = True
        self.received: list[tuple[float, str]] = []
        self._pending: int | None = None  # the first signal not yet turned into Interrupted
        self._consumed = False
        self._old: dict[int, object] = {}
        self._old_wakeup: int | None = None
        self._pipe: tuple[int, int] | None = None
        self.active = False

    @property
    def wake_fd(self) -> int | None:
        """A descriptor that becomes readable when a signal arrives (for ``select``)."""
        return self._pipe[0] if self._pipe is not None else None

    @property
    def pending(self) -> bool:
        return self._pending is not None and not self._consumed

    def _handler(self, signum, frame) -> None:
        self.received.append((time.perf_counter(), signal_name(signum)))
        if self._pending is None:
            self._pending = signum
            if self.raising:
                self._consumed = True
                raise Interrupted(signum)

    def check(self) -> None:
        """Raise :class:`Interrupted` if a signal arrived and has not been raised yet."""
        if self._pending is not None and not self._consumed:
            self._consumed = True
            raise Interrupted(self._pending)

    def drain(self) -> None:
        """Empty the wake-up pipe (after ``select`` reported it readable)."""
        if self._pipe is not None:
            try:
                while os.read(self._pipe[0], 256):
                    pass
            except (BlockingIOError, OSError):
                pass

    def install(self) -> SignalGuard:
        if self.active or threading.current_thread() is not threading.main_thread():
            return self
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        self._pipe = (r, w)
        try:
            self._old_wakeup = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        except (ValueError, OSError):
            self._old_wakeup = None
        for s in self.signals:
            try:
                self._old[s] = signal.signal(s, self._handler)
            except (OSError, ValueError):
                pass
        self.active = True
        return self

    def uninstall(self) -> None:
        if not self.active:
            return
        for s, old in self._old.items():
            try:
                signal.signal(s, old)
            except (OSError, ValueError, TypeError):
                pass
        self._old.clear()
        try:
            signal.set_wakeup_fd(-1 if self._old_wakeup is None else self._old_wakeup)
        except (ValueError, OSError):
            pass
        if self._pipe is not None:
            for fd in self._pipe:
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._pipe = None
        self.active = False

    def __enter__(self) -> SignalGuard:
        return self.install()

    def __exit__(self, *exc) -> None:
        self.uninstall()


def interrupt_on_signals(signals: tuple[int, ...] = END_SIGNALS) -> Callable[[], None]:
    """Until the returned function is called, ``signals`` raise :class:`Interrupted` (a
    KeyboardInterrupt) in the main thread: a supervisor's SIGTERM, a closed terminal's SIGHUP, or
    a Ctrl-C reaching a process that inherited SIGINT ignored, all end in the same controlled
    way as Ctrl-C; later signals are recorded, not raised.  The returned function restores the
    previous handlers."""
    return SignalGuard(signals).install().uninstall
