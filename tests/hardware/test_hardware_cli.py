"""``assemblers stream`` and ``assemblers emulate``: dry runs, bad input (exit 2, one clear line,
no traceback), a real stream to emulators, a fault (exit 1), and the emulator process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hardware_support import hang_guard, killed_on_exit  # noqa: F401 (autouse fixture)
from support import stderr_lines

import assemblers
from assemblers.cli import main
from assemblers.model.io import Trajectory, save_trajectory
from hardware.emulator import EmulatorGroup, FaultPlan, emulators_for
from hardware.plan import home_legs

ROOT = Path(__file__).resolve().parents[2]
DUO = assemblers.load_config("duo")


def _write(path, amplitude=0.0008, duration=0.3, config="duo"):
    H = home_legs(DUO)
    t = np.linspace(0, duration, 16)
    s = 0.5 * (1 - np.cos(2 * np.pi * t / duration))
    legs = H[None] + amplitude * s[:, None, None]
    save_trajectory(path, Trajectory(t=t, Q=np.zeros((16, 12)), legs=legs, config=config))
    return path


@pytest.fixture
def traj(tmp_path):
    return str(_write(tmp_path / "traj.json"))


def _err(capsys):
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "Traceback" not in out.out
    return out


def test_dry_run_prints_frames_and_sends_nothing(traj, capsys):
    assert main(["stream", "--trajectory", traj, "--dry-run", "--frames", "4"]) == 0
    out = _err(capsys).out
    assert "dry run" in out and "nothing was sent" in out
    assert out.count("SETPOINT addr=1") == 4 and out.count("SETPOINT addr=2") == 4
    assert "a55a0101" in out  # marker, SETPOINT, address 1


def test_dry_run_json(traj, capsys):
    assert main(["stream", "--trajectory", traj, "--dry-run", "--frames", "0", "--json",
                 "--rate", "50"]) == 0
    doc = json.loads(_err(capsys).out)
    assert doc["dry_run"] and doc["rate_hz"] == 50 and doc["ticks"] == 16
    assert len(doc["frames"]) == 2 * 16
    f = doc["frames"][0]
    assert bytes.fromhex(f["hex"])[:2] == b"\xa5\x5a" and f["decoded"].startswith("SETPOINT")


@pytest.mark.parametrize("argv, needle", [
    (["--trajectory", "/nonexistent/t.json", "--dry-run"], "no such file"),
    (["--trajectory", "{traj}", "--dry-run", "--rate", "5000"], "--rate must be between"),
    (["--dry-run"], "exactly one of --trajectory"),
    (["--trajectory", "{traj}", "--target", "0 0 0.5 0 0 0", "--dry-run"], "exactly one of"),
    (["--target", "0 0 zero 0 0 0", "--dry-run"], "--target must be six numbers"),
    (["--target", "0 0 0.5", "--dry-run"], "--target must be six numbers"),
    (["--trajectory", "{traj}", "--config", "nope", "--dry-run"], "no such config"),
    (["--trajectory", "{traj}", "--config", "trio", "--dry-run"], "legs are for 2 platforms"),
    (["--trajectory", "{fast}", "--dry-run"], "platform 0 actuator 0"),
    (["--trajectory", "{traj}"], "no serial port for platform 0"),
    (["--trajectory", "{traj}", "--port", "/dev/null-x"], "1 port(s) given for 2 platforms"),
    (["--trajectory", "{traj}", "--port", "/nonexistent/tty0", "--port", "/nonexistent/tty1"],
     "cannot open port '/nonexistent/tty0'"),
    (["--trajectory", "{traj}", "--dry-run", "--hold", "-1"], "--hold must be"),
    (["--trajectory", "{traj}", "--dry-run", "--rate", "1.5"], "trip the devices' watchdog"),
    (["--trajectory", "{traj}", "--port", "/dev/a", "--port", "/dev/a"], "given for two"),
])
def test_bad_input_exits_2_with_one_clear_line(tmp_path, traj, capsys, argv, needle):
    fast = str(_write(tmp_path / "fast.json", amplitude=0.03, duration=0.2))
    argv = [a.format(traj=traj, fast=fast) for a in argv]
    assert main(["stream", *argv]) == 2
    err = _err(capsys).err.strip()
    assert needle in err, err
    assert len(stderr_lines(err)) == 1 and err.startswith("assemblers stream: error:")


def test_limit_violation_message_names_everything(tmp_path, capsys):
    fast = str(_write(tmp_path / "fast.json", amplitude=0.03, duration=0.2))
    assert main(["stream", "--trajectory", fast, "--dry-run"]) == 2
    err = _err(capsys).err
    assert "platform 0 actuator 0" in err and "t = " in err and "limit" in err


def test_stream_to_emulators_json_and_journal(traj, tmp_path, capsys):
    with EmulatorGroup(emulators_for(DUO)) as g:
        rc = main(["stream", "--trajectory", traj, "--port", g.ports[0], "--port", g.ports[1],
                   "--rate", "100", "--journal", str(tmp_path / "j.jsonl"), "--json"])
    out = _err(capsys).out
    assert rc == 0
    doc = json.loads(out)
    assert doc["status"] == "completed" and doc["frames_sent"] == doc["frames_acked"] == 62
    lines = (tmp_path / "j.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["ev"] == "session" and json.loads(lines[-1])["ev"] == "summary"
    assert all(e.executed_ticks() == list(range(31)) for e in g.emulators)


def test_stream_table_and_progress(traj, capsys):
    with EmulatorGroup(emulators_for(DUO)) as g:
        rc = main(["stream", "--trajectory", traj, "--port", g.ports[0], "--port", g.ports[1]])
    out = _err(capsys)
    assert rc == 0
    assert "ack latency" in out.out and "period jitter" in out.out and "completed" in out.out
    assert "tick" in out.err  # the tqdm bar


def test_stream_fault_exits_1_after_stopping(traj, capsys):
    emus = emulators_for(DUO)
    emus[0].faults = FaultPlan(device_fault_after=5)
    with EmulatorGroup(emus) as g:
        rc = main(["stream", "--trajectory", traj, "--port", g.ports[0], "--port", g.ports[1],
                   "--no-progress"])
    out = _err(capsys).out
    assert rc == 1
    assert "FAULT platform 0" in out and "state FAULT, faults ['DEVICE']" in out
    assert all("stop" in e.event_kinds() for e in g.emulators)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_termination_signal_mid_stream_stops_the_platforms(tmp_path, sig):
    """A SIGTERM (a supervisor) or SIGINT (Ctrl-C) arriving mid-stream ends like Ctrl-C: the
    stream stops, every platform gets STOP, the summary says "interrupted", exit 130."""
    import time

    traj = str(_write(tmp_path / "long.json", duration=3.0))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with EmulatorGroup(emulators_for(DUO)) as g:
        p = subprocess.Popen([sys.executable, "-m", "assemblers.cli", "stream", "--trajectory",
                              traj, "--port", g.ports[0], "--port", g.ports[1], "--rate", "100",
                              "--no-progress", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                             cwd=ROOT)
        with killed_on_exit(p):
            deadline = time.monotonic() + 60
            while len(g.emulators[0].executed_ticks()) < 10 and p.poll() is None:
                assert time.monotonic() < deadline, "the stream never started"
                time.sleep(0.005)
            p.send_signal(sig)  # never before streaming: 10 set-points are executed
            out, err = p.communicate(timeout=20)
    assert p.returncode == 130, err
    assert "Traceback" not in err
    assert json.loads(out)["status"] == "interrupted"
    assert all("stop" in e.event_kinds() for e in g.emulators)
    assert all(10 <= len(e.executed_ticks()) < 300 for e in g.emulators)


def test_device_in_estop_refuses_to_start(traj, capsys):
    emus = emulators_for(DUO)
    with EmulatorGroup(emus) as g:
        emus[1].state = 3  # ESTOP latched from before
        emus[1].fault_bits = 0x8
        rc = main(["stream", "--trajectory", traj, "--port", g.ports[0], "--port", g.ports[1],
                   "--no-progress"])
        err = _err(capsys).err
        assert rc == 1 and "platform 1" in err and "ESTOP" in err and "--clear-faults" in err
        assert all(e.executed == [] for e in emus)
        rc = main(["stream", "--trajectory", traj, "--port", g.ports[0], "--port", g.ports[1],
                   "--no-progress", "--clear-faults"])
        assert rc == 0


@pytest.mark.parametrize("inherited", ["default", "ignored"])
def test_emulate_command_prints_ports_and_stops_on_ctrl_c(inherited):
    """Ctrl-C stops the emulator with its summary, also when it was started with SIGINT
    ignored (what a background job of a non-interactive shell inherits)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "assemblers.cli", "emulate", "--config", "duo"]
    if inherited == "ignored":  # a launcher that ignores SIGINT, then execs (SIG_IGN survives)
        cmd = [sys.executable, "-c", "import os, signal, sys; "
               "signal.signal(signal.SIGINT, signal.SIG_IGN); os.execv(sys.executable, "
               f"{cmd!r})"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         cwd=ROOT)
    with killed_on_exit(p):
        ports = [p.stdout.readline().strip() for _ in range(2)]
        assert all(x.startswith("/dev/") for x in ports), ports
        assert all(os.path.exists(x) for x in ports)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    assert "Traceback" not in err and "set-points executed" in err


