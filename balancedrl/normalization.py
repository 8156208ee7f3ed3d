"""Running statistics and two-tier reward normalisation.

``RunningStats`` merges batches with the parallel (Chan et al. 1979) form of Welford's algorithm::

    d = mean_b - mean ;  n' = n + n_b
    mean' = mean + d * n_b / n'
    var'  = (var * n + var_b * n_b + d^2 * n * n_b / n') / n'      (population variance)

Two-tier reward normalisation for a vector reward ``[..., C]`` (tracked: per-component running std s_c
of the raw rewards; no centring)::

    tier 1 (scale):   r_c / m,            m = median_c(s_c)
    tier 2 (balance): * clip(m / s_c, 0.1, 10)
    out = clip(r_c * clip(m / s_c, 0.1, 10) / m, -clip, clip)

Components whose scale is within 10x of the median component end with unit scale (plain per-component
standardisation r_c / s_c); a component that is almost always 0 (tiny s_c) is amplified at most 10x
relative to the median instead of being blown up to unit variance, and a huge one damped at most 10x.
(Applying a per-component r_c / s_c first and the tier-2 factor on top would correct twice, so tier 1
divides by the common median scale.) The mean is NOT subtracted: scaling without centring keeps the sign
of every reward (a penalty stays a penalty, a success bonus stays positive) and keeps zero rewards zero,
and a constant shift of a reward does not change the advantages anyway.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

__all__ = [
    "RunningStats", "running_stats_init", "running_stats_update", "normalize",
    "RewardNormState", "reward_norm_init", "reward_norm_update", "reward_norm_apply",
]


class RunningStats(NamedTuple):
    """Mean and population variance of everything seen so far; ``count`` is float32 (fractional-safe)."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array


def running_stats_init(shape):
    """Empty statistics: mean 0, var 1 (so :func:`normalize` is the identity before any data), count 0."""
    shape = tuple(shape) if not isinstance(shape, int) else (shape,)
    return RunningStats(jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32),
                        jnp.zeros((), jnp.float32))


def running_stats_update(stats, batch, mask=None):
    """Merge a batch ``[N, *shape]`` (optional ``mask [N]``) into the statistics (parallel Welford).

    An empty batch (all masked) leaves the statistics unchanged.
    """
    chex.assert_rank(batch, stats.mean.ndim + 1)
    if batch.shape[1:] != stats.mean.shape:
        raise ValueError(f"running_stats_update: batch shape {batch.shape} does not match [N, "
                         f"{', '.join(map(str, stats.mean.shape))}]")
    x = jnp.asarray(batch, jnp.float32)
    w = jnp.ones(x.shape[:1], jnp.float32) if mask is None else jnp.asarray(mask, jnp.float32)
    chex.assert_shape(w, x.shape[:1])
    wb = w.reshape((-1,) + (1,) * (x.ndim - 1))
    n_b = jnp.sum(w)
    safe_nb = jnp.maximum(n_b, 1.0)
    mean_b = jnp.sum(wb * x, axis=0) / safe_nb
    var_b = jnp.sum(wb * (x - mean_b) ** 2, axis=0) / safe_nb
    n = stats.count
    tot = n + n_b
    safe_tot = jnp.maximum(tot, 1e-30)
    d = mean_b - stats.mean
    mean = stats.mean + d * n_b / safe_tot
    var = (stats.var * n + var_b * n_b + d**2 * n * n_b / safe_tot) / safe_tot
    keep = n_b <= 0
    return RunningStats(jnp.where(keep, stats.mean, mean), jnp.where(keep, stats.var, var), tot)


def normalize(stats, x, eps=1e-8):
    """``(x - mean) / sqrt(var + eps)`` (broadcast over leading axes of ``x``)."""
    return (x - stats.mean) / jnp.sqrt(stats.var + eps)


class RewardNormState(NamedTuple):
    """Running statistics of the raw reward vector ``[C]``."""

    stats: RunningStats


def reward_norm_init(num_components):
    """Fresh state for ``num_components`` reward components (apply is the identity until data arrive)."""
    if not isinstance(num_components, int) or num_components < 1:
        raise ValueError(f"reward_norm_init: num_components must be an int >= 1, got {num_components!r}")
    return RewardNormState(running_stats_init((num_components,)))


def reward_norm_update(state, rewards, mask=None):
    """Add a batch of raw rewards ``[N, C]`` to the statistics."""
    chex.assert_rank(rewards, 2)
    return RewardNormState(running_stats_update(state.stats, rewards, mask))


def reward_norm_scales(state, eps=1e-8):
    """The per-component multipliers ``clip(m / s_c, 0.1, 10) / m`` used by :func:`reward_norm_apply`."""
    std = jnp.sqrt(state.stats.var + eps)
    med = jnp.median(std)
    return jnp.clip(med / std, 0.1, 10.0) / med


def reward_norm_apply(state, rewards, clip=10.0, eps=1e-8):
    """Two-tier normalisation (module docstring) of rewards ``[..., C]``, then clip to ``[-clip, clip]``."""
    chex.assert_axis_dimension_gt(rewards, -1, 0)
    if rewards.shape[-1] != state.stats.mean.shape[-1]:
        raise ValueError(f"reward_norm_apply: rewards have {rewards.shape[-1]} components, state has "
                         f"{state.stats.mean.shape[-1]}")
    return jnp.clip(rewards * reward_norm_scales(state, eps), -clip, clip)
