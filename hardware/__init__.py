"""Hardware layer of assemblers: stream leg-length set-points to the platform controllers.

Modules (imported on first use, so ``import hardware`` is cheap):

* :mod:`hardware.crc`, :mod:`hardware.protocol` - checksums, framing, payloads and the
  streaming decoder (``docs/protocol.md``)
* :mod:`hardware.safety` - limits and plan checks; :mod:`hardware.gate` - the
  :class:`~hardware.gate.SafetyGate` every set-point passes through
* :mod:`hardware.plan` - resampling, the approach ramp, :class:`~hardware.plan.Plan`
* :mod:`hardware.link` - one platform's pyserial link (owns the port; no raw writes)
* :mod:`hardware.timing` - pacing, timer slack, the one GC pause; :mod:`hardware.signals` -
  every stop signal as one controlled interruption
* :mod:`hardware.journal` - the JSON-lines journal; :mod:`hardware.summary` - what a stream did
* :mod:`hardware.exchange` - requests, full reply checks, retransmission
* :mod:`hardware.session` - open, IDENTIFY, STATUS, clear faults, plan;
  :mod:`hardware.streamer` - :class:`~hardware.streamer.Streamer` (the stream loop and its
  single way out), ``stream_trajectory``
* :mod:`hardware.emulator` - a controller emulated on a pseudo-terminal (package: faults,
  device state machine, pty transport)
* :mod:`hardware.cli` - ``assemblers emulate`` and ``assemblers stream``

See ``docs/hardware.md``.
"""

_EXPORTS = {
    "Streamer": "streamer", "StreamSummary": "summary", "stream_trajectory": "streamer",
    "stream_target": "streamer", "read_journal": "journal", "DeviceNotReady": "session",
    "StreamError": "session", "WiringError": "session", "JournalError": "journal",
    "SafetyGate": "gate", "LimitViolation": "safety", "Plan": "plan",
    "DeviceEmulator": "emulator", "EmulatorGroup": "emulator", "FaultPlan": "emulator",
    "Device": "emulator", "Decoder": "protocol", "LinkError": "link",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'hardware' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"hardware.{mod}"), name)
