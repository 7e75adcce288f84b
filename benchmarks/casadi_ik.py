"""CasADi baselines for the least-sensitive IK (``benchmarks/ik.py``; the ``bench`` extra).

What a researcher would otherwise write: the FULL problem on all 6N stack pose parameters, with
the tool pose as 6 equality constraints, in CasADi (exact algorithmic derivatives), solved by

* ``ipopt``: IPOPT with its exact Hessian of the Lagrangian, ``bound_relax_factor = 0`` (its
  default relaxes every bound by 1e-8 relative, so limits overshoot by ~1e-8 m) and tolerances
  tight enough to reach the tool pose to 1e-9;
* ``ipopt-jit``: the same, with CasADi's generated C code compiled (``jit``);
* ``sqp-jit``: CasADi's ``sqpmethod`` with qpOASES subproblems (exact Hessian, regularised),
  generated code compiled.

The problem is the one ``assemblers.solve_ik`` solves (docs/conventions.md):

    minimize    || W_out J W_in ||_F^2        (J = J_Q, or J_L in leg mode; the square has the
                                               same minimisers as the norm, and is smoother)
    subject to  p_tool(Q) = p_target, vee(R_target^T R(Q) - R(Q)^T R_target) / 2 = 0
                leg_min <= L <= leg_max,  joint angle <= limit (as cos: v.n >= |v| cos(limit)),
                pose bounds (when the config gives them)

``J_Q`` is built exactly as the convention defines it: column j is ``(dp/dQ_j, vee(dR/dQ_j R^T))``
in the world frame; ``J_L = J_Q blockdiag((dL_i/dq_i)^-1)``.  Every solution is re-checked by the
benchmark through the public API (tool pose, limits, cost), never trusted from CasADi.
The solvers are built once per stack (symbolic graph and, for JIT, the compiled code); the time
of a solve is the wall time of one call of the built solver.
"""

from __future__ import annotations

import time

import numpy as np

KINDS = ("ipopt", "ipopt-jit", "sqp-jit")


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


class CasadiIK:
    """One stack's CasADi NLP and solver.  ``kind`` in :data:`KINDS`."""

    def __init__(self, asm, kind: str = "ipopt", *, tol: float = 1e-12, max_iter: int = 500):
        import casadi as ca

        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.asm, self.kind = asm, kind
        N = asm.n_platforms
        n = 6 * N
        Q = ca.SX.sym("Q", n)
        P = ca.SX.sym("T_target", 12)  # R (column-major 9) then p (3)
        R_t = ca.reshape(P[0:9], 3, 3)
        p_t = P[9:12]
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
        Jw = ca.diag(w_out) @ J @ ca.diag(w_in)
        f = ca.sumsqr(Jw)
        g_eq = ca.vertcat(p - p_t, _vee_skew(ca, R_t.T @ R))
        L_all = ca.vertcat(*legs)
        g_parts = [g_eq, L_all]
        lbg = [np.zeros(6), np.repeat(asm.leg_min, 6)]
        ubg = [np.zeros(6), np.repeat(asm.leg_max, 6)]
        if cosmarg:
            g_parts.append(ca.vertcat(*cosmarg))
            lbg.append(np.zeros(len(cosmarg)))
            ubg.append(np.full(len(cosmarg), np.inf))
        self.lbg, self.ubg = np.concatenate(lbg), np.concatenate(ubg)
        lbx = np.asarray(asm.pose_lower, float).reshape(-1)
        ubx = np.asarray(asm.pose_upper, float).reshape(-1)
        self.lbx, self.ubx = lbx, ubx
        nlp = {"x": Q, "p": P, "f": f, "g": ca.vertcat(*g_parts)}
        jit = kind.endswith("-jit")
        opts: dict = {"print_time": False}
        if jit:
            opts.update(jit=True, compiler="shell", jit_options={"flags": ["-O2"], "verbose": False})
        if kind.startswith("ipopt"):
            opts["ipopt"] = {"print_level": 0, "sb": "yes", "tol": tol, "constr_viol_tol": 1e-10,
                             "bound_relax_factor": 0.0, "max_iter": max_iter,
                             "honor_original_bounds": "yes"}
            self.solver = ca.nlpsol("ipopt_ik", "ipopt", nlp, opts)
        else:
            opts.update(qpsol="qpoases", qpsol_options={"printLevel": "none", "error_on_fail": False},
                        max_iter=max_iter, tol_pr=1e-12, tol_du=1e-10, print_header=False,
                        print_iteration=False, print_status=False, hessian_approximation="exact",
                        convexify_strategy="regularize", error_on_fail=False)
            self.solver = ca.nlpsol("sqp_ik", "sqpmethod", nlp, opts)

    def solve(self, T_target: np.ndarray, Q0: np.ndarray) -> tuple[np.ndarray, bool, float, int]:
        """Solve for ``T_target`` (4, 4) world frame from ``Q0`` (6N,).  Returns (Q (6N,), the
        solver's own success flag, wall time s, iterations)."""
        T_target = np.asarray(T_target, float)
        par = np.concatenate([T_target[:3, :3].reshape(-1, order="F"), T_target[:3, 3]])
        kw = dict(x0=np.asarray(Q0, float), p=par, lbg=self.lbg, ubg=self.ubg)
        if np.isfinite(self.lbx).any() or np.isfinite(self.ubx).any():
            kw.update(lbx=self.lbx, ubx=self.ubx)
        t0 = time.perf_counter()
        sol = self.solver(**kw)
        dt = time.perf_counter() - t0
        st = self.solver.stats()
        return (np.asarray(sol["x"]).reshape(-1), bool(st.get("success", False)), dt,
                int(st.get("iter_count", -1)))
