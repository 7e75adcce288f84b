"""The firmware's C core, built natively, against independent references: its own unit tests
(CRC check values, the documented examples, a time-bounded decoder fuzz, state transitions),
the Python decoder (hardware.protocol) on the same random byte streams, the Python device
emulator (hardware.emulator) on the same random command scripts, the hex examples of
docs/protocol.md; and the AVR build for the reference board, which must fit an ATmega2560."""

from __future__ import annotations

import os
import random
import re
import select
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from firmware_support import unavailable

import assemblers
from hardware import protocol as P
from hardware.crc import crc8, crc16
from hardware.emulator import DeviceEmulator
from hardware.safety import count_range
from hardware.simboard import (
    DEFAULT_BUILD_DIR,
    FIRMWARE_DIR,
    FLASH_BYTES,
    INSTALL_HINT,
    RAM_BYTES,
    avr_size,
    missing_tools,
)

ROOT = Path(__file__).resolve().parents[2]
NATIVE = DEFAULT_BUILD_DIR / "native"


@pytest.fixture(scope="module")
def native():
    """The native test binary and tool, built with make (incremental)."""
    missing = [t for t in ("make", "cc") if shutil.which(t) is None]
    if missing:
        unavailable(f"native firmware build needs {', '.join(missing)} (install build-essential)")
    r = subprocess.run(["make", "-C", str(FIRMWARE_DIR), f"BUILD={DEFAULT_BUILD_DIR}", "native"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return NATIVE


def frame(mtype: int, address: int, seq: int, payload: bytes = b"") -> bytes:
    """A frame built from the documented layout with the Python CRCs (any type)."""
    head = bytes([mtype, address, seq & 0xFF, seq >> 8, len(payload)])
    body = head + bytes([crc8(head)]) + payload
    return b"\xa5\x5a" + body + crc16(body).to_bytes(2, "little")


def test_native_unit_tests(native):
    r = subprocess.run([str(native / "fw_tests"), "3"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"(\d+) checks, 0 failures", r.stdout)
    assert m and int(m.group(1)) > 1000, r.stdout
    fuzz = re.search(r"fuzz: (\d+) streams .*?(\d+) with detectable errors, (\d+) with random "
                     r"damage", r.stdout)
    assert fuzz and int(fuzz.group(1)) > 100 and int(fuzz.group(2)) > 1000, r.stdout


# ---------------------------------------------------------------- decoder vs hardware.protocol

def c_decode(native: Path, data: bytes):
    out = subprocess.run([str(native / "fw_tool"), "decode"], input=data, capture_output=True,
                         check=True, timeout=60).stdout.decode().splitlines()
    frames, rejected = [], []
    for line in out[:-1]:
        w = line.split()
        if w[0] == "F":
            frames.append(P.Frame(int(w[1]), int(w[2]), int(w[3]),
                                  bytes.fromhex(w[4]) if len(w) > 4 else b""))
        else:
            rejected.append(P.Rejected(int(w[1]), int(w[2]), int(w[3])))
    counters = tuple(int(x) for x in out[-1].split()[1:])
    return frames, rejected, counters


def py_decode(data: bytes):
    d = P.Decoder()
    frames, rejected = [], []
    for k in range(0, len(data), 50):  # chunks: the rejected list is bounded per call
        frames += d.feed(data[k:k + 50])
        rejected += d.take_rejected()
    frames += d.flush()
    rejected += d.take_rejected()
    return frames, rejected, (d.frames, d.discarded, d.bad_header, d.bad_crc, d.pending)


def random_stream(rng: random.Random, n_frames: int) -> bytes:
    """Valid frames of every type, some damaged (bit flips, random bytes, truncation, a false
    marker in front), with noise between them that is rich in 0xA5 0x5A."""
    types = list(P.PAYLOAD_LEN)
    out = bytearray()
    for _ in range(n_frames):
        t = rng.choice(types)
        f = bytearray(frame(t, rng.randrange(256), rng.randrange(65536),
                            bytes(rng.randrange(256) for _ in range(P.PAYLOAD_LEN[t]))))
        r = rng.random()
        if r < 0.15:
            f[rng.randrange(2, len(f))] ^= 1 << rng.randrange(8)
        elif r < 0.25:
            for _ in range(rng.randrange(1, 4)):
                f[rng.randrange(len(f))] = rng.randrange(256)
        elif r < 0.32:
            f = f[:rng.randrange(1, len(f))]
        elif r < 0.38:
            f = bytearray(b"\xa5\x5a" + bytes([t]) + f)
        out += f
        if rng.random() < 0.3:
            out += bytes(rng.choice((0xA5, 0x5A, rng.randrange(256)))
                         for _ in range(rng.randrange(30)))
    return bytes(out)


def test_decoder_agrees_with_the_python_decoder(native):
    rng = random.Random(18)
    total = 0
    for _ in range(12):
        data = random_stream(rng, 400)
        c = c_decode(native, data)
        py = py_decode(data)
        assert c[0] == py[0]  # the same frames, in order
        assert c[1] == py[1]  # the same CRC rejections (the device NAKs these)
        assert c[2] == py[2]  # frames, discarded, bad_header, bad_crc, pending
        total += len(c[0])
    assert total > 3000


def doc_hex_examples() -> list[bytes]:
    """Every frame written in hex in docs/protocol.md (the code block and inline examples)."""
    text = (ROOT / "docs" / "protocol.md").read_text()
    found = []
    for block in re.findall(r"```\n(.*?)```", text, flags=re.S):
        if block.lstrip().startswith("a5 5a"):  # hex lines, then an optional legend
            hexlines = [ln for ln in block.splitlines() if re.fullmatch(r"[0-9a-f |]+", ln)]
            found.append(bytes.fromhex(re.sub(r"[|\s]", "", "".join(hexlines))))
    for span in re.findall(r"`(a5 5a[0-9a-f ]+)`", text):
        found.append(bytes.fromhex(span.replace(" ", "")))
    return found


def test_doc_examples_decode_byte_for_byte(native):
    examples = doc_hex_examples()
    assert len(examples) >= 5
    for ex in examples:
        frames, rejected, counters = c_decode(native, ex)
        assert frames == P.decode(ex).frames and len(frames) == 1 and not rejected
        assert frames[0].encode() == ex  # re-encoded, the same bytes
        assert counters[1] == 0


def c_device(native: Path, script: list[tuple[int, bytes]], *options: str) -> list[bytes]:
    """Run the C core (model driver) on ``script`` [(t_ms, bytes)]; the bytes it wrote after
    each line."""
    lines = "".join(f"{t} {b.hex()}\n" if isinstance(b, bytes) else f"I {b}\n"
                    for t, b in script)
    r = subprocess.run([str(native / "fw_tool"), "device", *options], input=lines,
                       capture_output=True, text=True, check=True, timeout=60)
    return [bytes.fromhex(x) for x in r.stdout.splitlines()]


def test_device_answers_the_documented_examples(native):
    # the SETPOINT example (address 1, seq 5, a count of -1: limits wide enough) -> its ACK
    ex = doc_hex_examples()
    sp = next(e for e in ex if e[2] == 0x01 and e[4] == 5)
    ack = next(e for e in ex if e[2] == 0x81 and e[4] == 5)
    nak = next(e for e in ex if e[2] == 0x82 and e[12] == P.NakCode.DEVICE_FAULT)
    wide = ("--address", "1", "--cmin", "-10", "--cmax", "40000", "--park", "26000")
    assert c_device(native, [(0, sp)], *wide) == [ack]
    # the NAK DEVICE_FAULT example: a device fault (input), then a SETPOINT with seq 6
    sp6 = frame(0x01, 1, 6, sp[8:-2])
    out = c_device(native, [(0, b""), (1, "1"), (2, b""), (3, sp6)], *wide)
    assert out[-1] == nak


# ---------------------------------------------------------------- device vs the Python emulator

class EmulatorProbe:
    """A DeviceEmulator driven with explicit times; replies read from its pty."""

    def __init__(self, **kw):
        self.e = DeviceEmulator(**kw)
        self.e.open()
        self.fd = os.open(self.e.port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)

    def step(self, t_ms: int, data: bytes) -> bytes:
        now = t_ms / 1000.0
        before = self.e.replies_sent
        self.e.on_timer(now)  # the firmware checks its watchdog before it reads
        if data:
            self.e.process(data, now)
        expected = self.e.replies_sent - before  # replies written to the pty
        out = b""
        while len(P.decode(out).frames) < expected and select.select([self.fd], [], [], 2.0)[0]:
            out += os.read(self.fd, 4096)
        return out

    def close(self):
        os.close(self.fd)
        self.e.close()


def random_script(rng: random.Random, lo, hi, address: int, n: int):
    """Commands a host might send (and some it should not): set-points in and out of the
    limits and of the step limit, repeats (same seq and payload, and same seq with another
    payload), every other command, frames for another address, damaged frames, reply types,
    noise, and silences longer than the watchdog."""
    t, seq = 0, 0
    last = None
    script = []
    target = (lo + hi) // 2
    for _ in range(n):
        t += rng.choice((10, 10, 20, 30, 100, 300, 700))  # multiples of 10 ms; watchdog 505
        r = rng.random()
        if r < 0.35:
            c = target + np.array([rng.randrange(-300, 301) for _ in range(6)])
            if rng.random() < 0.1:
                c[rng.randrange(6)] = rng.choice((lo[0] - 1, hi[0] + 1, lo[0], hi[0]))
            if rng.random() < 0.1:
                c[rng.randrange(6)] += rng.choice((-1, 1)) * 2000  # past the step limit
            seq += 1
            f = frame(0x01, address, seq, P.pack_setpoint(seq, c))
            target = c
        elif r < 0.45 and last is not None:
            f = last  # a retransmission: the same seq, type and payload
            if last[2] == 0x01 and rng.random() < 0.3:  # the same seq, another payload
                f = frame(0x01, address, last[4] | last[5] << 8, P.pack_setpoint(7, target))
        elif r < 0.7:
            seq += 1
            f = frame(rng.choice((0x02, 0x02, 0x02, 0x03, 0x04, 0x05, 0x06, 0x06)), address, seq)
        elif r < 0.78:  # another controller's frames
            seq += 1
            f = (frame(0x01, address ^ 1, seq, P.pack_setpoint(0, target))
                 if rng.random() < 0.5 else frame(0x03, address ^ 1, seq))
        elif r < 0.86:
            seq += 1
            g = bytearray(frame(0x01, address, seq, P.pack_setpoint(seq, target)))
            g[rng.randrange(8, len(g))] ^= 1 << rng.randrange(8)  # NAK BAD_CRC
            f = bytes(g)
        elif r < 0.9:
            f = frame(0x81, address, seq, b"\x01\x00\x00\x00")  # a reply type sent to us
        else:
            f = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 20)))
        if f[:2] == b"\xa5\x5a" and f[2] in (0x01, 0x04, 0x05, 0x06) and f[3] == address:
            last = f
        script.append((t, f))
        if rng.random() < 0.2:
            script.append((t + rng.choice((10, 40, 600)), b""))  # time passes, nothing said
            t = script[-1][0]
    return script


