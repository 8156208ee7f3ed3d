"""Per-loss gradients from one forward pass: the one copy the trainer and :func:`balanced_grads` use.

``vjp_rows(fn, params, cotangents)`` runs ``fn`` once under ``jax.vjp`` and pulls back each row ``c_r`` of
``cotangents [R, L]``, giving ``grad (c_r . L)(params)`` for every row with a leading axis ``R``. With
``cotangents = eye(K)`` these are the K per-loss gradients; a row of fixed coefficients gives the gradient of
a fixed combination of the other losses in the same pass. The rows are pulled back one call each: on CPU a
``vmap`` over the cotangents measured 5.6x a plain update (``benchmarks/balance_overhead.py``), separate
calls are cheaper.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def vjp_rows(fn, params, cotangents, has_aux=False):
    """``(losses [L], grads with leading axis R, aux)`` for ``fn(params) -> losses [L]`` (``aux`` is None
    unless ``has_aux``; then ``fn`` returns ``(losses, aux)``)."""
    if has_aux:
        losses, vjp_fn, aux = jax.vjp(fn, params, has_aux=True)
    else:
        (losses, vjp_fn), aux = jax.vjp(fn, params), None
    if losses.ndim != 1:
        raise ValueError(f"vjp_rows: fn must return a vector of losses, got shape {losses.shape}")
    cot = jnp.asarray(cotangents, losses.dtype)
    if cot.ndim != 2 or cot.shape[1] != losses.shape[0]:
        raise ValueError(f"vjp_rows: cotangents of shape {cot.shape} do not match {losses.shape[0]} losses")
    rows = [vjp_fn(cot[r])[0] for r in range(cot.shape[0])]
    return losses, jax.tree_util.tree_map(lambda *g: jnp.stack(g), *rows), aux


def per_loss_grads(fn, params, has_aux=False):
    """``(losses [K], per-loss gradients [K, ...], aux)``: :func:`vjp_rows` with the identity."""
    k = jax.eval_shape(fn, params)
    k = (k[0] if has_aux else k).shape[0]
    return vjp_rows(fn, params, jnp.eye(k), has_aux)
