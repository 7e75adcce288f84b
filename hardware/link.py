"""One platform's serial link: a pyserial port, a frame decoder, sequence numbers and the
platform's :class:`~hardware.gate.SafetyGate`.

The link owns the port and offers no way to write raw bytes: set-points can only be sent
through :meth:`DeviceLink.send_setpoint`, which asks the gate for the frame's bytes;
:meth:`DeviceLink.send` refuses SETPOINT frames; :meth:`DeviceLink.resend` writes the last
frame the link itself produced, again (same sequence number), and tells the gate when that was
a set-point (the device may execute it at the retransmission).  Writing STOP or ESTOP puts the
gate in its stopped state: no set-point passes until the gate is reset.
"""

from __future__ import annotations

import os

from assemblers.model import ActuatorCalibration

from . import protocol as P
from .safety import SafetyGate


class LinkError(Exception):
    """The port failed (cannot open, unplugged, write or read error).  ``platform``, ``port``."""

    def __init__(self, message: str, *, platform: int, port: str | None):
        super().__init__(message)
        self.platform, self.port = platform, port


def open_serial(url: str, baudrate: int = 115200, *, platform: int = 0):
    """Open any pyserial URL (device path, ``loop://``, ``socket://host:port``) non-blocking.

    Raises :class:`LinkError` naming the platform and port."""
    import serial

    kwargs = {"baudrate": baudrate, "timeout": 0, "write_timeout": 1.0}
    if "://" not in url:
        kwargs["exclusive"] = True
    try:
        return serial.serial_for_url(url, **kwargs)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise LinkError(f"platform {platform}: cannot open port {url!r}: {exc}",
                        platform=platform, port=url) from None


class NullPort:
    """A port that records what is written and never answers (``--dry-run``)."""

    def __init__(self):
        self.written: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.written.append(bytes(data))
        return len(data)

    def read(self, size: int = 1) -> bytes:
        return b""

    @property
    def in_waiting(self) -> int:
        return 0

    def fileno(self):
        raise OSError("no file descriptor")

    def close(self) -> None:
        pass


