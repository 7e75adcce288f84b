"""The wire protocol between the host and a platform controller (``docs/protocol.md``).

Every message is one frame, little-endian::

    offset  size  field
    0       2     start marker 0xA5 0x5A
    2       1     type (:class:`MsgType`)
    3       1     address of the controller (0..255)
    4       2     sequence number (u16, wraps); a reply carries the request's number
    6       1     payload length; must equal the fixed length of the type (PAYLOAD_LEN)
    7       1     header check: CRC-8/SMBUS of bytes 2..6
    8       len   payload
    8+len   2     CRC-16/CCITT-FALSE of bytes 2 .. 7+len (everything after the marker)

The header check and the fixed length per type make a false start marker (0xA5 0x5A inside
other bytes) cheap to reject: a decoder needs only eight bytes to see that it is not a frame.
:class:`Decoder` is a streaming decoder that never raises on bad bytes and resynchronises by
rescanning from the byte after a rejected marker, so a valid frame is found even when it begins
inside the bytes of a false one.
"""

from __future__ import annotations

import struct
from enum import IntEnum, IntFlag
from typing import NamedTuple

from .crc import crc8, crc16

SOF = b"\xa5\x5a"
"""Start-of-frame marker."""
HEADER_LEN = 8
"""Bytes before the payload: marker (2), type, address, seq (2), length, header CRC-8."""
CRC_LEN = 2
MAX_PAYLOAD = 60
"""The longest payload of any message type (STATUS)."""
MAX_FRAME = HEADER_LEN + MAX_PAYLOAD + CRC_LEN
NO_TICK = 0xFFFFFFFF
"""``last_tick`` in a STATUS reply when the device has executed no set-point yet."""
PROTOCOL_VERSION = 1
"""The protocol version a device reports in IDENT (this document's version)."""


class MsgType(IntEnum):
    """Message types.  Host -> device below 0x80, device -> host from 0x80."""

    SETPOINT = 0x01  # tick u32 + six int32 counts: move the six actuators
    STATUS_QUERY = 0x02  # no payload: ask for a STATUS reply
    HEARTBEAT = 0x03  # no payload: feeds the watchdog while idle
    STOP = 0x04  # no payload: hold where the actuators are now (controlled stop)
    ESTOP = 0x05  # no payload: emergency stop, drives disabled, latched until CLEAR_FAULTS
    CLEAR_FAULTS = 0x06  # no payload: clear latched fault bits (ESTOP -> HOLD)
    IDENTIFY = 0x07  # no payload: answered whatever the address field says (IDENT)
    ACK = 0x81  # of_type u8, state u8, faults u16
    NAK = 0x82  # of_type u8, state u8, faults u16, code u8, reserved u8
    STATUS = 0x83  # state, faults, last tick/seq, measured and target counts
    IDENT = 0x84  # address u8, protocol u8, fw_version u16, device_id u32


PAYLOAD_LEN: dict[int, int] = {
    MsgType.SETPOINT: 28,
    MsgType.STATUS_QUERY: 0,
    MsgType.HEARTBEAT: 0,
    MsgType.STOP: 0,
    MsgType.ESTOP: 0,
    MsgType.CLEAR_FAULTS: 0,
    MsgType.IDENTIFY: 0,
    MsgType.ACK: 4,
    MsgType.NAK: 6,
    MsgType.STATUS: 60,
    MsgType.IDENT: 8,
}
"""The payload length of every message type; any other length is a bad header."""


class State(IntEnum):
    """Device state, reported in ACK, NAK and STATUS."""

    IDLE = 0  # powered up, holding its position, no set-point received yet
    RUNNING = 1  # following set-points
    HOLD = 2  # holding after STOP or a watchdog trip
    ESTOP = 3  # emergency-stopped: drives disabled until CLEAR_FAULTS
    FAULT = 4  # a device fault (drive, encoder...): set-points are refused


