"""The dual active-set QP (assemblers.optim.qp) and the dense linear algebra under it
(assemblers.optim.linalg) against independent references: the KKT conditions checked in NumPy,
SciPy's SLSQP on the same QPs, NumPy's factorisations."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from assemblers.optim import linalg
from assemblers.optim import qp as S


def random_qp(seed):
    """A strictly convex QP with a known feasible point; some rows repeated (dependent)."""
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(2, 19)), int(rng.integers(0, 80))
    A_ = rng.normal(size=(n, n))
    B = A_ @ A_.T + 0.05 * np.eye(n)
    a = rng.normal(size=n) * 3
    N = rng.normal(size=(m, n))
    if m > 4:
        N[m - 2:] = N[:2]  # duplicated constraints
    x_f = rng.normal(size=n)
    b = N @ x_f - rng.exponential(size=m) * (rng.random(m) < 0.6)  # some tight at x_f
    if m > 4:
        b[m - 2:] = b[:2]
    return B, a, N, b


def solve_qp(B, a, N, b, guess=()):
    n, m = B.shape[0], N.shape[0]
    L = np.empty((n, n))
    assert linalg.cholesky(B, L, 0.0)
    x, u = np.empty(n), np.empty(m)
    work = np.zeros(n, dtype=np.int64)
    work[: len(guess)] = guess
    status, q = S.qp_dual(L, a, N, b, x, u, 1e-12, 10 * (m + n), work, len(guess))
    return status, x, u, work[:q].copy()


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_qp_meets_its_kkt_conditions_and_matches_slsqp(seed):
    """x and u satisfy stationarity, feasibility, u >= 0 and complementarity (checked here in
    NumPy), and the objective equals SciPy SLSQP's on the same QP."""
    B, a, N, b = random_qp(seed)
    status, x, u, act = solve_qp(B, a, N, b)
    assert status == S.QP_OK
    scale = 1.0 + np.abs(u).max(initial=0.0)
    assert np.abs(B @ x + a - N.T @ u).max() <= 1e-9 * scale * (1 + np.abs(a).max())
    assert (N @ x - b).min(initial=0.0) >= -1e-9 * (1 + np.abs(b).max(initial=0.0))
    assert u.min(initial=0.0) >= 0.0
    assert np.abs(u * (N @ x - b)).max(initial=0.0) <= 1e-9 * scale
    assert set(np.nonzero(u)[0]) <= set(act)
    q = lambda v: 0.5 * v @ B @ v + a @ v  # noqa: E731
    cons = [{"type": "ineq", "fun": lambda v: N @ v - b, "jac": lambda v: N}] if len(b) else []
    ref = minimize(q, np.zeros_like(a), jac=lambda v: B @ v + a, constraints=cons,
                   method="SLSQP", options={"ftol": 1e-14, "maxiter": 500})
    assert q(x) <= ref.fun + 1e-7 * (1 + abs(ref.fun))


