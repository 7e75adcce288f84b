"""Old import path (docs/architecture.md, "Old import paths"): the physics check moved to
:mod:`sims.viz.physics` (the model to :mod:`sims.viz.dynamics`)."""

from sims.viz.dynamics import PhysicsModel, PhysicsParams, plate_mass  # noqa: F401
from sims.viz.physics import PhysicsReport, leg_error_study, physics_check  # noqa: F401
