"""Simulated reference boards: the firmware's AVR binary running on simavr, one per platform.

Each board is a ``fw_simboard`` process (``firmware/sim/fw_simboard.c``): a simulated ATmega2560
at 16 MHz running ``firmware/build/avr/assemblers_fw.elf`` (the binary a lab flashes), its UART0
on a pseudo-terminal the host opens with pyserial exactly like a USB-serial adapter, its
configuration (address, soft limits in counts, largest step per set-point, watchdog, baud rate,
device id, power-up position) written into the simulated EEPROM before the CPU starts, so one
ELF serves every board.  The harness also counts the STEP pulses the firmware puts out
(:meth:`SimBoard.pulses`): the position the drives would really reach, independent of what the
firmware reports.

Timing: the firmware's clock (its watchdog, ``millis()``) is simulated time.  The firmware
sleeps whenever it waits, and simavr then waits for the wall clock, so simulated time follows
real time while the host keeps up (:meth:`SimBoard.pulses` reports both).  The baud rate is
real in the simulation: the simulated UART moves one byte per 10 bit times of the configured
rate (115200: 87 us a byte), the pseudo-terminal itself has none (the host's pyserial setting
is ignored).

    from hardware.simboard import start_boards
    with start_boards(asm) as boards:          # builds the firmware if needed (make)
        summary = stream_trajectory(asm, t, legs, boards.ports)
        boards.boards[0].pulses().counts       # (6,) where the step pulses took actuator 0..5

``assemblers emulate --config duo --device firmware`` (or ``python -m hardware.simboard --config
duo``) serves boards until Ctrl-C, one port per line.
Needs Debian's ``gcc-avr avr-libc arduino-core-avr simavr libsimavr-dev libsimavrparts1``
(:func:`missing_tools`, :data:`INSTALL_HINT`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

from .firmware_build import (  # noqa: F401  (simboard.build, .Firmware, ...: their old home)
    ARDUINO_CORE,
    DEFAULT_BUILD_DIR,
    FIRMWARE_DIR,
    FLASH_BYTES,
    INSTALL_HINT,
    RAM_BYTES,
    SIMAVR_HEADER,
    Firmware,
    SimBoardError,
    avr_size,
    build,
    missing_tools,
)
from .running import StartStop

START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class BoardConfig:
    """One board's EEPROM configuration (``firmware/assemblers_fw/src/core/fw_config.h``).
    Counts are (6,) int sequences; ``max_step`` 0 turns the per-set-point step limit off;
    ``inputs_open``: bit k opens end stop k (0..5) or the e-stop input (6) at power-up."""

    address: int = 1
    device_id: int = 0
    watchdog_ms: int = 500
    baud: int = 115200
    cmin: tuple[int, ...] = (20000,) * 6
    cmax: tuple[int, ...] = (32000,) * 6
    park: tuple[int, ...] = (26000,) * 6
    max_step: int = 0
    step_hz: int = 20000
    flags: int = 3
    inputs_open: int = 0

    def eeprom_args(self) -> list[str]:
        """The EEPROM block's fields as options of ``fw_tool config`` (and the harness)."""
        six = lambda v: ",".join(str(int(x)) for x in v)  # noqa: E731
        return ["--address", str(self.address), "--device-id", str(self.device_id),
                "--watchdog-ms", str(self.watchdog_ms), "--baud", str(self.baud),
                "--cmin", six(self.cmin), "--cmax", six(self.cmax), "--park", six(self.park),
                "--max-step", str(self.max_step), "--step-hz", str(self.step_hz),
                "--flags", str(self.flags)]

    def args(self) -> list[str]:
        """The harness's command-line options for this board."""
        return [*self.eeprom_args(), "--inputs-open", str(self.inputs_open)]


def max_step_for(cal, rate_hz: float, factor: float = 2.0) -> int:
    """A device-side step limit (counts per set-point) for streaming at ``rate_hz`` or faster:
    ``factor`` times the largest step the host's gate admits per tick (``max_velocity * |scale|
    / rate`` plus one count of rounding), over the six actuators."""
    import numpy as np  # here: the command line's parsers import this module

    v = float(np.max(np.asarray(cal.max_velocity) * np.abs(np.asarray(cal.scale))))
    return int(math.ceil(factor * (v / rate_hz + 1.0)))


