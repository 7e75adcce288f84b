"""Stream set-points to N platforms in lock-step, safely (``docs/hardware.md``).

The session, in order:

1. **Plan check without I/O**: the trajectory is resampled onto the stream grid and checked
   against every limit (:func:`hardware.plan.check_trajectory`); a violation raises
   :class:`~hardware.safety.LimitViolation` before any port is opened.  The journal is opened
   (appended to, never truncated; :class:`~hardware.journal.JournalError` if it cannot be).
2. **Open, identify and query**: every port is opened and IDENTIFY'd; a device answering with
   another address than its platform's (swapped cables) or two ports reporting the same
   controller refuse the session (:class:`WiringError`, nothing but IDENTIFY sent).  Then each
   device's STATUS is read: a latched WATCHDOG bit (the trace of the previous session's end) is
   cleared; any other fault stops the session (:class:`DeviceNotReady`) unless ``clear_faults``.
3. **Full plan**: an approach ramp from the measured positions is prepended and the whole plan
   is checked again; a violation raises before any set-point is sent.
4. **Stream**: tick k is due at ``t0 + k/rate`` (absolute deadlines, :mod:`hardware.timing`);
   its set-point goes to every platform through that platform's
   :class:`~hardware.gate.SafetyGate`, and every one must be acknowledged before tick k+1
   (:mod:`hardware.exchange`: retransmission, full reply checks).  A tick that starts, or is
   last retransmitted, more than half a period late shifts the later deadlines; a set-point
   more than ``max_gap_s`` later than its period is a fault.
5. **One way out**: whatever ends the stream (a fault, a signal, an exception of any kind in
   the loop, a closed output pipe raised by the progress callback, the journal failing), the
   same path runs: STOP to every platform whose port works (ESTOP where STOP is not
   acknowledged), each device's STATUS, the summary (:mod:`hardware.summary`) with every fault,
   the journal's last records.  Nothing in that path raises.
6. **Idle**: while waiting before the start (``start_delay_s``) or holding after the end
   (``hold_s``), HEARTBEAT frames every ``heartbeat_s`` keep the devices' watchdogs fed.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from collections.abc import Sequence

import numpy as np

from assemblers.model import Assembler

from . import protocol as P
from .exchange import Ledger, Stats, state_name
from .journal import JournalError, read_journal  # noqa: F401 (re-exported)
from .link import LinkError
from .plan import Plan, check_trajectory, finite_legs, plan_target
from .protocol import MsgType
from .safety import LimitViolation
from .session import (  # noqa: F401 (re-exported)
    MAX_RATE_HZ,
    DeviceNotReady,
    Session,
    StreamError,
    WiringError,
    bandwidth_warning,
)
from .signals import Interrupted
from .summary import FaultRecord, PlatformReport, Quality, StreamSummary  # noqa: F401
from .timing import SPIN_S, TIMER_SLACK_NS, fine_timer_slack, paused_gc, wait_until  # noqa: F401
from .timing import set_timer_slack as _set_timer_slack  # noqa: F401 (old name)

_TIMER_SLACK_NS = TIMER_SLACK_NS  # old name


class Streamer(Session):
    """Streams plans to the platforms of ``asm`` over their serial links (the arguments of
    :class:`~hardware.session.Session`); :meth:`run` streams one plan.

    Use as a context manager, or call :meth:`close`.
    """

    # ------------------------------------------------------------------ the run
    def run(self, plan: Plan, *, start_delay_s: float = 0.0, hold_s: float = 0.0
            ) -> StreamSummary:
        """Stream ``plan`` (its ``start_counts`` must be where the actuators are: the devices
        are asked again, and a difference of more than one count refuses the run)."""
        if plan.n_platforms != self.n:
            raise ValueError(f"the plan has {plan.n_platforms} platforms, the stack {self.n}")
        if abs(plan.rate_hz - self.rate_hz) > 1e-9:
            raise ValueError(f"the plan is for {plan.rate_hz:g} Hz, the streamer runs at "
                             f"{self.rate_hz:g} Hz")
        self.ex.stats = Stats()  # the summary counts this run only
        self.ex.ledger = Ledger(self.n)
        self.ex.abandoned.clear()
        measured = self.prepare()
        moved = np.abs(measured - plan.start_counts) > 1
        if moved.any():
            i, j = (int(x) for x in np.argwhere(moved)[0])
            raise LimitViolation(
                f"platform {i} actuator {j} is at {measured[i, j]} counts, not at the plan's "
                f"start {plan.start_counts[i, j]}: plan again from where the actuators are",
                platform=i, actuator=j, limit="start", value=float(measured[i, j]),
                bound=float(plan.start_counts[i, j]))
        for i, lk in enumerate(self.links):
            lk.gate.reset(plan.start_counts[i])
        self._jot({"ev": "plan", "source": plan.source, "ticks": plan.n_ticks,
                   "ramp_ticks": plan.n_ramp, "rate_hz": plan.rate_hz,
                   "start_counts": plan.start_counts.tolist()})
        self.journal.sync()
        faults: list[FaultRecord] = []
        status = "completed"
        error: BaseException | None = None
        t_start = time.perf_counter()
        self._lag_s = self._gap_max_s = 0.0
        self.guard.raising = False  # from here on a signal is handled at the loop's safe points
        try:
            try:
                self.guard.check()  # a signal while preparing
                if start_delay_s > 0:
                    self._idle(start_delay_s, faults)
                if not faults:
                    self._stream_paused(plan, faults)
                if not faults and hold_s > 0:
                    self._idle(hold_s, faults)
            except KeyboardInterrupt as exc:  # a signal (Interrupted) or Ctrl-C from Python
                status = "interrupted"
                name = exc.name if isinstance(exc, Interrupted) else "KeyboardInterrupt"
                self.ex.fault(faults, -1, "interrupted", f"interrupted by {name}: stopping")
            except BaseException as exc:  # noqa: BLE001 - any error in the loop ends in a STOP
                status = "fault"
                self.ex.fault(faults, -1, "host", f"{type(exc).__name__}: {exc}")
                error = exc
            return self._finish(plan, status, faults, t_start, error)
        finally:
            self.guard.raising = True

    def _stream_paused(self, plan: Plan, faults: list[FaultRecord]) -> None:
        """:meth:`_stream` with the garbage collector paused (collected at :meth:`open`) and a
        fine timer slack."""
        with paused_gc(collect=False), fine_timer_slack():
            self._stream(plan, faults)

    def _stream(self, plan: Plan, faults: list[FaultRecord]) -> None:
        ex = self.ex
        ex.phase = "stream"
        st = ex.stats
        dt = self.period_s
        half = 0.5 * dt
        counts = plan.counts
        K = plan.n_ticks
        n = self.n
        progress = self.progress
        journal = self.journal
        guard = self.guard
        max_gap = self.max_gap_s
        clock = time.perf_counter
        sleep = self._sleep

        def stop():
            return guard.pending

        t0 = clock() + 0.001
        slip = 0.0
        prev = None
        gap_max = 0.0
        for k in range(K):
            deadline = t0 + k * dt + slip
            ts = wait_until(deadline, clock, sleep, stop)
            guard.check()
            late = ts - deadline
            if prev is not None:
                gap = ts - prev - dt
                if gap > gap_max:
                    gap_max = self._gap_max_s = gap
                if gap > max_gap:
                    ex.fault(faults, -1, "gap", f"tick {k} would start {gap + dt:.3f} s after "
                             f"tick {k - 1}, more than max_gap_s {max_gap:g} s beyond the period "
                             "(the host stalled or the replies were slow): stopping", k)
                    return
            prev = ts
            st.starts.append(ts)
            st.lateness.append(late)
            reqs = []
            for i in range(n):
                try:
                    reqs.append(ex.send(i, MsgType.SETPOINT, tick=k, counts=counts[k, i]))
                except LimitViolation as exc:
                    ex.fault(faults, i, "limit", f"safety gate refused the set-point: {exc}", k)
                    break
                except LinkError as exc:
                    ex.fault(faults, i, "link", str(exc), k)
                    break
            if faults:  # a send failed: collect the replies of the frames already sent
                ex.wait(reqs, faults, retries=0)
                return
            ex.wait(reqs, faults)
            if faults:
                return
            # the device may execute the tick at its last retransmission: shift from there
            shift = max(late, max(r.t_last for r in reqs) - deadline)
            if shift > half:
                slip += shift
                st.overruns += 1
            self._lag_s = slip + max(late, 0.0)
            if not journal.flush():
                self._journal_fault(faults)
                return
            if progress is not None:
                progress(k + 1, K)

    # ------------------------------------------------------------------ the one way out
    def _finish(self, plan: Plan, status: str, faults: list[FaultRecord], t_start: float,
                error: BaseException | None = None) -> StreamSummary:
        """Stop (if anything went wrong), read the final STATUS, build and journal the summary.
        Never raises: every step is attempted whatever the previous one did."""
        ex = self.ex
        ex.interruptible = False  # nothing cuts the stop short
        try:
            if not self.journal.flush():
                self._journal_fault(faults)
            stops = ["not needed"] * self.n
            if faults:
                ex.phase = "stop"
                stops = self._stop_all(faults)
            if error is not None:  # after the stop: formatting it takes a while
                self._jot({"ev": "traceback", "text": "".join(
                    traceback.format_exception(type(error), error, error.__traceback__))})
            ex.phase = "status"
            final = self._final_status(faults)
            if status == "completed" and faults:
                status = "fault"
            duration = time.perf_counter() - t_start
            summary = self._summary(plan, status, faults, stops, final, duration, t_start)
            self._jot({"ev": "summary", **summary.to_dict()})
            self.journal.sync()
            if self.journal.error:
                summary = dataclasses.replace(summary, journal_error=self._journal_error())
            return summary
        finally:
            ex.interruptible = True

    def _journal_error(self) -> str | None:
        j = self.journal
        if j.error is None:
            return None
        return j.error + (f" ({j.lost} record(s) lost)" if j.lost else "")

    def _stop_all(self, faults: list[FaultRecord]) -> list[str]:
        """STOP every platform whose port works; ESTOP where STOP is not acknowledged."""
        result = ["unreachable"] * self.n
        try:
            live = [i for i in range(self.n) if self.links[i].alive]
            reqs, f = self.ex.round(MsgType.STOP, live, retries=1)
            faults += f
            for r in reqs:
                result[r.i] = "acked" if r.ok else "sent"
            again = [r.i for r in reqs if not r.ok and self.links[r.i].alive]
            if again:
                ereqs, f = self.ex.round(MsgType.ESTOP, again, retries=1)
                faults += f
                for r in ereqs:
                    result[r.i] = "estop" if r.ok else "sent"
        except Exception as exc:  # noqa: BLE001 - report, never raise past the stop
            self.ex.fault(faults, -1, "host", f"while stopping: {type(exc).__name__}: {exc}")
        for i in range(self.n):
            self._jot({"ev": "stop", "platform": i, "port": self.ports[i], "result": result[i]})
        self.journal.sync()
        return result

    def _final_status(self, faults: list[FaultRecord]) -> list[P.Status | None]:
        out: list[P.Status | None] = [None] * self.n
        try:
            live = [i for i in range(self.n) if self.links[i].alive]
            reqs, f = self.ex.round(MsgType.STATUS_QUERY, live, retries=1)
            faults += f
            for r in reqs:
                if r.reply is not None and r.reply.type == MsgType.STATUS:
                    s = P.parse_status(r.reply.payload)
                    out[r.i] = s
                    self._log_status(r.i, s)
        except Exception as exc:  # noqa: BLE001 - report, never raise past the stop
            self.ex.fault(faults, -1, "host", f"while reading STATUS: {type(exc).__name__}: "
                          f"{exc}")
        self.journal.flush()
        return out

    def _quality(self, status: str, st: Stats) -> Quality:
        rate = st.setpoint_retries / st.frames_sent if st.frames_sent else 0.0
        v = []
        if status == "completed":
            if self._lag_s > self.max_lag_s:
                v.append(f"the stream ended {self._lag_s:.3f} s behind its schedule (max_lag_s "
                         f"{self.max_lag_s:g} s): slow replies or a busy host")
            if rate > self.max_retry_rate:
                v.append(f"{st.setpoint_retries} of {st.frames_sent} set-points were "
                         f"retransmitted ({rate:.1%}, max_retry_rate {self.max_retry_rate:.1%}): "
                         "a noisy or failing link")
        return Quality(gap_max_s=max(0.0, self._gap_max_s), lag_s=self._lag_s, retry_rate=rate,
                       max_gap_s=self.max_gap_s, max_lag_s=self.max_lag_s,
                       max_retry_rate=self.max_retry_rate, violations=tuple(v))

    def _summary(self, plan, status, faults, stops, final, duration, t_start) -> StreamSummary:
        st = self.ex.stats
        ledger = self.ex.ledger
        quality = self._quality(status, st)
        if status == "completed" and quality.violations:
            status = "degraded"
        lat = np.asarray(st.latencies) * 1e3
        starts = np.asarray(st.starts)
        jit = np.abs(np.diff(starts) - self.period_s) * 1e3 if starts.size > 1 else np.zeros(0)
        late = np.asarray(st.lateness) * 1e3

        def pct(a, q):
            return None if a.size == 0 else float(np.percentile(a, q))

        reports = []
        for i in range(self.n):
            s = final[i]
            unc = dict(ledger.unconfirmed[i])
            lk = self.links[i] if i < len(self.links) else None
            t_last = None if lk is None else lk.last_setpoint_tick
            la = ledger.last_acked[i]
            if t_last is not None and (la is None or t_last > la):
                unc[t_last] = None  # written, then the bookkeeping was cut short
            reports.append(PlatformReport(
                platform=i, port=self.ports[i], address=self.asm.hardware.links[i].address,
                last_acked_tick=la, unconfirmed_ticks=tuple(sorted(unc)),
                device_last_tick=None if s is None else s.last_tick, stop=stops[i],
                final_state="unknown" if s is None else state_name(s.state),
                final_faults=() if s is None else tuple(P.fault_names(s.faults)),
                ticks_acked=ledger.acked[i]))
        bad = sum(lk.decoder.bad_crc + lk.decoder.bad_header for lk in self.links)
        signals = tuple(name for t, name in self.guard.received if t >= t_start)
        return StreamSummary(
            status=status, rate_hz=self.rate_hz, n_platforms=self.n,
            ticks_planned=plan.n_ticks, ticks_ramp=plan.n_ramp,
            ticks_completed=ledger.ticks_completed(),
            frames_sent=st.frames_sent, frames_acked=st.frames_acked,
            transmissions=st.transmissions, retries=st.retries, timeouts=st.timeouts,
            naks=st.naks, bad_replies=bad, stale_replies=st.stale,
            discarded_bytes=sum(lk.decoder.discarded for lk in self.links),
            latency_p50_ms=pct(lat, 50), latency_p99_ms=pct(lat, 99),
            latency_max_ms=None if lat.size == 0 else float(lat.max()),
            jitter_p99_ms=pct(jit, 99), jitter_max_ms=None if jit.size == 0 else float(jit.max()),
            lateness_p99_ms=pct(late, 99), overruns=st.overruns, duration_s=duration,
            faults=tuple(faults), platforms=tuple(reports), journal=self.journal.path,
            quality=quality, signals=signals, journal_error=self._journal_error())


def stream_trajectory(asm: Assembler, t: np.ndarray, legs: np.ndarray,
                      ports: Sequence[str] | None = None, *, rate_hz: float | None = None,
                      journal=None, start_delay_s: float = 0.0, hold_s: float = 0.0,
                      interp: str = "pchip", clear_faults: bool = False, serials=None,
                      progress=None, source: str = "") -> StreamSummary:
    """Check, plan and stream a trajectory (``t`` (T,) s, ``legs`` (T, N, 6) m) to the
    platforms of ``asm``; see the module docstring for the steps.

    Raises :class:`~hardware.safety.LimitViolation` (nothing but STATUS queries sent) if the
    plan breaks a limit, :class:`WiringError`, :class:`DeviceNotReady`, :class:`StreamError`,
    :class:`~hardware.link.LinkError` or :class:`~hardware.journal.JournalError` if the session
    cannot start; a fault while streaming is reported in the returned :class:`StreamSummary`
    (status "fault") after every platform was stopped.
    """
    s = Streamer(asm, ports, rate_hz=rate_hz, journal=journal, clear_faults=clear_faults,
                 interp=interp, serials=serials, progress=progress)
    with s:
        check_trajectory(t, legs, s.cals, s.rate_hz, interp)  # before any port is opened
        start = s.prepare()
        plan = s.plan(t, legs, start, source)
        return s.run(plan, start_delay_s=start_delay_s, hold_s=hold_s)


def stream_target(asm: Assembler, legs: np.ndarray, ports=None, **kw) -> StreamSummary:
    """Move to one set of leg lengths ``legs`` (N, 6) m from where the actuators are."""
    legs = finite_legs(legs, "target legs")  # before any port is opened
    if legs.shape != (asm.n_platforms, 6):
        raise ValueError(f"target legs must have shape ({asm.n_platforms}, 6), got {legs.shape}")
    rate = kw.pop("rate_hz", None)
    journal = kw.pop("journal", None)
    s = Streamer(asm, ports, rate_hz=rate, journal=journal,
                 clear_faults=kw.pop("clear_faults", False), serials=kw.pop("serials", None),
                 progress=kw.pop("progress", None))
    with s:
        start = s.prepare()
        plan = plan_target(legs, s.cals, s.rate_hz, start)
        return s.run(plan, **kw)


def dry_run_frames(asm: Assembler, plan: Plan, ticks=None) -> list[list[bytes]]:
    """The SETPOINT frames (bytes, one per platform) of the plan's ``ticks`` (default all), as
    a real run starting from sequence number 0 would write them.  Only those frames are built:
    the whole plan was checked through the gate's rule by :func:`hardware.plan.build_plan`
    (:func:`~hardware.safety.verify_counts`)."""
    hw = asm.hardware
    ticks = range(plan.n_ticks) if ticks is None else ticks
    out = []
    for k in ticks:
        out.append([P.encode_frame(MsgType.SETPOINT, hw.links[i].address, k,
                                   P.pack_setpoint(k, plan.counts[k, i]))
                    for i in range(plan.n_platforms)])
    return out
