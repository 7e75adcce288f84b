"""Shim: the ``assemblers robustness`` command moved to :mod:`sims.robustness.cli`."""

from sims.robustness.cli import (  # noqa: F401
    MAX_RANDOM_POSES,
    MAX_SAMPLES,
    NOISE_KINDS,
    configure_robustness,
    run_robustness,
)
