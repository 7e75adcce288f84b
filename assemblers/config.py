"""Compatibility shim: the config loader lives in :mod:`assemblers.model.config` (and the
``[hardware]`` section in :mod:`assemblers.model.hardware`)."""

from .model._toml import ConfigError, _check_number, _short, _Table, _type_name  # noqa: F401
from .model.config import *  # noqa: F403
from .model.config import (  # noqa: F401
    _EXPLICIT,
    _PARAMETRIC,
    CONFIG_DIR,
    DEFAULT_CONFIG,
    MAX_PLATFORMS,
    _platform,
    _sensitivity,
    _transform,
    config_from_dict,
    default_home_height,
    load_config,
    parametric_joints,
    parametric_layout,
    resolve_config_path,
    shipped_configs,
    transform_from_xyz_rpy,
)
from .model.hardware import _ACTUATOR_DEFAULTS, _calibration, _hardware  # noqa: F401
