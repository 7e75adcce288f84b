"""Shared test set-up: float64 JAX, headless matplotlib, hypothesis profile, fixtures."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

jax.config.update("jax_enable_x64", True)

settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

import assemblers  # noqa: E402

SHIPPED = assemblers.shipped_configs()


@pytest.fixture(scope="session")
def default_asm():
    return assemblers.load_config("assembler")


@pytest.fixture(scope="session", params=SHIPPED)
def any_asm(request):
    return assemblers.load_config(request.param)


def random_poses(asm, rng, n, scale=1.0):
    """(n, 6N) stack poses near home: +-3 cm, +-0.15 rad per platform (times ``scale``)."""
    N = asm.n_platforms
    lim = np.tile([0.03, 0.03, 0.03, 0.15, 0.15, 0.15], N) * scale
    return assemblers.home_pose(asm) + rng.uniform(-lim, lim, size=(n, 6 * N))
