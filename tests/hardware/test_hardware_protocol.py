"""Wire protocol: CRCs against the published check values, framing, and the streaming decoder
(random bytes never raise; valid frames embedded in garbage are all recovered)."""

from __future__ import annotations

import random

import pytest
from hardware_support import hang_guard  # noqa: F401 (autouse fixture)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardware import protocol as P
from hardware.crc import (
    CRC8_CHECK,
    CRC16_CHECK,
    crc8,
    crc8_bitwise,
    crc16,
    crc16_bitwise,
)
from hardware.emulator import emulated_device_id

SUPPRESS = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


def test_crc16_ccitt_false_check_value():
    # CRC-16/CCITT-FALSE (a.k.a. CRC-16/IBM-3740): published check value 0x29B1
    assert CRC16_CHECK == 0x29B1
    assert crc16(b"123456789") == 0x29B1
    assert crc16_bitwise(b"123456789") == 0x29B1
    assert crc16(b"") == 0xFFFF  # the initial value, no final XOR


def test_crc8_smbus_check_value():
    assert CRC8_CHECK == 0xF4
    assert crc8(b"123456789") == 0xF4
    assert crc8_bitwise(b"123456789") == 0xF4


@given(st.binary(max_size=200))
def test_crc_fast_equals_reference(data):
    assert crc16(data) == crc16_bitwise(data)
    assert crc8(data) == crc8_bitwise(data)


def test_setpoint_frame_layout_byte_by_byte():
    payload = P.pack_setpoint(7, [1, -1, 2**31 - 1, -(2**31), 0, 258])
    f = P.encode_frame(P.MsgType.SETPOINT, 3, 0x1234, payload)
    assert len(f) == 8 + 28 + 2
    assert f[0:2] == b"\xa5\x5a"
    assert f[2] == 0x01 and f[3] == 3
    assert f[4:6] == b"\x34\x12"  # seq, little-endian
    assert f[6] == 28
    assert f[7] == crc8(f[2:7])
    assert f[8:12] == (7).to_bytes(4, "little")
    assert f[12:16] == (1).to_bytes(4, "little", signed=True)
    assert f[16:20] == (-1).to_bytes(4, "little", signed=True)
    assert int.from_bytes(f[-2:], "little") == crc16(f[2:-2])
    fr = P.decode(f).frames
    assert len(fr) == 1 and fr[0].seq == 0x1234 and fr[0].address == 3
    sp = P.parse_setpoint(fr[0].payload)
    assert sp.tick == 7 and sp.counts == (1, -1, 2**31 - 1, -(2**31), 0, 258)


def test_payload_roundtrips():
    assert P.parse_ack(P.pack_ack(1, 2, 0x11)) == P.Ack(1, 2, 0x11)
    assert P.parse_nak(P.pack_nak(1, 4, 0x8, P.NakCode.LIMIT)) == P.Nak(1, 4, 8, 2)
    s = P.parse_status(P.pack_status(1, 3, None, 9, range(6), range(10, 16)))
    assert s.last_tick is None and s.measured == tuple(range(6)) and s.target[-1] == 15
    s = P.parse_status(P.pack_status(1, 3, 123, 9, range(6), range(6)))
    assert s.last_tick == 123
    for t, n in P.PAYLOAD_LEN.items():
        f = P.encode_frame(t, 1, 5, bytes(n))
        assert P.decode(f).frames[0].type == t
    with pytest.raises(ValueError, match="payload must be"):
        P.encode_frame(P.MsgType.ACK, 1, 1, b"")
    with pytest.raises(ValueError, match="int32"):
        P.pack_setpoint(0, [2**31, 0, 0, 0, 0, 0])


def _frames(rng: random.Random, n: int) -> list[bytes]:
    out = []
    for _ in range(n):
        t = rng.choice(list(P.PAYLOAD_LEN))
        out.append(P.encode_frame(t, rng.randrange(256), rng.randrange(65536),
                                  bytes(rng.randrange(256) for _ in range(P.PAYLOAD_LEN[t]))))
    return out