class Fault(IntFlag):
    """Fault bits (u16), latched until CLEAR_FAULTS."""

    NONE = 0
    WATCHDOG = 0x0001  # no valid frame for watchdog_s: the device went to HOLD
    LIMIT = 0x0002  # a set-point outside the device's own limits was refused
    DEVICE = 0x0004  # drive or sensor fault
    ESTOP = 0x0008  # an ESTOP was received
    COMM = 0x0010  # the device saw frames with a bad CRC


class NakCode(IntEnum):
    """Why a device refused a frame."""

    BAD_CRC = 1  # header fine, payload CRC wrong: retransmit
    LIMIT = 2  # set-point outside the device's limits
    DEVICE_FAULT = 3  # the device has a fault and refuses motion
    ESTOPPED = 4  # emergency-stopped: refuses motion until CLEAR_FAULTS
    WATCHDOG = 5  # watchdog tripped: refuses motion until CLEAR_FAULTS
    BAD_ADDRESS = 6  # reserved


RETRYABLE_NAKS = frozenset({NakCode.BAD_CRC})
"""NAK codes after which the host retransmits the same frame; every other code is a fault."""


class Frame(NamedTuple):
    """One decoded frame: ``type`` (int, a :class:`MsgType` value), ``address``, ``seq``,
    ``payload`` (bytes)."""

    type: int
    address: int
    seq: int
    payload: bytes

    def encode(self) -> bytes:
        return encode_frame(self.type, self.address, self.seq, self.payload)


class Setpoint(NamedTuple):
    tick: int
    counts: tuple[int, ...]  # (6,) controller counts


class Ack(NamedTuple):
    of_type: int
    state: int
    faults: int


class Nak(NamedTuple):
    of_type: int
    state: int
    faults: int
    code: int


class Status(NamedTuple):
    """A STATUS reply.  ``last_tick`` None when nothing was executed; ``measured`` and
    ``target``: (6,) counts."""

    state: int
    faults: int
    last_tick: int | None
    last_seq: int
    measured: tuple[int, ...]
    target: tuple[int, ...]


class Ident(NamedTuple):
    """An IDENT reply: the device's own ``address``, its ``protocol`` version, its firmware
    build ``fw_version`` and a per-board ``device_id`` (0: unknown)."""

    address: int
    protocol: int
    fw_version: int
    device_id: int


_SETPOINT = struct.Struct("<I6i")
SETPOINT_STRUCT = _SETPOINT
"""``struct`` of the SETPOINT payload: tick u32, six int32 counts."""
_ACK = struct.Struct("<BBH")
_NAK = struct.Struct("<BBHBx")
_STATUS = struct.Struct("<BxHIH2x6i6i")
_IDENT = struct.Struct("<BBHI")
_HEAD = struct.Struct("<2sBBHB")
_CRC = struct.Struct("<H")
assert _SETPOINT.size == PAYLOAD_LEN[MsgType.SETPOINT]
assert _ACK.size == PAYLOAD_LEN[MsgType.ACK] and _NAK.size == PAYLOAD_LEN[MsgType.NAK]
assert _STATUS.size == PAYLOAD_LEN[MsgType.STATUS] == MAX_PAYLOAD
assert _IDENT.size == PAYLOAD_LEN[MsgType.IDENT]

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def encode_frame(mtype: int, address: int, seq: int, payload: bytes = b"") -> bytes:
    """Build one frame.  Raises ValueError for an unknown type, a wrong payload length or a
    field out of range."""
    expected = PAYLOAD_LEN.get(mtype)
    if expected is None:
        raise ValueError(f"unknown message type 0x{mtype:02x}")
    if len(payload) != expected:
        raise ValueError(f"{MsgType(mtype).name} payload must be {expected} bytes, "
                         f"got {len(payload)}")
    if not 0 <= address <= 0xFF:
        raise ValueError(f"address must be in 0..255, got {address}")
    head = _HEAD.pack(SOF, mtype, address, seq & 0xFFFF, expected)
    head += bytes((crc8(head[2:7]),))
    body = head + payload
    return body + _CRC.pack(crc16(body[2:]))


