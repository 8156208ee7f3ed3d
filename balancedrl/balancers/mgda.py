"""MGDA: the min-norm point of the convex hull of the per-loss gradients (Desideri 2012; Sener & Koltun,
NeurIPS 2018, "Multi-Task Learning as Multi-Objective Optimization", Alg. 2: Frank-Wolfe).

``w = argmin_{w in simplex} w^T G w`` with ``G = J J^T``, solved by Frank-Wolfe from ``w = 1/K``::

    t = argmin_k (G w)_k;  a = (G w)_t;  b = w^T G w;  c = G_tt
    gamma = 1 if c <= a, else 0 if b <= a, else (b - a) / (b + c - 2a)
    w <- (1 - gamma) w + gamma e_t,   stopping once gamma < epsilon.

As TorchJD's ``MGDA`` (epsilon 1e-3, 100 iterations), whose numbers these are; here the loop always runs
``max_iters`` times and freezes ``w`` after the step where ``gamma < epsilon`` (same result, fixed cost).
The output ``g = sum_k w_k g_k`` is not rescaled. Cost: K backward passes plus a ``K x K`` Gramian.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from balancedrl.balancers.base import Balancer, gramian_balancer

__all__ = ["make_mgda", "mgda_weights"]


def mgda_weights(G: jax.Array, epsilon: float = 0.001, max_iters: int = 100) -> tuple[jax.Array, jax.Array]:
    """Frank-Wolfe weights ``[K]`` and the number of iterations taken before stopping."""
    k = G.shape[0]

    def body(_, carry):
        alpha, done, iters = carry
        g_alpha = G @ alpha
        t = jnp.argmin(g_alpha)
        a = g_alpha[t]
        b = alpha @ g_alpha
        c = G[t, t]
        denom = b + c - 2.0 * a
        gamma = jnp.where(
            c <= a, 1.0, jnp.where(b <= a, 0.0, (b - a) / jnp.where(denom > 0, denom, 1.0))
        ).astype(G.dtype)
        new = (1.0 - gamma) * alpha + gamma * jax.nn.one_hot(t, k, dtype=G.dtype)
        alpha = jnp.where(done, alpha, new)
        iters = iters + (~done).astype(jnp.int32)
        return alpha, done | (gamma < epsilon), iters

    alpha0 = jnp.full((k,), 1.0 / k, G.dtype)
    alpha, _, iters = jax.lax.fori_loop(0, max_iters, body, (alpha0, jnp.array(False), jnp.array(0)))
    return alpha, iters


def make_mgda(epsilon: float = 0.001, max_iters: int = 100) -> Balancer:
    """MGDA with TorchJD ``MGDA``'s defaults (``epsilon = 1e-3``, ``max_iters = 100``)."""
    if not (epsilon >= 0.0):
        raise ValueError(f"balancer 'mgda': epsilon = {epsilon!r} must be >= 0")
    if int(max_iters) != max_iters or max_iters < 1:
        raise ValueError(f"balancer 'mgda': max_iters = {max_iters!r} must be a positive integer")

    def weighting(G, losses, state, key):
        w, iters = mgda_weights(G, epsilon, int(max_iters))
        return w, state, {"iterations": iters}

    return gramian_balancer("mgda", weighting)
