"""Factorised discrete head for 2^n joint actions: n independent Bernoulli actuators.

Hard Move (HyAR, Li et al. ICLR 2022) has n actuators and one discrete action per on/off pattern, 2^n in
all (1,024 for n = 10). A categorical head over the patterns needs 2^n logits; this head needs n. Actuator
k fires with probability ``sigma(l_k)``, independently of the others, so the joint action ``b in {0,1}^n``
has

    log pi(b) = sum_k [ b_k log sigma(l_k) + (1 - b_k) log sigma(-l_k) ]      (exact, not a bound)
    H(pi)     = sum_k [ sigma(l_k) softplus(-l_k) + sigma(-l_k) softplus(l_k) ]
    KL(p||q)  = sum_k KL(Bern(sigma(lp_k)) || Bern(sigma(lq_k)))

-- the factorisation of action-branching heads (Tavakoli, Pardo & Kormushev, "Action Branching
Architectures for Deep Reinforcement Learning", AAAI 2018) with binary branches. The family is smaller
than a full categorical (no correlation between actuators), but every joint action keeps a positive,
exactly computable probability, which is what the PPO ratio needs. Cost: O(n) per sample / log-prob /
entropy instead of O(2^n).

Joint action index <-> actuator bits (HyAR's ``binaryEncoding``, docs/specs/hyar_envs.md §3.2, the encoding of
:mod:`balancedrl.envs.hard_move`): ``a = sum_k b_k 2^(n - 1 - k)``, i.e. **actuator 0 is the most
significant bit and actuator n - 1 the least significant bit** of ``a``. For n = 4, a = 1 fires actuator
3 only, a = 8 actuator 0 only, a = 15 all four.

Pure functions; logits ``[..., n]``, actions ``int32 [...]``; float32 unless the logits are float64.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = [
    "MAX_ACTUATORS",
    "action_from_bits",
    "bits_from_action",
    "factorised_entropy",
    "factorised_joint_log_probs",
    "factorised_kl",
    "factorised_log_prob",
    "factorised_mode",
    "factorised_sample",
]

MAX_ACTUATORS = 30  # joint indices are int32


def _num_actuators(logits) -> int:
    if logits.ndim < 1 or not 1 <= logits.shape[-1] <= MAX_ACTUATORS:
        raise ValueError(
            f"logits must have shape [..., n] with 1 <= n <= {MAX_ACTUATORS} actuators, got shape {logits.shape}"
        )
    return logits.shape[-1]


def _float(x):
    x = jnp.asarray(x)
    return x if x.dtype == jnp.float64 else x.astype(jnp.float32)


def bits_from_action(action, n: int) -> jax.Array:
    """int32 ``[..., n]``: ``bits[..., k] = (a >> (n - 1 - k)) & 1`` (actuator 0 = most significant bit)."""
    if not isinstance(n, int) or not 1 <= n <= MAX_ACTUATORS:
        raise ValueError(f"n (number of actuators) must be an int in [1, {MAX_ACTUATORS}], got {n!r}")
    a = jnp.asarray(action, jnp.int32)[..., None]
    shifts = jnp.arange(n - 1, -1, -1, dtype=jnp.int32)
    return jnp.right_shift(a, shifts) & 1


def action_from_bits(bits) -> jax.Array:
    """int32 ``[...]``: ``a = sum_k bits_k 2^(n - 1 - k)`` (inverse of :func:`bits_from_action`)."""
    b = jnp.asarray(bits, jnp.int32)
    n = b.shape[-1]
    if not 1 <= n <= MAX_ACTUATORS:
        raise ValueError(f"bits must have shape [..., n] with 1 <= n <= {MAX_ACTUATORS}, got shape {b.shape}")
    weights = jnp.left_shift(1, jnp.arange(n - 1, -1, -1, dtype=jnp.int32))
    return jnp.sum(b * weights, axis=-1).astype(jnp.int32)


def factorised_sample(key: jax.Array, logits) -> jax.Array:
    """Joint action index ``int32 [...]``: ``b_k ~ Bernoulli(sigma(l_k))`` independently, then
    :func:`action_from_bits`. One uniform draw per actuator."""
    logits = _float(logits)
    _num_actuators(logits)
    u = jax.random.uniform(key, logits.shape, logits.dtype)
    return action_from_bits(u < jax.nn.sigmoid(logits))


def factorised_mode(logits) -> jax.Array:
    """Most probable joint action (greedy evaluation): actuator k on iff ``l_k > 0``."""
    logits = _float(logits)
    _num_actuators(logits)
    return action_from_bits(logits > 0)


def factorised_log_prob(logits, action) -> jax.Array:
    """``log pi(a) = sum_k [b_k log sigma(l_k) + (1 - b_k) log sigma(-l_k)]`` with ``b = bits(a)``; exact
    log-probability of the joint action (the enumerated 2^n-way categorical's, see the module docstring)."""
    logits = _float(logits)
    n = _num_actuators(logits)
    b = bits_from_action(action, n).astype(logits.dtype)
    per = b * jax.nn.log_sigmoid(logits) + (1.0 - b) * jax.nn.log_sigmoid(-logits)
    return jnp.sum(per, axis=-1)


def factorised_entropy(logits) -> jax.Array:
    """``H = sum_k [sigma(l_k) softplus(-l_k) + sigma(-l_k) softplus(l_k)]`` (nats); the written form has
    no cancellation for large ``|l_k|``. Between 0 and ``n log 2``."""
    logits = _float(logits)
    _num_actuators(logits)
    h = jax.nn.sigmoid(logits) * jax.nn.softplus(-logits) + jax.nn.sigmoid(-logits) * jax.nn.softplus(logits)
    return jnp.sum(h, axis=-1)


def factorised_kl(logits_p, logits_q) -> jax.Array:
    """``KL(p || q) = sum_k [sigma(lp) (log sigma(lp) - log sigma(lq)) + sigma(-lp) (log sigma(-lp) -
    log sigma(-lq))]``: the KL of the joint distributions (independent factors add)."""
    lp, lq = _float(logits_p), _float(logits_q)
    if lp.shape != lq.shape:
        raise ValueError(f"logits_p and logits_q must have the same shape, got {lp.shape} and {lq.shape}")
    _num_actuators(lp)
    ls = jax.nn.log_sigmoid
    kl = jax.nn.sigmoid(lp) * (ls(lp) - ls(lq)) + jax.nn.sigmoid(-lp) * (ls(-lp) - ls(-lq))
    return jnp.sum(kl, axis=-1)


def factorised_joint_log_probs(logits) -> jax.Array:
    """``[..., 2^n]``: log-probability of every joint action, by enumeration (O(2^n n); for tests, small n
    or converting to a categorical). Index ``a`` of the last axis is the joint action ``a``."""
    logits = _float(logits)
    n = _num_actuators(logits)
    b = bits_from_action(jnp.arange(2**n), n).astype(logits.dtype)  # [2^n, n]
    ls_on = jax.nn.log_sigmoid(logits)[..., None, :]
    ls_off = jax.nn.log_sigmoid(-logits)[..., None, :]
    return jnp.sum(b * ls_on + (1.0 - b) * ls_off, axis=-1)
