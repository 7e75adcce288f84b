"""What a stream did: faults, per-platform reports, stream quality and the summary.

Status of a stream (:attr:`StreamSummary.status`):

* ``"completed"``: every set-point delivered and acknowledged, within the quality limits;
* ``"degraded"``: every set-point delivered and acknowledged, but the stream broke a quality
  limit (it fell behind its schedule by more than ``max_lag_s``, or retransmitted more than
  ``max_retry_rate`` of its set-points);
* ``"fault"``: the stream was stopped (STOP to every reachable platform) by a fault;
* ``"interrupted"``: the stream was stopped by a signal or Ctrl-C.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

FAULT_KINDS = ("timeout", "nak", "state", "link", "limit", "gap", "journal", "host",
               "interrupted")
"""``FaultRecord.kind``: no valid reply after the retries; the device refused (NAK); a reply
reporting a state or fault bit that contradicts it; a port error; the safety gate refused; a
set-point later than ``max_gap_s`` after the previous one; the journal could not be written;
an error in the host (an exception, a closed stdout/stderr); a signal or Ctrl-C."""


@dataclass(frozen=True)
class FaultRecord:
    """One fault: ``platform`` (-1: the host itself, e.g. a signal), ``kind`` (one of
    :data:`FAULT_KINDS`), ``tick``/``seq`` of the frame concerned (None if none), ``phase`` in
    which it happened ("connect", "idle", "stream", "stop", "status")."""

    platform: int
    port: str | None
    kind: str
    tick: int | None
    seq: int | None
    message: str
    phase: str = "stream"


@dataclass(frozen=True)
class PlatformReport:
    """What one platform executed.  ``last_acked_tick``: last set-point acknowledged (None:
    none); ``ticks_acked``: how many were acknowledged; ``unconfirmed_ticks``: sent but never
    acknowledged (the device may or may not have executed them); ``device_last_tick``: the last
    tick the device itself reports executing (STATUS after the run; None if it could not be
    asked or executed none); ``stop``: "acked", "sent" (no acknowledgement), "estop" (ESTOP after
    an unacknowledged STOP), "unreachable" or "not needed"; ``final_state``/``final_faults``: from
    the last STATUS ("unknown" if none)."""

    platform: int
    port: str | None
    address: int
    last_acked_tick: int | None
    unconfirmed_ticks: tuple[int, ...]
    device_last_tick: int | None
    stop: str
    final_state: str
    final_faults: tuple[str, ...]
    ticks_acked: int = 0


@dataclass(frozen=True)
class Quality:
    """Stream quality against its limits (``[hardware]`` ``max_gap_s``, ``max_lag_s``,
    ``max_retry_rate``).  ``gap_max_s``: the longest wait between two consecutive set-points
    beyond one period; ``lag_s``: how far behind its schedule the stream ended (overruns and
    retransmissions shift the schedule); ``retry_rate``: set-point retransmissions per
    set-point; ``violations``: one sentence per limit broken."""

    gap_max_s: float
    lag_s: float
    retry_rate: float
    max_gap_s: float
    max_lag_s: float
    max_retry_rate: float
    violations: tuple[str, ...] = ()


@dataclass(frozen=True)
class StreamSummary:
    """Result of a stream (see the module docstring for ``status``).  Counts are over all
    platforms: ``frames_sent`` distinct set-point frames, ``frames_acked`` acknowledged ones,
    ``transmissions`` every frame written (all types, retransmissions included), ``retries``
    retransmissions, ``timeouts``, ``naks``, ``bad_replies`` (CRC/header failures in received
    bytes), ``stale_replies`` (late or duplicate replies ignored), ``discarded_bytes`` (received
    bytes that were not part of a valid frame).  ``ticks_completed``: ticks acknowledged by every
    platform.  Latency (ms): set-point write -> acknowledgement (first write, so retries count).
    Jitter (ms): |period - 1/rate| between tick starts.  ``lateness_p99_ms``: tick start after
    its deadline.  ``overruns``: ticks that shifted the schedule (started, or were last
    retransmitted, more than half a period late).  ``signals``: every signal received while
    streaming, in order.  ``journal_error``: why the journal stopped being written (records
    after it were lost), or None.
    """

    status: str
    rate_hz: float
    n_platforms: int
    ticks_planned: int
    ticks_ramp: int
    ticks_completed: int
    frames_sent: int
    frames_acked: int
    transmissions: int
    retries: int
    timeouts: int
    naks: int
    bad_replies: int
    stale_replies: int
    discarded_bytes: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    latency_max_ms: float | None
    jitter_p99_ms: float | None
    jitter_max_ms: float | None
    lateness_p99_ms: float | None
    overruns: int
    duration_s: float
    faults: tuple[FaultRecord, ...] = ()
    platforms: tuple[PlatformReport, ...] = ()
    journal: str | None = None
    quality: Quality | None = None
    signals: tuple[str, ...] = ()
    journal_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    @property
    def exit_status(self) -> int:
        """The CLI's exit status for this result: 0 completed, 130 interrupted, else 1."""
        return 0 if self.ok else 130 if self.status == "interrupted" else 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["faults"] = [asdict(f) for f in self.faults]
        d["platforms"] = [asdict(p) for p in self.platforms]
        return d

    def table(self) -> str:
        """A table for people."""

        def ms(v):
            return "-" if v is None else f"{v:.3f} ms"

        rows = [
            ("status", self.status),
            ("rate", f"{self.rate_hz:g} Hz, {self.n_platforms} platform(s)"),
            ("ticks", f"{self.ticks_completed} of {self.ticks_planned} completed "
                      f"({self.ticks_ramp} approach ramp)"),
            ("set-point frames", f"{self.frames_sent} sent, {self.frames_acked} acknowledged"),
            ("retries", f"{self.retries} ({self.timeouts} timeouts, {self.naks} NAKs, "
                        f"{self.bad_replies} bad replies, {self.stale_replies} stale, "
                        f"{self.discarded_bytes} bytes discarded)"),
            ("ack latency", f"p50 {ms(self.latency_p50_ms)}, p99 {ms(self.latency_p99_ms)}, "
                            f"max {ms(self.latency_max_ms)}"),
            ("period jitter", f"p99 {ms(self.jitter_p99_ms)}, max {ms(self.jitter_max_ms)}, "
                              f"{self.overruns} overruns"),
        ]
        q = self.quality
        if q is not None:
            rows.append(("quality", f"gap max {q.gap_max_s * 1e3:.1f} ms (limit "
                                    f"{q.max_gap_s * 1e3:g}), lag {q.lag_s:.3f} s (limit "
                                    f"{q.max_lag_s:g}), retransmitted {q.retry_rate:.1%} "
                                    f"(limit {q.max_retry_rate:.0%})"))
        rows.append(("duration", f"{self.duration_s:.3f} s"))
        if self.journal:
            rows.append(("journal", self.journal + (f" (FAILED: {self.journal_error})"
                                                    if self.journal_error else "")))
        if self.signals:
            rows.append(("signals", ", ".join(self.signals)))
        w = max(len(r[0]) for r in rows)
        lines = [f"{a.ljust(w)}  {b}" for a, b in rows]
        for f in self.faults:
            where = "" if f.phase == "stream" else f" [{f.phase}]"
            who = f"platform {f.platform} ({f.port})" if f.platform >= 0 else "host"
            lines.append(f"FAULT {who}{where}: {f.kind}: {f.message}")
        if q is not None:
            lines += [f"DEGRADED: {v}" for v in q.violations]
        if self.platforms:
            lines.append("platform  port                last acked  unconfirmed  device last  "
                         "stop          state")
            for p in self.platforms:
                unc = ",".join(map(str, p.unconfirmed_ticks)) or "-"
                lines.append(f"{p.platform:<8}  {str(p.port)[:18]:<18}  "
                             f"{_tick(p.last_acked_tick):>10}  {unc:>11}  "
                             f"{_tick(p.device_last_tick):>11}  {p.stop:<12}  {p.final_state}"
                             + (f" {list(p.final_faults)}" if p.final_faults else ""))
        return "\n".join(lines)


def _tick(t: int | None) -> str:
    return "-" if t is None else str(t)
