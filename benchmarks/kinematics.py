"""Kinematics throughput and single-call latency, against a plain NumPy baseline (same run).

    python benchmarks/kinematics.py [--n 100000] [--config trio] [--calls 2000] [--no-load]

Batched: FK and J_Q for 1e5 random poses of a 3-platform stack (configs/trio.toml), through the
public API (Numba kernels, threads at or above ``PARALLEL_MIN`` rows), the JAX vmap path, and a
plain NumPy baseline that a user would write (vectorized FK; J_Q by central finite differences
of that FK, 12N+1 FK calls).  Single pose: ``leg_lengths``, ``forward_kinematics``,
``from_legs`` (to 1e-12 m), ``jacobian``, ``sensitivity``.  Under load (unless ``--no-load``):
the same single-pose calls, median and p99 of ``--calls`` calls each, while one background
process per other CPU burns it (single poses never start threads, so a busy machine should not
stretch them from microseconds to milliseconds as it did when they did).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def numpy_fk(asm, Q):
    """Plain vectorized NumPy stack FK: Q (B, 6N) -> (B, 4, 4)."""
    from assemblers.geometry.api import pose_to_transform

    B = Q.shape[0]
    T = np.broadcast_to(asm.T_mount, (B, 4, 4)).copy()
    after = asm.arrays.T_after
    for i in range(asm.n_platforms):
        T = T @ pose_to_transform(Q[:, 6 * i: 6 * i + 6]) @ after[i]
    return T


def numpy_rotvec(R):
    """Rotation vectors of (B, 3, 3) matrices (small angles are all we need here)."""
    v = np.stack([R[:, 2, 1] - R[:, 1, 2], R[:, 0, 2] - R[:, 2, 0], R[:, 1, 0] - R[:, 0, 1]], 1)
    s = np.linalg.norm(v, axis=1) / 2
    c = (np.trace(R, axis1=1, axis2=2) - 1) / 2
    th = np.arctan2(s, c)
    f = np.where(th < 1e-8, 0.5, th / (2 * np.where(s > 0, s, 1)))
    return v * f[:, None]


def numpy_fd_jacobian(asm, Q, h=1e-6):
    """Central finite differences of the twist with the NumPy FK: (B, 6N) -> (B, 6, 6N)."""
    T0 = numpy_fk(asm, Q)
    J = np.empty((Q.shape[0], 6, Q.shape[1]))
    for j in range(Q.shape[1]):
        Qp, Qm = Q.copy(), Q.copy()
        Qp[:, j] += h
        Qm[:, j] -= h
        Tp, Tm = numpy_fk(asm, Qp), numpy_fk(asm, Qm)
        R0t = np.transpose(T0[:, :3, :3], (0, 2, 1))
        dp = (Tp[:, :3, 3] - Tm[:, :3, 3]) / (2 * h)
        dth = (numpy_rotvec(Tp[:, :3, :3] @ R0t) - numpy_rotvec(Tm[:, :3, :3] @ R0t)) / (2 * h)
        J[:, :3, j] = dp
        J[:, 3:, j] = dth
    return J


def best_of(f, repeat=3):
    f()  # warm-up (compilation)
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return min(ts)


def per_call_us(f, n=2000):
    f()
    t = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - t) / n * 1e6


def latencies_us(f, n):
    """Median and 99th percentile (us) of ``n`` single calls of ``f``."""
    f()
    ts = np.empty(n)
    for k in range(n):
        t = time.perf_counter()
        f()
        ts[k] = time.perf_counter() - t
    return float(np.median(ts) * 1e6), float(np.percentile(ts, 99) * 1e6)


def under_load(calls: dict, n: int) -> dict:
    """``{name: (median us, p99 us)}`` of each single-pose call while the other CPUs are busy
    (one spinning ``python`` process per other CPU, ended afterwards)."""
    import os
    import subprocess
    import sys

    n_burn = max(1, (os.cpu_count() or 2) - 1)
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n_burn)]
    try:
        time.sleep(0.2)  # let them start spinning
        return {name: latencies_us(f, n) for name, f in calls.items()}
    finally:
        for p in burners:
            p.kill()
            p.wait()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="batch size (default 1e5)")
    ap.add_argument("--config", default="trio", help="config (default trio, N = 3)")
    ap.add_argument("--calls", type=int, default=2000, help="single calls per latency (2000)")
    ap.add_argument("--no-load", action="store_true", help="skip the single-pose check under load")
    args = ap.parse_args(argv)

    import jax

    import assemblers as A
    from assemblers import kinematics as K

    asm = A.load_config(args.config)
    N, B = asm.n_platforms, args.n
    rng = np.random.default_rng(0)
    lim = np.tile([0.03, 0.03, 0.03, 0.15, 0.15, 0.15], N)
    Q = A.home_pose(asm) + rng.uniform(-lim, lim, size=(B, 6 * N))
    arrs = A.stack_arrays(asm)
    fk_vmap = jax.jit(jax.vmap(K.forward, in_axes=(None, 0)))
    jq_vmap = jax.jit(jax.vmap(K.jacobian_pose, in_axes=(None, 0)))
    jq_ad = jax.jit(jax.vmap(K.jacobian_pose_autodiff, in_axes=(None, 0)))

    # correctness first: every path agrees with the reference before it is timed
    J_api = A.jacobian(asm, Q)
    J_np = numpy_fd_jacobian(asm, Q[:1000])
    assert np.abs(J_api[:1000] - J_np).max() < 1e-7, "NumPy FD baseline disagrees"
    assert np.abs(J_api[:1000] - np.asarray(jq_ad(arrs, Q[:1000]))).max() < 1e-12

    print(f"Batched kinematics, {asm.name} (N = {N}), B = {B} poses, best of 3:")
    rows = []
    t_np_fk = best_of(lambda: numpy_fk(asm, Q))
    t_np_j = best_of(lambda: numpy_fd_jacobian(asm, Q), repeat=1)
    for name, f, base in [
        ("FK   NumPy (baseline)", lambda: numpy_fk(asm, Q), t_np_fk),
        ("FK   JAX vmap+jit", lambda: fk_vmap(arrs, Q).block_until_ready(), t_np_fk),
        ("FK   API (Numba)", lambda: A.forward_kinematics(asm, Q), t_np_fk),
        ("J_Q  NumPy central FD (baseline)", lambda: numpy_fd_jacobian(asm, Q), t_np_j),
        ("J_Q  JAX autodiff (reference)", lambda: jq_ad(arrs, Q).block_until_ready(), t_np_j),
        ("J_Q  JAX analytic vmap+jit", lambda: jq_vmap(arrs, Q).block_until_ready(), t_np_j),
        ("J_Q  API (Numba analytic)", lambda: A.jacobian(asm, Q), t_np_j),
    ]:
        t = base if "baseline" in name else best_of(f)
        rows.append((name, B / t, base / t))
    for name, rate, ratio in rows:
        print(f"  {name:34s} {rate:12.3e} poses/s   x{ratio:8.1f} vs NumPy")

    Q1 = Q[0]
    L1 = A.leg_lengths(asm, Q1)
    print(f"\nSingle-pose latency (N = {N}), mean of {args.calls} calls:")
    calls = {
        "leg_lengths": lambda: A.leg_lengths(asm, Q1),
        "forward_kinematics": lambda: A.forward_kinematics(asm, Q1),
        "from_legs (1e-12 m, from home)": lambda: A.from_legs(asm, L1),
        "jacobian (J_Q)": lambda: A.jacobian(asm, Q1),
        "jacobian (J_L)": lambda: A.jacobian(asm, Q1, "legs"),
        "sensitivity": lambda: A.sensitivity(asm, Q1),
    }
    single = {name: per_call_us(f, args.calls) for name, f in calls.items()}
    single["NumPy FK baseline (B = 1)"] = per_call_us(lambda: numpy_fk(asm, Q1[None]), args.calls)
    for name, us in single.items():
        extra = f"   ({us / N:.1f} us per platform)" if name.startswith("from_legs") else ""
        print(f"  {name:34s} {us:8.1f} us{extra}")
    res = np.abs(A.leg_lengths(asm, A.from_legs(asm, L1)) - L1).max()
    print(f"  from_legs leg residual: {res:.1e} m")
    if not args.no_load:
        print(f"\nSingle-pose latency with the other CPUs busy, {args.calls} calls: median / p99")
        for name, (med, p99) in under_load(calls, args.calls).items():
            print(f"  {name:34s} {med:8.1f} us / {p99:8.1f} us")


if __name__ == "__main__":
    main()
