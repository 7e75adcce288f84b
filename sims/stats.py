"""Old import path (docs/architecture.md, "Old import paths"): the streaming statistics moved to
:mod:`sims.robustness.stats`."""

from sims.robustness.stats import *  # noqa: F403
from sims.robustness.stats import (  # noqa: F401
    CHUNK_FIELDS,
    HIST_BINS,
    HIST_OCT_MAX,
    HIST_OCT_MIN,
    HIST_RESOLUTION,
    HIST_SUB,
    ErrorStats,
    StreamingStats,
    fill_chunk_records,
    hist_edges,
    hist_index,
    hist_percentile,
    stats_from_samples,
)
