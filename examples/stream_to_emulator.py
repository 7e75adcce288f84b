"""Stream a solved trajectory to emulated platform controllers on pseudo-terminals, through
the same safety gate, protocol and lock-step loop as real hardware.

    python examples/stream_to_emulator.py [--out DIR] [--small]

Writes stream/trajectory.json and stream/run.jsonl (the journal: every frame sent and every
reply) and prints the stream's summary.  From the command line (two terminals)::

    assemblers emulate --config duo          # prints the ports
    assemblers stream --config duo --trajectory t.json --port /dev/pts/3 --port /dev/pts/4
"""

from _common import example_args

import assemblers
from assemblers.ik import straight_line
from hardware.emulator import EmulatorGroup, emulators_for
from hardware.streamer import stream_trajectory


def main() -> None:
    out, small = example_args(__doc__, "stream")
    out.mkdir(parents=True, exist_ok=True)

    asm = assemblers.load_config("duo")                  # its [hardware] section: ports, counts
    T_home = assemblers.forward_kinematics(asm, assemblers.home_pose(asm))
    T_goal = T_home @ assemblers.pose_to_transform([0.005, -0.005, 0.003, 0.0, 0.01, 0.02])
    t, T_targets = straight_line(T_home, T_goal, 1.0 if small else 3.0, 50.0)  # s, Hz
    res = assemblers.solve_trajectory(asm, t, T_targets)
    assert res.ok, res.messages
    assemblers.save_trajectory(out / "trajectory.json", assemblers.Trajectory(
        t=res.t, Q=res.Q, legs=res.legs, config="duo", T_target=res.T_target))

    # one emulated controller per platform, each on its own pty, served by one thread
    with EmulatorGroup(emulators_for(asm)) as group:
        print("emulated controllers on", ", ".join(group.ports))
        summary = stream_trajectory(asm, res.t, res.legs, group.ports, rate_hz=100,
                                    journal=out / "run.jsonl")
    print(summary.table())
    # "degraded": everything delivered and acknowledged, but late (a busy machine); "fault": stopped
    assert summary.status in ("completed", "degraded"), summary.status
    print(f"journal: {out / 'run.jsonl'}")


if __name__ == "__main__":  # worker processes (sweeps, rendering) import this file
    main()
