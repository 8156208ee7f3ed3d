"""Action distributions for the hybrid (per-node discrete + continuous) action space.

Masked categorical
    Invalid actions get a large negative *finite* logit and the logits are max-subtracted, so softmax
    never overflows (the PyTorch original produced NaN here). A row with NO valid action becomes the
    uniform distribution over all K actions (its logits are replaced by zeros): log-prob -log K,
    entropy log K, KL 0, uniform samples -- finite values and gradients. Use a node mask to ignore such
    rows (see :func:`hybrid_log_prob`).

Bounded Gaussian
    The policy samples a raw value ``u ~ N(mean, exp(log_std))`` and the environment receives
    ``squash(u, low, high) = low + (high - low) * (tanh(u) + 1) / 2``. Log-probabilities are those of
    the raw Gaussian, evaluated on the SAME stored raw value ``u`` for the old and the new policy. The
    squashing Jacobian ``log |d squash / du|`` depends on ``u`` only, not on the policy parameters, so it
    cancels in the PPO ratio and can be left out. The PyTorch original evaluated the old log-prob on the
    raw value and the new one on the squashed value (two different variables), so the ratio was not 1
    even for an unchanged policy. Entropy is that of the raw Gaussian (closed form).
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp

__all__ = [
    "masked_logits", "categorical_log_prob", "categorical_entropy", "categorical_sample",
    "categorical_kl", "gaussian_log_prob", "gaussian_entropy", "gaussian_sample", "gaussian_kl",
    "squash", "hybrid_log_prob", "used_params", "MASKED_LOGIT",
]

MASKED_LOGIT = -1e9  # finite: exp(MASKED_LOGIT - max) underflows to exactly 0 in float32
_LOG_2PI = math.log(2.0 * math.pi)


def _effective_mask(logits, action_mask):
    if action_mask is None:
        return None
    chex.assert_equal_shape([logits, action_mask])
    mask = jnp.asarray(action_mask, bool)
    return jnp.where(jnp.any(mask, axis=-1, keepdims=True), mask, True)


def masked_logits(logits, action_mask=None):
    """``where(mask, logits, -1e9) - max`` over the last axis (max taken as a constant).

    ``logits [..., K]``; ``action_mask [..., K]`` bool (True = valid) or None. All-masked rows become
    all-zero logits (uniform over all K actions). The result is finite; masked entries (and all-masked
    rows) receive zero gradient.
    """
    chex.assert_axis_dimension_gt(logits, -1, 0)
    logits = jnp.asarray(logits, jnp.float32)
    if action_mask is not None:
        chex.assert_equal_shape([logits, action_mask])
        mask = jnp.asarray(action_mask, bool)
        any_valid = jnp.any(mask, axis=-1, keepdims=True)
        logits = jnp.where(any_valid, jnp.where(mask, logits, MASKED_LOGIT), 0.0)
    return logits - jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))


def _log_softmax(logits, action_mask):
    return jax.nn.log_softmax(masked_logits(logits, action_mask), axis=-1)


def categorical_log_prob(logits, actions, action_mask=None):
    """``log pi(a) = log_softmax(masked_logits)[a]``. ``logits [..., K]``, ``actions [...]`` int."""
    chex.assert_equal_shape_prefix([logits, actions], actions.ndim)
    chex.assert_rank(logits, actions.ndim + 1)
    logp = _log_softmax(logits, action_mask)
    return jnp.take_along_axis(logp, jnp.asarray(actions, jnp.int32)[..., None], axis=-1)[..., 0]


def categorical_entropy(logits, action_mask=None):
    """``H = -sum_a p(a) log p(a)`` over valid actions; ``[...]``."""
    logp = _log_softmax(logits, action_mask)
    mask = _effective_mask(logits, action_mask)
    terms = jnp.exp(logp) * logp
    if mask is not None:
        terms = jnp.where(mask, terms, 0.0)
    return -jnp.sum(terms, axis=-1)


def categorical_sample(key, logits, action_mask=None):
    """Sample ``a ~ softmax(masked_logits)``; ``[...]`` int32. Masked actions are never drawn."""
    return jax.random.categorical(key, masked_logits(logits, action_mask), axis=-1).astype(jnp.int32)


def categorical_kl(logits_p, logits_q, action_mask=None):
    """``KL(p || q) = sum_a p(a) (log p(a) - log q(a))`` over valid actions; ``[...]``."""
    chex.assert_equal_shape([logits_p, logits_q])
    logp = _log_softmax(logits_p, action_mask)
    logq = _log_softmax(logits_q, action_mask)
    terms = jnp.exp(logp) * (logp - logq)
    mask = _effective_mask(logits_p, action_mask)
    if mask is not None:
        terms = jnp.where(mask, terms, 0.0)
    return jnp.sum(terms, axis=-1)


def gaussian_log_prob(raw, mean, log_std):
    """Diagonal Gaussian log-density of the RAW value, summed over the last axis::

        sum_d [ -0.5 ((u - mu) / sigma)^2 - log sigma - 0.5 log(2 pi) ],  sigma = exp(log_std)
    """
    chex.assert_equal_shape([raw, mean, log_std])
    z = (raw - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * _LOG_2PI, axis=-1)


def gaussian_entropy(log_std):
    """``sum_d [log sigma + 0.5 (1 + log 2 pi)]`` (entropy of the raw Gaussian)."""
    return jnp.sum(log_std + 0.5 * (1.0 + _LOG_2PI), axis=-1)


def gaussian_sample(key, mean, log_std):
    """Raw sample ``u = mean + exp(log_std) * eps``, ``eps ~ N(0, I)`` (store ``u``, squash for the env)."""
    chex.assert_equal_shape([mean, log_std])
    return mean + jnp.exp(log_std) * jax.random.normal(key, jnp.shape(mean), jnp.result_type(mean))


def gaussian_kl(mean_p, log_std_p, mean_q, log_std_q):
    """``KL(p || q) = sum_d [log s_q - log s_p + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2]``."""
    chex.assert_equal_shape([mean_p, log_std_p, mean_q, log_std_q])
    var_ratio = jnp.exp(2.0 * (log_std_p - log_std_q))
    maha = (mean_p - mean_q) ** 2 * jnp.exp(-2.0 * log_std_q)
    return jnp.sum(log_std_q - log_std_p + 0.5 * (var_ratio + maha) - 0.5, axis=-1)


def squash(raw, low, high):
    """``low + (high - low) * (tanh(raw) + 1) / 2`` -- maps the raw value into ``[low, high]``."""
    return low + (high - low) * (jnp.tanh(raw) + 1.0) * 0.5


def used_params(discrete, param_owner, slot_mask):
    """``[..., M, P]`` bool: parameter j of a slot counts iff the slot is alive and
    ``param_owner[j] in (-1, discrete)`` (-1: used by every discrete action)."""
    owner = jnp.asarray(param_owner, jnp.int32)
    used = (owner == -1) | (owner == discrete[..., None])
    return used & jnp.asarray(slot_mask, bool)[..., None]


def hybrid_log_prob(logits, discrete_actions, mean, log_std, raw_continuous, node_mask, spawn_action=1,
                    chosen_only=True, action_mask=None, param_owner=None):
    """Per-slot log-probabilities of a hybrid action: ``(logp_discrete [..., M], logp_continuous [..., M])``.

    ``logits [..., M, K]``, ``discrete_actions [..., M]``, ``mean / log_std / raw_continuous [..., M, P]``,
    ``node_mask [..., M]`` (True = alive), optional ``action_mask [..., M, K]``.

    ``logp_continuous = sum_j used_j log N(u_j; mean_j, sigma_j)`` where parameter ``j`` is used iff the slot is
    alive and ``param_owner[j]`` is -1 or the chosen discrete action (the parameterised-action convention:
    parameters count only where used). Without ``param_owner`` every parameter belongs to ``spawn_action``
    when ``chosen_only`` (Durotaxis-v0) and to every action otherwise. Dead slots get 0 in both outputs.
    This is the one hybrid log-prob: the trainer's policy (``policy.log_probs``) calls it.
    """
    chex.assert_rank(logits, discrete_actions.ndim + 1)
    chex.assert_equal_shape([discrete_actions, node_mask])
    chex.assert_equal_shape_prefix([logits, mean, discrete_actions], discrete_actions.ndim)
    alive = jnp.asarray(node_mask, bool)
    lp_d = jnp.where(alive, categorical_log_prob(logits, discrete_actions, action_mask), 0.0)
    P = raw_continuous.shape[-1]
    if P == 0:
        return lp_d, jnp.zeros(discrete_actions.shape, jnp.float32)
    if param_owner is None:
        param_owner = (spawn_action if chosen_only else -1,) * P
    per_dim = gaussian_log_prob(raw_continuous[..., None], mean[..., None], log_std[..., None])
    used = used_params(discrete_actions, param_owner, alive)
    return lp_d, jnp.sum(jnp.where(used, per_dim, 0.0), axis=-1)
