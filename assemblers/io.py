"""Compatibility shim: the trajectory file format lives in :mod:`assemblers.model.io`."""

from .model.io import *  # noqa: F403
from .model.io import (  # noqa: F401
    FORMAT,
    VERSION,
    FileFormatError,
    Trajectory,
    _finite,
    load_trajectory,
    save_trajectory,
    validate_trajectory,
    write_json_atomic,
)