def _replies(data: bytes):
    return P.decode(data).frames


def test_device_behaves_like_the_python_emulator(native):
    duo = assemblers.load_config("duo")
    cal = duo.hardware.links[0].calibration
    lo, hi = count_range(cal)
    park = ((lo + hi) // 2).tolist()
    options = ("--address", "1", "--watchdog-ms", "505", "--tau-ms", "20", "--max-step", "1000",
               "--cmin", ",".join(map(str, lo)), "--cmax", ",".join(map(str, hi)),
               "--park", ",".join(map(str, park)))
    rng = random.Random(1818)
    compared = statuses = 0
    kinds, nak_codes = set(), set()
    for _ in range(6):
        script = random_script(rng, lo, hi, 1, 150)
        c_out = c_device(native, script, *options)
        emu = EmulatorProbe(calibration=cal, address=1, initial_counts=park, tau_s=0.02,
                            watchdog_s=0.505, max_step=1000)
        try:
            py_out = [emu.step(t, data) for t, data in script]
        finally:
            emu.close()
        assert len(c_out) == len(py_out) == len(script)
        for (t, sent), c, py in zip(script, c_out, py_out):
            cf, pf = _replies(c), _replies(py)
            assert [(f.type, f.address, f.seq) for f in cf] == \
                   [(f.type, f.address, f.seq) for f in pf], (t, sent.hex())
            for a, b in zip(cf, pf):
                kinds.add((a.type, a.payload[0] if a.type != P.MsgType.STATUS else None))
                if a.type == P.MsgType.NAK:
                    nak_codes.add(P.parse_nak(a.payload).code)
                if a.type == P.MsgType.STATUS:
                    sa, sb = P.parse_status(a.payload), P.parse_status(b.payload)
                    assert sa._replace(measured=()) == sb._replace(measured=()), (t, sa, sb)
                    # the two actuator models (continuous, and per millisecond in fixed
                    # point) agree to a count or two
                    assert np.abs(np.subtract(sa.measured, sb.measured)).max() <= 2, (sa, sb)
                    statuses += 1
                else:
                    assert a.payload == b.payload, (t, sent.hex(), P.describe(a), P.describe(b))
                compared += 1
    assert compared > 500 and statuses > 50
    # the scripts reached every command's ACK, and NAKs of set-points for each reason
    assert {(0x81, k) for k in (1, 3, 4, 5, 6)} <= kinds
    assert {1, 2, 4, 5} <= nak_codes  # BAD_CRC, LIMIT, ESTOPPED, WATCHDOG


# ---------------------------------------------------------------- the AVR build

def test_avr_build_fits_an_atmega2560():
    missing = [m for m in missing_tools() if "simavr" not in m]
    if missing:
        unavailable(f"AVR build needs {', '.join(missing)} (install with: {INSTALL_HINT})")
    for driver, sub in (("stepdir", DEFAULT_BUILD_DIR), ("model", DEFAULT_BUILD_DIR / "model")):
        r = subprocess.run(["make", "-C", str(FIRMWARE_DIR), "-j2", f"BUILD={sub}",
                            f"DRIVER={driver}", "avr"], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        elf = sub / "avr" / "assemblers_fw.elf"
        flash, ram = avr_size(elf)
        print(f"{driver}: flash {flash} B ({100 * flash / FLASH_BYTES:.1f} %), "
              f"RAM {ram} B ({100 * ram / RAM_BYTES:.1f} %)")
        assert "Program:" in r.stdout  # the build reports avr-size
        assert 0 < flash <= FLASH_BYTES - 8 * 1024  # the bootloader keeps 8 KiB
        assert 0 < ram <= RAM_BYTES - 2048  # at least 2 KiB left for the stack
        assert (sub / "avr" / "assemblers_fw.hex").stat().st_size > 0


def test_eeprom_block_for_avrdude(native):
    out = subprocess.run([str(native / "fw_tool"), "config", "--ihex", "--address", "2",
                          "--watchdog-ms", "250", "--cmin", "1,2,3,4,5,6"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    data = bytearray()
    for rec in out:
        raw = bytes.fromhex(rec[1:])
        assert rec[0] == ":" and sum(raw) % 256 == 0  # Intel HEX record checksums
        if raw[3] == 0:
            assert int.from_bytes(raw[1:3], "big") == len(data)
            data += raw[4:-1]
    assert out[-1] == ":00000001FF"
    assert data[:4] == b"AF\x01" + bytes([len(data)]) and data[4] == 2
    assert int.from_bytes(data[6:8], "little") == 250
    assert int.from_bytes(data[24:28], "little") == 1 and int.from_bytes(data[44:48], "little") == 6
    assert crc16(bytes(data[:-2])) == int.from_bytes(data[-2:], "little")
    bad = subprocess.run([str(native / "fw_tool"), "config", "--address", "300"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--address 300" in bad.stderr


def test_simboard_writes_eeprom_files_for_a_config(native, tmp_path, capsys):
    from hardware import simboard

    assert simboard.main(["--config", "duo", "--eeprom", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("avrdude -p atmega2560") == 2
    for i, addr in enumerate((1, 2)):
        data = bytearray()
        for rec in (tmp_path / f"platform{i}.eep").read_text().splitlines()[:-1]:
            data += bytes.fromhex(rec[1:])[4:-1]
        assert data[4] == addr and crc16(bytes(data[:-2])) == int.from_bytes(data[-2:], "little")
        lo = int.from_bytes(data[24:28], "little", signed=True)
        assert lo == int(count_range(assemblers.load_config("duo").hardware.links[i]
                                     .calibration)[0][0])
    assert simboard.main(["--config", "duo", "--baud", "5"]) == 2
    assert "--baud must be" in capsys.readouterr().err
