"""Advantage estimation and per-group advantage normalisation.

* :func:`gae` -- multi-component Generalised Advantage Estimation (Schulman et al. 2016) that keeps
  ``terminated`` and ``truncated`` apart (bootstrap on truncation, not on termination).
* :func:`group_normalize`, :func:`group_sizes`, :func:`awr_weights` -- the per-actor-normalisation source (per-actor advantage
  normalisation before exponential advantage weighting, as in AWR, Peng et al. 2019), generalised to
  any number of groups with segment operations.

All functions are pure, jittable and vmappable; they act on one stream / one batch.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

__all__ = ["gae", "group_normalize", "group_sizes", "awr_weights"]


def gae(rewards, values, terminated, truncated, bootstrap_values, gamma, lam):
    """Generalised Advantage Estimation, time-major, one value head per reward component.

    Shapes: ``rewards``, ``values``, ``bootstrap_values`` ``[T, B, C]`` (C = 1 allowed);
    ``terminated``, ``truncated`` ``[T, B]`` bool. ``bootstrap_values[t]`` is V(s_{t+1}), the value of
    the observation that *follows* step t: ``values[t + 1]`` inside an episode, the last value at the end
    of the rollout, and, on a truncated step, the value of the final observation before auto-reset.

    Formula (reverse recursion, implemented with ``jax.lax.scan(reverse=True)``)::

        delta_t = r_t + gamma * (1 - terminated_t) * bootstrap_values_t - V_t
        A_t     = delta_t + gamma * lam * (1 - terminated_t) * (1 - truncated_t) * A_{t+1}
        R_t     = A_t + V_t                       (returns = value targets)

    Truncation bootstraps from ``bootstrap_values`` but cuts the trace (the next step belongs to a new
    episode); termination neither bootstraps nor continues the trace. ``A_T = 0`` beyond the rollout.
    ``gamma`` and ``lam`` may be traced scalars (sweepable pytree leaves).

    Episode boundaries are selections (``jnp.where``), not multiplications by zero, so a non-finite reward,
    value or bootstrap value after a boundary stays in its own episode (tested); within an episode a
    non-finite input propagates to the earlier steps' advantages, as the formula says.

    Returns ``(advantages, returns)``, both ``[T, B, C]``.
    """
    chex.assert_rank([rewards, values, bootstrap_values, terminated, truncated], [3, 3, 3, 2, 2])
    chex.assert_equal_shape([rewards, values, bootstrap_values])
    chex.assert_equal_shape([terminated, truncated])
    chex.assert_equal_shape_prefix([rewards, terminated], 2)
    rewards = jnp.asarray(rewards, jnp.float32)
    values = jnp.asarray(values, jnp.float32)
    bootstrap_values = jnp.asarray(bootstrap_values, jnp.float32)
    term = jnp.asarray(terminated, bool)[..., None]
    cut = term | jnp.asarray(truncated, bool)[..., None]
    # jnp.where, not a multiplication by 0: a NaN/inf value or advantage on the far side of an episode
    # boundary (0 * NaN = NaN) must not leak into this episode.
    deltas = rewards + jnp.where(term, 0.0, gamma * bootstrap_values) - values

    def step(next_adv, xs):
        delta, c = xs
        adv = delta + jnp.where(c, 0.0, gamma * lam * next_adv)
        return adv, adv

    _, advantages = jax.lax.scan(step, jnp.zeros_like(deltas[0]), (deltas, cut), reverse=True)
    return advantages, advantages + values


def _check_num_groups(num_groups):
    if not isinstance(num_groups, int) or isinstance(num_groups, bool) or num_groups < 1:
        raise ValueError(f"num_groups must be a static Python int >= 1, got {num_groups!r}")


def _ids_and_mask(adv, group_ids, num_groups, mask):
    if group_ids is None:
        ids = jnp.zeros(adv.shape, jnp.int32)
        num_groups = 1
    else:
        _check_num_groups(num_groups)
        chex.assert_equal_shape([adv, group_ids])
        ids = jnp.asarray(group_ids, jnp.int32)
    if mask is None:
        w = jnp.ones(adv.shape, jnp.float32)
    else:
        chex.assert_equal_shape([adv, mask])
        w = jnp.asarray(mask, jnp.float32)
    return ids, num_groups, w


def group_sizes(group_ids, num_groups, mask=None):
    """Number of (masked-in) members per group: ``[num_groups]`` int32 counts (``jax.ops.segment_sum``).

    ``group_ids`` ``[N]`` int in ``[0, num_groups)`` (ids outside the range are dropped);
    ``group_ids=None`` counts the whole batch as one group (returns shape ``[1]``; ``mask`` is then
    required to know the batch size, or pass ids).
    """
    if group_ids is None:
        if mask is None:
            raise ValueError("group_sizes: with group_ids=None pass a mask (its shape gives the batch size)")
        chex.assert_rank(mask, 1)
        return jnp.sum(jnp.asarray(mask, jnp.int32), keepdims=True)
    _check_num_groups(num_groups)
    chex.assert_rank(group_ids, 1)
    w = jnp.ones(group_ids.shape, jnp.int32) if mask is None else jnp.asarray(mask, jnp.int32)
    if mask is not None:
        chex.assert_equal_shape([group_ids, mask])
    return jax.ops.segment_sum(w, jnp.asarray(group_ids, jnp.int32), num_segments=num_groups)


def group_normalize(adv, group_ids, num_groups, clip=3.0, mask=None, eps=1e-8):
    """Z-score advantages within each group, then clamp (the per-actor-normalisation source, per-actor normalisation).

    For every group g (statistics over its masked-in members only)::

        mean_g = sum_{i in g} A_i / n_g
        std_g  = sqrt(sum_{i in g} (A_i - mean_g)^2 / n_g)      # POPULATION std (ddof=0)
        out_i  = clip((A_i - mean_g) / (std_g + eps), -clip, clip)

    Note the seed's PyTorch ``tensor.std()`` is the sample std (ddof=1); we use the population std so a
    group of two gives +-1 rather than +-0.71, and the definition does not depend on the group size.

    * ``adv`` ``[N]``; ``group_ids`` ``[N]`` int in ``[0, num_groups)`` or ``None`` (whole batch is one
      group -- the per-actor-normalisation source's fallback); ``num_groups`` a static int (any number of groups).
    * A member of a group with <= 1 masked-in member gets 0 (no normalisation possible).
    * Masked-out entries get 0 and do not enter the statistics.
    * Constant input gives exactly 0 (values are shifted by a group member's value before the mean is
      taken, so the centred values of a constant group are exactly zero), never NaN; the std uses a
      safe square root so gradients are finite too.
    """
    chex.assert_rank(adv, 1)
    adv = jnp.asarray(adv, jnp.float32)
    ids, num_groups, w = _ids_and_mask(adv, group_ids, num_groups, mask)
    inside = w > 0
    # Shift by the group's max member (exact for constant groups; improves cancellation otherwise).
    shift = jax.ops.segment_max(jnp.where(inside, adv, -jnp.inf), ids, num_segments=num_groups)
    shift = jax.lax.stop_gradient(jnp.where(jnp.isfinite(shift), shift, 0.0))
    x = adv - shift[ids]
    count = jax.ops.segment_sum(w, ids, num_segments=num_groups)
    denom = jnp.maximum(count, 1.0)
    mean = jax.ops.segment_sum(w * x, ids, num_segments=num_groups) / denom
    centred = x - mean[ids]
    var = jax.ops.segment_sum(w * centred**2, ids, num_segments=num_groups) / denom
    pos = var > 0
    std = jnp.where(pos, jnp.sqrt(jnp.where(pos, var, 1.0)), 0.0)
    z = jnp.clip(centred / (std[ids] + eps), -clip, clip)
    valid = inside & (count[ids] > 1.5)
    return jnp.where(valid, z, 0.0)


def awr_weights(adv_normalized, beta=1.5, min_weight=1e-3, max_weight=100.0, group_sizes=None,
                group_ids=None):
    """Exponential advantage weights ``clip(exp(beta * A), min_weight, max_weight)`` (the per-actor-normalisation source / AWR).

    Computed as ``exp(clip(beta * A, log(min_weight), log(max_weight)))`` -- the same value, without
    overflow. Where ``group_sizes`` (``[num_groups]``, from :func:`group_sizes`) is given, members of a
    group with <= 1 member get weight exactly 1 (the per-actor-normalisation source: "single frame falls back to weight 1.0");
    ``group_ids=None`` then means every entry is in group 0.

    The per-actor-normalisation source's worked numbers, checked (beta = 1.5): A = -1.67 -> exp(-2.505) = 0.0817 (the seed says
    0.07); A = +1.67 -> exp(2.505) = 12.2 (the seed says 14.1); A = -0.5 -> 0.472; A = +1.5 -> 9.49.
    """
    chex.assert_rank(adv_normalized, 1)
    if not (0 < min_weight <= max_weight):
        raise ValueError(f"awr_weights: need 0 < min_weight <= max_weight, got {min_weight}, {max_weight}")
    a = jnp.asarray(adv_normalized, jnp.float32)
    w = jnp.exp(jnp.clip(beta * a, jnp.log(min_weight), jnp.log(max_weight)))
    if group_sizes is not None:
        chex.assert_rank(group_sizes, 1)
        if group_ids is None:
            ids = jnp.zeros(a.shape, jnp.int32)
        else:
            chex.assert_equal_shape([a, group_ids])
            ids = jnp.asarray(group_ids, jnp.int32)
        w = jnp.where(group_sizes[ids] <= 1, 1.0, w)
    return w
