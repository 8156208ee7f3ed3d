"""CAGrad: conflict-averse gradient descent (Liu et al., NeurIPS 2021, "Conflict-Averse Gradient Descent
for Multi-task Learning", Alg. 1), as TorchJD's ``CAGrad`` (c = 0.5, norm_eps = 1e-4), whose numbers these
are.

With ``G_n = G / tr(G)`` (the Gramian of ``J / ||J||_F``; zero when ``tr(G) < norm_eps``),
``g_0 = mean_k g_k`` and ``sqrt_phi = c ||g_0||`` measured in ``G_n``::

    w* = argmin_{w in simplex}  w^T G_n 1/K + sqrt_phi sqrt(w^T G_n w)
    weights = 1/K + sqrt_phi / ||g_w*|| w*      (zero when ||g_w*|| < norm_eps: on the Pareto front)

so ``g = g_0 + c ||g_0|| g_w / ||g_w||`` with ``g_0, g_w`` taken on the original rows (not renormalised).

TorchJD solves the inner problem with cvxpy/CLARABEL. Here it is a fixed-iteration projected-gradient
solver in pure JAX: each of ``iters`` steps tries ``num_steps`` step sizes (halving from 4) along the
projected negative gradient, keeps the best (never worse than staying put), and the simplex projection is the
sort-based one. Tolerance reached against TorchJD 0.18.0 on the reference set: see
``tests/test_balancers_gramian.py`` (output vectors within ``CAGRAD_RTOL`` relative).

Cost: K backward passes plus a ``K x K`` Gramian; the solver is O(iters * num_steps * K^2) scalar work.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from balancedrl.balancers.base import Balancer, gramian_balancer
from balancedrl.balancers.small_linalg import project_simplex

__all__ = ["make_cagrad", "cagrad_weights", "cagrad_inner"]


def _objective(w, b, A, s):
    return b @ w + s * jnp.sqrt(jnp.maximum(w @ A @ w, 0.0))


def cagrad_inner(A: jax.Array, b: jax.Array, s: jax.Array, iters: int = 200, num_steps: int = 24) -> jax.Array:
    """``argmin_{w in simplex} b^T w + s sqrt(w^T A w)`` by projected gradient with a best-of-``num_steps``
    step search, from ``w = 1/K``."""
    k = A.shape[0]
    steps = 4.0 * 0.5 ** jnp.arange(num_steps, dtype=A.dtype)

    def body(_, carry):
        w, fw = carry
        aw = A @ w
        n = jnp.sqrt(jnp.maximum(w @ aw, 0.0))
        grad = b + s * aw / jnp.maximum(n, 1e-30)
        cands = jax.vmap(lambda eta: project_simplex(w - eta * grad))(steps)
        fc = jax.vmap(lambda c: _objective(c, b, A, s))(cands)
        best = jnp.argmin(fc)
        better = fc[best] < fw
        return jnp.where(better, cands[best], w), jnp.where(better, fc[best], fw)

    w0 = jnp.full((k,), 1.0 / k, A.dtype)
    w, _ = jax.lax.fori_loop(0, iters, body, (w0, _objective(w0, b, A, s)))
    return w


def cagrad_weights(G: jax.Array, c: float = 0.5, norm_eps: float = 1e-4, iters: int = 200) -> tuple[jax.Array, dict]:
    """CAGrad weights ``[K]`` (applied to the original rows) and solver diagnostics."""
    k = G.shape[0]
    tr = jnp.trace(G)
    A = jnp.where(tr < norm_eps, jnp.zeros_like(G), G / jnp.where(tr > 0, tr, 1.0))
    b = A @ jnp.full((k,), 1.0 / k, G.dtype)  # G_n g_0
    sqrt_phi = c * jnp.sqrt(jnp.maximum(jnp.mean(b), 0.0))  # c ||g_0||: ||g_0||^2 = 1^T G_n 1 / K^2
    w = cagrad_inner(A, b, sqrt_phi, iters)
    gw_norm = jnp.sqrt(jnp.maximum(w @ A @ w, 0.0))
    on_front = gw_norm < norm_eps
    weights = 1.0 / k + sqrt_phi / jnp.where(on_front, 1.0, gw_norm) * w
    weights = jnp.where(on_front, jnp.zeros_like(weights), weights)
    return weights, {"inner_weights": w, "gw_norm": gw_norm}


def make_cagrad(c: float = 0.5, norm_eps: float = 0.0001, iters: int = 200) -> Balancer:
    """CAGrad with ``c = 0.5`` (the paper's and the issue's choice; TorchJD has no default) and TorchJD's
    ``norm_eps = 1e-4``; ``iters`` is the inner solver's fixed iteration count."""
    if not (c >= 0.0):
        raise ValueError(f"balancer 'cagrad': c = {c!r} must be >= 0")
    if not (norm_eps >= 0.0):
        raise ValueError(f"balancer 'cagrad': norm_eps = {norm_eps!r} must be >= 0")
    if int(iters) != iters or iters < 1:
        raise ValueError(f"balancer 'cagrad': iters = {iters!r} must be a positive integer")

    def weighting(G, losses, state, key):
        w, info = cagrad_weights(G, c, norm_eps, int(iters))
        return w, state, info

    return gramian_balancer("cagrad", weighting)
