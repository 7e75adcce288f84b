"""Config loading: every shipped config loads; every listed error gets its message."""

import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from support import DUO_TOML, with_joints

import assemblers as A
from assemblers.cli import main


def write(tmp_path, text, name="robot.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_shipped_configs_load():
    names = A.shipped_configs()
    assert {"assembler", "single", "duo", "trio"} <= set(names)
    asm = A.load_config("assembler")
    assert asm.n_platforms == 4
    # docs/config.md: the default home puts every leg at mid-stroke for a symmetric layout
    np.testing.assert_allclose(A.leg_lengths(asm, A.home_pose(asm)), 0.26, rtol=1e-14)
    # tool 0.10 m above the top plate, 2 cm spacers
    z = A.forward_kinematics(asm, A.home_pose(asm))[2, 3]
    assert z == pytest.approx(4 * asm.platforms[0].home_height + 3 * 0.02 + 0.10, abs=1e-14)


def test_mixed_types_explicit_joints_and_interface_rotation():
    asm = A.load_config("trio")
    assert [p.name for p in asm.platforms] == ["large", "small", "small"]
    assert asm.platforms[1].top_joints[0, 2] == -0.01
    assert asm.sensitivity.wrt == "legs" and asm.sensitivity.sigma_leg == 1e-4
    c, s = math.cos(math.pi / 3), math.sin(math.pi / 3)
    np.testing.assert_allclose(asm.T_interfaces[1][:3, :3], [[c, -s, 0], [s, c, 0], [0, 0, 1]],
                               atol=1e-15)


def test_explicit_joints_equal_parametric(tmp_path):
    from assemblers.model.config import parametric_layout

    b, t = parametric_layout(0.15, 0.15, 15.0, 15.0)
    a1 = A.load_config(write(tmp_path, DUO_TOML, "a.toml"))
    a2 = A.load_config(write(tmp_path, with_joints(b.tolist(), t.tolist()), "b.toml"))
    np.testing.assert_array_equal(a1.arrays.b, a2.arrays.b)
    assert a1.platforms[0].home_height == a2.platforms[0].home_height


def test_mount_tool_and_home_height(tmp_path):
    text = DUO_TOML + 'mount = { xyz = [1.0, 2.0, 3.0], rpy = [0.0, 0.0, 0.5] }\n' \
                      'tool = { xyz = [0.0, 0.0, 0.1] }\n'
    text = text.replace("leg_max = 0.32", "leg_max = 0.32\nhome_height = 0.24")
    asm = A.load_config(write(tmp_path, text))
    assert asm.platforms[0].home_height == 0.24
    T = A.forward_kinematics(asm, A.home_pose(asm))
    np.testing.assert_allclose(T[:3, 3], [1.0, 2.0, 3.0 + 0.48 + 0.1], atol=1e-14)
    assert math.atan2(T[1, 0], T[0, 0]) == pytest.approx(0.5)


FIVE_JOINTS = "[[0.1, 0, 0], [0, 0.1, 0], [-0.1, 0, 0], [0, -0.1, 0], [0.07, 0.07, 0]]"
SIX_JOINTS = FIVE_JOINTS[:-1] + ", [0.07, -0.07, 0]]"

# (description, edit of DUO_TOML, expected message fragment (regex), key named)
CASES = [
    ("missing key", lambda s: s.replace("leg_min = 0.20\n", ""),
     r"platforms\.p\.leg_min: missing \(required\)"),
    ("unknown key", lambda s: s.replace("leg_min = 0.20", "leg_min = 0.20\nleg_mni = 0.2"),
     r"platforms\.p\.leg_mni: unknown key in \[platforms\.p\]"),
    ("unknown top-level table", lambda s: s + "\n[sensitivty]\nwrt = 'pose'\n",
     r"sensitivty: unknown key in the top level"),
    ("wrong type", lambda s: s.replace("leg_max = 0.32", 'leg_max = "0.32"'),
     r"platforms\.p\.leg_max: must be a number, got a string"),
    ("six joints not given", lambda s: with_joints(FIVE_JOINTS, SIX_JOINTS),
     r"platforms\.p\.base_joints: must be 6 rows of 3 numbers"),
    ("joint row of wrong length", lambda s: with_joints(
        "[[0.1, 0], [0, 0.1, 0], [-0.1, 0, 0], [0, -0.1, 0], [0.07, 0.07, 0], [1,1,0]]", SIX_JOINTS),
     r"platforms\.p\.base_joints\[0\]: must be a list of 3 numbers"),
    ("leg_min >= leg_max", lambda s: s.replace("leg_min = 0.20", "leg_min = 0.40"),
     r"platforms\.p\.leg_min: must be less than leg_max \(0\.4 >= 0\.32\)"),
    ("home legs outside stroke", lambda s: s.replace("leg_max = 0.32", "leg_max = 0.32\nhome_height = 0.05"),
     r"platforms\.p\.home_height: at the home pose \(z = 0\.05 m\) leg 0 is .* outside the stroke"),
    ("NaN", lambda s: s.replace("top_radius = 0.15", "top_radius = nan"),
     r"platforms\.p\.top_radius: must be a finite number, got nan"),
    ("infinity", lambda s: s.replace("leg_max = 0.32", "leg_max = inf"),
     r"platforms\.p\.leg_max: must be a finite number, got inf"),
    ("unknown platform type", lambda s: s.replace('["p", "p"]', '["p", "q"]'),
     r"stack\.platforms\[1\]: unknown platform type 'q' \(defined: p\)"),
    ("interfaces of the wrong count", lambda s: s + "interfaces = [{}, {}]\n",
     r"stack\.interfaces: must be a list of 1 entries .* got 2"),
    ("bad wrt", lambda s: s + "\n[sensitivity]\nwrt = 'joints'\n",
     r"sensitivity\.wrt: must be one of 'pose', 'legs', got 'joints'"),
    ("negative sigma", lambda s: s + "\n[sensitivity]\nsigma_leg = -1.0\n",
     r"sensitivity\.sigma_leg: must be positive"),
    ("both layouts", lambda s: s.replace("leg_min = 0.20", "leg_min = 0.20\nbase_joints = []"),
     r"platforms\.p\.base_joints: give either the parametric layout"),
    ("bad rpy", lambda s: s + "tool = { xyz = [0, 0, 0.1], rpy = [0, 0] }\n",
     r"stack\.tool\.rpy: must be a list of 3 numbers"),
    ("hardware platform count", lambda s: s + "\n[hardware]\n[[hardware.platform]]\nport = 'loop://'\n",
     r"hardware\.platform: gives 1 entries; the stack has 2 platforms"),
    ("not TOML", lambda s: s + "\nthis is = = not toml\n", r"not valid TOML"),
]


@pytest.mark.parametrize("desc,edit,pattern", CASES, ids=[c[0] for c in CASES])
def test_config_errors_have_clear_messages(tmp_path, desc, edit, pattern):
    path = write(tmp_path, edit(DUO_TOML))
    with pytest.raises(A.ConfigError, match=pattern) as info:
        A.load_config(path)
    msg = str(info.value)
    assert msg.startswith(str(path)), msg  # names the file first
    assert "\n" not in msg  # one line


@pytest.mark.parametrize("desc,edit,pattern", CASES[:6], ids=[c[0] for c in CASES[:6]])
def test_cli_bad_config_exit_2_without_traceback(tmp_path, capsys, desc, edit, pattern):
    path = write(tmp_path, edit(DUO_TOML))
    assert main(["info", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1 and str(path) in err


def test_cli_subprocess_bad_config(tmp_path):
    path = write(tmp_path, DUO_TOML.replace("leg_min = 0.20", "leg_min = 0.40"))
    r = subprocess.run([sys.executable, "-m", "assemblers.cli", "info", "--config", str(path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "leg_min: must be less than leg_max" in r.stderr
    assert r.stdout == ""


def test_missing_file_lists_shipped():
    with pytest.raises(A.ConfigError, match=r"no such config file \(shipped configs: assembler"):
        A.load_config("/nonexistent/robot.toml")
