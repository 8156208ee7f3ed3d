"""Linear algebra for tiny ``K x K`` matrices (K = number of balanced losses) without LAPACK.

``jnp.linalg`` calls LAPACK on CPU, which can deadlock inside vmapped training programs. The Gramian-based
balancers only ever need ``K x K`` systems with K of a few units, so these routines are written with static
Python loops over ``K`` (unrolled at trace time) and fixed iteration counts: they jit, vmap, and cost
``O(K^3)`` scalar operations per call.

* :func:`spd_solve`: ``A x = b`` for symmetric positive definite ``A`` by a hand-written Cholesky
  factorisation (``A = L L^T``) and two triangular substitutions.
* :func:`jacobi_eigh`: eigenvalues and eigenvectors of a symmetric matrix by the cyclic Jacobi method
  (Golub & Van Loan, *Matrix Computations*, section 8.5): each rotation zeroes one off-diagonal pair; a
  sweep visits every pair once; convergence is quadratic, so a fixed number of sweeps reaches rounding
  level for small K. On positive semi-definite matrices Jacobi also has good *relative* accuracy on the small
  eigenvalues (Demmel & Veselic 1992), which matters for Gramians of gradients whose norms differ by 1e6.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["spd_solve", "jacobi_eigh"]


def spd_solve(A: jax.Array, b: jax.Array) -> jax.Array:
    """Solve ``A x = b`` for symmetric positive definite ``A`` (``[..., K, K]``), ``b`` ``[..., K]``.

    Cholesky without pivoting (stable for SPD matrices); a non-positive pivot (a singular or indefinite
    ``A``) is replaced by the smallest normal number so the result stays finite rather than NaN.
    Batch dimensions broadcast between ``A`` and ``b``.
    """
    k = A.shape[-1]
    if A.shape[-2] != k or b.shape[-1] != k:
        raise ValueError(f"spd_solve: A must be [..., K, K] and b [..., K]; got {A.shape} and {b.shape}")
    tiny = jnp.finfo(A.dtype).tiny
    # L[i][j] as a nested list of [...]-shaped arrays (static K, unrolled).
    L = [[None] * k for _ in range(k)]
    for j in range(k):
        d = A[..., j, j] - sum((L[j][m] * L[j][m] for m in range(j)), jnp.zeros_like(A[..., j, j]))
        d = jnp.sqrt(jnp.maximum(d, tiny))
        L[j][j] = d
        for i in range(j + 1, k):
            s = A[..., i, j] - sum((L[i][m] * L[j][m] for m in range(j)), jnp.zeros_like(A[..., i, j]))
            L[i][j] = s / d
    # Forward substitution L y = b, then back substitution L^T x = y.
    y = [None] * k
    for i in range(k):
        y[i] = (b[..., i] - sum((L[i][m] * y[m] for m in range(i)), jnp.zeros_like(b[..., i]))) / L[i][i]
    x = [None] * k
    for i in reversed(range(k)):
        x[i] = (y[i] - sum((L[m][i] * x[m] for m in range(i + 1, k)), jnp.zeros_like(y[i]))) / L[i][i]
    return jnp.stack(jnp.broadcast_arrays(*x), axis=-1)


def _rotate(carry, p: int, q: int):
    """One Jacobi rotation zeroing ``A[p, q]`` (Numerical Recipes' stable form of the rotation angle)."""
    A, V = carry
    app, aqq, apq = A[..., p, p], A[..., q, q], A[..., p, q]
    nonzero = apq != 0
    theta = (aqq - app) / (2.0 * jnp.where(nonzero, apq, 1.0))
    at = jnp.abs(theta)
    # sqrt(theta^2 + 1) without overflowing for huge theta.
    root = jnp.where(
        at > 1.0, at * jnp.sqrt(1.0 + jnp.square(1.0 / jnp.maximum(at, 1.0))), jnp.sqrt(at * at + 1.0)
    )
    t = jnp.where(theta >= 0, 1.0, -1.0) / (at + root)
    t = jnp.where(nonzero, t, 0.0)
    c = 1.0 / jnp.sqrt(t * t + 1.0)
    s = t * c
    cc, ss = c[..., None], s[..., None]
    # Columns p, q then rows p, q (A <- R^T A R with R the plane rotation).
    colp, colq = A[..., :, p], A[..., :, q]
    A = A.at[..., :, p].set(cc * colp - ss * colq).at[..., :, q].set(ss * colp + cc * colq)
    rowp, rowq = A[..., p, :], A[..., q, :]
    A = A.at[..., p, :].set(cc * rowp - ss * rowq).at[..., q, :].set(ss * rowp + cc * rowq)
    # The rotated 2x2 block is known exactly: set it rather than keep rounding residue.
    A = A.at[..., p, p].set(app - t * apq).at[..., q, q].set(aqq + t * apq)
    A = A.at[..., p, q].set(0.0).at[..., q, p].set(0.0)
    vp, vq = V[..., :, p], V[..., :, q]
    V = V.at[..., :, p].set(cc * vp - ss * vq).at[..., :, q].set(ss * vp + cc * vq)
    return A, V


def jacobi_eigh(A: jax.Array, sweeps: int = 10) -> tuple[jax.Array, jax.Array]:
    """Eigen-decomposition of symmetric ``A`` (``[..., K, K]``) by ``sweeps`` cyclic Jacobi sweeps.

    Returns ``(eigenvalues [..., K] ascending, eigenvectors [..., K, K])`` with ``A = V diag(w) V^T`` (the
    columns of ``V`` are the eigenvectors), like ``numpy.linalg.eigh``. Only the symmetric part of ``A`` is
    used. Cost: ``sweeps * K (K - 1) / 2`` rotations of ``O(K)`` each. Ten sweeps reach rounding level for
    ``K <= 8`` (convergence is quadratic once the off-diagonal mass is small).
    """
    k = A.shape[-1]
    if A.ndim < 2 or A.shape[-2] != k:
        raise ValueError(f"jacobi_eigh: A must be [..., K, K]; got shape {A.shape}")
    if sweeps < 1:
        raise ValueError(f"jacobi_eigh: sweeps = {sweeps} must be >= 1")
    A = 0.5 * (A + jnp.swapaxes(A, -1, -2))
    V = jnp.broadcast_to(jnp.eye(k, dtype=A.dtype), A.shape)
    pairs = [(p, q) for p in range(k - 1) for q in range(p + 1, k)]

    def sweep(_, carry):
        for p, q in pairs:
            carry = _rotate(carry, p, q)
        return carry

    if pairs:
        A, V = jax.lax.fori_loop(0, sweeps, sweep, (A, V))
    w = jnp.diagonal(A, axis1=-2, axis2=-1)
    order = jnp.argsort(w, axis=-1)
    w = jnp.take_along_axis(w, order, axis=-1)
    V = jnp.take_along_axis(V, order[..., None, :], axis=-1)
    return w, V