def board_configs(asm, *, n: int | None = None, baud: int | None = None,
                  rate_hz: float | None = None, max_step: int | str = "auto",
                  initial_legs=None, watchdog_s: float | None = None) -> list[BoardConfig]:
    """One :class:`BoardConfig` per platform of ``asm`` (or the first ``n``): its address, the
    calibration's soft stroke as the device limits (whole counts inside it, as the emulator),
    the config's watchdog, the link's baud rate (or ``baud``), the actuators at
    ``initial_legs`` (N, 6) m at power-up (default: the home pose), a distinct device id, and
    ``max_step`` ("auto": :func:`max_step_for` at ``rate_hz``, default the config's rate; 0:
    off)."""
    import numpy as np

    from .plan import home_legs
    from .safety import count_range

    hw = asm.hardware
    n = asm.n_platforms if n is None else n
    legs = home_legs(asm) if initial_legs is None else np.asarray(initial_legs, dtype=float)
    rate = hw.rate_hz if rate_hz is None else rate_hz
    wd = hw.watchdog_s if watchdog_s is None else watchdog_s
    out = []
    for i in range(n):
        link = hw.links[i % len(hw.links)]
        cal = link.calibration
        lo, hi = count_range(cal)
        park = np.clip(cal.to_counts(legs[i % len(legs)]), lo, hi)
        step = max_step_for(cal, rate) if max_step == "auto" else int(max_step)
        out.append(BoardConfig(
            address=link.address, device_id=0x5B000000 + 0x100 * (i + 1) + link.address,
            watchdog_ms=int(round(wd * 1000)), baud=int(baud or link.baudrate),
            cmin=tuple(int(x) for x in lo), cmax=tuple(int(x) for x in hi),
            park=tuple(int(x) for x in park), max_step=step))
    return out


class Pulses(NamedTuple):
    """What a board's STEP pulses did: ``counts`` (6,) power-up position plus the steps
    counted; ``ignored``: pulses while the drives were disabled; ``sim_ms``/``wall_ms``:
    simulated and real time since the board started."""

    counts: tuple[int, ...]
    ignored: int
    sim_ms: float
    wall_ms: float


def _parse_pulses(line: str) -> Pulses:
    w = line.split()
    return Pulses(tuple(int(x) for x in w[1:7]), int(w[8]), float(w[10]), float(w[12]))


