"""Hardware layer of assemblers: stream leg-length set-points to the platform controllers.

Modules (imported on first use, so ``import hardware`` is cheap):

* :mod:`hardware.protocol` - framing, payloads and the streaming decoder (``docs/protocol.md``)
* :mod:`hardware.safety` - limits, plan checks and the :class:`~hardware.safety.SafetyGate`
* :mod:`hardware.plan` - resampling, the approach ramp, :class:`~hardware.plan.Plan`
* :mod:`hardware.link` - one platform's pyserial link
* :mod:`hardware.streamer` - :class:`~hardware.streamer.Streamer`, ``stream_trajectory``
* :mod:`hardware.emulator` - a controller emulated on a pseudo-terminal
* :mod:`hardware.cli` - ``assemblers emulate`` and ``assemblers stream``

See ``docs/hardware.md``.
"""

_EXPORTS = {
    "Streamer": "streamer", "StreamSummary": "streamer", "stream_trajectory": "streamer",
    "stream_target": "streamer", "read_journal": "streamer", "DeviceNotReady": "streamer",
    "StreamError": "streamer", "SafetyGate": "safety", "LimitViolation": "safety",
    "Plan": "plan", "DeviceEmulator": "emulator", "EmulatorGroup": "emulator",
    "FaultPlan": "emulator", "Decoder": "protocol", "LinkError": "link",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'hardware' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"hardware.{mod}"), name)
