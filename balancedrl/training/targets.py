"""From a rollout to the learning batch: reward normalisation, GAE per reward component, imitation weights.

1. optional two-tier reward normalisation of the component rewards (``balancedrl.normalization``);
2. GAE per component, bootstrapping across truncations from the value of the pre-reset observation;
3. advantage-weighted imitation weights of the expert frames, from advantages normalised within each
   actor's own frames (per-actor normalisation).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from balancedrl.advantages import awr_weights, gae, group_normalize, group_sizes
from balancedrl.normalization import reward_norm_apply, reward_norm_update
from balancedrl.training.context import TrainContext
from balancedrl.training.state import MiniBatch, Transition


def bootstrap_values(ctx: TrainContext, net_vars, traj: Transition, last_obs=None):
    """Value ``[T, E, C]`` of the observation each transition led to (before auto-reset).

    Without ``last_obs`` (or without the adapter's ``truncation_period``) every final observation goes
    through the network: ``T * E`` rows. With them only what the GAE reads is computed:

    * inside an episode the next observation is the next step's, whose value the rollout already has:
      ``V(s_{t+1}) = values[t + 1]``, and ``V(last_obs)`` (``E`` rows) after the last step;
    * on a truncated step, the value of the pre-reset observation: one environment truncates at most
      ``K = ceil(T / truncation_period)`` times in ``T`` steps, so each environment's first ``K``
      truncated steps are gathered (``K * E`` rows, static) and their values put in place;
    * on a terminated step the GAE does not bootstrap, so the value there is never read.

    Same numbers as the full pass up to float rounding (batch sizes differ); ``2E`` rows instead of
    ``T * E`` when ``truncation_period >= T``.
    """
    T, E = traj.terminated.shape
    period = ctx.adapter.truncation_period
    if last_obs is None or period is None:
        flat = jax.tree_util.tree_map(lambda x: x.reshape((T * E,) + x.shape[2:]), traj.final_obs)
        return ctx.policy_apply(net_vars, flat).values.reshape(T, E, -1)
    K = min(T, -(-T // int(period)))
    last_v = ctx.policy_apply(net_vars, last_obs).values  # [E, C]
    nxt = jnp.concatenate([traj.values[1:], last_v[None].astype(traj.values.dtype)], axis=0)
    trunc = traj.truncated.T  # [E, T]
    idx = jnp.argsort(~trunc, axis=1, stable=True)[:, :K].T  # [K, E]: truncated steps first
    hit = jnp.take_along_axis(trunc, idx.T, axis=1).T  # [K, E]
    env = jnp.broadcast_to(jnp.arange(E)[None], (K, E))
    obs_k = jax.tree_util.tree_map(lambda x: x[idx, env].reshape((K * E,) + x.shape[2:]), traj.final_obs)
    v_k = ctx.policy_apply(net_vars, obs_k).values.reshape(K, E, -1).astype(nxt.dtype)
    return nxt.at[idx, env].set(jnp.where(hit[..., None], v_k, nxt[idx, env]))


def compute_targets(ctx: TrainContext, net_vars, reward_norm, traj: Transition, last_obs=None):
    """``(batch, reward_norm, adv [T, E, C])``: the flattened :class:`MiniBatch` of the whole rollout.
    ``last_obs``: the observation after the rollout (enables the cheap bootstrap of :func:`bootstrap_values`)."""
    tc = ctx.cfg.trainer
    eg, rn = tc.expert_guidance, tc.reward_normalization
    T, E, C = traj.rewards.shape
    next_values = bootstrap_values(ctx, net_vars, traj, last_obs)
    rewards = traj.rewards
    if rn.enable:
        reward_norm = reward_norm_update(reward_norm, rewards.reshape(T * E, C))
        rewards = reward_norm_apply(reward_norm, rewards, rn.clip)
    adv, returns = gae(rewards, traj.values, traj.terminated, traj.truncated, next_values, tc.gamma, tc.gae_lambda)

    N = T * E
    flat = lambda x: x.reshape((N,) + x.shape[2:])  # noqa: E731
    actor_id = flat(traj.actor_id)
    a_total = flat(adv[..., 0])
    if eg.per_actor_normalization:
        a_norm, sizes = group_normalize(a_total, actor_id, 2), group_sizes(actor_id, 2)
    else:
        a_norm, sizes = group_normalize(a_total, None, 1), None
    awr_w = awr_weights(
        a_norm, beta=eg.awr_beta, group_sizes=sizes, group_ids=actor_id if sizes is not None else None
    )
    batch = MiniBatch(
        obs=jax.tree_util.tree_map(flat, traj.obs),
        discrete=flat(traj.discrete),
        raw=flat(traj.raw),
        logp_d=flat(traj.logp_d),
        logp_c=flat(traj.logp_c),
        values=flat(traj.values),
        returns=flat(returns),
        adv_components=flat(adv),
        actor_id=actor_id,
        awr_weight=awr_w,
        frozen_emb=None if traj.frozen_emb is None else flat(traj.frozen_emb),
    )
    return batch, reward_norm, adv
