"""The trainer's pytrees: runner state, rollout transitions, the flattened learning batch, episode stats."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from balancedrl.normalization import RewardNormState

LEARNER, EXPERT = 0, 1  # actor ids of a frame (expert-guided rollouts)


class EpisodeStats(NamedTuple):
    """Per-environment running episode return / length and per-update totals of finished episodes."""

    ep_return: jax.Array  # [E]
    ep_length: jax.Array  # [E]
    done_count: jax.Array  # []
    done_return: jax.Array
    done_length: jax.Array
    success_count: jax.Array
    success_length: jax.Array


class RunnerState(NamedTuple):
    params: Any  # {"network": variables, "weighting": variables}
    opt_state: Any
    balancer: Any  # the balancer's state (balancedrl.balancers)
    reward_norm: RewardNormState
    env_state: Any
    obs: Any
    stats: EpisodeStats
    update_count: jax.Array  # int32 []
    key: jax.Array


class Transition(NamedTuple):
    obs: Any
    final_obs: Any  # observation after the step, before any auto-reset (bootstrap source)
    discrete: jax.Array  # [E, M]
    raw: jax.Array  # [E, M, P]
    logp_d: jax.Array  # [E, M]
    logp_c: jax.Array  # [E, M]
    values: jax.Array  # [E, C]
    rewards: jax.Array  # [E, C] raw component rewards
    terminated: jax.Array  # [E]
    truncated: jax.Array  # [E]
    actor_id: jax.Array  # [E]
    # [E, D] the policy's frozen-extractor embeddings of `obs` (WSA's frozen CNNs), None without any:
    # computed once in the rollout, reused by every epoch instead of running the frozen CNNs again
    frozen_emb: Any = None


class MiniBatch(NamedTuple):
    """Flattened learning batch (leading axis ``N = T * E``, or a minibatch of it)."""

    obs: Any
    discrete: jax.Array
    raw: jax.Array
    logp_d: jax.Array
    logp_c: jax.Array
    values: jax.Array
    returns: jax.Array
    adv_components: jax.Array
    actor_id: jax.Array
    awr_weight: jax.Array
    frozen_emb: Any = None  # see Transition.frozen_emb


def stats_init(num_envs: int) -> EpisodeStats:
    z = jnp.zeros((), jnp.float32)
    return EpisodeStats(jnp.zeros(num_envs), jnp.zeros(num_envs), z, z, z, z, z)


def stats_reset_totals(s: EpisodeStats) -> EpisodeStats:
    z = jnp.zeros((), jnp.float32)
    return s._replace(done_count=z, done_return=z, done_length=z, success_count=z, success_length=z)


def stats_step(st: EpisodeStats, reward, done, success) -> EpisodeStats:
    """Add one step's reward to the running episodes and the finished ones to the update's totals."""
    ep_ret = st.ep_return + reward
    ep_len = st.ep_length + 1.0
    d = done.astype(jnp.float32)
    return EpisodeStats(
        ep_return=ep_ret * (1.0 - d),
        ep_length=ep_len * (1.0 - d),
        done_count=st.done_count + d.sum(),
        done_return=st.done_return + (d * ep_ret).sum(),
        done_length=st.done_length + (d * ep_len).sum(),
        success_count=st.success_count + (d * success).sum(),
        success_length=st.success_length + (d * success * ep_len).sum(),
    )
