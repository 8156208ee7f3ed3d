"""The Balancer protocol: how K per-loss gradients become one update direction.

A balancer is an optax-shaped pair of pure functions::

    state = balancer.init(num_losses, params)
    grads, state, info = balancer.update(per_loss_grads, losses, state, key)

* ``per_loss_grads``: a pytree shaped like ``params`` whose every leaf has a leading loss axis ``K``
  (``per_loss_grads[k]`` is ``grad L_k``). ``None`` when ``balancer.requires_grads`` is False: such a
  balancer (sum, mean, fixed, FAMO, uncertainty weighting) needs only the loss values, and the trainer takes
  one backward pass of ``sum_k weights[k] L_k`` instead of K.
* ``losses``: ``[K]`` loss values (treated as constants).
* ``key``: a PRNG key (for randomised methods such as PCGrad's shuffle); deterministic methods ignore it.
* ``info["weights"]``: ``[K]`` such that ``grads = sum_k weights[k] per_loss_grads[k]`` wherever the method
  is a weighting of the current per-loss gradients (all but DB-MTL, whose weights scale its running average
  of past gradients; see ``db_mtl.py``). Other entries are method diagnostics.

Many methods (MGDA, PCGrad, UPGrad, CAGrad, IMTL-G, Aligned-MTL, Nash-MTL, ...) depend on the gradients only
through the Gramian ``G = J J^T`` (``[K, K]``): :func:`gramian_balancer` builds a balancer from such a
weighting, so the cost is one ``K x K`` Gramian plus a ``K``-term combination, whatever the parameter count.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["Balancer", "gramian", "combine", "gramian_balancer", "loss_balancer", "per_loss_norms"]


class Balancer(NamedTuple):
    """``init(num_losses, params) -> state``; ``update(per_loss_grads, losses, state, key) ->
    (grads, state, info)``. ``requires_grads`` says whether ``update`` needs the per-loss gradients."""

    name: str
    init: Callable[[int, Any], Any]
    update: Callable[[Any, jax.Array, Any, jax.Array], tuple[Any, Any, dict]]
    requires_grads: bool = True


def gramian(per_loss_grads) -> jax.Array:
    """``G[i, j] = <g_i, g_j>`` summed over every leaf: ``[K, K]`` (float32)."""
    leaves = jax.tree_util.tree_leaves(per_loss_grads)
    k = leaves[0].shape[0]
    flat = [x.reshape(k, -1).astype(jnp.float32) for x in leaves]
    return sum(f @ f.T for f in flat)


def per_loss_norms(per_loss_grads) -> jax.Array:
    """``||g_k||`` for each loss, ``[K]``, with a zero norm (not NaN) for an all-zero gradient."""
    sq = jnp.diagonal(gramian(per_loss_grads))
    pos = sq > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)


def combine(weights: jax.Array, per_loss_grads):
    """``sum_k weights[k] per_loss_grads[k]`` for every leaf."""
    w = jax.lax.stop_gradient(weights)
    return jax.tree_util.tree_map(lambda g: jnp.tensordot(w.astype(g.dtype), g, axes=1), per_loss_grads)


def gramian_balancer(name: str, weighting: Callable, init: Callable | None = None) -> Balancer:
    """A balancer from ``weighting(G [K, K], losses [K], state, key) -> (weights [K], state, info)``.

    ``init(num_losses, params) -> state`` defaults to an empty state (``()``).
    """

    def _init(num_losses, params=None):
        return () if init is None else init(num_losses, params)

    def update(per_loss_grads, losses, state, key):
        G = gramian(per_loss_grads)
        w, state, info = weighting(G, jax.lax.stop_gradient(losses), state, key)
        return combine(w, per_loss_grads), state, {**info, "weights": w}

    return Balancer(name, _init, update, requires_grads=True)


def loss_balancer(name: str, weighting: Callable, init: Callable | None = None) -> Balancer:
    """A balancer that needs only the loss values: ``weighting(losses [K], state, key) -> (weights [K],
    state, info)``. ``update`` returns ``grads = combine(weights, per_loss_grads)`` when gradients are given
    and ``None`` otherwise (the trainer then differentiates ``sum_k weights[k] L_k`` once)."""

    def _init(num_losses, params=None):
        return () if init is None else init(num_losses, params)

    def update(per_loss_grads, losses, state, key):
        w, state, info = weighting(jax.lax.stop_gradient(losses), state, key)
        grads = None if per_loss_grads is None else combine(w, per_loss_grads)
        return grads, state, {**info, "weights": w}

    return Balancer(name, _init, update, requires_grads=False)