def pack_setpoint(tick: int, counts) -> bytes:
    """SETPOINT payload: ``tick`` (u32) and ``counts`` (6,) int32."""
    c = [int(x) for x in counts]
    if len(c) != 6:
        raise ValueError(f"a set-point has 6 counts, got {len(c)}")
    if any(x < INT32_MIN or x > INT32_MAX for x in c):
        raise ValueError(f"counts {c} do not fit in int32")
    return _SETPOINT.pack(tick & 0xFFFFFFFF, *c)


def pack_ack(of_type: int, state: int, faults: int) -> bytes:
    return _ACK.pack(of_type, state, faults)


def pack_nak(of_type: int, state: int, faults: int, code: int) -> bytes:
    return _NAK.pack(of_type, state, faults, code)


def pack_status(state: int, faults: int, last_tick: int | None, last_seq: int, measured,
                target) -> bytes:
    lt = NO_TICK if last_tick is None else last_tick
    return _STATUS.pack(state, faults, lt, last_seq & 0xFFFF, *(int(x) for x in measured),
                        *(int(x) for x in target))


def pack_ident(address: int, protocol: int, fw_version: int, device_id: int) -> bytes:
    """IDENT payload: ``address`` u8, ``protocol`` u8, ``fw_version`` u16, ``device_id`` u32."""
    return _IDENT.pack(address, protocol, fw_version & 0xFFFF, device_id & 0xFFFFFFFF)


def parse_ident(payload: bytes) -> Ident:
    return Ident(*_IDENT.unpack(payload))


def parse_setpoint(payload: bytes) -> Setpoint:
    v = _SETPOINT.unpack(payload)
    return Setpoint(v[0], tuple(v[1:]))


def parse_ack(payload: bytes) -> Ack:
    return Ack(*_ACK.unpack(payload))


def parse_nak(payload: bytes) -> Nak:
    return Nak(*_NAK.unpack(payload))


def parse_status(payload: bytes) -> Status:
    v = _STATUS.unpack(payload)
    return Status(v[0], v[1], None if v[2] == NO_TICK else v[2], v[3], tuple(v[4:10]),
                  tuple(v[10:16]))


def type_name(mtype: int) -> str:
    try:
        return MsgType(mtype).name
    except ValueError:
        return f"0x{mtype:02x}"


def _enum_name(enum, value: int) -> str:
    try:
        return enum(value).name
    except ValueError:
        return str(value)


def fault_names(bits: int) -> list[str]:
    """Names of the set fault bits, e.g. ``["WATCHDOG", "LIMIT"]``; unknown bits as hex."""
    names = [f.name for f in Fault if f and bits & f]
    rest = bits & ~sum(int(f) for f in Fault)
    if rest:
        names.append(f"0x{rest:04x}")
    return names


def _state_faults(reply: Ack | Nak | Status) -> str:
    return f"state={_enum_name(State, reply.state)} faults={fault_names(reply.faults)}"


def describe(frame: Frame) -> str:
    """One line, human-readable: ``SETPOINT addr=1 seq=3 tick=3 counts=[...]``."""
    head = f"{type_name(frame.type)} addr={frame.address} seq={frame.seq}"
    p = frame.payload
    if frame.type == MsgType.SETPOINT:
        sp = parse_setpoint(p)
        return f"{head} tick={sp.tick} counts={list(sp.counts)}"
    if frame.type == MsgType.ACK:
        a = parse_ack(p)
        return f"{head} of={type_name(a.of_type)} {_state_faults(a)}"
    if frame.type == MsgType.NAK:
        n = parse_nak(p)
        return f"{head} of={type_name(n.of_type)} code={_enum_name(NakCode, n.code)} {_state_faults(n)}"
    if frame.type == MsgType.STATUS:
        s = parse_status(p)
        return (f"{head} {_state_faults(s)} last_tick={s.last_tick} measured={list(s.measured)} "
                f"target={list(s.target)}")
    if frame.type == MsgType.IDENT:
        d = parse_ident(p)
        return (f"{head} address={d.address} protocol={d.protocol} fw_version={d.fw_version} "
                f"device_id=0x{d.device_id:08x}")
    return head


