"""Fuzz the command line: hypothesis draws a command, its options (valid and invalid values,
random text) and the contents of the files it reads, runs it in this process through
``assemblers.cli.main``, and checks the contract of issue 13: exit status 0, 1 or 2, no
exception escaping (a traceback on the console), and strict JSON whenever ``--json`` printed.

Time is bounded: the commands whose valid runs are expensive (robustness, demo) only get value
pools that keep them in argument checking; the rest run for real on small inputs.  A few tens
of seconds in all once the kernels are compiled.
"""

import contextlib
import io
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import DUO_TOML

from assemblers.cli import main

HOME_DUO = "0 0 0.2507 0 0 0 0 0 0.2507 0 0 0"
TARGET = "0.01 0 0.63 0.02 0 0.05"

junk = st.one_of(st.text(max_size=12), st.sampled_from(
    ["", " ", "nan", "inf", "-inf", "1e400", "-1", "0", "1e30", "x", "1,2", "\udcff", "--json",
     "0x10", "1_000", "１"]))
numbers_text = st.lists(st.sampled_from(["0", "0.25", "-0.1", "1e-9", "1e9", "nan", "inf", "x"]),
                        max_size=14).map(" ".join)

FILE_KINDS = ("toml", "target_json", "targets", "trajectory", "none", "fifo", "dir")
tomls = st.one_of(
    st.just(DUO_TOML),
    st.sampled_from([b"\xff\xfe[stack]\n", "a = " + "[" * 3000 + "]" * 3000,
                     DUO_TOML.replace('["p", "p"]', "[" + '"p", ' * 199 + '"p"]'),
                     DUO_TOML.replace("top_radius = 0.15", "top_radius = 1e-300"),
                     DUO_TOML.replace("leg_max = 0.32", "leg_max = 0.32\nmax_joint_angle_deg = 2")]),
    st.builds(lambda a, b: DUO_TOML.replace(a, b),
              st.sampled_from(["0.15", "0.20", "0.32", "15.0", '["p", "p"]', "[stack]"]),
              st.sampled_from(["0", "-1", "1e300", "nan", '"x"', "[]", "[1, 2]", "{}", "1" * 400,
                               "[" * 60 + "]" * 60, '["p"]', "[platforms.q]"])),
    st.binary(max_size=60),
)
target_jsons = st.one_of(
    st.sampled_from(['{"pose": [0.01, 0, 0.63, 0.02, 0, 0.05]}', '{"T": [[1, 0], [0, 1]]}',
                     '{"pose": "x"}', '{"pose": [1e999, 0, 0, 0, 0, 0]}', "[]", "null", "{",
                     '{"pose": [' + "9" * 500 + ', 0, 0, 0, 0, 0]}', '{"T": {"a": 1}}',
                     "[" * 5000 + "]" * 5000]),
    st.binary(max_size=40),
)
targets = st.one_of(
    st.sampled_from(["t,x,y,z,roll,pitch,yaw\n0,0.01,0,0.63,0,0,0\n0.1,0.011,0,0.63,0,0,0\n",
                     "t,x,y,z,roll,pitch,yaw\n0,0,0,0,0,0\n", "t,x\n", "",
                     "t,x,y,z,roll,pitch,yaw\n1,0,0,0.6,0,0,0\n0,0,0,0.6,0,0,0\n",
                     "t,x,y,z,roll,pitch,yaw\nnan,0,0,0.6,0,0,0\n"]),
    st.binary(max_size=40),
)
trajectories = st.sampled_from([
    json.dumps({"format": "assemblers-trajectory", "version": 1, "t": [0.0],
                "Q": [[0, 0, 0.2507, 0, 0, 0] * 2], "legs": [[[0.26] * 6] * 2]}),
    json.dumps({"format": "assemblers-trajectory", "version": 1, "t": [0.0], "Q": [[0] * 12],
                "legs": [[[0.26] * 6] * 2], "config": 5}),
    json.dumps({"format": "assemblers-trajectory", "version": 2}),
    json.dumps({"format": "assemblers-trajectory", "version": 1, "t": "x", "Q": [], "legs": []}),
    json.dumps({"format": "assemblers-trajectory", "version": 1, "t": [0.0, 0.0],
                "Q": [[0] * 12] * 2, "legs": [[[0.26] * 6] * 2] * 2, "meta": [1]}),
    "[" * 3000 + "]" * 3000,
    "\xff",
])

