"""Headless rendering and physics-check timings (PyBullet DIRECT, tiny CPU renderer).

    python benchmarks/render.py [--config assembler] [--frames 100] [--repeat 5]
    assemblers bench render -- --frames 100

Measures, on the default Assembler (4 platforms, 114 bodies):
  * scene build (connect + create every body) and one ``set_pose`` (re-placing all bodies);
  * one 640x480 frame: ``getCameraImage`` with shadows, the floor on and off (median of --repeat);
  * a 100-frame 640x480 GIF of a trajectory (home -> a perturbed pose), end to end with
    ``sims.viz.animate``: one process, and the default worker count (one per core); the
    same as MP4 (default worker count);
  * one physics check (direct solver, start at home, 0.5 kg payload, with the leg-error study).
The machine's core count and load average are printed with the numbers: the renderer is
single-threaded and the figures scale with what else runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _median_time(f, repeat: int) -> float:
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="assembler")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    args = ap.parse_args()

    import assemblers as A
    from assemblers.model.io import Trajectory
    from sims.viz import (
        AssemblerScene,
        PhysicsParams,
        Style,
        animate,
        default_workers,
        ffmpeg_path,
        physics_check,
    )

    asm = A.load_config(args.config)
    W, H = args.width, args.height
    rng = np.random.default_rng(0)
    lim = np.tile([0.02, 0.02, 0.015, 0.08, 0.08, 0.1], asm.n_platforms)
    Q1 = A.home_pose(asm) + rng.uniform(-lim, lim)
    print(f"{asm.name}: {asm.n_platforms} platforms; {os.cpu_count()} CPU cores, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    t0 = time.perf_counter()
    scene = AssemblerScene(asm)
    build = time.perf_counter() - t0
    scene.set_pose(Q1)
    pose = _median_time(lambda: scene.set_pose(Q1), 20)
    print(f"scene build: {build * 1e3:.0f} ms ({len(scene.ids.robot())} robot bodies); "
          f"set_pose: {pose * 1e3:.2f} ms")
    scene.render(W, H)  # warm-up
    frame = _median_time(lambda: scene.render(W, H), args.repeat)
    scene.close()
    with AssemblerScene(asm, style=Style(floor=False)) as sc:
        sc.set_pose(Q1)
        sc.render(W, H)
        frame_nofloor = _median_time(lambda: sc.render(W, H), args.repeat)
    print(f"{W}x{H} frame (tiny renderer, shadows): {frame * 1e3:.0f} ms with the floor, "
          f"{frame_nofloor * 1e3:.0f} ms without (median of {args.repeat})")

    n = args.frames
    s = np.linspace(0, 1, n)[:, None]
    Q = A.home_pose(asm) + s * (Q1 - A.home_pose(asm))
    tr = Trajectory(t=np.linspace(0, 4, n), Q=Q, legs=A.leg_lengths(asm, Q),
                    T_target=A.forward_kinematics(asm, Q))
    with tempfile.TemporaryDirectory() as tmp:
        for workers in sorted({1, default_workers(n)}):
            out = Path(tmp) / f"b{workers}.gif"
            info = animate(asm, tr, out, fps=25, width=W, height=H, workers=workers)
            print(f"{n}-frame {W}x{H} GIF, {workers} process(es): {info['render_s']:.1f} s "
                  f"({info['render_s'] / n * 1e3:.0f} ms/frame), {out.stat().st_size / 1e6:.1f} MB")
        workers = default_workers(n)
        out = Path(tmp) / "b.mp4"
        info = animate(asm, tr, out, fps=25, width=W, height=H, workers=workers)
        print(f"{n}-frame {W}x{H} MP4 (H.264, {ffmpeg_path()}), {workers} process(es): "
              f"{info['render_s']:.1f} s, {out.stat().st_size / 1e6:.2f} MB")

    rep = physics_check(asm, Q1, PhysicsParams(), leg_error=1e-4)  # warm-up (JAX compile)
    t0 = time.perf_counter()
    rep = physics_check(asm, Q1, PhysicsParams(), leg_error=1e-4)
    print(f"physics check (dantzig, start at home, 0.5 kg, with leg-error study): "
          f"{time.perf_counter() - t0:.2f} s; tool error {rep.tool_error_m:.1e} m, "
          f"{rep.tool_error_rad:.1e} rad; |sim - J_L dL|/|J_L dL| = "
          f"{rep.leg_error['rel_error_vs_pred']:.2e}")
    rep = physics_check(asm, Q1, PhysicsParams(solver="si"), leg_error=1e-4)
    print(f"physics check (si, 200 iterations): {rep.wall_s:.2f} s; tool error "
          f"{rep.tool_error_m * 1e3:.3f} mm, {rep.tool_error_rad * 1e3:.3f} mrad; "
          f"|sim - J_L dL|/|J_L dL| = {rep.leg_error['rel_error_vs_pred']:.2e}")


if __name__ == "__main__":
    main()
