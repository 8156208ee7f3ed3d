"""The hybrid (parameterised-action) policy: sampling, log-probabilities and entropies per slot.

A policy acts on ``M`` slots (graph nodes for Durotaxis, one slot for Platform/Goal/gymnax tasks). In each
slot it picks a discrete action ``a ~ Cat(logits)`` and draws raw continuous parameters
``u ~ N(mean, exp(log_std))``, squashed into ``[low, high]`` for the environment.

``param_owner[j]`` says which discrete action uses continuous parameter ``j`` (``-1``: every action). The
continuous log-probability of a slot counts only the parameters its chosen action uses (the parameterised
action convention of H-PPO, Fan et al. 2019, and of P-DQN/MP-DQN; docs/design.md §3): for Durotaxis all four
spawn parameters belong to "spawn", so only spawning nodes contribute; for Platform each action owns one
parameter. Log-probabilities are taken on the stored *raw* value on both sides of the PPO ratio, never on
the squashed one (a defect of the PyTorch original).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from balancedrl import distributions as dist


class HybridSample(NamedTuple):
    discrete: jax.Array  # int32 [..., M]
    raw: jax.Array  # float32 [..., M, P] (unsquashed)
    squashed: jax.Array  # float32 [..., M, P] in [low, high]
    logp_discrete: jax.Array  # [..., M], 0 in dead slots
    logp_continuous: jax.Array  # [..., M], 0 where no parameter is used


def log_probs(logits, mean, log_std, discrete, raw, slot_mask, param_owner):
    """Per-slot ``(logp_discrete, logp_continuous, continuous_used [..., M])``: :func:`hybrid_log_prob`
    with the adapter's ``param_owner``, plus whether any parameter of the slot was used."""
    lp_d, lp_c = dist.hybrid_log_prob(logits, discrete, mean, log_std, raw, slot_mask, param_owner=param_owner)
    used = dist.used_params(discrete, param_owner, slot_mask) if raw.shape[-1] else jnp.zeros(discrete.shape + (0,), bool)
    return lp_d, lp_c, jnp.any(used, axis=-1)


def sample(key, logits, mean, log_std, slot_mask, param_owner, low, high) -> HybridSample:
    """Draw a hybrid action for every slot (dead slots too; the environment ignores them)."""
    k_d, k_c = jax.random.split(key)
    discrete = dist.categorical_sample(k_d, logits).astype(jnp.int32)
    raw = dist.gaussian_sample(k_c, mean, log_std)
    lp_d, lp_c, _ = log_probs(logits, mean, log_std, discrete, raw, slot_mask, param_owner)
    return HybridSample(discrete, raw, dist.squash(raw, low, high), lp_d, lp_c)


def greedy(logits, mean, low, high):
    """Mode of the discrete head and squashed mean of the continuous head (evaluation)."""
    return jnp.argmax(logits, axis=-1).astype(jnp.int32), dist.squash(mean, low, high)


def unsquash(x, low, high, eps=1e-4):
    """Inverse of :func:`balancedrl.distributions.squash`, clipped so that bound values stay finite
    (the expert acts exactly at the bounds): ``atanh(clip(2 (x - low)/(high - low) - 1, ±(1 - eps)))``."""
    y = 2.0 * (x - low) / jnp.maximum(high - low, 1e-12) - 1.0
    return jnp.arctanh(jnp.clip(y, -1.0 + eps, 1.0 - eps))


def entropies(logits, log_std, slot_mask):
    """Mean discrete entropy and mean continuous (raw Gaussian, summed over parameters) entropy over alive
    slots, per sample: ``([...], [...])``. The Gaussian entropy ignores the tanh squash (it has no closed
    form); it is the usual PPO choice."""
    w = jnp.asarray(slot_mask, jnp.float32)
    n = jnp.maximum(jnp.sum(w, axis=-1), 1.0)
    h_d = jnp.sum(w * dist.categorical_entropy(logits), axis=-1) / n
    if log_std.shape[-1] == 0:
        return h_d, jnp.zeros_like(h_d)
    h_c = jnp.sum(w * dist.gaussian_entropy(log_std), axis=-1) / n
    return h_d, h_c
