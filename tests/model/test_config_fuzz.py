"""Fuzz the config loader: whatever the content, it returns an Assembler or raises ConfigError
(the one documented exception), and an Assembler it returns is usable (finite geometry, a
home pose inside every limit)."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import assemblers as A

MAX_PLATFORMS = 32  # docs/config.md, "Limits"

GOOD = {
    "name": "fuzz",
    "platforms": {"p": {"base_radius": 0.15, "top_radius": 0.15, "base_pair_angle_deg": 15.0,
                        "top_pair_angle_deg": 15.0, "leg_min": 0.20, "leg_max": 0.32}},
    "stack": {"platforms": ["p", "p"], "interfaces": [{"xyz": [0.0, 0.0, 0.03]}],
              "tool": {"xyz": [0.0, 0.0, 0.1], "rpy": [0.0, 0.0, 0.0]}},
    "sensitivity": {"wrt": "pose", "length_scale": 1.0},
}
KEYS = ["base_radius", "top_radius", "base_pair_angle_deg", "top_pair_angle_deg", "leg_min",
        "leg_max", "max_joint_angle_deg", "home_height", "pose_min", "pose_max", "base_joints",
        "top_joints", "platforms", "stack", "xyz", "rpy", "interfaces", "mount", "tool", "wrt",
        "sigma_leg", "length_scale", "hardware", "rate_hz", "name", "p", "q", ""]

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1.0, max_value=1.0),
    st.sampled_from([0.0, 0.1, 0.15, 0.2, 0.25, 0.32, 1e-300, 1e300, -0.0, 90.0, 119.0, 120.0]),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.just(10**400),
)
scalars = st.one_of(numbers, st.booleans(), st.text(max_size=8), st.sampled_from(KEYS))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=7),
                            st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
    max_leaves=30,
)


def _paths(d, prefix=()):
    """Every key path of nested dicts/lists in ``d``."""
    out = []
    items = d.items() if isinstance(d, dict) else enumerate(d) if isinstance(d, list) else ()
    for k, v in items:
        out.append((*prefix, k))
        out += _paths(v, (*prefix, k))
    return out


@st.composite
def mutated_configs(draw):
    """GOOD with a few values replaced, keys added or removed, or whole tables swapped."""
    import copy

    doc = copy.deepcopy(GOOD)
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        old = parent[path[-1]]
        action = draw(st.sampled_from(["scale", "scale", "replace", "delete", "add"]))
        if action == "scale" and isinstance(old, float):  # near-valid: the physical limits
            parent[path[-1]] = old * draw(st.sampled_from([0.0, -1.0, 0.5, 2.0, 10.0, 1e3, 1e-6,
                                                           1e300]))
        elif action in ("scale", "replace"):
            parent[path[-1]] = draw(st.one_of(numbers, values))
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(KEYS))] = draw(values)
        elif isinstance(parent, list):
            parent.append(draw(values))
    return doc


def _check_usable(asm):
    assert 1 <= asm.n_platforms <= MAX_PLATFORMS
    for p in asm.platforms:
        assert np.isfinite(p.base_joints).all() and np.isfinite(p.top_joints).all()
        legs = np.linalg.norm(p.home_pose[:3] + p.top_joints - p.base_joints, axis=1)
        assert np.all(legs >= p.leg_min - 1e-9) and np.all(legs <= p.leg_max + 1e-9)
    for T in (asm.T_mount, asm.T_tool, *asm.T_interfaces):
        assert np.isfinite(T).all()


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated_configs())
def test_config_from_dict_raises_only_config_error(doc):
    try:
        asm = A.config_from_dict(doc, "fuzz.toml")
    except A.ConfigError as exc:
        msg = str(exc)
        assert msg.startswith("fuzz.toml: ") and "\n" not in msg
        return
    _check_usable(asm)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
    st.builds(lambda d, tail: d + tail,
              st.sampled_from(["[stack]\nplatforms = ", "a = ", "[platforms.p]\nleg_min = ",
                               "x = {y = ", "[[hardware.platform]]\nport = "]),
              st.text(alphabet="[]{}\"'=.,0123456789e+-\n abc", max_size=300)),
    st.integers(1, 3000).map(lambda n: "a = " + "[" * n + "]" * n),
    st.integers(1, 3000).map(lambda n: "a = " + "{b = " * n + "1" + "}" * n),
))
def test_load_config_raises_only_config_error(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("cfg") / "robot.toml"
    if isinstance(content, str):
        content = content.encode("utf-8", "surrogatepass")
    path.write_bytes(content)
    try:
        asm = A.load_config(path)
    except A.ConfigError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)
        return
    _check_usable(asm)


def test_fuzz_base_config_is_valid():
    """The fuzzer starts from a config that loads (else it would only test rejections)."""
    asm = A.config_from_dict(GOOD, "fuzz.toml")
    assert asm.n_platforms == 2
