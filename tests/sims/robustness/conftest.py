"""Fixtures of the robustness tests: one small study of ``duo`` shared by the study and the
report tests."""

import pytest

from assemblers.geometry.api import pose_to_transform
from sims.robustness.study import run_study

TARGET_DUO = "0.02 -0.01 0.55 0.05 0.0 0.1"  # reachable by duo


@pytest.fixture(scope="session")
def duo_study(duo):
    return run_study(duo, pose_to_transform([float(x) for x in TARGET_DUO.split()]),
                     n_samples=20_000, seed=3, n_random=2, n_scatter=500, progress=False)
