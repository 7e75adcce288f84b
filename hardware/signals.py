"""SIGINT and SIGTERM as one controlled interruption (the streamer's stop, the emulator's end)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable


def interrupt_on_signals() -> Callable[[], None]:
    """Until the returned function is called, SIGINT and SIGTERM both raise KeyboardInterrupt
    in the main thread: a supervisor's SIGTERM, or a Ctrl-C reaching a process that inherited
    SIGINT ignored (a background job of a non-interactive shell), ends in the same controlled
    way as Ctrl-C.  After the first signal both are ignored, so nothing cuts the clean-up
    short.  The returned function restores the previous handlers (a no-op off the main
    thread, where handlers cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def _raise(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    old = (signal.signal(signal.SIGINT, _raise), signal.signal(signal.SIGTERM, _raise))

    def restore() -> None:
        signal.signal(signal.SIGINT, old[0])
        signal.signal(signal.SIGTERM, old[1])

    return restore
