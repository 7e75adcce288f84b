"""Old import path (docs/architecture.md, "Old import paths"): the Monte Carlo moved to the package
:mod:`sims.robustness` (rng, lanes, chunks, montecarlo, stats). The documented names stay
importable here; new code imports ``sims.robustness``."""

from sims.robustness.chunks import draw_layout, perturb_scalar, run_chunk, run_chunks  # noqa: F401
from sims.robustness.lanes import (  # noqa: F401
    CHORD_ITERS,
    KB,
)
from sims.robustness.montecarlo import *  # noqa: F403
from sims.robustness.montecarlo import __all__, _as_count  # noqa: F401
from sims.robustness.rng import _ZIG_R, fix_rejections, normals_kernel, random_block  # noqa: F401
