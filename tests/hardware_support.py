"""Helpers shared by the hardware tests (``tests/test_hardware_*.py``).

``hang_guard``: an autouse-able fixture that dumps every thread's stack and exits if a test hangs
for 60 s (a streamer or emulator thread stuck on a pty would otherwise stall the whole suite);
import it into a test module with ``from hardware_support import hang_guard  # noqa: F401``.
``journal_acked``: the set-point ticks a journal says were acknowledged, in order.
"""

from __future__ import annotations

import faulthandler

import pytest

HANG_S = 60


@pytest.fixture(autouse=True)
def hang_guard():
    faulthandler.dump_traceback_later(HANG_S, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def journal_acked(records, platform):
    """Set-point ticks the journal ``records`` say were acknowledged by ``platform``, in order
    (a SETPOINT ``tx`` gives its sequence number's tick; an ACK of it with a latency and no
    note counts, and so does one noted "late": the reply to a set-point given up on when the
    stream stopped; an ACK reporting a fault state carries that as its note and does not)."""
    seq_tick = {}
    acked = []
    for r in records:
        if r.get("platform") != platform:
            continue
        if r["ev"] == "tx" and r["type"] == "SETPOINT":
            seq_tick[r["seq"]] = r["tick"]
        elif (r["ev"] == "rx" and r["type"] == "ACK" and r.get("of") == "SETPOINT"
              and (("latency_ms" in r and "note" not in r) or r.get("note") == "late")):
            acked.append(seq_tick[r["seq"]])
    return acked
