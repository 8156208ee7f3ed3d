"""LAPACK-free linear algebra for the tiny ``K x K`` matrices of multi-loss balancing.

``jnp.linalg`` calls LAPACK on CPU, which can deadlock inside a vmapped training program; every routine
here is built from matmuls, sorts and fixed-count loops only, so it jits and vmaps anywhere.

* :func:`jacobi_eigh`: cyclic Jacobi eigen-decomposition of a symmetric matrix (Jacobi 1846; Golub & Van
  Loan, *Matrix Computations*, section 8.5). Each sweep rotates every off-diagonal pair ``(p, q)`` to zero;
  convergence is quadratic, so a few sweeps reach float32 round-off for ``K <= 8``. On positive
  semi-definite matrices it keeps the small eigenvalues to high *relative* accuracy (Demmel & Veselic 1992),
  which matters for Gramians of gradients whose norms differ by orders of magnitude.
* :func:`psd_pinv`: the Moore-Penrose pseudo-inverse of a PSD matrix from that decomposition, with
  eigenvalues ``<= rtol * max eigenvalue`` treated as zero.
* :func:`project_simplex`: Euclidean projection onto the probability simplex by sorting (Held et al. 1974;
  Duchi et al. 2008).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["jacobi_eigh", "psd_pinv", "project_simplex"]


def _rotate(state, pq):
    a, v = state
    p, q = pq
    app, aqq, apq = a[p, p], a[q, q], a[p, q]
    zero = apq == 0
    # t = tan(theta) of the rotation that zeroes a[p, q], the smaller root for stability.
    theta = (aqq - app) / (2.0 * jnp.where(zero, 1.0, apq))
    t = jnp.sign(theta) / (jnp.abs(theta) + jnp.sqrt(theta * theta + 1.0))
    t = jnp.where(theta == 0, 1.0, t)
    t = jnp.where(zero | ~jnp.isfinite(t), 0.0, t)
    c = jax.lax.rsqrt(t * t + 1.0)
    s = t * c
    k = a.shape[0]
    r = jnp.eye(k, dtype=a.dtype)
    r = r.at[p, p].set(c).at[q, q].set(c).at[p, q].set(s).at[q, p].set(-s)
    a = r.T @ a @ r
    # The rotated pair is zero by construction; set it so round-off does not linger.
    a = a.at[p, q].set(0.0).at[q, p].set(0.0)
    return (a, v @ r), None


def jacobi_eigh(a: jax.Array, sweeps: int = 8) -> tuple[jax.Array, jax.Array]:
    """Eigenvalues ``w [K]`` and eigenvectors ``V [K, K]`` (columns) of a symmetric ``a``: ``a = V diag(w)
    V^T``. ``sweeps`` cyclic sweeps of ``K (K - 1) / 2`` Jacobi rotations each (no convergence test, so the
    cost is fixed). Eigenvalues are not sorted."""
    a = 0.5 * (a + a.T)
    k = a.shape[0]
    if k == 1:
        return jnp.diagonal(a), jnp.ones_like(a)
    pairs = jnp.asarray([(p, q) for p in range(k) for q in range(p + 1, k)], jnp.int32)

    def sweep(_, state):
        state, _ = jax.lax.scan(_rotate, state, pairs)
        return state

    a, v = jax.lax.fori_loop(0, sweeps, sweep, (a, jnp.eye(k, dtype=a.dtype)))
    return jnp.diagonal(a), v


def psd_pinv(a: jax.Array, rtol: float = 1e-5, sweeps: int = 8) -> jax.Array:
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
