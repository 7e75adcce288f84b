"""Building the firmware for the simulated boards (:mod:`.simboard`): the AVR binary and the
simavr harness, with ``make`` (``firmware/Makefile``), from Debian's packages only
(:func:`missing_tools`, :data:`INSTALL_HINT`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

FIRMWARE_DIR = Path(__file__).resolve().parent.parent / "firmware"
"""The firmware sources (``firmware/Makefile``)."""
DEFAULT_BUILD_DIR = FIRMWARE_DIR / "build"
INSTALL_HINT = ("sudo apt-get install gcc-avr avr-libc arduino-core-avr simavr libsimavr-dev "
                "libsimavrparts1")
ARDUINO_CORE = Path("/usr/share/arduino/hardware/arduino/avr/cores/arduino")
SIMAVR_HEADER = Path("/usr/include/simavr/sim_avr.h")
FLASH_BYTES = 256 * 1024
"""ATmega2560 flash (the bootloader takes 8 KiB of it)."""
RAM_BYTES = 8 * 1024



class SimBoardError(RuntimeError):
    """The firmware could not be built, or a simulated board did not start or answer."""


def missing_tools() -> list[str]:
    """What is missing to build the firmware and run simulated boards (empty: all there)."""
    missing = [t for t in ("make", "cc", "avr-gcc", "avr-g++", "avr-size", "avr-objcopy")
               if shutil.which(t) is None]
    if not ARDUINO_CORE.is_dir():
        missing.append(f"the Arduino core ({ARDUINO_CORE})")
    if not SIMAVR_HEADER.is_file():
        missing.append(f"simavr headers ({SIMAVR_HEADER})")
    libdirs = [Path("/usr/lib"), Path("/usr/lib64"), *Path("/usr/lib").glob("*-linux-gnu")]
    for lib in ("libsimavr.so", "libsimavrparts.so"):
        if not any((d / lib).exists() for d in libdirs):
            missing.append(lib)
    return missing


class Firmware(NamedTuple):
    """A built firmware: ``elf`` (the AVR binary), ``harness`` (``fw_simboard``), ``flash`` and
    ``ram`` bytes used (avr-size: text + data, data + bss)."""

    elf: Path
    harness: Path
    flash: int
    ram: int


def avr_size(elf: Path) -> tuple[int, int]:
    """(flash, RAM) bytes of an AVR ELF: (.text + .data, .data + .bss), from ``avr-size``."""
    out = subprocess.run(["avr-size", "--format=berkeley", str(elf)], check=True,
                         capture_output=True, text=True).stdout.splitlines()
    text, data, bss = (int(x) for x in out[1].split()[:3])
    return text + data, data + bss


def build(build_dir: str | os.PathLike | None = None, *, jobs: int = 2,
          targets: tuple[str, ...] = ("avr", "sim")) -> Firmware:
    """Build the AVR firmware and the simavr harness with ``make`` (incremental; nothing is
    downloaded).  Raises :class:`SimBoardError` with the build's last lines on failure."""
    bdir = Path(build_dir) if build_dir is not None else DEFAULT_BUILD_DIR
    missing = missing_tools()
    if missing:
        raise SimBoardError(f"cannot build the firmware: missing {', '.join(missing)} "
                            f"(install with: {INSTALL_HINT})")
    cmd = ["make", "-C", str(FIRMWARE_DIR), f"-j{jobs}", f"BUILD={bdir.resolve()}", *targets]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).splitlines()[-15:])
        raise SimBoardError(f"firmware build failed ({' '.join(cmd)}):\n{tail}")
    elf = bdir.resolve() / "avr" / "assemblers_fw.elf"
    flash, ram = avr_size(elf)
    return Firmware(elf, bdir.resolve() / "sim" / "fw_simboard", flash, ram)
