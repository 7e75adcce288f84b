"""The lane-vectorized chord Newton of actuator noise (sims.robustness.lanes.legs_newton_lanes)
against the scalar backtracking Newton of the kinematics kernels, lane by lane."""

from __future__ import annotations

import numpy as np
import pytest

import assemblers
from assemblers.kinematics import kernels
from sims.robustness import lanes
from sims.robustness import montecarlo as M


@pytest.mark.parametrize("leg_sigma", [1e-4, 4e-3])
def test_vectorized_newton_matches_scalar_newton(trio, feasible_pose, leg_sigma):
    """Actuator noise: the chord Newton vectorized over lanes (legs_newton_lanes) gives, sample by
    sample, the pose that the kernels' scalar backtracking Newton finds from the same legs; at
    4 mm some lanes leave the chord path for the scalar one, and they agree too."""
    Q = feasible_pose(trio, 12)
    smp = M.sample_errors(trio, Q, M.Disturbance(leg_sigma=leg_sigma), 3000, seed=8)
    assert smp.ok.all()
    arrs = trio.arrays
    b, t = np.ascontiguousarray(arrs.b), np.ascontiguousarray(arrs.t)
    Qs = np.tile(Q, (smp.legs.shape[0], 1))
    err = np.empty((Qs.shape[0], trio.n_platforms))
    it = np.empty((Qs.shape[0], trio.n_platforms), dtype=np.int64)
    kernels.from_legs_batch(b, t, np.ascontiguousarray(smp.legs), Qs, 1e-13, 50, err, it)
    assert (err <= 1e-13).all()
    np.testing.assert_allclose(smp.Q, Qs, rtol=0, atol=1e-10)


def test_vectorized_newton_flags_lanes_for_the_scalar_path(trio, feasible_pose):
    """Lanes with NaN legs, or an angle change beyond the polynomials' range, or no convergence
    within the chord steps get fb = 1; the others converge to 1e-12 m on their own (a lane's
    result does not depend on its neighbours)."""
    Q = np.ascontiguousarray(feasible_pose(trio, 13))
    n, KB = trio.n_platforms, lanes.KB
    b, t = np.ascontiguousarray(trio.arrays.b), np.ascontiguousarray(trio.arrays.t)
    ang = Q.reshape(n, 6)[:, 3:]
    trig = np.ascontiguousarray(np.stack([np.cos(ang), np.sin(ang)], axis=-1).reshape(n, 6))
    L_nom = assemblers.leg_lengths(trio, Q)
    Jinv = np.empty((n, 6, 6))
    Jl, R = np.empty((6, 6)), np.empty((3, 3))
    for i in range(n):
        kernels.platform_leg_jacobian(b[i], t[i], Q, 6 * i, Jl, R)
        Jinv[i] = np.linalg.inv(Jl)
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((6 * n, KB))
    Z[:, 1] = np.nan                       # NaN legs
    Z[:, 2] *= 300.0                       # 3 cm leg errors: large angles / slow convergence
    Z[:, 3] = 0.0                          # exactly the nominal legs

    def run(Z):
        D, fb = np.zeros(6 * n * KB), np.zeros(KB, dtype=np.uint8)
        lanes.legs_newton_lanes(b, t, Q, trig, L_nom, Jinv, 1e-4, np.ascontiguousarray(Z.ravel()),
                            1e-12, lanes.CHORD_ITERS, D, np.zeros(6 * KB), np.zeros(KB),
                            np.zeros(13 * KB), fb)
        return D.reshape(6 * n, KB), fb

    D, fb = run(Z)
    assert fb[1] == 1 and fb[2] == 1 and fb.sum() == 2
    np.testing.assert_array_equal(D[:, 3], 0.0)
    ok = np.flatnonzero(fb == 0)
    Qs = Q[None] + D[:, ok].T
    L = assemblers.leg_lengths(trio, Qs)
    target = L_nom[None] + 1e-4 * Z[:, ok].T.reshape(-1, n, 6)
    assert np.abs(L - target).max() <= 1.5e-12
    # the same lane alone, with other neighbours: the same bits
    Z2 = rng.standard_normal((6 * n, KB))
    Z2[:, 7] = Z[:, 7]
    D2, _ = run(Z2)
    np.testing.assert_array_equal(D2[:, 7], D[:, 7])
