"""A platform controller emulated on a pseudo-terminal, speaking the wire protocol.

* :mod:`hardware.emulator.faults` - :class:`FaultPlan`, the faults it can inject
* :mod:`hardware.emulator.device` - :class:`Device`, the controller's state machine (bytes in,
  bytes out; testable without a pty)
* :mod:`hardware.emulator.pty` - :class:`DeviceEmulator` (a Device on a pty),
  :class:`EmulatorGroup` (one thread serving several), :func:`emulators_for`, :func:`serve`

``assemblers emulate`` runs them in a process of their own (``docs/hardware.md``).
"""

from ..timing import set_realtime
from .device import Device, Event, Executed, emulated_device_id, summary_line
from .faults import NO_FAULTS, FaultPlan
from .pty import DeviceEmulator, EmulatorGroup, emulators_for, serve

__all__ = ["NO_FAULTS", "Device", "DeviceEmulator", "EmulatorGroup", "Event", "Executed",
           "FaultPlan", "emulated_device_id", "emulators_for", "serve", "set_realtime",
           "summary_line"]
