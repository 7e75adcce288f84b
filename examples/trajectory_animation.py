"""A straight-line tool move solved step by step, written as a trajectory file and animated.

    python examples/trajectory_animation.py [--out DIR] [--small]

Writes trajectory.json (the format ``assemblers animate`` and ``assemblers stream`` read, see
docs/formats.md), trajectory.gif and legs.png (every leg's length over time, with the strokes).
The same from the command line::

    assemblers trajectory --to "0.05 0.03 1.06 0.1 -0.05 0.2" --duration 2 --rate 50 --out t.json
    assemblers animate --trajectory t.json --out t.gif
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from _common import example_args  # noqa: E402

import assemblers  # noqa: E402
from assemblers.ik import straight_line  # noqa: E402
from sims.viz import animate  # noqa: E402


def main() -> None:
    out, small = example_args(__doc__)
    out.mkdir(parents=True, exist_ok=True)

    asm = assemblers.load_config("assembler")
    T_home = assemblers.forward_kinematics(asm, assemblers.home_pose(asm))   # (4, 4) T_world_tool
    T_goal = assemblers.pose_to_transform([0.05, 0.03, 1.06, 0.1, -0.05, 0.2])
    duration, rate = (1.0, 10.0) if small else (2.0, 50.0)             # s, Hz
    t, T_targets = straight_line(T_home, T_goal, duration, rate)            # (T,), (T, 4, 4)

    res = assemblers.solve_trajectory(asm, t, T_targets)                    # warm-started IK steps
    assert res.ok, res.messages
    print(f"{len(t)} steps solved, largest leg step {res.max_leg_step * 1e3:.2f} mm, "
          f"cost {res.cost[0]:.4f} -> {res.cost[-1]:.4f}")

    path = assemblers.save_trajectory(out / "trajectory.json", assemblers.Trajectory(
        t=res.t, Q=res.Q, legs=res.legs, config="assembler", T_target=res.T_target,
        meta={"criterion": res.criterion, "rate_hz": rate}))
    tr = assemblers.load_trajectory(path)                                   # read it back
    print(f"wrote {path} ({tr.n_steps} samples, {tr.n_platforms} platforms)")

    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=100)
    for i in range(asm.n_platforms):
        ax.plot(tr.t, tr.legs[:, i, :] * 1e3, color=f"C{i}", lw=1,
                label=f"platform {i + 1}")
        ax.axhline(asm.leg_min[i] * 1e3, color=f"C{i}", ls=":", lw=0.8)
        ax.axhline(asm.leg_max[i] * 1e3, color=f"C{i}", ls=":", lw=0.8)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[::6], labels[::6], fontsize=8, ncol=4, loc="upper center",
              bbox_to_anchor=(0.5, -0.18), frameon=False)
    ax.set_xlabel("t [s]")
    ax.set_ylabel("leg length [mm]")
    ax.set_title("leg lengths along the move (dotted: stroke limits)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "legs.png")

    size = (200, 250) if small else (320, 400)
    info = animate(asm, tr, out / "trajectory.gif", width=size[0], height=size[1],
                   workers=1 if small else None)
    print(f"wrote {info['out']}: {info['frames']} frames, {info['duration_s']:.1f} s "
          f"(rendered in {info['render_s']:.1f} s)")


if __name__ == "__main__":  # worker processes (sweeps, rendering) import this file
    main()
