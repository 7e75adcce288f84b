"""Records (issue 13): the journal never destroys an existing file and an unwritable one is
refused before anything is sent; an interrupted run reports what each device executed; a dry
run of a long trajectory builds only the frames it prints, in bounded time."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
from hardware_support import ROOT, hang_guard, write_trajectory  # noqa: F401 (autouse fixture)
from support import stderr_lines

import assemblers
from assemblers.cli import main
from hardware.emulator import EmulatorGroup, emulators_for
from hardware.plan import home_legs
from hardware.streamer import read_journal, stream_trajectory

DUO = assemblers.load_config("duo")


def smooth(duration=0.3):
    H = home_legs(DUO)
    t = np.linspace(0.0, duration, 16)
    return t, H[None] + 0.0008 * (0.5 * (1 - np.cos(2 * np.pi * t / duration)))[:, None, None]


def test_journal_is_appended_never_truncated(tmp_path):
    path = tmp_path / "run.jsonl"
    old = '{"ev":"session","t":0.0,"note":"an earlier run"}\n{"ev":"summary","t":1.0}\n'
    path.write_text(old)
    t, legs = smooth()
    H = home_legs(DUO)
    too_fast = H[None] + 20 * (legs - H[None])
    # a session that sends nothing (its plan is refused before a port opens) leaves the
    # journal as it was
    with EmulatorGroup(emulators_for(DUO)) as g:
        from hardware.safety import LimitViolation

        with pytest.raises(LimitViolation):
            stream_trajectory(DUO, t, too_fast, g.ports, rate_hz=100, journal=path)
        assert path.read_text() == old
        s = stream_trajectory(DUO, t, legs, g.ports, rate_hz=100, journal=path)
    assert s.ok
    assert path.read_text().startswith(old)
    assert [r["ev"] for r in read_journal(path) if r["ev"] == "session"] == ["session"] * 2
    last = read_journal(path, session=-1)
    assert last[0]["ev"] == "session" and last[-1]["ev"] == "summary"
    assert last[-1]["status"] == "completed"
    assert read_journal(path, session=0)[0]["note"] == "an earlier run"


def test_journal_after_a_crash_mid_line_starts_on_a_fresh_line(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_text('{"ev":"session","t":0.0}\n{"ev":"tx","t":0.1,"pla')  # cut short
    t, legs = smooth()
    with EmulatorGroup(emulators_for(DUO)) as g:
        assert stream_trajectory(DUO, t, legs, g.ports, rate_hz=100, journal=path).ok
    with pytest.raises(ValueError, match="line 2"):
        read_journal(path)
    recs = read_journal(path, session=-1, strict=False)
    assert recs[0]["ev"] == "session" and recs[-1]["ev"] == "summary"


@pytest.mark.parametrize("where", ["directory", "under a file", "/dev/full"])
def test_unwritable_journal_is_one_line_exit_2_nothing_sent(tmp_path, where, capsys):
    traj = write_trajectory(tmp_path / "t.json", DUO, duration=0.3)
    (tmp_path / "afile").write_text("x")
    journal = {"directory": str(tmp_path), "under a file": str(tmp_path / "afile" / "j.jsonl"),
               "/dev/full": "/dev/full"}[where]
    with EmulatorGroup(emulators_for(DUO)) as g:
        rc = main(["stream", "--trajectory", traj, "--port", g.ports[0], "--port", g.ports[1],
                   "--journal", journal, "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(stderr_lines(err)) == 1 and "journal" in err and "Traceback" not in err
    assert "nothing was sent" in err
    assert all(e.frames_in == 0 for e in g.emulators)


def test_interrupted_run_reports_what_was_executed():
    """Ctrl-C from Python mid-stream: the summary counts the ticks every device acknowledged
    (it used to say 0) and matches what the devices executed."""
    def progress(done, total):
        if done == 12:
            raise KeyboardInterrupt

    t, legs = smooth(0.5)
    with EmulatorGroup(emulators_for(DUO)) as g:
        s = stream_trajectory(DUO, t, legs, g.ports, rate_hz=100, progress=progress)
    assert s.status == "interrupted" and s.ticks_completed == 12
    assert s.exit_status == 130
    for i, e in enumerate(g.emulators):
        p = s.platforms[i]
        assert e.executed_ticks() == list(range(12))
        assert p.last_acked_tick == 11 == p.device_last_tick and p.ticks_acked == 12
        assert p.stop == "acked"


def _long_trajectory(path, seconds):
    H = home_legs(DUO)
    t = np.linspace(0, seconds, 201)
    legs = H[None] + 0.002 * np.sin(2 * np.pi * t / seconds)[:, None, None] ** 2
    from assemblers.model.io import Trajectory, save_trajectory

    save_trajectory(path, Trajectory(t=t, Q=np.zeros((t.size, 12)), legs=legs, config="duo"))
    return str(path)


def test_dry_run_builds_only_what_it_prints(tmp_path, monkeypatch, capsys):
    """A 10-minute trajectory at 100 Hz (60 001 ticks): the dry run still checks every
    set-point through the gate's rule, but encodes only the 20 ticks it prints."""
    from hardware import protocol as P

    traj = _long_trajectory(tmp_path / "long.json", 600.0)
    n = {"frames": 0}
    orig = P.encode_frame

    def counting(*a, **kw):
        n["frames"] += 1
        return orig(*a, **kw)

    monkeypatch.setattr(P, "encode_frame", counting)
    t0 = time.perf_counter()
    assert main(["stream", "--trajectory", traj, "--dry-run", "--json"]) == 0
    elapsed = time.perf_counter() - t0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ticks"] == 60001 and len(doc["frames"]) == 40
    assert n["frames"] <= 40
    assert elapsed < 20


def test_dry_run_checks_every_frame_not_only_the_printed_ones(tmp_path, capsys):
    """A violation in the middle of a long plan, far from the printed ticks, is still found."""
    H = home_legs(DUO)
    t = np.linspace(0, 600.0, 6001)
    legs = np.repeat(H[None], t.size, axis=0)
    legs[3000:3002, 1, 4] += 0.003  # a 3 mm jump for 0.2 s in the middle
    from assemblers.model.io import Trajectory, save_trajectory

    path = tmp_path / "bump.json"
    save_trajectory(path, Trajectory(t=t, Q=np.zeros((t.size, 12)), legs=legs, config="duo"))
    assert main(["stream", "--trajectory", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "platform 1 actuator 4" in err and "t = 29" in err


def test_absurdly_long_trajectory_is_refused_quickly(tmp_path):
    """Two samples a million seconds apart (1e8 ticks at 100 Hz): refused at once with one line
    (it used to try to build every tick: minutes and gigabytes)."""
    from assemblers.model.io import Trajectory, save_trajectory

    H = home_legs(DUO)
    path = tmp_path / "huge.json"
    save_trajectory(path, Trajectory(t=np.array([0.0, 1e6]), Q=np.zeros((2, 12)),
                                     legs=np.stack([H, H]), config="duo"))
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "assemblers.cli", "stream", "--trajectory",
                        str(path), "--dry-run"], capture_output=True, text=True, cwd=ROOT,
                       timeout=60)
    assert time.perf_counter() - t0 < 30
    assert p.returncode == 2 and "set-points" in p.stderr and "in parts" in p.stderr
    assert "Traceback" not in p.stderr and len(stderr_lines(p.stderr.strip())) == 1
