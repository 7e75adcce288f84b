"""Calibration fit time: the JAX identification Jacobian (forward mode, implicit derivative of
each platform's pose from its legs) against SciPy's ``least_squares`` with finite-difference
Jacobians on the same compiled residuals.

    python benchmarks/calibration.py            # duo (N = 2) and the default Assembler (N = 4)
    python benchmarks/calibration.py --quick    # duo only, one round (a smoke run)

Per stack: 60 planned poses, a simulated campaign (joints 1 mm, offsets 0.5 mm, mount and tool
1 mm / 1 mrad, noise 10 um / 20 urad).  Ours: ``assemblers.calibration.calibrate``.  Baseline:
the same steps (identifiability from the Jacobian at nominal, ``least_squares`` on the same
estimable parameters, covariance from the Jacobian at the solution) with every Jacobian by
SciPy's 2-point differences of the residual-only compiled model.  Both are compiled first;
then rounds interleave ours and the baseline, and CPU time is measured (``time.thread_time``
of the calling thread and ``time.process_time`` of the process; the machine may be shared, so
no wall-clock claims).  "Same result": the largest difference of the estimates in their
standard deviations, and the two final costs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def baseline_fit(asm, meas, est):
    """The fit of ``calibrate`` with finite-difference Jacobians (see the module docs), on
    the estimable parameters ``est`` (the QR of a finite-difference Jacobian finds more:
    its round-off lifts the exact null directions above the threshold, so the comparison
    fits ours).  Returns ``(estimate (P,), cost, residual evaluations, FD rank)``."""
    import scipy.optimize

    from assemblers.calibration import params as P
    from assemblers.calibration.core import evaluator, fitted_columns, identify, prepare, single_threaded_blas
    from assemblers.calibration.fit import generic_rank

    with single_threaded_blas():
        n = asm.n_platforms
        rows = prepare(asm, meas)
        p0, prior = P.nominal_vector(asm), P.prior_vector(n)
        columns = fitted_columns(n, ("joints", "offsets", "mount", "tool"))
        ev = evaluator(asm)

        def fun_cols(theta, cols):
            p = p0.copy()
            p[cols] = p0[cols] + prior[cols] * theta
            return rows.whiten(ev.evaluate(p, rows.L, rows.q0, rows.T_meas, False)[0])

        x = np.zeros(columns.size)
        A0 = scipy.optimize._numdiff.approx_derivative(lambda t: fun_cols(t, columns), x,
                                                       method="2-point")
        fd_rank = identify(A0, columns).rank
        generic_rank(asm, columns, prior, rows.mask)  # the same check as calibrate's
        res = scipy.optimize.least_squares(lambda t: fun_cols(t, est), np.zeros(est.size),
                                           jac="2-point", method="trf", x_scale=1.0,
                                           xtol=1e-12, ftol=1e-12, gtol=1e-10, max_nfev=100)
        np.linalg.svd(res.jac, full_matrices=False)  # the covariance, as calibrate
        p = p0.copy()
        p[est] = p0[est] + prior[est] * res.x
        return p, float(res.cost), int(res.nfev) + columns.size + 1, fd_rank


def run(names, rounds: int, poses: int) -> list[dict]:
    import assemblers as A
    from assemblers.calibration import calibrate, plan_poses, simulate_campaign

    out = []
    for name in names:
        asm = A.load_config(name)
        pl = plan_poses(asm, poses, n_candidates=1000, seed=0)
        meas = simulate_campaign(asm, pl.legs, seed=1).measurements
        ours = calibrate(asm, meas)  # compile
        est = ours.estimated
        base = baseline_fit(asm, meas, est)
        times = {"ours": [], "fd": []}
        for _ in range(rounds):
            for kind in ("ours", "fd"):
                t0, c0 = time.thread_time(), time.process_time()
                ours = calibrate(asm, meas) if kind == "ours" else ours
                if kind == "fd":
                    base = baseline_fit(asm, meas, est)
                times[kind].append((time.thread_time() - t0, time.process_time() - c0))
        p_fd, cost_fd, nfev_fd, fd_rank = base
        f = ours.after.whitened
        dz = np.abs(ours.estimate[est] - p_fd[est]) / ours.std[est]
        med = {k: np.median(np.array(v), axis=0) for k, v in times.items()}
        row = {"config": name, "N": asm.n_platforms, "poses": poses, "rounds": rounds,
               "estimated": int(est.size),
               "ours_thread_s": float(med["ours"][0]), "ours_process_s": float(med["ours"][1]),
               "fd_thread_s": float(med["fd"][0]), "fd_process_s": float(med["fd"][1]),
               "ratio_thread": float(med["fd"][0] / med["ours"][0]),
               "ratio_process": float(med["fd"][1] / med["ours"][1]),
               "ours_evaluations": ours.nfev, "fd_residual_evaluations": nfev_fd,
               "fd_jacobian_rank": fd_rank, "rank": int(est.size),
               "max_estimate_difference_std": float(dz.max()),
               "cost_ours": float(0.5 * f @ f), "cost_fd": cost_fd}
        out.append(row)
        print(f"{name} (N = {row['N']}, {poses} poses, {est.size} estimated): ours "
              f"{row['ours_thread_s']:.3f} s thread / {row['ours_process_s']:.3f} s process, "
              f"FD {row['fd_thread_s']:.3f} / {row['fd_process_s']:.3f} s -> "
              f"{row['ratio_thread']:.1f}x / {row['ratio_process']:.1f}x; estimates differ by "
              f"<= {row['max_estimate_difference_std']:.2g} std, cost {row['cost_ours']:.6g} vs "
              f"{row['cost_fd']:.6g} (an FD Jacobian's QR would call {fd_rank} identifiable)",
              flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="duo only, one round (smoke run)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--poses", type=int, default=60)
    ap.add_argument("--json", default=None, metavar="FILE", help="also write the rows as JSON")
    args = ap.parse_args(argv)
    names = ["duo"] if args.quick else ["duo", "assembler"]
    rows = run(names, 1 if args.quick else args.rounds, args.poses)
    if args.json:
        from assemblers.files import write_json

        write_json(args.json, rows)
    else:
        json.dump(rows, sys.stdout, indent=1)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
