"""Monte Carlo robustness: does the least-sensitive pose reduce the tool's error?

From a command to the code: ``assemblers robustness`` is :mod:`.cli`, which builds a
:class:`Disturbance` and calls :func:`run_study` (:mod:`.study`: the IK solves of the optimal,
baseline and random poses) for each target; every pose is simulated by :func:`simulate`
(:mod:`.montecarlo`: the Python API) on the Numba kernels: :mod:`.chunks` (one chunk of
samples, parallel over chunks) on the counter-based generator (:mod:`.rng`) and the lane
kernels (:mod:`.lanes`: blocks of 64 samples, the vectorized twins of the forward kinematics
and the error twist), merged by the fixed-memory statistics (:mod:`.stats`);
:func:`write_report` (:mod:`.report`) writes report.md, stats.json and the figures.
docs/robustness.md has the models, the randomness and the statistics.

Names are loaded on first use (so the command module parses its arguments without Numba).
"""

from __future__ import annotations

from sims._lazy import lazy_exports

_LAZY = {
    "montecarlo": ("Disturbance", "MAX_RETURN_SAMPLES", "POSE_DISTS", "Samples",
                   "first_order_mean_sq", "sample_errors", "seed_key", "simulate"),
    "stats": ("CHUNK_FIELDS", "HIST_BINS", "HIST_RESOLUTION", "ErrorStats", "StreamingStats",
              "hist_edges", "hist_percentile", "stats_from_samples"),
    "study": ("DEFAULT_SIGMA", "METRICS", "PoseResult", "StudyResult", "TargetUnreachable",
              "default_disturbance", "default_study_criterion", "run_studies", "run_study"),
    "report": ("FIGURES", "draw_figures", "markdown", "summary_rows", "terminal_summary",
               "write_report"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _LAZY)
