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
* :func:`psd_pinv`: the Moore-Penrose pseudo-inverse of a PSD matrix from that decomposition, with
  eigenvalues ``<= rtol * max eigenvalue`` treated as zero.
* :func:`project_simplex`: Euclidean projection onto the probability simplex by sorting (Held et al. 1974;
  Duchi et al. 2008).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["psd_pinv", "project_simplex", "spd_solve", "jacobi_eigh"]


def spd_solve(A: jax.Array, b: jax.Array) -> jax.Array:
    """Solve ``A x = b`` for symmetric positive definite ``A`` (``[..., K, K]``), ``b`` ``[..., K]``.

    Cholesky without pivoting (stable for SPD matrices); a non-positive pivot (a singular or indefinite
    ``A``) is replaced by the smallest normal number rather than taking the square root of a negative (the
    result is then huge, not meaningful: callers pass positive definite matrices).
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


def _rotate(A, V, ep, eq):
    """One Jacobi rotation zeroing ``A[p, q]``, with ``p, q`` given as one-hot vectors ``ep, eq`` (so a single
    traced body serves every pair). Numerical Recipes' stable form of the rotation angle."""
    app, aqq, apq = ep @ A @ ep, eq @ A @ eq, ep @ A @ eq
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
    Epp, Eqq, Epq = jnp.outer(ep, ep), jnp.outer(eq, eq), jnp.outer(ep, eq)
    # The plane rotation: identity except R_pp = R_qq = c, R_pq = s, R_qp = -s.
    R = jnp.eye(ep.shape[0], dtype=A.dtype) + (c - 1.0) * (Epp + Eqq) + s * (Epq - Epq.T)
    A = R.T @ A @ R
    # The rotated 2x2 block is known exactly: set it rather than keep rounding residue.
    block = Epp + Eqq + Epq + Epq.T
    A = A * (1.0 - block) + (app - t * apq) * Epp + (aqq + t * apq) * Eqq
    return A, V @ R


def jacobi_eigh(A: jax.Array, sweeps: int = 10) -> tuple[jax.Array, jax.Array]:
    """Eigen-decomposition of symmetric ``A`` (``[..., K, K]``) by ``sweeps`` cyclic Jacobi sweeps.

    Returns ``(eigenvalues [..., K] ascending, eigenvectors [..., K, K])`` with ``A = V diag(w) V^T`` (the
    columns of ``V`` are the eigenvectors), like ``numpy.linalg.eigh``. Only the symmetric part of ``A`` is
    used. Cost: ``sweeps * K (K - 1) / 2`` rotations of ``O(K^2)`` each (two ``K x K`` products; one traced
    loop body, so the compile time does not grow with K). Ten sweeps reach rounding level for
    ``K <= 8`` (convergence is quadratic once the off-diagonal mass is small).
    """
    k = A.shape[-1]
    if A.ndim < 2 or A.shape[-2] != k:
        raise ValueError(f"jacobi_eigh: A must be [..., K, K]; got shape {A.shape}")
    if sweeps < 1:
        raise ValueError(f"jacobi_eigh: sweeps = {sweeps} must be >= 1")
    A = 0.5 * (A + jnp.swapaxes(A, -1, -2))
    if A.ndim > 2:  # batch dimensions: map the single-matrix routine over them
        flat = A.reshape((-1, k, k))
        w, V = jax.vmap(lambda a: jacobi_eigh(a, sweeps))(flat)
        return w.reshape(A.shape[:-1]), V.reshape(A.shape)
    V = jnp.eye(k, dtype=A.dtype)
    pairs = [(p, q) for p in range(k - 1) for q in range(p + 1, k)]
    if pairs:
        onehot = np.eye(k, dtype=np.float32)
        EP = jnp.asarray(onehot[[p for p, _ in pairs]], A.dtype)
        EQ = jnp.asarray(onehot[[q for _, q in pairs]], A.dtype)

        def step(i, carry):
            j = i % len(pairs)
            return _rotate(*carry, EP[j], EQ[j])

        A, V = jax.lax.fori_loop(0, sweeps * len(pairs), step, (A, V))
    w = jnp.diagonal(A, axis1=-2, axis2=-1)
    order = jnp.argsort(w, axis=-1)
    w = jnp.take_along_axis(w, order, axis=-1)
    V = jnp.take_along_axis(V, order[..., None, :], axis=-1)
    return w, V


def psd_pinv(a: jax.Array, rtol: float = 1e-5, sweeps: int = 10) -> jax.Array:
    """Pseudo-inverse of a positive semi-definite ``a``: ``V diag(1 / w_i if w_i > rtol * max w else 0)
    V^T``. A zero matrix gives a zero matrix."""
    w, v = jacobi_eigh(a, sweeps)
    w = jnp.maximum(w, 0.0)
    keep = w > rtol * jnp.max(w)
    inv = jnp.where(keep, 1.0 / jnp.where(keep, w, 1.0), 0.0)
    return (v * inv) @ v.T


def project_simplex(v: jax.Array) -> jax.Array:
    """``argmin_{w >= 0, sum w = 1} ||w - v||``."""
    k = v.shape[0]
    u = jnp.sort(v)[::-1]
    css = jnp.cumsum(u)
    j = jnp.arange(1, k + 1, dtype=v.dtype)
    ok = u - (css - 1.0) / j > 0
    rho = jnp.max(jnp.where(ok, jnp.arange(k), 0))
    tau = (css[rho] - 1.0) / (rho + 1.0).astype(v.dtype)
    return jnp.maximum(v - tau, 0.0)
