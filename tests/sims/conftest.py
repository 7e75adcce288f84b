"""Fixtures of the sims tests: the shipped Assemblers and stack poses inside the strokes."""

import numpy as np
import pytest

import assemblers


@pytest.fixture(scope="session")
def trio():
    return assemblers.load_config("trio")


@pytest.fixture(scope="session")
def duo():
    return assemblers.load_config("duo")


def _pose_in_strokes(asm, seed, lim, margin):
    """A random stack pose ``home +- lim`` (6N,) whose legs are ``margin`` m inside the strokes."""
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        Q = assemblers.home_pose(asm) + rng.uniform(-lim, lim)
        L = assemblers.leg_lengths(asm, Q)
        if np.all(L > asm.leg_min[:, None] + margin) and np.all(L < asm.leg_max[:, None] - margin):
            return Q
    raise AssertionError("no pose inside the strokes found")


@pytest.fixture(scope="session")
def feasible_pose():
    """``feasible_pose(asm, seed, scale=1.0)``: a random stack pose (m, rad) within +-1 cm and
    +-0.05 rad (times ``scale``) of home per platform, every leg 5 mm inside its stroke."""

    def make(asm, seed, scale=1.0):
        lim = np.tile([0.01, 0.01, 0.01, 0.05, 0.05, 0.05], asm.n_platforms) * scale
        return _pose_in_strokes(asm, seed, lim, 0.005)

    return make


@pytest.fixture(scope="session")
def near_home():
    """``near_home(asm, seed)``: a random stack pose within +-2 cm in x, y, 1.5 cm in z and
    0.08 / 0.08 / 0.1 rad of home per platform, every leg inside its stroke (the views and the
    physics check)."""

    def make(asm, seed):
        lim = np.tile([0.02, 0.02, 0.015, 0.08, 0.08, 0.1], asm.n_platforms)
        return _pose_in_strokes(asm, seed, lim, 0.0)

    return make
