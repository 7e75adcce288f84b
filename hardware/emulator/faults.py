"""Faults the emulated controller can inject (:class:`FaultPlan`; CLI ``--fault KEY=VALUE``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class FaultPlan:
    """Faults to inject.  Probabilities are per frame; the ``*_at`` sets select frames by
    sequence number, or by set-point tick when ``at_ticks`` is true; ``times`` limits how often
    each selected frame is hit (None: every time it arrives, i.e. also every retransmission).

    ``drop_rx``: host frames lost on the way in (not seen, no reply, watchdog not fed);
    ``drop_reply``: replies lost on the way out; ``corrupt_reply``: a byte of the reply flipped
    (its CRC fails on the host); ``corrupt_rx``: a host frame arrives with a bad CRC (NAK
    BAD_CRC); ``delay_s``: every reply is late by this much; ``delay_at``/``delay_at_s``: the
    replies to the selected frames are late by ``delay_at_s``; ``garbage``: probability of
    random bytes before a reply; ``disconnect_after``: close the pty when frame number
    ``disconnect_after + 1`` arrives (it is never seen); ``device_fault_after``: after this many
    set-points executed, a device fault (state FAULT, further set-points NAKed DEVICE_FAULT);
    ``estop_after``: after this many set-points executed, the device's own emergency stop trips
    (state ESTOP, as if its button were pressed); ``ack_when_faulted``: a firmware defect - in
    ESTOP or FAULT the device still ACKs set-points (with its true state, not executing them)
    instead of refusing them.
    """

    drop_rx: float = 0.0
    drop_reply: float = 0.0
    corrupt_reply: float = 0.0
    corrupt_rx: float = 0.0
    garbage: float = 0.0
    drop_rx_at: frozenset[int] = frozenset()
    drop_reply_at: frozenset[int] = frozenset()
    corrupt_reply_at: frozenset[int] = frozenset()
    corrupt_rx_at: frozenset[int] = frozenset()
    delay_at: frozenset[int] = frozenset()
    at_ticks: bool = False
    times: int | None = None
    delay_s: float = 0.0
    delay_at_s: float = 0.0
    disconnect_after: int | None = None
    device_fault_after: int | None = None
    estop_after: int | None = None
    ack_when_faulted: bool = False

    @classmethod
    def parse(cls, specs: list[str] | tuple[str, ...]) -> FaultPlan:
        """Build from ``key=value`` strings (the CLI's ``--fault``); keys use ``-`` or ``_``,
        sets are comma-separated integers, booleans take true/false.  Raises ValueError naming
        the bad item."""
        kinds = {f.name: f for f in fields(cls)}
        kw: dict = {}
        for spec in specs:
            key, sep, val = spec.partition("=")
            name = key.strip().replace("-", "_")
            if not sep or name not in kinds:
                raise ValueError(f"bad fault {spec!r}: expected KEY=VALUE with KEY one of "
                                 + ", ".join(k.replace("_", "-") for k in kinds))
            val = val.strip()
            try:
                if name.endswith("_at"):
                    v = frozenset(int(x) for x in val.split(",") if x.strip())
                    if any(x < 0 for x in v):
                        raise ValueError("negative")
                elif name in ("at_ticks", "ack_when_faulted"):
                    if val.lower() not in ("1", "0", "true", "false", "yes", "no"):
                        raise ValueError("not a boolean")
                    v = val.lower() in ("1", "true", "yes")
                elif name in ("times", "disconnect_after", "device_fault_after", "estop_after"):
                    v = int(val)
                    if v < 0:
                        raise ValueError("negative")
                else:
                    v = float(val)
                    if not math.isfinite(v) or v < 0 or (v > 1 and not name.endswith("_s")):
                        raise ValueError("out of range")
            except ValueError as exc:
                raise ValueError(f"bad fault {spec!r}: {exc}") from None
            kw[name] = v
        return cls(**kw)


NO_FAULTS = FaultPlan()
