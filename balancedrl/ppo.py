"""PPO losses for hybrid discrete-continuous per-node actions (H-PPO style) and PPO value clipping.

* :func:`clipped_surrogate` -- the generic clipped surrogate (Schulman et al. 2017; rlax style).
* :func:`hybrid_policy_loss` -- one surrogate for the discrete head and one for the continuous head,
  each with its own ratio; factorised per node (default) or joint per sample.
* :func:`clipped_value_loss` -- per-component value loss with PPO value clipping.

``logp_old`` is treated as data (``stop_gradient``); ``advantages`` are NOT stopped, so a learnable
advantage weighting (the component-weighting source, ``weighting.py``) receives gradient through the surrogate -- stop them
yourself if that is not wanted.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from balancedrl.masked import masked_mean

__all__ = ["clipped_surrogate", "hybrid_policy_loss", "clipped_value_loss"]

_MAX_LOG_RATIO = 20.0  # log-ratios are clamped to +-20 before exp (no inf; far outside any clip range)


def _surrogate_terms(logp_new, logp_old, advantages, clip_eps):
    log_ratio = jnp.clip(logp_new - jax.lax.stop_gradient(logp_old), -_MAX_LOG_RATIO, _MAX_LOG_RATIO)
    ratio = jnp.exp(log_ratio)
    loss = -jnp.minimum(ratio * advantages, jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages)
    kl = (ratio - 1.0) - log_ratio
    clipped = (jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32)
    return loss, kl, clipped


def clipped_surrogate(logp_new, logp_old, advantages, clip_eps, mask=None):
    """``L = -mean[min(r A, clip(r, 1 - eps, 1 + eps) A)]``, ``r = exp(logp_new - logp_old)``.

    All inputs share one shape; ``mask`` (same shape, optional) gives a masked mean.
    metrics: ``approx_kl`` = mean((r - 1) - log r) (the non-negative k3 estimator), ``clip_fraction`` =
    mean(|r - 1| > eps), ``ratio_mean``.
    """
    chex.assert_equal_shape([logp_new, logp_old, advantages])
    w = jnp.ones_like(logp_new, jnp.float32) if mask is None else jnp.asarray(mask, jnp.float32)
    chex.assert_equal_shape([logp_new, w])
    loss, kl, clipped = _surrogate_terms(logp_new, logp_old, advantages, clip_eps)
    ratio = jnp.exp(jnp.clip(logp_new - logp_old, -_MAX_LOG_RATIO, _MAX_LOG_RATIO))
    metrics = {"approx_kl": masked_mean(kl, w), "clip_fraction": masked_mean(clipped, w),
               "ratio_mean": masked_mean(ratio, w)}
    return masked_mean(loss, w), metrics


def _head_loss(logp_new, logp_old, advantages, node_w, sample_w, clip_eps, joint):
    """Per-head loss. Returns (loss, approx_kl, clip_fraction)."""
    has_node = (jnp.sum(node_w, axis=-1) > 0).astype(jnp.float32)  # [B]
    if joint:
        lp_new = jnp.sum(node_w * logp_new, axis=-1)
        lp_old = jnp.sum(node_w * logp_old, axis=-1)
        loss, kl, clipped = _surrogate_terms(lp_new, lp_old, advantages, clip_eps)
    else:
        loss_n, kl_n, clip_n = _surrogate_terms(logp_new, logp_old, advantages[:, None], clip_eps)
        loss = masked_mean(loss_n, node_w, axis=-1)
        kl = masked_mean(kl_n, node_w, axis=-1)
        clipped = masked_mean(clip_n, node_w, axis=-1)
    # A sample without any counted node contributes 0 (and still counts in the batch denominator).
    w = sample_w * has_node
    denom = jnp.maximum(jnp.sum(sample_w), 1.0)
    stat_denom = jnp.maximum(jnp.sum(w), 1.0)
    return (jnp.sum(w * loss) / denom, jnp.sum(w * kl) / stat_denom, jnp.sum(w * clipped) / stat_denom)


def hybrid_policy_loss(logp_d_new, logp_d_old, logp_c_new, logp_c_old, advantages, node_mask, spawn_mask,
                       clip_eps, joint=False, sample_mask=None):
    """Discrete and continuous clipped surrogates for per-node hybrid actions (H-PPO, DESIGN section 3).

    Shapes: log-probs, ``node_mask``, ``spawn_mask`` ``[B, M]``; ``advantages`` and ``sample_mask`` ``[B]``.

    Factorised (``joint=False``, default): a ratio per node, ``r_bm = exp(logp_new - logp_old)``, a
    clipped surrogate per node with the sample's advantage ``A_b``, averaged over the alive nodes
    (discrete head, ``node_mask``) or over the spawning nodes (continuous head,
    ``spawn_mask & node_mask``) of each sample, then a masked mean over the batch (``sample_mask``).
    Joint (``joint=True``): per-node log-probs summed over the same node sets into one ratio per sample.
    A sample with no counted node (e.g. nothing spawned) contributes 0 to that head's loss, still
    counting in the batch denominator; no NaN. Returns ``(discrete_loss, continuous_loss, metrics)`` with
    ``discrete_approx_kl``, ``continuous_approx_kl``, ``discrete_clip_fraction``,
    ``continuous_clip_fraction`` (averaged over samples that have counted nodes).
    """
    chex.assert_rank([logp_d_new, logp_d_old, logp_c_new, logp_c_old, node_mask, spawn_mask, advantages],
                     [2, 2, 2, 2, 2, 2, 1])
    chex.assert_equal_shape([logp_d_new, logp_d_old, logp_c_new, logp_c_old, node_mask, spawn_mask])
    chex.assert_equal_shape_prefix([logp_d_new, advantages], 1)
    alive = jnp.asarray(node_mask, jnp.float32)
    spawn = alive * jnp.asarray(spawn_mask, jnp.float32)
    if sample_mask is None:
        sample_w = jnp.ones(advantages.shape, jnp.float32)
    else:
        chex.assert_equal_shape([advantages, sample_mask])
        sample_w = jnp.asarray(sample_mask, jnp.float32)
    d_loss, d_kl, d_clip = _head_loss(logp_d_new, logp_d_old, advantages, alive, sample_w, clip_eps, joint)
    c_loss, c_kl, c_clip = _head_loss(logp_c_new, logp_c_old, advantages, spawn, sample_w, clip_eps, joint)
    metrics = {"discrete_approx_kl": d_kl, "continuous_approx_kl": c_kl,
               "discrete_clip_fraction": d_clip, "continuous_clip_fraction": c_clip}
    return d_loss, c_loss, metrics


def clipped_value_loss(values, old_values, returns, clip_eps, mask=None):
    """PPO value clipping per reward component::

        v_clip = v_old + clip(v - v_old, -eps, +eps)
        l_bc   = 0.5 * max((v - R)^2, (v_clip - R)^2)

    ``values``, ``old_values``, ``returns`` ``[B, C]``; ``mask`` ``[B]`` optional. ``per_component [C]`` is
    the (masked) mean over the batch; ``loss`` is the SUM over components (each head gets the full
    gradient of its own loss, independent of the number of components). Returns ``(loss, per_component)``.
    """
    chex.assert_rank([values, old_values, returns], 2)
    chex.assert_equal_shape([values, old_values, returns])
    old_values = jax.lax.stop_gradient(old_values)
    returns = jax.lax.stop_gradient(returns)
    v_clip = old_values + jnp.clip(values - old_values, -clip_eps, clip_eps)
    per = 0.5 * jnp.maximum((values - returns) ** 2, (v_clip - returns) ** 2)
    if mask is None:
        w = jnp.ones(values.shape[:1], jnp.float32)
    else:
        chex.assert_shape(mask, values.shape[:1])
        w = jnp.asarray(mask, jnp.float32)
    per_component = jnp.sum(w[:, None] * per, axis=0) / jnp.maximum(jnp.sum(w), 1.0)
    return jnp.sum(per_component), per_component
