"""Checksums of the wire protocol (``docs/protocol.md``).

* :func:`crc16` is **CRC-16/CCITT-FALSE** (a.k.a. CRC-16/IBM-3740): width 16, polynomial 0x1021,
  initial value 0xFFFF, no input or output reflection, no final XOR.  Check value (the CRC of the
  ASCII bytes ``"123456789"``): ``0x29B1``.  It is computed with :func:`binascii.crc_hqx`, which is
  exactly this CRC when started from 0xFFFF.
* :func:`crc8` is **CRC-8/SMBUS**: width 8, polynomial 0x07, initial value 0x00, no reflection, no
  final XOR.  Check value: ``0xF4``.  It protects the frame header so that a false start marker is
  rejected after eight bytes.

``crc16_bitwise`` and ``crc8_bitwise`` are slow, obviously-correct reference implementations for
the tests.
"""

from __future__ import annotations

import binascii

CRC16_CHECK = 0x29B1
"""CRC-16/CCITT-FALSE of ``b"123456789"`` (the published check value)."""
CRC8_CHECK = 0xF4
"""CRC-8/SMBUS of ``b"123456789"`` (the published check value)."""


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (poly 0x1021, init 0xFFFF, no reflection, xorout 0)."""
    return binascii.crc_hqx(data, 0xFFFF)


def _crc8_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        c = byte
        for _ in range(8):
            c = ((c << 1) ^ 0x07) & 0xFF if c & 0x80 else (c << 1) & 0xFF
        table.append(c)
    return tuple(table)


_CRC8 = _crc8_table()


def crc8(data: bytes | bytearray | memoryview) -> int:
    """CRC-8/SMBUS of ``data`` (poly 0x07, init 0x00, no reflection, xorout 0)."""
    c = 0
    for b in bytes(data):
        c = _CRC8[c ^ b]
    return c


def crc16_bitwise(data: bytes) -> int:
    """Reference CRC-16/CCITT-FALSE, one bit at a time (for tests)."""
    c = 0xFFFF
    for b in data:
        c ^= b << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) & 0xFFFF if c & 0x8000 else (c << 1) & 0xFFFF
    return c


def crc8_bitwise(data: bytes) -> int:
    """Reference CRC-8/SMBUS, one bit at a time (for tests)."""
    c = 0
    for b in data:
        c ^= b
        for _ in range(8):
            c = ((c << 1) ^ 0x07) & 0xFF if c & 0x80 else (c << 1) & 0xFF
    return c
