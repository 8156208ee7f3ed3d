"""Orthogonal weight initialisation without a LAPACK call, safe inside ``jit(vmap(train))`` on CPU.

Why not ``flax.linen.initializers.orthogonal``: it takes the QR decomposition through jaxlib's LAPACK
``geqrf`` FFI kernel. On CPU that kernel splits a batched QR over XLA's intra-op thread pool and blocks
until the pieces finish; when ``vmap`` batches the QR (a seed sweep initialises inside the vmapped
``train``) and the thunk executor runs two such QRs at once, each holds one pool thread waiting for work
that needs the other. On a 2-thread pool (a 2-core machine) nothing is left to run it: the process sits
at 0% CPU forever. Seen here with jax 0.10.2: ``jit(vmap(f))`` over 5 keys of eight 64x64 orthogonal
inits never returns; with 1 key it does (gdb: both ``tf_XLAEigen`` threads in
``jax::ParallelBatchMap`` -> ``BlockingCounter::Wait`` under ``lapack_sgeqrf_ffi``).

The same matrix without LAPACK: draw ``Z ~ N(0, 1)`` of shape ``(max(r, c), min(r, c))`` exactly as
:func:`jax.random.orthogonal` does, then Gram-Schmidt with re-orthogonalisation ("twice is enough",
Giraud et al. 2005) column by column in a ``lax.fori_loop``. Gram-Schmidt yields the QR factor whose
``R`` has a positive diagonal, which is what ``jax.random.orthogonal`` gets by multiplying ``Q`` by
``sign(diag R)`` (Mezzadri 2007), so the result is Haar-distributed and equal to jax's up to rounding
(tested). It costs ``min(r, c)`` matrix-vector products: nothing next to one training update.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def gram_schmidt(z: jax.Array) -> jax.Array:
    """Orthonormal columns ``Q`` of a tall ``z`` ([m, n], m >= n) with ``z = Q R``, ``diag(R) > 0``.

    ``q_k = normalise(a_k - Q_{<k} Q_{<k}^T a_k)``, the projection applied twice for float32 accuracy.
    Columns not yet written are zero, so ``Q @ (Q^T a)`` projects onto the first ``k`` columns only.
    """
    m, n = z.shape
    if m < n:
        raise ValueError(f"gram_schmidt: needs a tall matrix (rows >= columns), got shape {z.shape}")

    def column(k, q):
        a = z[:, k]
        a = a - q @ (q.T @ a)
        a = a - q @ (q.T @ a)
        return q.at[:, k].set(a / jnp.linalg.norm(a))

    return jax.lax.fori_loop(0, n, column, jnp.zeros_like(z))


def orthogonal(scale: float = 1.0, column_axis: int = -1):
    """Flax-compatible initializer ``init(key, shape, dtype) -> scale * Q`` (same draw as jax's).

    ``shape`` is read as a matrix of ``prod(shape) / shape[column_axis]`` rows and
    ``shape[column_axis]`` columns; the smaller side gets orthonormal vectors.
    """

    def init(key, shape, dtype=jnp.float32):
        if len(shape) < 2:
            raise ValueError(f"orthogonal: needs a shape of at least 2 dimensions, got {tuple(shape)}")
        if any(d == 0 for d in shape):
            return jnp.zeros(shape, dtype)
        n_cols = shape[column_axis]
        n_rows = math.prod(shape) // n_cols
        z = jax.random.normal(key, (max(n_rows, n_cols), min(n_rows, n_cols)), dtype)
        q = gram_schmidt(z)
        if n_rows < n_cols:
            q = q.T
        q = jnp.reshape(q, tuple(np.delete(np.asarray(shape), column_axis)) + (n_cols,))
        return jnp.asarray(scale, dtype) * jnp.moveaxis(q, -1, column_axis)

    return init
