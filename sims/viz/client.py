"""PyBullet, imported once and kept quiet.

PyBullet prints a build banner (on stderr) when imported and connection chatter on stdout;
:func:`pybullet` imports it with both swallowed, :func:`quiet_stdout` silences a block at the
file-descriptor level (C output included).  Imported lazily, so the math core and
``assemblers info`` never load PyBullet.
"""

from __future__ import annotations

import contextlib
import os
import sys

_PB = None


def pybullet():
    """Import pybullet once, swallowing the ``pybullet build time`` banner it prints on stdout."""
    global _PB
    if _PB is None:
        with quiet_stdout():
            import pybullet as pb
        _PB = pb
    return _PB


@contextlib.contextmanager
def quiet_stdout():
    """Send file descriptors 1 and 2 (C-level output included) to /dev/null for the block:
    PyBullet prints a build banner (on stderr) and connection chatter we do not want in a CLI."""
    fds = []
    for stream in (sys.stdout, sys.stderr):
        try:
            fds.append(stream.fileno())
        except (AttributeError, OSError, ValueError):  # pytest capture or no real stream
            pass
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = [os.dup(fd) for fd in fds]
    try:
        with open(os.devnull, "w") as null:
            for fd in fds:
                os.dup2(null.fileno(), fd)
            yield
    finally:
        _flush_c_stdio()  # C output may be buffered: flush it while it still goes to /dev/null
        for fd, s in zip(fds, saved):
            os.dup2(s, fd)
            os.close(s)


def _flush_c_stdio() -> None:
    try:
        import ctypes
        import ctypes.util

        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").fflush(None)
    except (OSError, AttributeError, TypeError):
        pass
