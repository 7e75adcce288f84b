"""The public names users see still work after the redesign (issue 14): SPEC's Python API, the
README's, and the documented old import paths (docs/architecture.md, "Old import paths").
The lists are written out here from SPEC.md and the README, not read from the package."""

import importlib

import numpy as np
import pytest

import assemblers

SPEC_NAMES = ("load_config", "home_pose", "forward_kinematics", "leg_lengths", "jacobian",
              "sensitivity", "solve_ik", "from_legs", "leg_forces")
README_NAMES = ("pose_to_transform", "solve_trajectory", "calibrate", "write_config",
                "compliance", "deflection")
OLD_PATHS = {"assemblers.io": ("assemblers.model.io",
                                ("load_trajectory", "save_trajectory", "Trajectory")),
             "assemblers.transforms": ("assemblers.geometry.api",
                                       ("pose_to_transform", "transform_to_pose"))}


@pytest.mark.parametrize("name", SPEC_NAMES + README_NAMES)
def test_public_name(name):
    assert callable(getattr(assemblers, name))
    assert name in assemblers.__all__


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_old_path_is_the_new_home(old):
    new, names = OLD_PATHS[old]
    mod, home = importlib.import_module(old), importlib.import_module(new)
    for name in names:
        assert getattr(mod, name) is getattr(home, name)


def test_spec_calls_shapes():
    """SPEC's shapes, single and batched, through the public names only."""
    asm = assemblers.load_config("configs/trio.toml")
    Q = assemblers.home_pose(asm)
    n = asm.n_platforms
    assert Q.shape == (6 * n,)
    assert assemblers.forward_kinematics(asm, Q).shape == (4, 4)
    assert assemblers.forward_kinematics(asm, np.stack([Q, Q])).shape == (2, 4, 4)
    L = assemblers.leg_lengths(asm, Q)
    assert L.shape == (n, 6)
    assert assemblers.leg_lengths(asm, np.stack([Q] * 3)).shape == (3, n, 6)
    assert assemblers.jacobian(asm, Q, wrt="pose").shape == (6, 6 * n)
    assert assemblers.jacobian(asm, Q, wrt="legs").shape == (6, 6 * n)
    np.testing.assert_allclose(assemblers.from_legs(asm, L), Q, atol=1e-10)
    assert assemblers.leg_forces(asm, Q).shape == (n, 6)
    assert assemblers.leg_forces(asm, np.stack([Q, Q])).shape == (2, n, 6)