# command -> {option: strategy of its value}; None marks a flag
OPTIONS = {
    "info": {"--config": st.sampled_from(["duo", "single", "nope", "", "FILE:toml", "FILE:toml",
                                          "FILE:toml", "FILE:fifo", "FILE:dir", "/dev/null",
                                          "configs"]),
             "--json": None},
    "fk": {"--config": st.sampled_from(["duo", "FILE:toml"]),
           "--Q": st.one_of(st.just(HOME_DUO), numbers_text, junk), "--json": None},
    "jacobian": {"--config": st.sampled_from(["duo", "FILE:toml"]),
                 "--Q": st.one_of(st.just(HOME_DUO), st.just("0 0 0 0 0 0 " * 2), numbers_text),
                 "--wrt": st.sampled_from(["pose", "legs", "joints"]), "--json": None},
    "legs": {"--config": st.just("duo"),
             "--legs": st.one_of(st.just(" ".join(["0.26"] * 12)), numbers_text, junk),
             "--json": None},
    "solve": {"--config": st.sampled_from(["duo", "FILE:toml", "nope"]),
              "--target": st.one_of(st.just("0 0 1.6 0 0 0"), numbers_text, junk),
              "--target-file": st.sampled_from(["FILE:target_json", "FILE:fifo", "FILE:none"]),
              "--criterion": st.sampled_from(["fn", "even", "bogus"]),
              "--starts": st.sampled_from(["1", "0", "-3", "5000", "x", "1e3"]), "--json": None},
    "trajectory": {"--config": st.sampled_from(["duo", "FILE:toml"]),
                   "--to": st.one_of(st.just(TARGET), junk),
                   "--from": st.one_of(junk, numbers_text),
                   "--targets": st.sampled_from(["FILE:targets", "FILE:none", "FILE:dir"]),
                   "--duration": st.sampled_from(["0.05", "0", "-1", "nan", "1e12", "x"]),
                   "--rate": st.sampled_from(["100", "0", "1e9", "inf", "x"]),
                   "--out": st.sampled_from(["OUT:file", "OUT:fifo", "OUT:dir", "OUT:under_file",
                                             "OUT:existing"]),
                   "--json": None},
    "robustness": {"--config": st.sampled_from(["duo", "FILE:toml"]),
                   "--target": st.one_of(st.just(TARGET), junk),
                   "--samples": st.sampled_from(["0", "-1", "1e30", "x", "1.5", "nan", "1e11"]),
                   "--seed": st.sampled_from(["0", "-1", "1e19", "x"]),
                   "--random-poses": st.sampled_from(["0", "1e30", "-2"]),
                   "--sigma-xyz": st.one_of(junk, st.just("1e-4 1e-4")),
                   "--noise": st.sampled_from(["pose", "legs,joints", "bogus", ""]),
                   "--out": st.sampled_from(["OUT:file", "OUT:dir", "OUT:fifo"]), "--json": None},
    "show": {"--config": st.sampled_from(["duo", "FILE:toml"]),
             "--pose": st.one_of(st.just(HOME_DUO), numbers_text),
             "--trajectory": st.sampled_from(["FILE:trajectory", "FILE:none", "FILE:fifo"]),
             "--frame": st.sampled_from(["0", "-1", "5", "99999999999999999999", "x"]),
             "--width": st.sampled_from(["64", "3", "100000", "x"]),
             "--height": st.sampled_from(["48", "0", "-5"]),
             "--fov": st.sampled_from(["40", "nan", "1e300", "200"]),
             "--out": st.sampled_from(["OUT:png", "OUT:fifo", "OUT:dir", "OUT:under_file",
                                       "OUT:bad_suffix"]),
             "--json": None},
    "animate": {"--config": st.sampled_from(["duo"]),
                "--trajectory": st.sampled_from(["FILE:trajectory", "FILE:none"]),
                "--fps": st.sampled_from(["0", "-1", "nan", "1e9", "x"]),
                "--stride": st.sampled_from(["0", "-1", "x", "10000000"]),
                "--out": st.sampled_from(["OUT:gif", "OUT:fifo", "OUT:txt"]), "--json": None},
    "demo": {"--target": st.one_of(junk, numbers_text),
             "--samples": st.sampled_from(["x", "-1", "nan"]),
             "--out": st.sampled_from(["OUT:under_file", "OUT:file_exists"])},
    "bench": {"NAME": st.sampled_from(["../tests/conftest", "nope", "/etc/passwd", ""])},
}


