"""Shim: sweeps moved to the package :mod:`sims.sweeps` (spec, workers, storage, driver, maps,
cli).  These names are re-exported until callers have moved; new code imports ``sims.sweeps``."""

from sims.sweeps import *  # noqa: F403
from sims.sweeps import __all__  # noqa: F401
from sims.sweeps.spec import MODES, SCHEMA_VERSION  # noqa: F401
