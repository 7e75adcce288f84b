"""Old import path (docs/architecture.md, "Old import paths"): the maps and summary of a sweep
moved to :mod:`sims.sweeps.maps`."""

from sims.sweeps.maps import (  # noqa: F401
    PLANES,
    QUANTILES,
    draw_maps,
    report,
    slice_grid,
    summarize,
    summary_table,
)
