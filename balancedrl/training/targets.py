"""From a rollout to the learning batch: reward normalisation, GAE per reward component, imitation weights.

1. optional two-tier reward normalisation of the component rewards (``balancedrl.normalization``);
2. GAE per component, bootstrapping across truncations from the value of the pre-reset observation;
3. advantage-weighted imitation weights of the expert frames, from advantages normalised within each
   actor's own frames (per-actor normalisation).
"""

from __future__ import annotations

import jax

from balancedrl.advantages import awr_weights, gae, group_normalize, group_sizes
from balancedrl.normalization import reward_norm_apply, reward_norm_update
from balancedrl.training.context import TrainContext
from balancedrl.training.state import MiniBatch, Transition


def bootstrap_values(ctx: TrainContext, net_vars, traj: Transition):
    """Value ``[T, E, C]`` of the observation each transition led to (before auto-reset)."""
    T, E = traj.terminated.shape
    flat = jax.tree_util.tree_map(lambda x: x.reshape((T * E,) + x.shape[2:]), traj.final_obs)
    return ctx.policy_apply(net_vars, flat).values.reshape(T, E, -1)


def compute_targets(ctx: TrainContext, net_vars, reward_norm, traj: Transition):
    """``(batch, reward_norm, adv [T, E, C])``: the flattened :class:`MiniBatch` of the whole rollout."""
    tc = ctx.cfg.trainer
    eg, rn = tc.expert_guidance, tc.reward_normalization
    T, E, C = traj.rewards.shape
    next_values = bootstrap_values(ctx, net_vars, traj)
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
    )
    return batch, reward_norm, adv
