"""PCGrad: gradient surgery (Yu et al., NeurIPS 2020, "Gradient Surgery for Multi-Task Learning", Alg. 1).

For each loss ``i`` and a random order of the other losses ``j``: whenever the running projected gradient
``g_i^PC`` conflicts with ``g_j`` (``<g_i^PC, g_j> < 0``), remove its component along ``g_j``::

    g_i^PC <- g_i^PC - <g_i^PC, g_j> / ||g_j||^2 g_j,        g = sum_i g_i^PC.

Every ``g_i^PC`` stays a combination of the rows, so the method is a weighting computed from the Gramian
``G = J J^T`` alone (as in TorchJD's ``PCGrad``, whose numbers these are, sum not mean included). Each loss
``i`` draws its own permutation of ``range(K)`` from the PRNG key. Cost: K backward passes (one per loss) plus
a ``K x K`` Gramian; the surgery itself is O(K^3) scalar work.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from balancedrl.balancers.base import Balancer, gramian_balancer

__all__ = ["make_pcgrad", "pcgrad_permutations", "pcgrad_weights"]


def pcgrad_permutations(key: jax.Array, num_losses: int) -> jax.Array:
    """``[K, K]``: row ``i`` is the order in which loss ``i``'s gradient meets the others (uniformly random:
    the argsort of i.i.d. uniforms; one sort instead of ``jax.random.permutation``'s shuffle rounds)."""
    return jnp.argsort(jax.random.uniform(key, (num_losses, num_losses)), axis=1).astype(jnp.int32)


def pcgrad_weights(G: jax.Array, permutations: jax.Array) -> jax.Array:
    """Weights ``[K]`` with ``sum_k w_k g_k = sum_i g_i^PC`` for the given per-loss orders."""
    k = G.shape[0]
    diag = jnp.diagonal(G)

    def one(i, order):
        def step(cw, j):
            inner = G[j] @ cw
            # A zero g_j has <., g_j> = 0, so it is never projected out (no division by zero).
            hit = (j != i) & (inner < 0) & (diag[j] > 0)
            cw = cw.at[j].add(jnp.where(hit, -inner / jnp.where(hit, diag[j], 1.0), 0.0))
            return cw, None

        cw0 = jnp.zeros((k,), G.dtype).at[i].set(1.0)
        return jax.lax.scan(step, cw0, order)[0]

    return jnp.sum(jax.vmap(one)(jnp.arange(k), permutations), axis=0)


def make_pcgrad() -> Balancer:
    """PCGrad (TorchJD ``PCGrad`` defaults: none)."""

    def weighting(G, losses, state, key):
        perms = pcgrad_permutations(key, G.shape[0])
        return pcgrad_weights(G, perms), state, {}

    return gramian_balancer("pcgrad", weighting)
