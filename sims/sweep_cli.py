"""Shim: the ``assemblers sweep`` command moved to :mod:`sims.sweeps.cli` (the registry in
``assemblers.cli`` may name either module)."""

from sims.sweeps.cli import AXIS_DEFAULTS, DEFAULT_GRID, build_spec, configure_sweep, run_sweep  # noqa: F401