def test_emulate_bad_fault_spec(capsys):
    assert main(["emulate", "--fault", "explode=1"]) == 2
    err = _err(capsys).err
    assert "bad fault 'explode=1'" in err and len(stderr_lines(err.strip())) == 1


def test_bandwidth_warning():
    from hardware.streamer import bandwidth_warning

    w = bandwidth_warning("/dev/ttyUSB0", 115200, 1000.0, 2)
    assert "platform 2" in w and "115200 baud" in w
    assert bandwidth_warning("/dev/ttyUSB0", 2_000_000, 1000.0) == ""
    assert bandwidth_warning("/dev/pts/4", 9600, 1000.0) == ""
    assert bandwidth_warning("socket://host:1", 9600, 1000.0) == ""


def test_target_dry_run_uses_the_ik_solver(capsys):
    try:
        assemblers.solve_ik  # noqa: B018 - written by another part of the project
    except (AttributeError, ImportError):
        pytest.skip("assemblers.solve_ik is not available")
    T = assemblers.forward_kinematics(DUO, assemblers.home_pose(DUO))
    pose = assemblers.transform_to_pose(T)
    pose[0] += 0.005
    rc = main(["stream", "--config", "duo", "--target", " ".join(map(str, pose)), "--dry-run",
               "--json", "--frames", "2"])
    out = _err(capsys).out
    assert rc == 0, out
    doc = json.loads(out)
    assert doc["ramp_ticks"] > 0 and "home pose" in doc["assumption"]
