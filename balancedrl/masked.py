"""Masked statistics and a NaN-safe square root: the one copy every module uses.

``masked_mean(x, w) = sum(w x) / max(sum(w), 1)`` and ``masked_mean_std`` (population std) with a weight or
boolean mask ``w``; an all-masked input gives 0, not NaN. ``safe_sqrt`` has a finite gradient at 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def masked_mean(x, w, axis=None):
    """``sum(w * x) / max(sum(w), 1)`` over ``axis`` (``w`` broadcast to ``x``; bool or float weights)."""
    w = jnp.asarray(w, jnp.float32)
    return jnp.sum(w * x, axis=axis) / jnp.maximum(jnp.sum(jnp.broadcast_to(w, jnp.shape(x)), axis=axis), 1.0)


def masked_mean_std(x, w):
    """Masked mean and population standard deviation of all of ``x`` (0 and 0 when everything is masked).

    The values are first shifted by a masked-in member (a constant for the gradient): the mean is
    shift-invariant, and a constant batch centres to exactly 0 instead of 1-ulp noise that a later
    ``1 / (std + eps)`` would blow up.
    """
    w = jnp.asarray(w, jnp.float32)
    shift = jax.lax.stop_gradient(jnp.max(jnp.where(w > 0, x, -jnp.inf)))
    shift = jnp.where(jnp.isfinite(shift), shift, 0.0)
    n = jnp.maximum(jnp.sum(w), 1.0)
    mean = shift + jnp.sum(w * (x - shift)) / n
    return mean, safe_sqrt(jnp.sum(w * jnp.square(x - mean)) / n)


def safe_sqrt(x):
    """``sqrt(x)`` for ``x >= 0`` whose gradient at 0 is 0 instead of inf (and no NaN downstream)."""
    pos = x > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1.0)), 0.0)