@pytest.mark.parametrize("seed", range(6))
def test_qp_guess_of_the_active_set_gives_the_same_solution(seed):
    """The active-set guess is a shortcut, never a different answer: the right set, a subset,
    a superset with an inactive constraint and an unrelated set all give the same x, with
    multipliers that meet the KKT conditions (checked here in NumPy); the same multipliers
    where they are unique (the constraints tight at x linearly independent: several of these
    QPs have more tight constraints than variables, where many multiplier vectors are right)."""
    B, a, N, b = random_qp(100 + seed)
    status, x, u, act = solve_qp(B, a, N, b)
    assert status == S.QP_OK
    rng = np.random.default_rng(seed)
    inactive = [i for i in range(len(b)) if i not in set(act)]
    guesses = [list(act), list(act[: len(act) // 2]),
               list(rng.choice(len(b), size=min(3, len(b)), replace=False)) if len(b) else []]
    if inactive and len(act) < len(a):
        guesses.append(list(act) + [inactive[0]])
    for guess in guesses:
        s2, x2, u2, _ = solve_qp(B, a, N, b, guess)
        assert s2 == S.QP_OK
        np.testing.assert_allclose(x2, x, atol=1e-9 * (1 + np.abs(x).max()))
        scale = 1.0 + np.abs(u2).max(initial=0.0)
        assert np.abs(B @ x2 + a - N.T @ u2).max() <= 1e-9 * scale * (1 + np.abs(a).max())
        assert u2.min(initial=0.0) >= 0.0
        assert np.abs(u2 * (N @ x2 - b)).max(initial=0.0) <= 1e-9 * scale
        tight = np.abs(N @ x - b) <= 1e-9 * (1 + np.abs(b).max(initial=0.0))
        if np.linalg.matrix_rank(N[tight]) == tight.sum():  # unique multipliers
            np.testing.assert_allclose(u2, u, atol=1e-8 * (1 + np.abs(u).max(initial=0.0)))


@pytest.mark.parametrize("seed", range(4))
def test_qr_append_and_delete_match_the_columns(seed):
    """The thin QR factors after appending columns (one of them nearly dependent, which takes
    the second Gram-Schmidt pass) and deleting one by Givens rotations: Q orthonormal, R upper
    triangular, Q R equal to the remaining columns (NumPy products)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 19))
    q = int(rng.integers(2, n + 1))
    V = rng.normal(size=(q, n))
    V[-1] = V[0] + 1e-9 * rng.normal(size=n)  # nearly dependent on the first
    Qt, Rm = np.zeros((n, n)), np.zeros((n, n))  # the basis as rows
    for j in range(q):
        S.qr_append(Qt, Rm, j, V[j])
    np.testing.assert_allclose(Qt[:q].T @ Rm[:q, :q], V.T, atol=1e-12)
    k = int(rng.integers(0, q))
    S.qr_delete(Qt, Rm, q, k)
    keep = np.delete(V, k, axis=0).T
    Q1, R1 = Qt[: q - 1].T, Rm[: q - 1, : q - 1]
    np.testing.assert_allclose(Q1.T @ Q1, np.eye(q - 1), atol=1e-12)
    assert np.all(np.tril(R1, -1) == 0.0)
    np.testing.assert_allclose(Q1 @ R1, keep, atol=1e-12)


def test_qp_reports_inconsistent_constraints():
    """x1 >= 1 and -x1 >= 0 have no solution: QP_INFEASIBLE, not a wrong x."""
    N = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    status, *_ = solve_qp(np.eye(3), np.zeros(3), N, np.array([1.0, 0.0]))
    assert status == S.QP_INFEASIBLE




@pytest.mark.parametrize("seed", range(4))
def test_linear_algebra_matches_numpy(seed):
    """Cholesky, both triangular solves, the Cholesky solve, the pivoted 6 x 6 solve and the
    inverse against NumPy; a matrix that is not positive definite (or singular) is refused."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 13))
    A_ = rng.normal(size=(n, n))
    M = A_ @ A_.T + 0.1 * np.eye(n)
    v = rng.normal(size=n)
    L, y, x = np.empty((n, n)), np.empty(n), np.empty(n)
    assert linalg.cholesky(M, L, 0.0)
    np.testing.assert_allclose(L, np.linalg.cholesky(M), atol=1e-12)
    linalg.lower_solve(L, v, y)
    np.testing.assert_allclose(y, np.linalg.solve(L, v), atol=1e-10)
    linalg.upper_solve(L, v, x)
    np.testing.assert_allclose(x, np.linalg.solve(L.T, v), atol=1e-10)
    assert linalg.cholesky_solve(M, v, x, 0.0)
    np.testing.assert_allclose(x, np.linalg.solve(M, v), atol=1e-9)
    assert not linalg.cholesky(-M, L, 0.0)
    A6 = rng.normal(size=(6, 6))
    r = rng.normal(size=6)
    out, inv = np.empty(6), np.empty((6, 6))
    assert linalg.solve6(A6.copy(), r.copy(), out)
    np.testing.assert_allclose(out, np.linalg.solve(A6, r), atol=1e-10)
    assert linalg.invert6(A6, inv)
    np.testing.assert_allclose(inv, np.linalg.inv(A6), atol=1e-9)
    assert not linalg.solve6(np.zeros((6, 6)), r.copy(), out)
    assert not linalg.invert6(np.zeros((6, 6)), inv)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_copy_into_matches_numpy_assignment(seed):
    """``copy_into`` against NumPy's slice assignment, on C arrays and on strided views of one
    to three dimensions; arrays of different sizes are refused."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(k) for k in rng.integers(1, 5, size=int(rng.integers(1, 4))))
    src = rng.normal(size=shape)
    big = np.zeros(tuple(2 * k + 1 for k in shape))
    view = big[tuple(slice(1, None, 2) for _ in shape)]  # strided, not contiguous
    want = big.copy()
    want[tuple(slice(1, None, 2) for _ in shape)] = src
    linalg.copy_into(view, src)
    np.testing.assert_array_equal(big, want)
    dst = np.empty(shape)
    linalg.copy_into(dst, src.T.copy().T if src.ndim > 1 else src)
    np.testing.assert_array_equal(dst, src)
    with pytest.raises(ValueError, match="differ in size"):
        linalg.copy_into(np.empty(src.size + 1), src.ravel())