@settings(max_examples=300, suppress_health_check=SUPPRESS)
@given(st.binary(max_size=600), st.lists(st.integers(1, 64), max_size=20))
def test_decoder_never_raises_on_random_bytes(data, cuts):
    d = P.Decoder()
    pos = 0
    n_frames = 0
    for c in cuts + [len(data)]:
        n_frames += len(d.feed(data[pos:pos + c]))
        pos += c
    n_frames += len(d.feed(data[pos:]))
    n_frames += len(d.flush())
    assert d.pending == 0
    assert d.frames == n_frames
    assert d.discarded <= len(data)


@settings(max_examples=200, suppress_health_check=SUPPRESS)
@given(st.integers(0, 2**32 - 1), st.lists(st.binary(max_size=80), min_size=1, max_size=12),
       st.integers(1, 50))
def test_decoder_recovers_every_frame_embedded_in_garbage(seed, garbage, chunk):
    rng = random.Random(seed)
    frames = _frames(rng, len(garbage))
    # garbage made of marker-ish bytes is the hard case: sprinkle false starts
    garbage = [g + (b"\xa5\x5a" + bytes([rng.randrange(256)]) if rng.random() < 0.5 else b"")
               for g in garbage]
    stream = b"".join(g + f for g, f in zip(garbage, frames)) + b"\xa5"
    d = P.Decoder()
    got = []
    for i in range(0, len(stream), chunk):
        got += d.feed(stream[i:i + chunk])
    got += d.flush()
    wanted = [P.decode(f).frames[0] for f in frames]
    # all the valid frames, in order (a random false frame passing CRC-8 and CRC-16 is
    # astronomically unlikely, but would only add an extra entry)
    it = iter(got)
    assert all(any(w == g for g in it) for w in wanted)
    # every byte is in a frame or was discarded
    assert d.pending == 0
    assert d.discarded + sum(len(g.encode()) for g in got) == len(stream)


def test_decoder_rejects_false_marker_quickly_and_counts():
    good = P.encode_frame(P.MsgType.HEARTBEAT, 1, 9)
    # a false start whose "header" would claim a long payload must not swallow the real frame
    junk = b"\xa5\x5a\x83\x01\x00\x00\x3c\x00"  # STATUS type, length 60, wrong header CRC
    d = P.Decoder()
    out = d.feed(junk + good)
    assert [f.seq for f in out] == [9]
    assert d.bad_header >= 1 and d.discarded == len(junk)


def test_decoder_bad_crc_is_reported_with_header_and_resyncs():
    f1 = bytearray(P.encode_frame(P.MsgType.SETPOINT, 2, 77, P.pack_setpoint(1, [0] * 6)))
    f1[12] ^= 0xFF  # corrupt the payload; header intact
    f2 = P.encode_frame(P.MsgType.SETPOINT, 2, 78, P.pack_setpoint(2, [0] * 6))
    d = P.Decoder()
    out = d.feed(bytes(f1) + f2)
    assert [f.seq for f in out] == [78]
    assert d.bad_crc == 1
    assert d.take_rejected() == [P.Rejected(P.MsgType.SETPOINT, 2, 77)]
    assert d.take_rejected() == []


def test_decoder_partial_frames_across_feeds():
    f = P.encode_frame(P.MsgType.STATUS, 1, 3, bytes(60))
    d = P.Decoder()
    for b in f[:-1]:
        assert d.feed(bytes([b])) == []
    assert d.pending == len(f) - 1
    assert len(d.feed(f[-1:])) == 1 and d.pending == 0


def test_flush_recovers_frame_inside_truncated_false_frame():
    good = P.encode_frame(P.MsgType.ACK, 1, 5, P.pack_ack(1, 1, 0))
    # a false header that passes the header check (valid CRC-8, SETPOINT length) but whose
    # frame is never completed: the good frame sits inside its span
    head = bytearray(b"\xa5\x5a\x01\x01\x00\x00\x1c")
    head.append(crc8(head[2:7]))
    d = P.Decoder()
    assert d.feed(bytes(head) + good) == []  # waiting for the false frame's 28-byte payload
    out = d.flush()
    assert [f.seq for f in out] == [5]


