"""CasADi baselines for the least-sensitive IK (``benchmarks/ik.py``; the ``bench`` extra).

What a researcher would otherwise write: the FULL problem on all 6N stack pose parameters, with
the tool pose as 6 equality constraints, in CasADi (exact algorithmic derivatives), solved by

* ``ipopt``: IPOPT with its exact Hessian of the Lagrangian, ``bound_relax_factor = 0`` (its
  default relaxes every bound by 1e-8 relative, so limits overshoot by ~1e-8 m) and tolerances
  tight enough to reach the tool pose to 1e-9;
* ``ipopt-jit``: the same, on compiled C code of the NLP's functions;
* ``sqp-jit``: CasADi's ``sqpmethod`` with qpOASES subproblems (exact Hessian, regularised),
  on compiled C code.

The problem is the one ``assemblers.solve_ik`` solves (docs/conventions.md):

    minimize    || W_out J W_in ||_F^2 / f_ref    (J = J_Q, or J_L in leg mode; the square has
                                                   the same minimisers as the norm, and is
                                                   smoother; f_ref = its value at the start)
    subject to  p_tool(Q) = p_target, vee(R_target^T R(Q) - R(Q)^T R_target) / 2 = 0
                leg_min <= L <= leg_max,  joint angle <= limit (as cos: v.n >= |v| cos(limit)),
                pose bounds (when the config gives them)

The objective is normalised by its value at the start (a parameter), as ``solve_ik``'s SQP does:
in leg mode the weights (sigma_leg = 1e-4 m) make it ~1e-8, and IPOPT's absolute tolerances
then stop it ~1e-6 (relative) short of the optimum on every target.  ``J_Q`` is built exactly as
the convention defines it: column j is ``(dp/dQ_j, vee(dR/dQ_j R^T))`` in the world frame;
``J_L = J_Q blockdiag((dL_i/dq_i)^-1)``.  Every solution is re-checked by the benchmark through
the public API (tool pose, limits, cost), never trusted from CasADi.

Compiled code: the solver's functions are generated as C once (``generate_dependencies``),
compiled with the system C compiler and cached under the user's cache folder,
``assemblers._runtime.cache_dir()/casadi/<sha256 of the C source, compiler command and CasADi
version>/nlp.so``, so a rerun loads them (the trio's leg-mode problem is 7 MB of C: gcc -O1
takes 1.5 minutes on it, once).  The solvers are built once per stack; the time of a solve is the wall
time of one call of the built solver (the start's objective value included).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

KINDS = ("ipopt", "ipopt-jit", "sqp-jit")
# the compiler command for the generated C: -O1, not -O2: the duo's solves were 3 % slower
# (IPOPT 4.24 against 4.10 ms, SQP 1.42 against 1.37 ms: the solvers' own work dominates), and
# gcc -O1 compiles the trio's 7 MB of C in 83 s where -O2 took 642 s (2-core VM, loaded)
CC_FLAGS = ("-O1", "-shared", "-fPIC")


def _rpy_matrix(ca, r, p, y):
    cr, sr, cp, sp, cy, sy = ca.cos(r), ca.sin(r), ca.cos(p), ca.sin(p), ca.cos(y), ca.sin(y)
    return ca.vertcat(
        ca.horzcat(cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr),
        ca.horzcat(sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr),
        ca.horzcat(-sp, cp * sr, cp * cr),
    )


def _transform(ca, q):
    R = _rpy_matrix(ca, q[3], q[4], q[5])
    return ca.vertcat(ca.horzcat(R, q[0:3]), ca.DM([[0, 0, 0, 1]]))


def _vee_skew(ca, M):
    """vee of the skew part of a 3x3 matrix M: ((M - M^T) / 2)^vee."""
    return ca.vertcat(M[2, 1] - M[1, 2], M[0, 2] - M[2, 0], M[1, 0] - M[0, 1]) / 2


def _problem(ca, asm):
    """The symbolic NLP of ``asm``: ``(nlp dict, f(Q) unnormalised as a Function, lbg, ubg,
    lbx, ubx)``; parameters ``p`` = (R_target column-major (9), p_target (3), f_ref)."""
    N = asm.n_platforms
    n = 6 * N
    Q = ca.SX.sym("Q", n)
    P = ca.SX.sym("p", 13)
    R_t = ca.reshape(P[0:9], 3, 3)
    p_t = P[9:12]
    f_ref = P[12]
    T = ca.DM(np.asarray(asm.T_mount))
    legs, cosmarg = [], []
    dLdq = []
    for i, plat in enumerate(asm.platforms):
        q = Q[6 * i:6 * i + 6]
        Ti = _transform(ca, q)
        R = Ti[0:3, 0:3]
        b = np.asarray(plat.base_joints)
        t = np.asarray(plat.top_joints)
        Li = []
        for k in range(6):
            v = q[0:3] + R @ ca.DM(t[k]) - ca.DM(b[k])
            Lk = ca.sqrt(ca.dot(v, v))
            Li.append(Lk)
            if plat.max_joint_angle is not None:
                c = float(np.cos(plat.max_joint_angle))
                cosmarg.append(v[2] - Lk * c)               # base normal (0, 0, 1)
                cosmarg.append(ca.dot(v, R[:, 2]) - Lk * c)  # top normal R e_z
        Li = ca.vertcat(*Li)
        legs.append(Li)
        dLdq.append(ca.jacobian(Li, q))
        T = T @ Ti
        T = T @ ca.DM(np.asarray(asm.T_interfaces[i]) if i < N - 1 else np.asarray(asm.T_tool))
    p = T[0:3, 3]
    R = T[0:3, 0:3]
    Jp = ca.jacobian(p, Q)
    dR = ca.jacobian(ca.vec(R), Q)  # (9, n): column j = vec(dR/dQ_j), column-major
    cols = []
    for j in range(n):
        dRj = ca.reshape(dR[:, j], 3, 3)
        W = dRj @ R.T  # skew: the world angular velocity per unit Q_j
        cols.append(ca.vertcat(W[2, 1], W[0, 2], W[1, 0]))
    J = ca.vertcat(Jp, ca.horzcat(*cols))  # (6, n) J_Q
    s = asm.sensitivity
    w_out = ca.DM([1, 1, 1, s.length_scale, s.length_scale, s.length_scale])
    if s.wrt == "legs":
        blocks = [ca.solve(dLdq[i].T, J[:, 6 * i:6 * i + 6].T).T for i in range(N)]
        J = ca.horzcat(*blocks)
        w_in = ca.DM([s.sigma_leg] * n)
    else:
        w_in = ca.DM([s.sigma_translation] * 3 + [s.sigma_rotation] * 3 * 1)
        w_in = ca.repmat(w_in, N, 1)
    f = ca.sumsqr(ca.diag(w_out) @ J @ ca.diag(w_in))
    g_eq = ca.vertcat(p - p_t, _vee_skew(ca, R_t.T @ R))
    g_parts = [g_eq, ca.vertcat(*legs)]
    lbg = [np.zeros(6), np.repeat(asm.leg_min, 6)]
    ubg = [np.zeros(6), np.repeat(asm.leg_max, 6)]
    if cosmarg:
        g_parts.append(ca.vertcat(*cosmarg))
        lbg.append(np.zeros(len(cosmarg)))
        ubg.append(np.full(len(cosmarg), np.inf))
    lbx = np.asarray(asm.pose_lower, float).reshape(-1)
    ubx = np.asarray(asm.pose_upper, float).reshape(-1)
    nlp = {"x": Q, "p": P, "f": f / f_ref, "g": ca.vertcat(*g_parts)}
    return (nlp, ca.Function("f", [Q], [f]), np.concatenate(lbg), np.concatenate(ubg), lbx,
            ubx)


def _options(kind: str, tol: float, max_iter: int) -> tuple[str, dict]:
    opts: dict = {"print_time": False}
    if kind.startswith("ipopt"):
        opts["ipopt"] = {"print_level": 0, "sb": "yes", "tol": tol, "constr_viol_tol": 1e-10,
                         "bound_relax_factor": 0.0, "max_iter": max_iter,
                         "honor_original_bounds": "yes"}
        return "ipopt", opts
    opts.update(qpsol="qpoases", qpsol_options={"printLevel": "none", "error_on_fail": False},
                max_iter=max_iter, tol_pr=1e-12, tol_du=1e-10, print_header=False,
                print_iteration=False, print_status=False, hessian_approximation="exact",
                convexify_strategy="regularize", error_on_fail=False)
    return "sqpmethod", opts


def compiler() -> str | None:
    """The C compiler for the generated code (``$CC``, else cc or gcc), or None."""
    for cc in (os.environ.get("CC"), "cc", "gcc"):
        if cc and shutil.which(cc):
            return cc
    return None


def compiled(ca, solver, log=None) -> Path:
    """The shared library of ``solver``'s generated functions, compiled once and cached under
    ``cache_dir()/casadi/<hash>/nlp.so`` (the hash covers the C source, the compiler command
    and CasADi's version).  ``log``: called with one line when it compiles."""
    from assemblers._runtime import cache_dir

    cc = compiler()
    if cc is None:
        raise RuntimeError("no C compiler (cc, gcc or $CC) for CasADi's generated code")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "nlp.c"
        cwd = os.getcwd()
        os.chdir(tmp)  # generate_dependencies writes into the working directory
        try:
            solver.generate_dependencies("nlp.c", {"with_header": False})
        finally:
            os.chdir(cwd)
        text = src.read_bytes()
        key = hashlib.sha256(text + " ".join((cc, *CC_FLAGS, ca.__version__)).encode())
        folder = Path(cache_dir()) / "casadi" / key.hexdigest()[:24]
        lib = folder / "nlp.so"
        if lib.exists():
            return lib
        folder.mkdir(parents=True, exist_ok=True)
        if log is not None:
            log(f"    compiling CasADi's generated C ({len(text) / 1e6:.1f} MB, {cc} "
                f"{' '.join(CC_FLAGS)}) into {lib} (once) ...")
        t0 = time.perf_counter()
        part = folder / f"nlp.so.{os.getpid()}.part"
        subprocess.run([cc, *CC_FLAGS, str(src), "-o", str(part), "-lm"], check=True)
        os.replace(part, lib)  # atomic: a concurrent run sees the whole library or none
        if log is not None:
            log(f"    compiled in {time.perf_counter() - t0:.0f} s")
    return lib


@contextlib.contextmanager
def _quiet_stdout():
    """Silence C-level stdout (qpOASES prints its licence banner whenever it is created)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


class CasadiIK:
    """One stack's CasADi NLP and solver.  ``kind`` in :data:`KINDS`."""

    def __init__(self, asm, kind: str = "ipopt", *, tol: float = 1e-12, max_iter: int = 500,
                 log=None):
        import casadi as ca

        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.asm, self.kind = asm, kind
        nlp, self.f, self.lbg, self.ubg, self.lbx, self.ubx = _problem(ca, asm)
        plugin, opts = _options(kind, tol, max_iter)
        with _quiet_stdout():
            solver = ca.nlpsol(f"{plugin}_ik", plugin, nlp, opts)
        if kind.endswith("-jit"):
            lib = compiled(ca, solver, log)
            with _quiet_stdout():
                solver = ca.nlpsol(f"{plugin}_ik_compiled", plugin, str(lib), opts)
        self.solver = solver
        self.bounds = np.isfinite(self.lbx).any() or np.isfinite(self.ubx).any()

    def solve(self, T_target: np.ndarray, Q0: np.ndarray) -> tuple[np.ndarray, bool, float, int]:
        """Solve for ``T_target`` (4, 4) world frame from ``Q0`` (6N,).  Returns (Q (6N,), the
        solver's own success flag, wall time s, iterations)."""
        T_target = np.asarray(T_target, float)
        Q0 = np.asarray(Q0, float)
        t0 = time.perf_counter()
        f_ref = float(self.f(Q0))
        par = np.concatenate([T_target[:3, :3].reshape(-1, order="F"), T_target[:3, 3],
                              [f_ref if f_ref > 0 else 1.0]])
        kw = dict(x0=Q0, p=par, lbg=self.lbg, ubg=self.ubg)
        if self.bounds:
            kw.update(lbx=self.lbx, ubx=self.ubx)
        sol = self.solver(**kw)
        dt = time.perf_counter() - t0
        st = self.solver.stats()
        return (np.asarray(sol["x"]).reshape(-1), bool(st.get("success", False)), dt,
                int(st.get("iter_count", -1)))
