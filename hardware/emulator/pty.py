"""The emulated controller on a pseudo-terminal: the transport of :class:`Device`.

:class:`DeviceEmulator` opens a pty (``os.openpty``, raw mode); the host opens the slave's path
(:attr:`DeviceEmulator.port`) with pyserial exactly as it would a USB-serial adapter.  One
thread serves any number of emulators (:class:`EmulatorGroup`); :func:`serve` runs them in the
calling thread until a signal (``assemblers emulate``).
"""

from __future__ import annotations

import json
import os
import select
import sys
import threading
import time
import tty

import numpy as np

from ..running import StartStop
from ..signals import END_SIGNALS, SignalGuard
from ..timing import paused_gc
from .device import Device, summary_line
from .faults import FaultPlan


class DeviceEmulator(StartStop, Device):
    """A :class:`Device` served on a pseudo-terminal (same arguments)."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.master: int | None = None
        self.slave: int | None = None
        self.port: str | None = None
        self._group: EmulatorGroup | None = None

    def open(self) -> str:
        """Create the pty (raw mode) and return the path the host opens."""
        if self.master is None:
            self.master, self.slave = os.openpty()
            tty.setraw(self.slave)
            tty.setraw(self.master)
            os.set_blocking(self.master, False)
            self.port = os.ttyname(self.slave)
            self._t_dyn = time.perf_counter()
        return self.port

    @property
    def is_open(self) -> bool:
        return self.master is not None

    def fileno(self) -> int:
        return self.master

    def close(self) -> None:
        for fd in (self.master, self.slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.master = self.slave = None

    def start(self) -> str:
        """Open the pty and serve it from a thread of its own; returns the port path."""
        self._group = EmulatorGroup([self])
        self._group.start()
        return self.port

    def stop(self) -> None:
        if self._group is not None:
            self._group.stop()
            self._group = None
        else:
            self.close()

    def on_readable(self, now: float) -> None:
        if self.master is None:
            return
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError as exc:
            self._event(now, "io_error", str(exc))
            return
        if data:
            self.process(data, now)

    def on_timer(self, now: float) -> None:
        if self.master is not None:
            super().on_timer(now)

    def _on_disconnect(self) -> None:
        self.close()

    def _emit(self) -> None:
        if self.master is None:
            return
        try:
            n = os.write(self.master, self._pending_out)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            self._event(time.perf_counter(), "io_error", str(exc))
            n = len(self._pending_out)
        del self._pending_out[:n]


class EmulatorGroup(StartStop):
    """Serve several emulators from one thread (``select`` over their ptys)."""

    def __init__(self, emulators: list[DeviceEmulator], poll_s: float = 0.005):
        self.emulators = list(emulators)
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @property
    def ports(self) -> list[str]:
        return [e.port for e in self.emulators]

    def start(self) -> list[str]:
        for e in self.emulators:
            e.open()
        self._thread = threading.Thread(target=self._run, name="device-emulator", daemon=True)
        self._thread.start()
        return self.ports

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.step(self.poll_s)
        except BaseException as exc:  # noqa: BLE001 - kept for the owner to inspect
            self.error = exc
            raise

    def step(self, max_wait: float) -> None:
        now = time.perf_counter()
        wake = now + max_wait
        for e in self.emulators:
            d = e.next_deadline()
            if d is not None and d < wake:
                wake = d
        fds = {e.master: e for e in self.emulators if e.master is not None}
        timeout = max(0.0, wake - now)
        if fds:
            try:
                readable, _, _ = select.select(list(fds), [], [], timeout)
            except (OSError, ValueError):  # an fd closed under us (disconnect): next round
                readable = []
        else:
            time.sleep(timeout)
            readable = []
        now = time.perf_counter()
        for fd in readable:
            fds[fd].on_readable(now)
        for e in self.emulators:
            e.on_timer(now)

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for e in self.emulators:
            e.close()


def emulators_for(asm, *, n: int | None = None, faults: FaultPlan | None = None, seed: int = 0,
                  tau_s: float = 0.02, initial_legs=None) -> list[DeviceEmulator]:
    """One emulator per platform of ``asm`` (or the first ``n``, repeating the platforms if
    more), with its calibration, address and watchdog; the actuators start at ``initial_legs``
    (N, 6) m (default: the home pose)."""
    from ..plan import home_legs

    hw = asm.hardware
    n = asm.n_platforms if n is None else n
    if initial_legs is None:
        initial_legs = home_legs(asm)
    out = []
    for i in range(n):
        link = hw.links[i % len(hw.links)]
        cal = link.calibration
        init = cal.to_counts(np.asarray(initial_legs)[i % len(initial_legs)])
        out.append(DeviceEmulator(cal, address=link.address, initial_counts=init, tau_s=tau_s,
                                  watchdog_s=hw.watchdog_s, faults=faults, seed=seed + i,
                                  name=f"platform {i}"))
    return out


def serve(group: EmulatorGroup, out=sys.stdout, err=sys.stderr, *, summary_json=None) -> int:
    """Open the ptys, print one port per line on ``out``, serve until SIGINT, SIGTERM, SIGHUP or
    SIGQUIT; then print what each emulator did on ``err`` (one line each) and, if
    ``summary_json`` (a text stream) is given, ``{"devices": [...]}`` on it."""
    guard = SignalGuard(END_SIGNALS).install()
    try:
        # the serving loop makes no reference cycles: no collection may stall a reply
        with paused_gc():
            for e in group.emulators:
                e.open()
            for e in group.emulators:
                print(e.port, file=out, flush=True)
            while True:
                group.step(group.poll_s)
    except KeyboardInterrupt:
        pass
    finally:
        guard.raising = False  # a second signal must not cut the summary short
        try:
            for e in group.emulators:
                print(summary_line(e), file=err, flush=True)
            if summary_json is not None:
                print(json.dumps({"devices": [e.summary() for e in group.emulators]}),
                      file=summary_json, flush=True)
        except OSError:  # a closed stream: the summary has nowhere to go
            pass
        group.stop()
        guard.uninstall()
    return 0