def test_describe_is_readable():
    f = P.decode(P.encode_frame(P.MsgType.NAK, 1, 4, P.pack_nak(1, 4, 4, 3))).frames[0]
    text = P.describe(f)
    assert "NAK" in text and "DEVICE_FAULT" in text and "SETPOINT" in text


def test_docs_protocol_examples_are_what_the_encoder_writes():
    """docs/protocol.md's hex examples, its type table and its fault / NAK code lists are the
    code's: each example is re-encoded from its stated content and decodes back."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()

    def example(label):  # the first `...` after the label (which may wrap)
        i = doc.index(label)
        a = doc.index("`", i)
        return bytes.fromhex(doc[a + 1:doc.index("`", a + 1)])

    block = doc[doc.index("SETPOINT, address 1, seq 5"):]
    block = block[block.index("```") + 3:]
    block = block[:block.index("```")]
    setpoint = bytes.fromhex(" ".join(block.replace("|", " ").split()))
    cases = [
        (setpoint, P.encode_frame(P.MsgType.SETPOINT, 1, 5,
                                  P.pack_setpoint(5, [26000, 26001, 26002, 25999, 26000, -1]))),
        (example("Its ACK"), P.encode_frame(P.MsgType.ACK, 1, 5,
                                            P.pack_ack(P.MsgType.SETPOINT, P.State.RUNNING, 0))),
        (example("NAK DEVICE_FAULT"), P.encode_frame(
            P.MsgType.NAK, 1, 6, P.pack_nak(P.MsgType.SETPOINT, P.State.FAULT, P.Fault.DEVICE,
                                            P.NakCode.DEVICE_FAULT))),
        (example("HEARTBEAT to address 2"), P.encode_frame(P.MsgType.HEARTBEAT, 2, 7)),
        (example("STATUS_QUERY to address 1"), P.encode_frame(P.MsgType.STATUS_QUERY, 1, 0)),
        (example("IDENTIFY to address 1"), P.encode_frame(P.MsgType.IDENTIFY, 1, 0)),
        (example("Its IDENT from the Python emulator"), P.encode_frame(
            P.MsgType.IDENT, 1, 0, P.pack_ident(1, 1, 0, emulated_device_id(0, 1)))),
        (example("`a5 5a 84 02"), P.encode_frame(P.MsgType.IDENT, 2, 0,
                                                   P.pack_ident(2, 1, 0x0102, 0x12345678))),
    ]
    assert emulated_device_id(0, 1) == 0x8CFEC04F  # the id the example states
    for documented, encoded in cases:
        assert documented == encoded
        res = P.decode(documented)
        assert len(res.frames) == 1 and res.frames[0].encode() == documented
    # the type table: code, name and payload length
    rows = re.findall(r"^\| (0x[0-9a-f]{2}) \| (\w+) \| (none|\d+ bytes)", doc, re.M)
    assert len(rows) == len(P.MsgType)
    for code, name, plen in rows:
        assert P.MsgType[name] == int(code, 16)
        assert P.PAYLOAD_LEN[P.MsgType[name]] == (0 if plen == "none" else int(plen.split()[0]))
    for bit, name in re.findall(r"(0x00[0-9a-f]{2}) (WATCHDOG|LIMIT|DEVICE|ESTOP|COMM)", doc):
        assert P.Fault[name] == int(bit, 16)
    naks = doc[doc.index("**NAK codes**"):doc.index("## Rules the device follows")]
    for code, name in re.findall(r"(\d) (BAD_CRC|LIMIT|DEVICE_FAULT|ESTOPPED|WATCHDOG)", naks):
        assert P.NakCode[name] == int(code)