def _materialize(value: str, kind_files: dict, tmp) -> str:
    """Turn FILE:kind / OUT:kind placeholders into real paths under ``tmp``."""
    if value.startswith("FILE:"):
        kind = value[5:]
        path = tmp / f"in-{kind}"
        if kind == "fifo":
            if not path.exists():
                os.mkfifo(path)
        elif kind == "dir":
            path.mkdir(exist_ok=True)
        elif kind != "none":
            data = kind_files[kind]
            path.write_bytes(data if isinstance(data, bytes)
                             else data.encode("utf-8", "surrogatepass"))
        return str(path)
    if value.startswith("OUT:"):
        kind = value[4:]
        suffix = {"png": ".png", "gif": ".gif", "txt": ".txt", "bad_suffix": ".xyz"}.get(kind, ".json")
        path = tmp / f"out-{kind}{suffix}"
        if kind == "fifo" and not path.exists():
            os.mkfifo(path)
        elif kind == "dir":
            path.mkdir(exist_ok=True)
        elif kind in ("under_file", "file_exists"):
            (tmp / "afile").write_text("x")
            path = tmp / "afile" / "x.json" if kind == "under_file" else tmp / "afile"
        elif kind == "existing":
            path.write_text("old")
        return str(path)
    return value


# options always given (one of each tuple), so that the fuzz reaches the files and the work
# instead of stopping at a missing required option; robustness and demo always get a --samples
# from a pool of bad values, which keeps them in argument checking
PRIMARY = {"solve": [("--target", "--target-file")], "trajectory": [("--out",), ("--to", "--targets")],
           "robustness": [("--target",), ("--samples",)], "show": [("--out",)],
           "animate": [("--trajectory",), ("--out",)], "demo": [("--samples",)],
           "info": [("--config",)], "fk": [("--Q",)], "legs": [("--legs",)], "bench": [("NAME",)]}


@st.composite
def invocations(draw, commands):
    cmd = draw(st.sampled_from(commands))
    opts = OPTIONS[cmd]
    argv = [cmd]
    chosen = [draw(st.sampled_from(group)) for group in PRIMARY.get(cmd, [])]
    # and a few more at a time, so that some invocations are valid and run for real
    chosen += [o for o in draw(st.lists(st.sampled_from(sorted(opts)), max_size=3, unique=True))
               if o not in chosen]
    for opt in chosen:
        if opts[opt] is None:
            argv.append(opt)
        elif opt == "NAME":
            argv.append(draw(opts[opt]))
        else:
            argv += [opt, draw(opts[opt])]
    if draw(st.integers(0, 9)) == 0:  # now and then a stray token
        argv.insert(draw(st.integers(1, len(argv))), draw(junk))
    files = {"toml": draw(tomls), "target_json": draw(target_jsons), "targets": draw(targets),
             "trajectory": draw(trajectories)}
    return argv, files


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: usage errors (2) and --help (0)
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def _check(argv, files, tmp):
    argv = [_materialize(a, files, tmp) for a in argv]
    code, out, err = _run(argv)
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err, (argv, err)
    if "--json" in argv and code in (0, 1) and out.strip() and argv[0] != "demo":
        def strict(c):
            raise AssertionError(f"{argv}: {c} in JSON output")

        json.loads(out, parse_constant=strict)
    for p in tmp.iterdir():  # nothing but a regular file was replaced, and no temporaries left
        assert not p.name.startswith(".out-"), (argv, p)
        if p.name.startswith("out-fifo") or p.name.startswith("in-fifo"):
            assert p.is_fifo(), (argv, p)
        if p.name.startswith("out-dir"):
            assert p.is_dir(), (argv, p)


FUZZ = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module", autouse=True)
def _warm_kernels():
    """Compile the JAX kinematics for duo once, so the fuzz examples run in milliseconds."""
    _run(["jacobian", "--config", "duo", "--wrt", "legs"])


@FUZZ
@given(invocations(["info", "fk", "jacobian", "legs"]))
def test_fuzz_kinematics_commands(tmp_path_factory, inv):
    _check(*inv, tmp_path_factory.mktemp("k"))


@FUZZ
@given(st.sampled_from(["info", "fk", "jacobian"]), tomls, st.booleans())
def test_fuzz_config_files(tmp_path_factory, cmd, toml, as_json):
    argv = [cmd, "--config", "FILE:toml"] + (["--json"] if as_json else [])
    _check(argv, {"toml": toml}, tmp_path_factory.mktemp("c"))


@FUZZ
@given(invocations(["solve", "trajectory", "bench"]))
def test_fuzz_ik_commands(tmp_path_factory, inv):
    _check(*inv, tmp_path_factory.mktemp("ik"))


@FUZZ
@given(invocations(["robustness", "show", "animate", "demo"]))
def test_fuzz_sims_commands(tmp_path_factory, inv):
    _check(*inv, tmp_path_factory.mktemp("s"))
