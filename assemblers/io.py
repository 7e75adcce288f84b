"""Old import path (docs/architecture.md, "Old import paths"): the trajectory file format lives
in :mod:`assemblers.model.io`; the documented names stay importable from here."""

from .model.io import (  # noqa: F401
    FORMAT,
    VERSION,
    FileFormatError,
    Trajectory,
    load_trajectory,
    save_trajectory,
    validate_trajectory,
)
