"""Old import path (docs/architecture.md, "Old import paths"): the robustness study moved to
:mod:`sims.robustness.study`."""

from sims.robustness.study import (  # noqa: F401
    DEFAULT_SIGMA,
    METRICS,
    PoseResult,
    StudyResult,
    TargetUnreachable,
    default_disturbance,
    default_study_criterion,
    run_studies,
    run_study,
)
