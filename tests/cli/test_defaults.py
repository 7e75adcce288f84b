"""The one default target (assemblers.cli.defaults): the demo's target for the default
Assembler, the same move from home for every other config, and reachable by every shipped
config."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

import assemblers
from assemblers.cli.args import parse_target
from assemblers.cli.defaults import DEFAULT_TARGET_TEXT, default_target, target_or_default


def test_default_assemblers_default_is_the_demos_target():
    from sims.demo import DEFAULT_TARGET as DEMO

    T = default_target(assemblers.load_config("assembler"))
    assert np.array_equal(T, parse_target(DEMO))
    assert np.array_equal(T, parse_target(DEFAULT_TARGET_TEXT))


@pytest.mark.parametrize("name", assemblers.shipped_configs())
def test_every_shipped_config_reaches_its_default_target(name):
    asm = assemblers.load_config(name)
    T = default_target(asm)
    T_home = assemblers.forward_kinematics(asm, assemblers.home_pose(asm))
    ref = assemblers.load_config("assembler")
    T_ref_home = assemblers.forward_kinematics(ref, assemblers.home_pose(ref))
    # the same move from home: position offset in the world frame, rotation R_offset R_home
    np.testing.assert_allclose(T[:3, 3] - T_home[:3, 3],
                               parse_target(DEFAULT_TARGET_TEXT)[:3, 3] - T_ref_home[:3, 3],
                               atol=1e-12)
    np.testing.assert_allclose(T[:3, :3] @ T_home[:3, :3].T,
                               parse_target(DEFAULT_TARGET_TEXT)[:3, :3], atol=1e-12)
    r = assemblers.solve_ik(asm, T)
    assert r.success, r.message


def test_given_target_wins():
    asm = assemblers.load_config("duo")
    T, text = target_or_default(argparse.Namespace(target="0 0 0.6 0 0 0"), asm)
    assert text == "0 0 0.6 0 0 0" and T[2, 3] == 0.6
    T, text = target_or_default(argparse.Namespace(target=None), asm)
    assert text.endswith("(default)") and np.array_equal(T, default_target(asm))


@pytest.mark.parametrize("name", ["assembler", "duo"])
def test_commands_use_the_one_default_target(capsys, name):
    """``solve`` without --target solves the config's default target (the demo's for the
    default Assembler); ``demo`` and ``robustness`` take the same text (target_text)."""
    import json

    from assemblers.cli import main
    from assemblers.cli.defaults import target_text

    asm = assemblers.load_config(name)
    assert main(["solve", "--config", name, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    r = assemblers.solve_ik(asm, default_target(asm))
    np.testing.assert_allclose(doc["Q"], r.Q, atol=1e-9)
    np.testing.assert_allclose(parse_target(target_text(default_target(asm))), default_target(asm),
                               atol=1e-11)
    if name == "assembler":
        assert target_text(default_target(asm)) == DEFAULT_TARGET_TEXT
