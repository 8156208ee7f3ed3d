"""DB-MTL: dual-balancing multi-task learning (Lin, Ye, Xu, Shi, Zhang, Kwok; 2023), in LibMTL's ``DB_MTL`` form.

Loss-scale balancing: the per-loss gradients are those of ``log(L_k + 1e-8)``, i.e. ``g_k / (L_k + 1e-8)``.
They are averaged over steps in a buffer (zero at the start, ``t`` counting calls from 1)::

    b_k <- h_k + (beta / t^beta_sigma) (b_k - h_k),      h_k = g_k / (L_k + 1e-8)

and gradient-magnitude balancing rescales every buffer to the largest norm::

    alpha_k = max_j ||b_j|| / (||b_k|| + 1e-8),      grads = sum_k alpha_k b_k

Defaults are LibMTL's: ``beta = 0.9``, ``beta_sigma = 0``. The buffer is a pytree shaped like ``K`` copies of
the parameters (memory K x params). Unlike the other balancers the output is not a weighting of this call's
gradients but of the buffered ones: ``info["weights"]`` is ``alpha`` and ``grads = sum_k alpha_k
state.buffer[k]`` (on the first call, with beta_sigma 0, ``grads = sum_k alpha_k (1 - beta) g_k / (L_k + 1e-8)``).

Losses below zero (where the reference's ``log`` is NaN) are floored at 0; this changes nothing wherever the
reference is finite.

Cost: K backward passes (the per-loss gradients) plus K buffer norms.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from balancedrl.balancers._weight_optim import check_hyper
from balancedrl.balancers.base import Balancer, combine, per_loss_norms


class DBMTLState(NamedTuple):
    buffer: Any  # pytree like params with a leading K axis: EMA of the log-loss gradients
    step: jax.Array  # int32, calls so far


def make_db_mtl(beta: float = 0.9, beta_sigma: float = 0.0) -> Balancer:
    """DB-MTL with LibMTL's defaults; see the module docstring."""
    check_hyper("db_mtl", "beta", beta, "a number in [0, 1]", lambda v: 0.0 <= v <= 1.0)
    check_hyper("db_mtl", "beta_sigma", beta_sigma, "a finite number >= 0", lambda v: v >= 0)

    def init(num_losses, params=None):
        if params is None:
            raise ValueError(
                "balancer 'db_mtl' needs params at init (its gradient buffer has their shapes), got None"
            )
        buf = jax.tree_util.tree_map(lambda p: jnp.zeros((num_losses,) + jnp.shape(p), jnp.float32), params)
        return DBMTLState(buf, jnp.zeros((), jnp.int32))

    def update(per_loss_grads, losses, state, key):
        if per_loss_grads is None:
            raise ValueError("balancer 'db_mtl' needs per_loss_grads (requires_grads is True), got None")
        losses = jax.lax.stop_gradient(jnp.asarray(losses, jnp.float32))
        k = jax.tree_util.tree_leaves(state.buffer)[0].shape[0]
        if losses.shape != (k,):
            raise ValueError(f"balancer 'db_mtl' was initialised for {k} losses, got {losses.shape}")
        inv = 1.0 / (jnp.maximum(losses, 0.0) + 1e-8)
        step = state.step + 1
        coef = beta / step.astype(jnp.float32) ** beta_sigma

        def ema(b, g):
            h = g.astype(jnp.float32) * inv.reshape((-1,) + (1,) * (g.ndim - 1))
            return h + coef * (b - h)

        buf = jax.tree_util.tree_map(ema, state.buffer, per_loss_grads)
        norms = per_loss_norms(buf)
        alpha = jnp.max(norms) / (norms + 1e-8)
        grads = jax.tree_util.tree_map(lambda x, g: x.astype(g.dtype), combine(alpha, buf), per_loss_grads)
        return grads, DBMTLState(buf, step), {"weights": alpha, "buffer_norms": norms}

    return Balancer("db_mtl", init, update, requires_grads=True)
