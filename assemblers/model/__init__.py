"""The model layer: what an Assembler is, how a config becomes one, and the file formats.

* :mod:`assemblers.model.types` - frozen dataclasses: :class:`Assembler`, :class:`PlatformType`,
  :class:`Sensitivity`, the hardware settings and :class:`StackArrays` (re-exported here)
* :mod:`assemblers.model.config` - TOML -> :class:`Assembler` with every check of
  ``docs/config.md`` (``load_config``, ``config_from_dict``, ``ConfigError``)
* :mod:`assemblers.model.io` - trajectory files (``docs/formats.md``)

Nothing here imports JAX, Numba or SciPy.
"""

from .types import (
    ActuatorCalibration,
    Assembler,
    HardwareConfig,
    IKSettings,
    Payload,
    PlatformLink,
    PlatformType,
    Sensitivity,
    StackArrays,
    _frozen,  # noqa: F401  (the config loader's and the hardware layer's helper)
)

__all__ = ["ActuatorCalibration", "Assembler", "HardwareConfig", "IKSettings", "Payload",
           "PlatformLink", "PlatformType", "Sensitivity", "StackArrays"]
