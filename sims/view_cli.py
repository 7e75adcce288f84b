"""Shim: the ``show``, ``animate`` and ``physics`` commands moved to :mod:`sims.viz.cli` (the GUI
to :mod:`sims.viz.gui`)."""

from sims.viz.cli import (  # noqa: F401
    configure_animate,
    configure_physics,
    configure_show,
    run_animate,
    run_physics,
    run_show,
)
from sims.viz.gui import display_available, run_gui  # noqa: F401
