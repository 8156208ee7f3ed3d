"""Rollout: ``num_steps`` environment steps of every environment in one ``lax.scan``.

With expert guidance each environment step is taken by the scripted expert with probability ``ratio``
(its schedule is in :mod:`balancedrl.training.schedules`), and frames carry ``actor_id`` (0 learner,
1 expert). Every transition keeps the observation it led to before any auto-reset (``final_obs``), the
bootstrap source for truncated episodes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from balancedrl import policy as hp
from balancedrl.training.context import TrainContext
from balancedrl.training.state import RunnerState, Transition, stats_step


def rollout_step(ctx: TrainContext, runner: RunnerState, ratio) -> tuple[RunnerState, Transition]:
    """One step of every environment: act (policy or expert), step, record, update episode stats."""
    ad, E = ctx.adapter, ctx.cfg.env.num_envs
    key, k_act, k_exp, k_use, k_env = jax.random.split(runner.key, 5)
    cache = None if ctx.cache_apply is None else ctx.cache_apply(runner.params["network"], runner.obs)
    out = ctx.policy_apply(runner.params["network"], runner.obs, *(() if cache is None else (cache,)))
    mask = ad.slot_mask(runner.obs)
    s = hp.sample(k_act, out.discrete_logits, out.cont_mean, out.cont_log_std, mask, ctx.owner, ctx.low, ctx.high)
    discrete, raw, squashed = s.discrete, s.raw, s.squashed
    actor_id = jnp.zeros((E,), jnp.int32)
    if ctx.cfg.trainer.expert_guidance.enable and ad.expert is not None:
        e_d, e_c = jax.vmap(ad.expert)(jax.random.split(k_exp, E), runner.obs)
        use = jax.random.uniform(k_use, (E,)) < ratio
        pick = lambda a, b: jnp.where(use.reshape((E,) + (1,) * (a.ndim - 1)), a, b)  # noqa: E731
        discrete = pick(e_d, discrete)
        squashed = pick(e_c, squashed)
        raw = pick(hp.unsquash(e_c, ctx.low, ctx.high), raw)
        actor_id = use.astype(jnp.int32)
    logp_d, logp_c, _ = hp.log_probs(
        out.discrete_logits, out.cont_mean, out.cont_log_std, discrete, raw, mask, ctx.owner
    )
    actions = jax.vmap(ad.to_env_action)(discrete, squashed)
    obs, env_state, reward, terminated, truncated, info = jax.vmap(ad.env.step, in_axes=(0, 0, 0, None))(
        jax.random.split(k_env, E), runner.env_state, actions, ad.env_params
    )
    rewards = jax.vmap(ad.reward_components)(reward, info).astype(jnp.float32)
    success = jax.vmap(ad.success)(info).astype(jnp.float32)
    stats = stats_step(runner.stats, reward, jnp.logical_or(terminated, truncated), success)
    tr = Transition(
        obs=runner.obs,
        final_obs=info["final_observation"],
        discrete=discrete,
        raw=raw,
        logp_d=logp_d,
        logp_c=logp_c,
        values=out.values,
        rewards=rewards,
        terminated=terminated,
        truncated=truncated,
        actor_id=actor_id,
        frozen_emb=cache,
    )
    return runner._replace(env_state=env_state, obs=obs, stats=stats, key=key), tr


def collect(ctx: TrainContext, runner: RunnerState, ratio) -> tuple[RunnerState, Transition]:
    """``num_steps`` rollout steps; transitions get a leading time axis ``[T, E, ...]``."""

    def body(r, _):
        return rollout_step(ctx, r, ratio)

    return jax.lax.scan(body, runner, None, ctx.cfg.trainer.num_steps)
