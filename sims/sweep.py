"""Old import path (docs/architecture.md, "Old import paths"): sweeps moved to the package
:mod:`sims.sweeps` (spec, workers, storage, driver, maps, cli). The documented names stay
importable here; new code imports ``sims.sweeps``."""

from sims.sweeps import *  # noqa: F403
from sims.sweeps import __all__  # noqa: F401
from sims.sweeps.spec import MODES, SCHEMA_VERSION  # noqa: F401