@dataclass(eq=False)
class SimBoard:
    """One running simulated board: ``port`` (the pty to open), ``config``."""

    config: BoardConfig
    proc: subprocess.Popen
    port: str
    name: str = ""
    _lines: queue.Queue = field(default_factory=queue.Queue, repr=False)
    _stderr: object = field(default=None, repr=False)
    final: Pulses | None = None

    def _command(self, cmd: str, prefix: str, timeout_s: float = 5.0) -> str:
        if self.proc.poll() is not None:
            raise SimBoardError(f"{self.name}: the simulated board has exited "
                                f"(status {self.proc.returncode}){self._stderr_tail()}")
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        end = time.monotonic() + timeout_s
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                raise SimBoardError(f"{self.name}: no answer to {cmd!r}") from None
            if line is None:
                raise SimBoardError(f"{self.name}: the simulated board has exited"
                                    f"{self._stderr_tail()}")
            if line.startswith(prefix):
                return line

    def pulses(self) -> Pulses:
        """Where the STEP pulses have taken the actuators so far (and the two clocks)."""
        return _parse_pulses(self._command("pulses", "pulses "))

    def set_inputs(self, open_mask: int) -> None:
        """Open (bit set) or close the end-stop inputs 0..5 and the e-stop input (bit 6)."""
        self._command(f"inputs {int(open_mask)}", "inputs ")

    def _stderr_tail(self) -> str:
        try:
            self._stderr.seek(0)
            text = self._stderr.read().strip()
        except (OSError, ValueError, AttributeError):
            return ""
        return f": {text.splitlines()[-1]}" if text else ""

    def stop(self, timeout_s: float = 5.0) -> Pulses | None:
        """Stop the board (SIGTERM); returns its final :class:`Pulses` (None if it had
        died)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        while True:
            try:
                line = self._lines.get(timeout=1.0)
            except queue.Empty:
                break
            if line is None:
                break
            if line.startswith("pulses "):
                self.final = _parse_pulses(line)
        for f in (self.proc.stdin, self.proc.stdout, self._stderr):
            try:
                f.close()
            except (OSError, AttributeError):
                pass
        return self.final


def _reader(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def start_board(firmware: Firmware, config: BoardConfig, *, name: str = "",
                timeout_s: float = START_TIMEOUT_S) -> SimBoard:
    """Start one simulated board; returns once its pty exists."""
    err = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen([str(firmware.harness), "--elf", str(firmware.elf), *config.args()],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                            text=True, bufsize=1)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
    board = SimBoard(config, proc, "", name or f"board@{config.address}", lines, err)
    end = time.monotonic() + timeout_s
    while True:
        try:
            line = lines.get(timeout=max(0.0, end - time.monotonic()))
        except queue.Empty:
            line = ""
        if line is None or line == "":
            board.stop()
            why = "exited" if proc.poll() is not None else f"printed no port in {timeout_s} s"
            raise SimBoardError(f"{board.name}: the simulated board {why}"
                                f"{board._stderr_tail()}")
        if line.startswith("port "):
            board.port = line.split(maxsplit=1)[1]
            return board


class SimBoardGroup(StartStop):
    """Several simulated boards (one per platform); a context manager.  ``ports`` in platform
    order."""

    def __init__(self, configs: list[BoardConfig], firmware: Firmware | None = None):
        self.configs = list(configs)
        self.firmware = firmware
        self.boards: list[SimBoard] = []

    @property
    def ports(self) -> list[str]:
        return [b.port for b in self.boards]

    def start(self) -> list[str]:
        """Start the boards (once; building the firmware first if none was given)."""
        if self.boards:
            return self.ports
        if self.firmware is None:
            self.firmware = build()
        try:
            for i, c in enumerate(self.configs):
                self.boards.append(start_board(self.firmware, c, name=f"platform {i}"))
        except BaseException:
            self.stop()
            raise
        return self.ports

    def stop(self) -> list[Pulses | None]:
        return [b.stop() for b in self.boards]


def start_boards(asm, *, n: int | None = None, baud: int | None = None,
                 rate_hz: float | None = None, max_step: int | str = "auto",
                 initial_legs=None, watchdog_s: float | None = None,
                 firmware: Firmware | None = None, **overrides) -> SimBoardGroup:
    """Build the firmware if needed and start one simulated board per platform of ``asm`` (see
    :func:`board_configs`; ``overrides`` replace :class:`BoardConfig` fields on every board).
    Returns the started :class:`SimBoardGroup` (use it as a context manager to stop them)."""
    configs = board_configs(asm, n=n, baud=baud, rate_hz=rate_hz, max_step=max_step,
                            initial_legs=initial_legs, watchdog_s=watchdog_s)
    if overrides:
        configs = [replace(c, **overrides) for c in configs]
    group = SimBoardGroup(configs, firmware)
    group.start()
    return group


def write_eeprom_files(configs: list[BoardConfig], out_dir: str | os.PathLike,
                       build_dir: str | os.PathLike | None = None) -> list[Path]:
    """Write each board's EEPROM block as Intel HEX (``platform<i>.eep``, for ``avrdude -U
    eeprom:w:FILE:i``) with the native ``fw_tool`` (built if needed); returns the paths."""
    bdir = Path(build_dir) if build_dir is not None else DEFAULT_BUILD_DIR
    r = subprocess.run(["make", "-C", str(FIRMWARE_DIR), f"BUILD={bdir.resolve()}", "native"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SimBoardError("building fw_tool failed:\n"
                            + "\n".join((r.stdout + r.stderr).splitlines()[-10:]))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, c in enumerate(configs):
        hexfile = subprocess.run([str(bdir.resolve() / "native" / "fw_tool"), "config", "--ihex",
                                  *c.eeprom_args()], capture_output=True, text=True, check=True)
        path = out / f"platform{i}.eep"
        path.write_text(hexfile.stdout)
        paths.append(path)
    return paths


#: the simulated boards' own options: (option, type, what it sets)
BOARD_OPTIONS = (
    ("--baud", int, "UART baud rate of every board (default: each link's baudrate; the "
                    "simulation moves bytes at this rate)"),
    ("--rate", float, "slowest stream rate to allow for in the boards' step limit (Hz; default: "
                      "the config's rate_hz)"),
    ("--max-step", int, "largest step per set-point in counts (default: twice what the host's "
                        "gate admits at --rate; 0: off)"),
)


def add_board_arguments(p: argparse.ArgumentParser) -> None:
    """The simulated boards' own options (``--baud``, ``--rate``, ``--max-step``); the number of
    boards (``--platforms``) is the caller's: ``assemblers emulate`` shares it with the Python
    emulator."""
    for flag, kind, text in BOARD_OPTIONS:
        p.add_argument(flag, type=kind, default=None, help=f"simulated boards: {text}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--platforms", "-n", type=int, default=None,
                   help="number of simulated boards (default: one per platform of the config)")
    add_board_arguments(p)


def configs_from_args(asm, args) -> list[BoardConfig]:
    """:func:`board_configs` from parsed :func:`add_arguments` options; ValueError (one line
    naming the option) on bad ones."""
    if args.platforms is not None and not 1 <= args.platforms <= 64:
        raise ValueError(f"--platforms must be between 1 and 64, got {args.platforms}")
    if args.baud is not None and not 300 <= args.baud <= 4_000_000:
        raise ValueError(f"--baud must be between 300 and 4000000, got {args.baud}")
    if args.rate is not None and not (args.rate > 0 and math.isfinite(args.rate)):
        raise ValueError(f"--rate must be a positive number of Hz, got {args.rate}")
    if args.max_step is not None and not 0 <= args.max_step <= 2**31 - 1:
        raise ValueError(f"--max-step must be between 0 (off) and 2147483647 counts, got "
                         f"{args.max_step}")
    return board_configs(asm, n=args.platforms, baud=args.baud, rate_hz=args.rate,
                         max_step="auto" if args.max_step is None else args.max_step)


def board_summary(board: SimBoard) -> dict:
    """What a stopped board did, for ``--json``: its configuration and where its STEP pulses
    took the drives (``pulses`` (6,) counts; None if it had died), with both clocks."""
    f = board.final
    return {"name": board.name, "port": board.port, "address": board.config.address,
            "device_id": board.config.device_id, "baud": board.config.baud,
            "alive_until_stopped": f is not None, "pulses": None if f is None else list(f.counts),
            "ignored_pulses": None if f is None else f.ignored,
            "sim_ms": None if f is None else f.sim_ms, "wall_ms": None if f is None else f.wall_ms}


def serve(group: SimBoardGroup, out=sys.stdout, err=sys.stderr, *, summary_json=None,
          on_start=None) -> int:
    """Start the boards, print one port per line on ``out``, call ``on_start(group)`` (if
    given), wait for SIGINT/SIGTERM/SIGHUP/SIGQUIT, stop them and print where each board's step
    pulses took it on ``err`` (and, if ``summary_json`` is a text stream, ``{"devices":
    [...]}`` (:func:`board_summary`) on it).  Exit status 0; 1 when a board exited by itself."""
    from .signals import interrupt_on_signals

    restore = interrupt_on_signals()
    status = 0
    try:
        group.start()
        for port in group.ports:
            print(port, file=out, flush=True)
        if on_start is not None:
            on_start(group)
        while all(b.proc.poll() is None for b in group.boards):
            time.sleep(0.2)
        print("simboard: a simulated board exited by itself", file=err, flush=True)
        status = 1
    except KeyboardInterrupt:
        pass
    finally:
        try:
            for b, final in zip(group.boards, group.stop()):
                where = list(final.counts) if final else "unknown"
                print(f"{b.name} ({b.port}, address {b.config.address}): pulses at {where}",
                      file=err, flush=True)
            if summary_json is not None:
                print(json.dumps({"devices": [board_summary(b) for b in group.boards]}),
                      file=summary_json, flush=True)
        except OSError:  # a closed stream: the summary has nowhere to go
            pass
        restore()
    return status


def main(argv: list[str] | None = None) -> int:
    """``python -m hardware.simboard [--config C] [--platforms N] [--baud B] ...``."""
    p = argparse.ArgumentParser(prog="python -m hardware.simboard",
                                description="simulated reference boards (firmware on simavr) "
                                            "on pseudo-terminals")
    p.add_argument("--config", "-c", default=None, help="config file or shipped name")
    add_arguments(p)
    p.add_argument("--eeprom", metavar="DIR", default=None,
                   help="write each platform's EEPROM block to DIR/platform<i>.eep (for real "
                        "boards, docs/firmware.md) instead of starting simulated boards")
    args = p.parse_args(argv)
    import assemblers
    from assemblers.errors import InputError

    try:
        asm = assemblers.load_config(args.config)
        configs = configs_from_args(asm, args)
    except (InputError, ValueError) as exc:
        print(f"simboard: error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.eeprom is not None:
            for c, path in zip(configs, write_eeprom_files(configs, args.eeprom)):
                print(f"{path}  (address {c.address}): avrdude -p atmega2560 -c wiring -P PORT "
                      f"-b 115200 -D -U eeprom:w:{path}:i")
            return 0
        firmware = build()
    except (SimBoardError, OSError, subprocess.CalledProcessError) as exc:
        print(f"simboard: error: {exc}", file=sys.stderr)
        return 1
    return serve(SimBoardGroup(configs, firmware))


if __name__ == "__main__":
    sys.exit(main())