class DeviceLink:
    """The host's end of one platform's link.

    ``port``: a pyserial-like object (``write``, ``read``, ``in_waiting``, ``close``; ``fileno``
    when it has one) or None for a closed link; ``url``: its name, for messages; ``platform``:
    index in the stack; ``address``: the controller's address; ``calibration``: the platform's
    actuators; ``period_s``: the stream period the gate checks differences over.
    """

    def __init__(self, port, *, url: str | None, platform: int, address: int,
                 calibration: ActuatorCalibration, period_s: float, first_seq: int = 0):
        self._gate = SafetyGate(calibration, period_s, platform=platform)  # may refuse the cal
        self._port = port
        self.url = url
        self.platform = platform
        self.address = address
        self.calibration = calibration
        self.decoder = P.Decoder()
        self._seq = first_seq & 0xFFFF
        self._last_frame: bytes | None = None
        self._last_seq: int | None = None
        self._last_type: int | None = None
        self.last_setpoint_tick: int | None = None  # the newest set-point written
        self.broken: str | None = None  # why the link is unusable, once it is
        try:
            self._fd = port.fileno() if port is not None else None
        except (AttributeError, OSError, ValueError):
            self._fd = None
        self.bytes_out = 0
        self.bytes_in = 0

    @classmethod
    def open(cls, url: str, *, baudrate: int = 115200, **kw) -> DeviceLink:
        port = open_serial(url, baudrate, platform=kw["platform"])
        try:
            return cls(port, url=url, **kw)
        except BaseException:
            port.close()
            raise

    @property
    def gate(self) -> SafetyGate:
        """This link's gate (read-only: a link keeps the gate it was made with)."""
        return self._gate

    @property
    def last_frame(self) -> bytes | None:
        """The last frame written (bytes, read-only)."""
        return self._last_frame

    @property
    def last_seq(self) -> int | None:
        return self._last_seq

    @property
    def last_type(self) -> int | None:
        return self._last_type

    def fileno(self) -> int | None:
        """The file descriptor to ``select`` on, or None (then poll)."""
        return self._fd

    @property
    def alive(self) -> bool:
        return self._port is not None and self.broken is None

    def _next_seq(self) -> int:
        s = self._seq
        self._seq = (s + 1) & 0xFFFF
        return s

    def _write(self, data: bytes) -> None:
        if not self.alive:
            raise LinkError(f"platform {self.platform}: port {self.url} is "
                            f"{self.broken or 'closed'}", platform=self.platform, port=self.url)
        try:
            if self._fd is not None:  # posix port: one system call (pyserial adds a select)
                try:
                    n = os.write(self._fd, data)
                except BlockingIOError:
                    n = 0
                if n < len(data):  # buffer full: let pyserial wait (write_timeout) for the rest
                    n += self._port.write(data[n:]) or 0
            else:
                n = self._port.write(data)
        except Exception as exc:  # serial.SerialException, OSError, SerialTimeoutException
            self.broken = f"unusable ({type(exc).__name__}: {exc})"
            raise LinkError(f"platform {self.platform}: write to {self.url} failed: {exc}",
                            platform=self.platform, port=self.url) from None
        if n is not None and n != len(data):
            self.broken = "unusable (short write)"
            raise LinkError(f"platform {self.platform}: short write to {self.url} ({n} of "
                            f"{len(data)} bytes)", platform=self.platform, port=self.url)
        self.bytes_out += len(data)

    def send(self, mtype: int, payload: bytes = b"") -> int:
        """Send a non-motion frame (status query, heartbeat, stop, ...); returns its seq."""
        if mtype == P.MsgType.SETPOINT:
            raise PermissionError("set-points go through send_setpoint() and the SafetyGate")
        seq = self._next_seq()
        frame = P.encode_frame(mtype, self.address, seq, payload)
        self._last_frame, self._last_seq, self._last_type = frame, seq, mtype
        if mtype in (P.MsgType.STOP, P.MsgType.ESTOP):
            self._gate._stopped()  # before the write: nothing may follow a (partial) STOP
        self._write(frame)
        return seq

    def send_setpoint(self, tick: int, counts) -> int:
        """Send set-point ``counts`` (6,) for ``tick`` through the gate; returns its seq.

        Raises :class:`~hardware.safety.LimitViolation` (nothing written) when the gate
        refuses it."""
        seq = self._seq
        frame = self._gate.encode(seq, self.address, tick, counts)  # raises before any write
        self._next_seq()
        self._last_frame, self._last_seq, self._last_type = frame, seq, P.MsgType.SETPOINT
        self.last_setpoint_tick = tick
        self._write(frame)
        return seq

    def resend(self) -> None:
        """Write the last frame again, unchanged (same sequence number)."""
        if self._last_frame is None:
            raise RuntimeError("nothing to resend")
        if self._last_type == P.MsgType.SETPOINT:
            if self._gate.state != "moving":  # a STOP went out since, or the gate was reset
                raise RuntimeError("the last set-point may not be resent after a STOP or reset")
            self._gate._retransmitted()
        self._write(self._last_frame)

    def read_frames(self, readable: bool = True) -> list[P.Frame]:
        """Read whatever has arrived (non-blocking) and return the complete frames.

        ``readable``: ``select`` reported the descriptor readable (a hang-up then shows as an
        error instead of as silence)."""
        if not self.alive:
            raise LinkError(f"platform {self.platform}: port {self.url} is "
                            f"{self.broken or 'closed'}", platform=self.platform, port=self.url)
        try:
            n = self._port.in_waiting
            if n or self._fd is None:
                data = self._port.read(n or 1)
            elif readable:
                data = self._read_fd()
            else:
                return []
        except BlockingIOError:
            return []
        except Exception as exc:  # SerialException, OSError (EIO when the device is gone)
            self.broken = f"unusable ({type(exc).__name__}: {exc})"
            raise LinkError(f"platform {self.platform}: read from {self.url} failed: {exc}",
                            platform=self.platform, port=self.url) from None
        if not data:
            return []
        self.bytes_in += len(data)
        return self.decoder.feed(data)

    def _read_fd(self) -> bytes:
        # select() said readable but TIOCINQ says 0: a hang-up shows up as EOF or EIO here
        data = os.read(self._fd, 4096)
        if not data:
            raise OSError("device disconnected (end of file)")
        return data

    def close(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            except Exception:  # noqa: BLE001 - closing a dead port must not mask the real fault
                pass
        self._port = None
