"""Monte Carlo throughput: Numba kernels (sims.robustness) vs a plain vectorized NumPy baseline.

    python benchmarks/montecarlo.py [--config trio] [--threads 2] [--samples 2e7]
                                    [--legs-samples 1e6] [--numpy-samples 2e5] [--big] [--twins]
                                    [--json]

For N = 3 (configs/trio.toml by default) at the home pose:

* pose noise (Gaussian, 0.1 mm / 0.1 mrad per platform component) and actuator noise (0.1 mm per
  leg, each platform's pose recovered by Newton), samples/s of ``sims.robustness.simulate``
  (statistics included: mean, covariance, RMS, histograms for percentiles, max);
* the same with plain vectorized NumPy over batches of samples (numpy's ziggurat normals,
  batched 4 x 4 products for the forward kinematics, vectorized SO(3) log, the same statistics
  with ``e.T @ e``, ``np.bincount`` histograms; for actuator noise a batched Newton with
  ``np.linalg.solve`` on (B, 6, 6) systems), and the ratio;
* with ``--big``: 1e8 pose-noise samples in a child process, its peak resident memory
  (``resource.getrusage(...).ru_maxrss``) next to that of a child that only compiled and ran
  1e3 samples;
* with ``--twins``: why the Monte Carlo has lane twins of the forward kinematics and the error
  twist (``sims.robustness.lanes``): the CPU time of the calling thread for the random numbers,
  FK, twist and statistics of 64-lane blocks of pose-noise samples, once with the twins and once
  with the shared scalar kernels (``kinematics.kernels.forward`` and
  ``geometry.kernels.twist_between``) lane by lane, best of 7 interleaved repeats.

Wall times are the best of ``--repeat`` runs after a warm-up (Numba compilation excluded); the
process CPU time is reported too, since on a shared machine the wall time also counts time
other processes took from these cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from functools import partial

import numpy as np


def _setup_threads(threads: int | None) -> int:
    import numba

    if threads:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    return numba.get_num_threads()


def _time_best(fn, repeat: int):
    best = (np.inf, np.inf)
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        w, c = time.perf_counter() - w0, time.process_time() - c0
        best = min(best, (w, c))
    return best


# ----------------------------------------------------------------------------- NumPy baseline


def _np_pose_transforms(q):
    """(..., 6) poses -> (..., 4, 4), vectorized."""
    from assemblers.geometry.api import pose_to_transform

    return pose_to_transform(q)


def _np_forward(arrs, Q):
    """(B, 6N) -> (B, 4, 4) with batched matmuls."""
    n = arrs.T_after.shape[0]
    P = _np_pose_transforms(Q.reshape(Q.shape[0], n, 6))
    A = np.broadcast_to(arrs.T_mount, (Q.shape[0], 4, 4))
    for i in range(n):
        A = A @ P[:, i] @ arrs.T_after[i]
    return A


def _np_twist(T_nom, T):
    """(B, 4, 4) -> (B, 6) error twists (dp, rotation vector of R R_nom^T)."""
    e = np.empty((T.shape[0], 6))
    e[:, :3] = T[:, :3, 3] - T_nom[:3, 3]
    R = T[:, :3, :3] @ T_nom[:3, :3].T
    v = np.stack([R[:, 2, 1] - R[:, 1, 2], R[:, 0, 2] - R[:, 2, 0], R[:, 1, 0] - R[:, 0, 1]], 1)
    c = np.clip((np.trace(R, axis1=1, axis2=2) - 1) / 2, -1, 1)
    s = np.linalg.norm(v, axis=1) / 2
    th = np.arctan2(s, c)
    f = np.where(th < 1e-6, 0.5 + th**2 / 12, th / (2 * np.where(s > 0, s, 1)))
    e[:, 3:] = f[:, None] * v  # (no near-pi branch: errors here are tiny)
    return e


class _NpStats:
    """The statistics the kernels keep, with NumPy on each batch."""

    def __init__(self):
        from sims.robustness.stats import HIST_BINS

        self.n = 0
        self.s1 = np.zeros(6)
        self.s2 = np.zeros((6, 6))
        self.mx = np.zeros(2)
        self.hist = np.zeros((2, HIST_BINS), dtype=np.int64)

    def add(self, e):
        from sims.robustness.stats import HIST_BINS, HIST_OCT_MIN, HIST_SUB

        self.n += e.shape[0]
        self.s1 += e.sum(axis=0)
        self.s2 += e.T @ e
        for k, sl in enumerate((slice(0, 3), slice(3, 6))):
            m = np.linalg.norm(e[:, sl], axis=1)
            self.mx[k] = max(self.mx[k], m.max())
            mant, ex = np.frexp(m)
            idx = 1 + (ex - 1 - HIST_OCT_MIN) * HIST_SUB + ((2 * mant - 1) * HIST_SUB).astype(int)
            idx = np.clip(np.where(m > 0, idx, 0), 0, HIST_BINS - 1)
            self.hist[k] += np.bincount(idx, minlength=HIST_BINS)


def numpy_pose(asm, Q, sigma, n, batch=100_000, seed=0):
    """Vectorized NumPy Monte Carlo with pose noise: returns the stats accumulator."""
    arrs = asm.arrays
    rng = np.random.default_rng(seed)
    T_nom = _np_forward(arrs, Q[None])[0]
    st = _NpStats()
    done = 0
    while done < n:
        b = min(batch, n - done)
        Qp = Q + rng.standard_normal((b, Q.size)) * sigma
        st.add(_np_twist(T_nom, _np_forward(arrs, Qp)))
        done += b
    return st


def _np_legs(b, t, q):
    """One platform, batched: b, t (6, 3); q (B, 6) -> legs (B, 6), unit vectors, R t."""
    T = _np_pose_transforms(q)
    Rt = np.einsum("bij,kj->bki", T[:, :3, :3], t)
    v = q[:, None, :3] + Rt - b
    L = np.linalg.norm(v, axis=2)
    return L, v / L[..., None], Rt


def _np_leg_jacobian(q, u, Rt):
    cp, sp = np.cos(q[:, 4]), np.sin(q[:, 4])
    cy, sy = np.cos(q[:, 5]), np.sin(q[:, 5])
    z = np.zeros_like(cp)
    E = np.stack([np.stack([cp * cy, -sy, z], 1), np.stack([cp * sy, cy, z], 1),
                  np.stack([-sp, z, z + 1], 1)], 1)  # (B, 3, 3) omega = E d(rpy)
    c = np.cross(Rt, u)
    return np.concatenate([u, c @ E], axis=2)


def numpy_legs(asm, Q, sigma_leg, n, batch=50_000, seed=0, tol=1e-12, max_iter=30):
    """Vectorized NumPy Monte Carlo with actuator noise (batched Newton per platform)."""
    import assemblers

    arrs = asm.arrays
    N = asm.n_platforms
    rng = np.random.default_rng(seed)
    T_nom = _np_forward(arrs, Q[None])[0]
    L_nom = assemblers.leg_lengths(asm, Q)
    st = _NpStats()
    done = 0
    while done < n:
        bsz = min(batch, n - done)
        Lp = L_nom + rng.standard_normal((bsz, N, 6)) * sigma_leg
        Qp = np.tile(Q, (bsz, 1))
        for i in range(N):
            q = Qp[:, 6 * i: 6 * i + 6]
            for _ in range(max_iter):
                L, u, Rt = _np_legs(arrs.b[i], arrs.t[i], q)
                r = L - Lp[:, i]
                if np.abs(r).max() <= tol:
                    break
                q = q - np.linalg.solve(_np_leg_jacobian(q, u, Rt), r[..., None])[..., 0]
            Qp[:, 6 * i: 6 * i + 6] = q
        st.add(_np_twist(T_nom, _np_forward(arrs, Qp)))
        done += bsz
    return st


# ----------------------------------------------------------------------------- lane twins


def _twin_kernels():
    """Two block loops over pose-noise samples, compiled here: with the lane twins, and with the
    shared scalar kernels lane by lane (everything else the same)."""
    from numba import njit

    from assemblers.geometry.kernels import twist_between
    from assemblers.kinematics.kernels import forward
    from sims.robustness.lanes import KB, P_ROWS, forward_lanes, stats_lanes, twist_between_lanes
    from sims.robustness.rng import fix_rejections, random_block

    @njit
    def with_twins(n_blocks, key, T_mount, T_after, Q, trig, sig, T_nom):
        m = Q.size
        Zf, Rj = np.zeros(m * KB), np.zeros(m * KB, dtype=np.uint8)
        st = np.empty(1, dtype=np.uint64)
        A, E, big = np.empty(12 * KB), np.empty(6 * KB), np.empty(KB, dtype=np.uint8)
        valid, P = np.ones(KB, dtype=np.uint8), np.zeros(P_ROWS * KB)
        MP, MR, shift = np.empty(KB), np.empty(KB), np.zeros(7)
        for b in range(n_blocks):
            random_block(key, b * KB, m, m, Zf, Rj)
            fix_rejections(key, b * KB, KB, m, m, Zf, Rj, st)
            forward_lanes(T_mount, T_after, Q, trig, sig, Zf, 0, A, big)
            twist_between_lanes(A, T_nom, E, big)
            stats_lanes(E, valid, shift, 1.0, P, MP, MR)
        return P.sum()

    @njit
    def with_scalar_kernels(n_blocks, key, T_mount, T_after, Q, trig, sig, T_nom):
        m = Q.size
        Zf, Rj = np.zeros(m * KB), np.zeros(m * KB, dtype=np.uint8)
        st = np.empty(1, dtype=np.uint64)
        E, valid, P = np.empty(6 * KB), np.ones(KB, dtype=np.uint8), np.zeros(P_ROWS * KB)
        MP, MR, shift = np.empty(KB), np.empty(KB), np.zeros(7)
        Qp, Tp, work, e = np.empty(m), np.empty((4, 4)), np.empty((2, 4, 4)), np.empty(6)
        for b in range(n_blocks):
            random_block(key, b * KB, m, m, Zf, Rj)
            fix_rejections(key, b * KB, KB, m, m, Zf, Rj, st)
            for k in range(KB):
                for j in range(m):
                    Qp[j] = Q[j] + sig[j] * Zf[j * KB + k]
                forward(T_mount, T_after, Qp, Tp, work)
                twist_between(T_nom, Tp, e)
                for r in range(6):
                    E[r * KB + k] = e[r]
            stats_lanes(E, valid, shift, 1.0, P, MP, MR)
        return P.sum()

    return KB, with_twins, with_scalar_kernels


def twins_vs_scalar(asm, Q, n_blocks: int = 4000, repeat: int = 7) -> dict:
    """CPU seconds (calling thread, best of ``repeat``, interleaved) of ``n_blocks`` blocks of
    pose-noise samples (0.1 mm / 0.1 mrad) with the lane twins and with the scalar kernels."""
    from assemblers.kinematics import api
    from sims.robustness.rng import seed_key

    KB, f_twins, f_scalar = _twin_kernels()
    a = api.kernel_arrays(asm)
    n = asm.n_platforms
    Q = np.ascontiguousarray(Q)
    ang = Q.reshape(n, 6)[:, 3:]
    trig = np.ascontiguousarray(np.stack([np.cos(ang), np.sin(ang)], axis=-1).reshape(n, 6))
    args = (seed_key(1), a.T_mount, a.T_after, Q, trig, np.full(6 * n, 1e-4),
            api.forward_kinematics(asm, Q))
    f_twins(2, *args)  # compile
    f_scalar(2, *args)
    best = {"twins": np.inf, "scalar": np.inf}
    for _ in range(repeat):
        for name, f in (("twins", f_twins), ("scalar", f_scalar)):
            c0 = time.thread_time()
            f(n_blocks, *args)
            best[name] = min(best[name], time.thread_time() - c0)
    ns = n_blocks * KB
    return {"samples": ns, "twins_cpu_s": best["twins"], "scalar_cpu_s": best["scalar"],
            "twins_per_cpu_s": ns / best["twins"], "scalar_per_cpu_s": ns / best["scalar"],
            "ratio": best["scalar"] / best["twins"]}


# ----------------------------------------------------------------------------- runs


def _child_big(config: str, n: int, threads: int | None) -> None:
    import resource

    import assemblers
    from sims.robustness import Disturbance, simulate

    _setup_threads(threads)
    asm = assemblers.load_config(config)
    Q = assemblers.home_pose(asm)
    d = Disturbance(pose_sigma=(1e-4,) * 6)
    t0 = time.perf_counter()
    st = simulate(asm, Q, d, n, seed=1)
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB -> MiB (Linux)
    print(json.dumps({"n": st.n, "wall_s": wall, "maxrss_mib": rss,
                      "rms_position_m": st.rms_position}))


def _run_child(config, n, threads):
    cmd = [sys.executable, __file__, "--child-big", str(int(n)), "--config", config]
    if threads:
        cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="trio")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--samples", type=float, default=2e7, help="Numba, pose noise")
    p.add_argument("--legs-samples", type=float, default=1e6, help="Numba, actuator noise")
    p.add_argument("--numpy-samples", type=float, default=2e5, help="NumPy baselines")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--big", action="store_true", help="also 1e8 samples: peak memory")
    p.add_argument("--big-samples", type=float, default=1e8)
    p.add_argument("--twins", action="store_true",
                   help="also: lane twins vs the scalar kernels (CPU time, one thread)")
    p.add_argument("--twin-blocks", type=int, default=4000, help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true")
    p.add_argument("--child-big", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child_big is not None:
        _child_big(args.config, args.child_big, args.threads)
        return 0

    import assemblers
    from sims.robustness import Disturbance, simulate

    threads = _setup_threads(args.threads)
    asm = assemblers.load_config(args.config)
    Q = assemblers.home_pose(asm)
    N = asm.n_platforms
    sig_pose = np.tile([1e-4] * 6, N)
    cases = {"pose": (Disturbance(pose_sigma=(1e-4,) * 6), int(args.samples)),
             "legs": (Disturbance(leg_sigma=1e-4), int(args.legs_samples))}
    res = {"config": asm.name, "n_platforms": N, "threads": threads, "cpu_count": os.cpu_count(),
           "load_avg_1min": os.getloadavg()[0]}
    for name, (dist, n) in cases.items():
        simulate(asm, Q, dist, 1000, seed=0)  # compile / load the cache
        wall, cpu = _time_best(lambda d=dist, n=n: simulate(asm, Q, d, n, seed=1), args.repeat)
        nn = int(args.numpy_samples)
        if name == "pose":
            fn = partial(numpy_pose, asm, Q, sig_pose, nn, seed=1)
        else:
            fn = partial(numpy_legs, asm, Q, 1e-4, nn, seed=1)
        fn()  # warm-up
        nwall, ncpu = _time_best(fn, max(1, args.repeat - 1))
        res[name] = {"numba_samples": n, "numba_wall_s": wall, "numba_cpu_s": cpu,
                     "numba_per_s": n / wall, "numba_per_cpu_s": n / cpu,
                     "numpy_samples": nn, "numpy_wall_s": nwall, "numpy_per_s": nn / nwall,
                     "speedup": (n / wall) / (nn / nwall)}
    if args.big:
        res["big"] = _run_child(asm.name, args.big_samples, threads)
        res["small_child"] = _run_child(asm.name, 1e3, threads)
    if args.twins:
        res["twins"] = twins_vs_scalar(asm, Q, args.twin_blocks)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"Monte Carlo, {asm.name} (N = {N}), {threads} Numba threads, {os.cpu_count()} CPUs, "
          f"1-min load average {res['load_avg_1min']:.2f}")
    print(f"{'noise':6s} {'Numba [samples/s]':>18s} {'(per CPU-s)':>12s} {'NumPy [samples/s]':>18s} "
          f"{'ratio':>7s}")
    for name in cases:
        r = res[name]
        print(f"{name:6s} {r['numba_per_s']:18.3e} {r['numba_per_cpu_s']:12.3e} "
              f"{r['numpy_per_s']:18.3e} {r['speedup']:7.1f}x")
    if args.big:
        b, s = res["big"], res["small_child"]
        print(f"big run: {b['n']:.3g} samples in {b['wall_s']:.1f} s "
              f"({b['n'] / b['wall_s']:.3e}/s), peak RSS {b['maxrss_mib']:.0f} MiB "
              f"(a child with 1e3 samples: {s['maxrss_mib']:.0f} MiB)")
    if args.twins:
        t = res["twins"]
        print(f"lane twins vs scalar kernels ({t['samples']} pose-noise samples, CPU time of one "
              f"thread): {t['twins_per_cpu_s']:.3e} vs {t['scalar_per_cpu_s']:.3e} samples per "
              f"CPU-s, the twins {t['ratio']:.1f}x cheaper")
    return 0


if __name__ == "__main__":
    sys.exit(main())
