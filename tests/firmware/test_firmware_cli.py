"""From a target to a moving (simulated) robot through the command line, as a user runs it: a
move planned by ``assemblers trajectory`` (time-optimal, written to a file), simulated boards
started by ``assemblers emulate --device firmware`` (the AVR firmware on simavr, one board per
platform of the duo stack), the file streamed by ``assemblers stream``; each in a process of
its own.  Checked: every set-point acknowledged, once, in order (the journal), the firmware's
own final STATUS and the step pulses it put out (counted by the harness) both at the plan's
last counts.  Skipped with the install line where the Debian packages are missing; a failure
under CI=true.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
from firmware_support import firmware_fixture  # noqa: F401 (the firmware fixture)
from hardware_support import ROOT, hang_guard, journal_acked  # noqa: F401 (autouse fixture)

import assemblers as A
from assemblers.cli import main
from hardware.plan import calibrations, to_counts
from hardware.streamer import read_journal

DUO = A.load_config("duo")
MOVE = "0.01 0 0.63 0.02 0 0.05"  # 3.3 cm up and a little sideways; 0.82 s time-optimal
ENV = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def cli(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assemblers.cli", *args], capture_output=True,
                          text=True, env=ENV, cwd=ROOT, timeout=120, **kw)


def start_emulate(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "assemblers.cli", "emulate", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            cwd=ROOT)


def read_ports(proc: subprocess.Popen, n: int) -> list[str]:
    ports = []
    while len(ports) < n:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"emulate exited ({proc.wait()}): {proc.stderr.read()}")
        ports.append(line.strip())
    return ports


def stop(proc: subprocess.Popen) -> tuple[str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return out, err


def test_a_planned_move_streams_to_simulated_boards_through_the_cli(firmware, tmp_path):
    traj = tmp_path / "move.json"
    r = cli("trajectory", "--config", "duo", "--to", MOVE, "--rate", "50", "--out", str(traj))
    assert r.returncode == 0, r.stderr
    assert "time-optimal move of" in r.stdout and "streamable at 50 Hz" in r.stdout
    tr = A.load_trajectory(traj)
    last = to_counts(np.asarray(tr.legs)[-1:], calibrations(DUO))[0]  # (2, 6) the plan's end

    # 1 Mbaud: a set-point's round trip (38 + 14 bytes) takes about 1 ms on the simulated wire,
    # well inside the 20 ms period on a busy machine
    emu = start_emulate("--config", "duo", "--device", "firmware", "--baud", "1000000",
                        "--rate", "50")
    try:
        ports = read_ports(emu, 2)  # one port per line, bottom platform first
        assert all(p.startswith("/dev/") for p in ports) and ports[0] != ports[1]
        journal = tmp_path / "run.jsonl"
        s = cli("stream", "--config", "duo", "--trajectory", str(traj), "--port", ports[0],
                "--port", ports[1], "--rate", "50", "--journal", str(journal), "--hold", "0.3",
                "--no-progress", "--json")
    finally:
        out, err = stop(emu)
    assert s.returncode == 0, s.stderr + s.stdout
    summary = json.loads(s.stdout)
    assert summary["status"] == "completed"
    K = summary["ticks_planned"]
    assert summary["ticks_completed"] == K and summary["ticks_ramp"] > 0  # powered up at home
    assert summary["frames_sent"] == summary["frames_acked"] == 2 * K
    # (a retransmission after a reply slower than ack_timeout_s on a busy machine is allowed:
    # the firmware answers a repeat without executing it again, the journal shows each once)
    assert summary["naks"] == 0 and summary["faults"] == []
    rec = read_journal(journal)
    for i in range(2):
        assert journal_acked(rec, i) == list(range(K))  # every set-point once, in order
        assert summary["platforms"][i]["device_last_tick"] == K - 1
        final = [r for r in rec if r["ev"] == "status" and r.get("platform") == i][-1]
        # the firmware's own account, read after the hold: at the plan's last counts, arrived
        assert final["target"] == final["measured"] == [int(x) for x in last[i]]
    # what the STEP pulses did (counted by the harness, not reported by the firmware)
    pulses = re.findall(r"platform (\d) \((\S+), address (\d)\): pulses at \[([-\d, ]+)\]", err)
    assert [(int(i), p) for i, p, _, _ in pulses] == [(0, ports[0]), (1, ports[1])]
    for i, _, _, counts in pulses:
        assert [int(x) for x in counts.split(",")] == [int(x) for x in last[int(i)]]
    assert "simulated board(s) (the AVR firmware on simavr, 1000000 baud" in err


def test_emulate_firmware_json(firmware):
    emu = start_emulate("--config", "duo", "--device", "firmware", "--platforms", "1", "--json")
    try:
        first = json.loads(emu.stdout.readline())
    finally:
        out, err = stop(emu)
    assert len(first["ports"]) == 1
    dev = json.loads(out.strip().splitlines()[-1])["devices"]
    assert len(dev) == 1 and dev[0]["port"] == first["ports"][0] and dev[0]["address"] == 1
    assert dev[0]["pulses"] == [26000] * 6 and dev[0]["baud"] == 115200  # parked at home, idle


@pytest.mark.parametrize("argv,fragment", [
    (["--device", "firmware", "--fault", "drop-rx=0.1"], "--fault goes with --device python"),
    (["--device", "firmware", "--tau", "0.05"], "--tau goes with --device python"),
    (["--baud", "9600"], "--baud goes with --device firmware"),
    (["--device", "firmware", "--baud", "12"], "--baud must be between 300 and 4000000"),
    (["--device", "firmware", "--platforms", "0"], "--platforms must be between 1 and 64"),
    (["--device", "avr"], "invalid choice"),
])
def test_emulate_options_are_checked_per_device(capsys, argv, fragment):
    try:
        code = main(["emulate", "--config", "duo", *argv])
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_stream_benchmark_rate_search_and_table(monkeypatch):
    """benchmarks/stream.py --device firmware: the walk up, the bisection, the README table
    (the streaming itself is faked here: sustained up to 130 Hz)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_stream", ROOT / "benchmarks/stream.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    tried = []

    def fake(asm, ports, rate, seconds):
        tried.append(rate)
        return {"rate_hz": rate, "sustained": rate <= 130, "latency_p50_ms": 1.0,
                "latency_p99_ms": 2.0}

    monkeypatch.setattr(bench, "trial", fake)
    found = bench.rate_search(None, [], [50, 100, 200, 400], 1.0, refine=3)
    assert tried == [50, 100, 200, 150, 125, 138]
    assert found["highest_sustained_hz"] == 125 and found["first_not_sustained_hz"] == 200
    assert bench.rate_search(None, [], [300, 400], 1.0, 2)["highest_sustained_hz"] is None
    table = bench.markdown({
        "platforms": 2, "config": "duo", "trial_seconds": 1.0, "overrun_limit": 0.01,
        "cpu_count": 2, "load_avg_1min": [0.1, 0.2], "rates": [50, 100, 200],
        "latency_rate_hz": 50, "devices": [
            {"device": "firmware", "link": "115200 baud", "highest_sustained_hz": 125,
             "first_not_sustained_hz": 200, "at_highest": fake(None, [], 125, 1),
             "at_latency_rate": fake(None, [], 50, 1)}]})
    rows = table.splitlines()
    assert rows[2].startswith("| device | link | highest sustained rate")
    assert rows[-1] == ("| firmware | 115200 baud | 125 Hz | 1.00 / 2.00 ms | 1.00 / 2.00 ms "
                        "| 200 Hz |")
