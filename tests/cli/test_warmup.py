"""``assemblers warmup`` and the first-run notice (issue 19): the cheap cold-cache check, the
chains of kernel groups, the notice printed once at the moment kernels really compile (never
for bad input), the groups compiled in a child process and found by the next run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assemblers import warmup as W

NOTICE = "compiling kernels for this machine, first run only"


def _fake_cache(root, names):
    """A Numba cache folder holding index files ``"<pkg>/<module>.<func>"`` (line 1)."""
    for name in names:
        pkg, _, stem = name.partition("/")
        d = root / f"{pkg}_0123abcd"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{stem}-1.py311.nbi").write_bytes(b"")
    return root


def test_groups_are_registered_with_their_sentinels():
    groups = W.groups()
    assert {"kinematics", "ik", "ipm", "montecarlo"} <= set(groups)
    for g in groups.values():
        assert g.sentinels and ":" in g.warm and g.seconds > 0


def test_cold_check_reads_the_index_files(tmp_path):
    ik = W.groups()["ik"]
    assert W.cold(["ik", "montecarlo"], root=tmp_path) == ["ik", "montecarlo"]
    _fake_cache(tmp_path, ik.sentinels[:-1])
    assert not W.is_compiled(ik, tmp_path)  # one sentinel short: still cold
    _fake_cache(tmp_path, ik.sentinels)
    assert W.is_compiled(ik, tmp_path)
    assert W.cold(["ik", "montecarlo"], root=tmp_path) == ["montecarlo"]
    # ipm needs ik first: a cold ipm on a cold cache brings ik with it, in order, in one chain
    assert W.cold(["ipm"], root=tmp_path / "empty") == ["ik", "ipm"]
    assert W.chains(["ik", "ipm", "montecarlo"]) == [["ik", "ipm"], ["montecarlo"]]


def test_estimate_is_the_longest_chain_on_enough_cores():
    g = W.groups()
    two = W.estimate_seconds(["ik", "montecarlo"], workers=2)
    one = W.estimate_seconds(["ik", "montecarlo"], workers=1)
    assert two == pytest.approx(max(g["ik"].seconds, g["montecarlo"].seconds) + 2)
    assert one == pytest.approx(g["ik"].seconds + g["montecarlo"].seconds + 2)  # one process


def test_chains_are_packed_into_one_process_per_core():
    """More chains than cores: the longest chain alone, the others packed onto the least
    loaded process, in group order (ik_leaves first: the ik process is waiting for it); as
    many cores as chains: one process each."""
    g = W.groups()
    names = ["ik_leaves", "ik", "montecarlo"]
    assert g["ik"].seconds >= g["montecarlo"].seconds >= g["ik_leaves"].seconds
    assert W.processes(names, 2) == [["ik"], ["ik_leaves", "montecarlo"]]
    assert W.processes(names, 3) == W.chains(names) == [["ik_leaves"], ["ik"], ["montecarlo"]]
    assert W.processes(names, 1) == [["ik_leaves", "ik", "montecarlo"]]
    assert W.estimate_seconds(names, 2) == pytest.approx(
        max(g["ik"].seconds, g["ik_leaves"].seconds + g["montecarlo"].seconds) + 2)


def _cli(args, cache, **env):
    e = dict(os.environ, ASSEMBLERS_CACHE_DIR=str(cache), **env)
    e.pop("NUMBA_CACHE_DIR", None)
    return subprocess.run([sys.executable, "-m", "assemblers", *args], env=e,
                          capture_output=True, text=True, timeout=900)


def test_bad_input_on_a_cold_cache_says_nothing_about_kernels(tmp_path):
    r = _cli(["fk", "--Q", "1 2 3"], tmp_path / "cache")
    assert r.returncode == 2
    assert NOTICE not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def _processes_with_env(entry: str) -> list[int]:
    """The processes (Linux ``/proc``) whose environment holds ``entry`` (``NAME=value``)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if entry.encode() in (d / "environ").read_bytes().split(b"\0"):
                    out.append(int(d.name))
            except OSError:
                continue
    return out


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_interrupt_while_waiting_for_the_groups_leaves_no_compiler(tmp_path):
    """Ctrl-C while the first run waits for its groups: exit 130 with one line, and the
    groups' processes are gone."""
    import signal

    cache = tmp_path / "cache"
    env = dict(os.environ, ASSEMBLERS_CACHE_DIR=str(cache), ASSEMBLERS_PRECOMPILE="parallel")
    env.pop("NUMBA_CACHE_DIR", None)
    p = subprocess.Popen([sys.executable, "-m", "assemblers", "solve", "--target",
                          "0.02 0.01 1.07 0.05 0.0 0.1"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    first = p.stderr.readline()  # the notice: the command is waiting for its groups now
    assert NOTICE in first, first
    time.sleep(1.0)
    assert _processes_with_env(f"ASSEMBLERS_CACHE_DIR={cache}")  # the groups, compiling
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, (p.returncode, err)
    assert "interrupted" in err
    time.sleep(0.5)
    assert _processes_with_env(f"ASSEMBLERS_CACHE_DIR={cache}") == []


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_bad_input_stops_the_groups_started_early(tmp_path):
    """In parallel mode the groups start compiling as the command starts (before its first
    kernel); a command that fails on bad input before any kernel stops them: exit 2, its one
    line, no notice, no compiler process left behind, nothing compiled."""
    cache = tmp_path / "cache"
    t0 = time.perf_counter()
    r = _cli(["solve", "--target", "1 2"], cache, ASSEMBLERS_PRECOMPILE="parallel")
    assert r.returncode == 2, r.stderr
    assert NOTICE not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "--target" in r.stderr
    assert time.perf_counter() - t0 < 30.0  # not after the groups (about 30 s)
    assert _processes_with_env(f"ASSEMBLERS_CACHE_DIR={cache}") == []
    assert not list(cache.rglob("cold.solve-*.nbi"))


@pytest.mark.slow
def test_ik_leaves_compile_what_the_ik_group_uses(tmp_path):
    """The ik_leaves group calls its kernels with the very types the cold solve passes them:
    compiling it and then the ik group into an empty cache leaves one specialization of each
    (a second would mean the ik group compiled its own and the first process was wasted).

    And no kernel of a first run's groups holds Numba's formatter of a slice assignment's
    shape error (``A[:, :] = B`` compiles it: about 3 s in each process, and linked into every
    kernel above; the kernels copy with :func:`assemblers.optim.linalg.copy_into`): its text is
    in the machine code of every cached kernel that links it."""
    cache = tmp_path / "cache"
    env = dict(os.environ, ASSEMBLERS_CACHE_DIR=str(cache), ASSEMBLERS_PRECOMPILE="off")
    env.pop("NUMBA_CACHE_DIR", None)
    r = subprocess.run([sys.executable, "-m", "assemblers.warmup", "kinematics", "ik_leaves",
                        "ik", "montecarlo"], env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    paths = list(cache.rglob("*.nbc"))
    files = [p.name for p in paths]
    for sentinel in W.groups()["ik_leaves"].sentinels:
        stem = sentinel.split("/")[-1]  # "<module>.<function>"
        specs = [f for f in files if f.startswith(stem + "-")]
        assert len(specs) == 1, (sentinel, specs)
    assert len(paths) > 50 and any(f.startswith("cold.solve-") for f in files)
    linked = [p.name for p in paths if b"cannot assign slice" in p.read_bytes()]
    assert not linked, linked


def test_unknown_group_is_bad_input(tmp_path):
    r = _cli(["warmup", "--group", "nope"], tmp_path / "cache")
    assert r.returncode == 2 and "unknown kernel group 'nope'" in r.stderr


@pytest.mark.slow
def test_first_run_notice_compiles_in_a_child_then_the_cache_is_warm(tmp_path):
    cache = tmp_path / "cache"
    first = _cli(["info", "--json"], cache, ASSEMBLERS_PRECOMPILE="parallel")
    assert first.returncode == 0, first.stderr
    assert first.stderr.count(NOTICE) == 1, first.stderr
    assert "kinematics: compiled in" in first.stderr  # by the child process, reported
    assert json.loads(first.stdout)["n_platforms"] == 4
    check = _cli(["warmup", "--check", "--group", "kinematics", "--json"], cache)
    assert check.returncode == 0 and json.loads(check.stdout)["groups"] == {"kinematics": True}
    second = _cli(["info"], cache)
    assert second.returncode == 0 and second.stderr == ""
    again = _cli(["warmup", "--group", "kinematics"], cache)
    assert again.returncode == 0 and "already compiled" in again.stdout
    off = _cli(["warmup", "--check"], tmp_path / "other", ASSEMBLERS_PRECOMPILE="off")
    assert off.returncode == 1  # nothing compiled there


def test_commands_compile_only_what_they_need():
    from assemblers.cli.warmup import kernels_of

    ik = ("ik_leaves", "ik")  # the IK kernels beside the criteria compile in a second process
    assert kernels_of("solve", ["--target", "0 0 1 0 0 0"]) == ik
    assert kernels_of("demo", []) == (*ik, "montecarlo")
    assert kernels_of("show", ["--out", "a.png"]) == ("kinematics",)  # the home pose
    assert kernels_of("show", ["--target=0 0 1 0 0 0", "--out", "a.png"]) == ik
    assert kernels_of("sweep", ["--out", "d"]) == ik
    assert kernels_of("sweep", ["--out", "d", "--mc-samples", "1e3"]) == (*ik, "montecarlo")
    assert kernels_of("emulate", []) == () and kernels_of("stream", []) == ()


def test_auto_goes_parallel_only_with_idle_cores_and_two_chains(monkeypatch):
    from assemblers.cli import warmup as CW

    monkeypatch.setattr(CW, "idle_cores", lambda: 1.9)
    assert CW.auto_mode(["ik", "montecarlo"]) == "parallel"
    assert CW.auto_mode(["ik", "ipm"]) == "lazy"  # one chain: nothing to run beside it
    monkeypatch.setattr(CW, "idle_cores", lambda: 0.8)  # one core taken
    assert CW.auto_mode(["ik", "montecarlo"]) == "lazy"


def test_idle_cores_measures_the_idle_share_now_not_the_load_average(monkeypatch):
    """Two samples of /proc/stat's (idle, total) ticks: 3/4 of the time idle on 2 CPUs is 1.5
    idle cores, whatever the 1-minute load average says (it still counts work that ended); with
    no /proc/stat, cores minus the load average."""
    from assemblers.cli import warmup as CW

    monkeypatch.setattr(CW.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(CW.os, "getloadavg", lambda: (1.2, 1.0, 1.0))
    monkeypatch.setattr(CW.time, "sleep", lambda s: None)
    ticks = iter([(1000, 4000), (1150, 4200)])  # +150 idle of +200 ticks
    monkeypatch.setattr(CW, "_cpu_times", lambda: next(ticks))
    assert CW.idle_cores() == pytest.approx(1.5)
    monkeypatch.setattr(CW, "_cpu_times", lambda: None)
    assert CW.idle_cores() == pytest.approx(2 - 1.2)


def test_cpu_times_reads_this_machines_proc_stat():
    """On Linux: idle <= total, both growing (the real file, not a copy of the parser)."""
    from assemblers.cli import warmup as CW

    a = CW._cpu_times()
    if a is None:
        assert not os.path.exists("/proc/stat")
        return
    time.sleep(0.05)
    b = CW._cpu_times()
    assert 0 <= a[0] <= a[1] and b[1] >= a[1] and b[0] >= a[0]
    assert 0.0 <= CW.idle_cores(0.05) <= len(os.sched_getaffinity(0)) + 1e-9


@pytest.mark.parametrize("cores, expect", [(2, "2 processes in parallel"),
                                           (4, "3 processes in parallel")])
def test_first_run_notice_counts_the_processes_it_starts(monkeypatch, cores, expect):
    """The notice names as many processes as compile_groups starts: the demo's three groups
    are three chains, packed onto two processes on a 2-core machine (warmup.processes)."""
    import io

    from assemblers.cli import warmup as CW

    monkeypatch.setattr(W.os, "cpu_count", lambda: cores)
    started = []
    monkeypatch.setattr(W, "compile_groups",
                        lambda todo, config, **kw: started.append(W.processes(todo)) or {})
    out = io.StringIO()
    CW._FirstCompile(["ik_leaves", "ik", "montecarlo"], None, "parallel", out).on_start(None)
    assert expect in out.getvalue(), out.getvalue()
    assert len(started[0]) == int(expect[0])
