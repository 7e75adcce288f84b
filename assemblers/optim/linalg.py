"""Dense linear algebra for small systems, as Numba kernels (problem-agnostic).

Scalar loops for the sizes of this project (n <= ~30): at these sizes a LAPACK or BLAS call
costs more in overhead than the arithmetic.  Matrices are float64 C arrays; results go into
preallocated outputs; a failed factorisation returns False instead of raising.

* :func:`pivot_rows`, :func:`solve6` (Gaussian elimination with partial pivoting),
  :func:`invert6` (Gauss-Jordan);
* :func:`cholesky`, :func:`lower_solve`, :func:`upper_solve` (triangular solves with the
  factor or its transpose), :func:`cholesky_solve`;
* :func:`dot`, :func:`symmetrize`;
* :func:`copy_into`, the kernels' array copy (instead of NumPy's slice assignment).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .. import _runtime  # (sets NUMBA_CACHE_DIR to the user's cache)

_runtime.gc_off_while_compiling()


@njit(cache=True, inline="always")
def pivot_rows(A, col):
    """Partial pivoting: swap into row ``col`` of ``A`` (all its columns) the row at or below it
    with the largest ``|A[row, col]|``.  Returns that row's former index, or -1 if the column is
    zero to working precision (singular)."""
    piv = col
    best = abs(A[col, col])
    for i in range(col + 1, A.shape[0]):
        if abs(A[i, col]) > best:
            best = abs(A[i, col])
            piv = i
    if best < 1e-300:
        return -1
    if piv != col:
        for j in range(A.shape[1]):
            tmp = A[col, j]
            A[col, j] = A[piv, j]
            A[piv, j] = tmp
    return piv


@njit(cache=True)
def solve6(A, r, x):
    """Solve ``A x = r`` (6 x 6) by Gaussian elimination with partial pivoting (A, r destroyed).
    Returns False if A is singular to working precision."""
    n = 6
    for col in range(n):
        piv = pivot_rows(A, col)
        if piv < 0:
            return False
        r[col], r[piv] = r[piv], r[col]
        for i in range(col + 1, n):
            f = A[i, col] / A[col, col]
            for j in range(col, n):
                A[i, j] -= f * A[col, j]
            r[i] -= f * r[col]
    for i in range(n - 1, -1, -1):
        s = r[i]
        for j in range(i + 1, n):
            s -= A[i, j] * x[j]
        x[i] = s / A[i, i]
    return True


@njit(cache=True)
def invert6(A, out):
    """``out = A^-1`` (6, 6) by Gauss-Jordan with partial pivoting; False if singular."""
    n = A.shape[0]
    M = np.empty((n, 2 * n))
    for i in range(n):
        for j in range(n):
            M[i, j] = A[i, j]
            M[i, n + j] = 1.0 if i == j else 0.0
    for col in range(n):
        if pivot_rows(M, col) < 0:
            return False
        d = 1.0 / M[col, col]
        for j in range(2 * n):
            M[col, j] *= d
        for i in range(n):
            if i != col:
                fct = M[i, col]
                if fct != 0.0:
                    for j in range(2 * n):
                        M[i, j] -= fct * M[col, j]
    for i in range(n):
        for j in range(n):
            out[i, j] = M[i, n + j]
    return True


@njit(cache=True)
def cholesky(M, L, floor):
    """Lower Cholesky factor ``L`` (n, n) of a symmetric ``M`` (n, n); False when a squared
    pivot is not above ``floor`` (not safely positive definite)."""
    n = M.shape[0]
    L[:, :] = 0.0
    for j in range(n):
        s = M[j, j]
        for k in range(j):
            s -= L[j, k] * L[j, k]
        if not (s > floor):
            return False
        L[j, j] = math.sqrt(s)
        for i in range(j + 1, n):
            s = M[i, j]
            for k in range(j):
                s -= L[i, k] * L[j, k]
            L[i, j] = s / L[j, j]
    return True


@njit(cache=True)
def lower_solve(L, v, out):
    """``out = L^-1 v`` for lower-triangular ``L`` (n, n)."""
    n = L.shape[0]
    for i in range(n):
        s = v[i]
        for k in range(i):
            s -= L[i, k] * out[k]
        out[i] = s / L[i, i]


@njit(cache=True)
def upper_solve(L, v, out):
    """``out = L^-T v`` for lower-triangular ``L`` (n, n); ``out`` may be ``v`` (in place).
    With ``L = R.T`` it solves with the upper-triangular ``R``."""
    n = L.shape[0]
    for i in range(n - 1, -1, -1):
        s = v[i]
        for k in range(i + 1, n):
            s -= L[k, i] * out[k]
        out[i] = s / L[i, i]


@njit(cache=True)
def cholesky_solve(M, rhs, x, floor):
    """Solve ``M x = rhs`` for a symmetric positive definite ``M`` (n, n); False (x untouched)
    when a squared pivot is not above ``floor`` (not safely positive definite)."""
    n = M.shape[0]
    L = np.empty((n, n))
    if not cholesky(M, L, floor):
        return False
    y = np.empty(n)
    lower_solve(L, rhs, y)
    upper_solve(L, y, x)
    return True


@njit(cache=True)
def dot(a, b):
    """``a . b`` as a loop (np.dot calls BLAS: ~0.1 us of overhead per call at these sizes)."""
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i]
    return s


@njit(cache=True, inline="always")
def symmetrize(H, n):
    """``H[:n, :n] = (H + H') / 2`` in place (a finite-difference Hessian made symmetric)."""
    for a in range(n):
        for b in range(a + 1, n):
            v = 0.5 * (H[a, b] + H[b, a])
            H[a, b] = v
            H[b, a] = v


@njit(cache=True)
def copy_into(dst, src):
    """``dst[...] = src`` for two arrays of one size (any shapes and layouts; read and written in
    C order), for every kernel instead of a slice assignment such as ``A[:, :] = B``.  Why: in
    Numba a slice assignment from an array compiles a formatter of its shape-mismatch error
    (string code: about 3 s of a first run's compile in each process, and linked into, hence
    optimized again in, every kernel above it; ``benchmarks/coldstart.py``)."""
    if dst.size != src.size:
        raise ValueError("copy_into: the arrays differ in size")
    d = dst.flat
    s = src.flat
    for i in range(src.size):
        d[i] = s[i]