class Rejected(NamedTuple):
    """A frame whose header was valid but whose CRC-16 failed (a device NAKs it BAD_CRC)."""

    type: int
    address: int
    seq: int


class DecodeResult(NamedTuple):
    frames: list[Frame]
    discarded: int  # bytes thrown away while resynchronising
    bad_header: int  # start markers rejected by the header check / length
    bad_crc: int  # frames with a valid header and a wrong CRC-16
    pending: int  # bytes kept, waiting for the rest of a frame


class Decoder:
    """Streaming decoder: feed it bytes as they arrive, get whole frames back.

    Never raises on bad input.  It scans for the marker; a candidate is rejected (and the
    scan restarts one byte later) when its header CRC-8 fails, its type is unknown, its length
    is not the type's length, or its CRC-16 fails.  Counters (cumulative): ``frames``,
    ``discarded`` (bytes), ``bad_header``, ``bad_crc``; every byte fed ends up in a frame, in
    ``discarded`` or in the pending buffer.  ``rejected`` keeps the headers of the last CRC
    failures (for NAKs).
    """

    __slots__ = ("_buf", "frames", "discarded", "bad_header", "bad_crc", "rejected")

    def __init__(self):
        self._buf = bytearray()
        self.frames = 0
        self.discarded = 0
        self.bad_header = 0
        self.bad_crc = 0
        self.rejected: list[Rejected] = []

    @property
    def pending(self) -> int:
        """Bytes held back, waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Add ``data``; return the frames completed by it (possibly none)."""
        if data:
            self._buf += data
        return self._parse()

    def flush(self) -> list[Frame]:
        """Give up on the pending partial frame (e.g. after a timeout): discard its first byte
        and rescan what follows.  Returns any frames found in the remaining bytes."""
        out: list[Frame] = []
        while self._buf:
            del self._buf[0]
            self.discarded += 1
            out += self._parse()
        return out

    def take_rejected(self) -> list[Rejected]:
        r, self.rejected = self.rejected, []
        return r

    def _parse(self) -> list[Frame]:
        buf = self._buf
        n = len(buf)
        i = 0
        out: list[Frame] = []
        plen = PAYLOAD_LEN
        while True:
            j = buf.find(SOF, i)
            if j < 0:
                keep = n - 1 if n > i and buf[n - 1] == 0xA5 else n
                self.discarded += keep - i
                i = keep
                break
            self.discarded += j - i
            i = j
            if n - i < HEADER_LEN:
                break
            mtype = buf[i + 2]
            length = buf[i + 6]
            if plen.get(mtype) != length or crc8(buf[i + 2:i + 7]) != buf[i + 7]:
                self.bad_header += 1
                self.discarded += 1
                i += 1
                continue
            end = i + HEADER_LEN + length + CRC_LEN
            if n < end:
                break
            seq = buf[i + 4] | (buf[i + 5] << 8)
            if crc16(buf[i + 2:end - 2]) != buf[end - 2] | (buf[end - 1] << 8):
                self.bad_crc += 1
                self.discarded += 1
                if len(self.rejected) < 64:
                    self.rejected.append(Rejected(mtype, buf[i + 3], seq))
                i += 1
                continue
            out.append(Frame(mtype, buf[i + 3], seq, bytes(buf[i + HEADER_LEN:end - 2])))
            self.frames += 1
            i = end
        if i:
            del buf[:i]
        return out


def decode(data: bytes, *, final: bool = True) -> DecodeResult:
    """Decode a whole byte string.  With ``final`` the trailing partial frame, if any, is
    discarded and rescanned (frames inside it are recovered)."""
    d = Decoder()
    frames = d.feed(data)
    if final:
        frames += d.flush()
    return DecodeResult(frames, d.discarded, d.bad_header, d.bad_crc, d.pending)
