"""Hybrid PPO with the five seed techniques, as one jitted ``lax.scan`` (PureJaxRL shape).

``make_train(config)`` returns a :class:`Trainer` whose pieces are pure functions:

* ``init(key) -> RunnerState``
* ``update(runner) -> (runner, metrics)``: one rollout of ``num_steps`` x ``num_envs`` plus
  ``update_epochs`` x ``num_minibatches`` gradient steps;
* ``run(runner, n) -> (runner, metrics[n])``: ``n`` updates in one ``lax.scan`` (the host loop calls this
  in chunks for progress, logging and checkpoints);
* ``train(key) -> (runner, metrics[num_updates])``: everything, so ``jax.jit(jax.vmap(train))(keys)`` is a
  seed sweep.

What one update does (the seeds' techniques in order):

1. rollout; in expert-guided mode (seed 003) each environment step is taken by the scripted expert with
   probability ``expert_ratio`` (linear decay), and frames carry ``actor_id`` (0 learner, 1 expert);
2. optional two-tier reward normalisation of the component rewards (``balancedrl.normalization``);
3. GAE per reward component, bootstrapping on truncation from the value of the final observation;
4. per minibatch: the component advantages are combined by the learnable softmax + attention weighting
   (seed 000; gradient reaches the weights through the PPO surrogate) or by a fixed rule; the discrete and
   continuous clipped surrogates (H-PPO) are balanced by adaptive gradient scaling (seed 001): their
   gradients are taken once each with one ``vjp`` and combined with EMA-based weights (no third backward
   pass); the entropy term follows the schedule with collapse penalty (seed 004); value loss per component
   with PPO clipping; expert frames get the advantage-weighted imitation loss with per-actor normalised
   weights (seed 003).
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from balancedrl import policy as hp
from balancedrl.advantages import awr_weights, gae, group_normalize, group_sizes
from balancedrl.entropy import hybrid_entropy_loss, linear_schedule
from balancedrl.grad_balance import (
    GradScaleConfig,
    GradScaleState,
    adaptive_weights,
    grad_scale_init,
    grad_scale_update,
    tree_global_norm,
)
from balancedrl.normalization import RewardNormState, reward_norm_apply, reward_norm_init, reward_norm_update
from balancedrl.optim import make_optimizer
from balancedrl.ppo import clipped_value_loss, hybrid_policy_loss
from balancedrl.training.adapters import EnvAdapter, make_adapter
from balancedrl.training.config import SEED_AXES, Config
from balancedrl.weighting import ComponentWeighting, weight_regularizer

LEARNER, EXPERT = 0, 1


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
    grad_scale: GradScaleState
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


class Trainer(NamedTuple):
    config: Config
    adapter: EnvAdapter
    network: Any
    init: Any
    update: Any
    run: Any
    train: Any
    policy_apply: Any


def _stats_init(num_envs: int) -> EpisodeStats:
    z = jnp.zeros((), jnp.float32)
    return EpisodeStats(jnp.zeros(num_envs), jnp.zeros(num_envs), z, z, z, z, z)


def _stats_reset_totals(s: EpisodeStats) -> EpisodeStats:
    z = jnp.zeros((), jnp.float32)
    return s._replace(done_count=z, done_return=z, done_length=z, success_count=z, success_length=z)


def expert_ratio_at(cfg: Config, update_count):
    eg = cfg.trainer.expert_guidance
    if not eg.enable:
        return jnp.zeros((), jnp.float32)
    return linear_schedule(eg.expert_ratio_start, eg.expert_ratio_end, eg.decay_updates)(update_count)


def entropy_coeff_at(cfg: Config, update_count):
    er = cfg.trainer.entropy_regularization
    if not er.enable_adaptive_entropy:
        return jnp.asarray(er.entropy_coeff, jnp.float32)
    return linear_schedule(er.entropy_coeff_start, er.entropy_coeff_end, er.entropy_decay_episodes)(
        update_count
    )


def make_train(config: Config, adapter: EnvAdapter | None = None) -> Trainer:
    """Build the pure training functions for ``config`` (see the module docstring)."""
    cfg = config
    tc = cfg.trainer
    ad = adapter or make_adapter(cfg.env)
    env, env_params = ad.env, ad.env_params
    E, T = cfg.env.num_envs, tc.num_steps
    C = ad.num_components
    low = jnp.asarray(ad.cont_low, jnp.float32)
    high = jnp.asarray(ad.cont_high, jnp.float32)
    owner = tuple(ad.param_owner)
    network, net_init, frozen = ad.make_network(cfg.actor_critic)
    aw = tc.advantage_weighting
    weighting = ComponentWeighting(C, use_attention=aw.enable_attention_weighting)
    num_grad_steps = cfg.num_updates * tc.update_epochs * tc.num_minibatches
    lr = optax.linear_schedule(tc.learning_rate, 0.0, num_grad_steps) if tc.anneal_lr else tc.learning_rate
    tx, _ = make_optimizer(
        lr, aw.weight_learning_rate, tc.max_grad_norm, aw.weight_max_grad_norm, frozen=frozen
    )
    gs = tc.gradient_scaling
    gs_cfg = GradScaleConfig(
        base_weights=jnp.asarray([gs.base_discrete_weight, gs.base_continuous_weight], jnp.float32),
        target=gs.gradient_norm_target,
        momentum=gs.scaling_momentum,
        min_scale=gs.min_scaling_factor,
        max_scale=gs.max_scaling_factor,
        warmup_steps=gs.warmup_steps,
    )
    base_w = gs_cfg.base_weights / jnp.sum(gs_cfg.base_weights)
    er = tc.entropy_regularization
    eg = tc.expert_guidance
    rn = tc.reward_normalization

    def policy_apply(net_vars, obs):
        return network.apply(net_vars, obs)

    # ------------------------------------------------------------------ init
    def init(key) -> RunnerState:
        k_net, k_w, k_env, k_run = jax.random.split(key, 4)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_env, E), env_params)
        one_obs = jax.tree_util.tree_map(lambda x: x[0], obs)
        params = {
            "network": net_init(k_net, one_obs),
            "weighting": weighting.init(k_w, jnp.zeros((2, C), jnp.float32)),
        }
        return RunnerState(
            params=params,
            opt_state=tx.init(params),
            grad_scale=grad_scale_init(2),
            reward_norm=reward_norm_init(C),
            env_state=env_state,
            obs=obs,
            stats=_stats_init(E),
            update_count=jnp.zeros((), jnp.int32),
            key=k_run,
        )

    # ------------------------------------------------------------------ rollout
    def env_step(carry, _):
        runner, ratio = carry
        key, k_act, k_exp, k_use, k_env = jax.random.split(runner.key, 5)
        net_vars = runner.params["network"]
        out = policy_apply(net_vars, runner.obs)
        mask = ad.slot_mask(runner.obs)
        s = hp.sample(k_act, out.discrete_logits, out.cont_mean, out.cont_log_std, mask, owner, low, high)
        discrete, raw, squashed = s.discrete, s.raw, s.squashed
        actor_id = jnp.zeros((E,), jnp.int32)
        if eg.enable and ad.expert is not None:
            e_d, e_c = jax.vmap(ad.expert)(jax.random.split(k_exp, E), runner.obs)
            use = jax.random.uniform(k_use, (E,)) < ratio
            pick = lambda a, b: jnp.where(use.reshape((E,) + (1,) * (a.ndim - 1)), a, b)  # noqa: E731
            discrete = pick(e_d, discrete)
            squashed = pick(e_c, squashed)
            raw = pick(hp.unsquash(e_c, low, high), raw)
            actor_id = use.astype(jnp.int32)
        logp_d, logp_c, _ = hp.log_probs(
            out.discrete_logits, out.cont_mean, out.cont_log_std, discrete, raw, mask, owner
        )
        actions = jax.vmap(ad.to_env_action)(discrete, squashed)
        obs, env_state, reward, terminated, truncated, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(k_env, E), runner.env_state, actions, env_params
        )
        rewards = jax.vmap(ad.reward_components)(reward, info).astype(jnp.float32)
        success = jax.vmap(ad.success)(info).astype(jnp.float32)
        done = jnp.logical_or(terminated, truncated)
        st = runner.stats
        ep_ret = st.ep_return + reward
        ep_len = st.ep_length + 1.0
        d = done.astype(jnp.float32)
        stats = EpisodeStats(
            ep_return=ep_ret * (1.0 - d),
            ep_length=ep_len * (1.0 - d),
            done_count=st.done_count + d.sum(),
            done_return=st.done_return + (d * ep_ret).sum(),
            done_length=st.done_length + (d * ep_len).sum(),
            success_count=st.success_count + (d * success).sum(),
            success_length=st.success_length + (d * success * ep_len).sum(),
        )
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
        )
        runner = runner._replace(env_state=env_state, obs=obs, stats=stats, key=key)
        return (runner, ratio), tr

    # ------------------------------------------------------------------ losses
    def combine_advantages(w_vars, adv_c, mask):
        if aw.enable_learnable_weights:
            return weighting.apply(w_vars, adv_c, mask)
        a = adv_c[:, 0] if aw.fallback == "total" else jnp.mean(adv_c, axis=-1)
        w = mask.astype(jnp.float32)
        n = jnp.maximum(w.sum(), 1.0)
        mean = (w * a).sum() / n
        std = jnp.sqrt((w * (a - mean) ** 2).sum() / n)
        info = {k: jnp.full((C,), jnp.nan) for k in ("base_weights", "attention_weights", "final_weights")}
        return jnp.where(mask, (a - mean) / (std + 1e-8), 0.0), info

    def loss_vector(params, mb, ent_coeff):
        """Three losses: [discrete surrogate, continuous surrogate, everything else]."""
        out = policy_apply(params["network"], mb.obs)
        mask = ad.slot_mask(mb.obs)
        lp_d, lp_c, used = hp.log_probs(
            out.discrete_logits, out.cont_mean, out.cont_log_std, mb.discrete, mb.raw, mask, owner
        )
        learner = mb.actor_id == LEARNER
        adv, w_info = combine_advantages(params["weighting"], mb.adv_components, learner)
        d_loss, c_loss, pm = hybrid_policy_loss(
            lp_d,
            mb.logp_d,
            lp_c,
            mb.logp_c,
            adv,
            mask,
            used,
            tc.clip_eps,
            joint=tc.joint_ratio,
            sample_mask=learner,
        )
        v_loss, v_per = clipped_value_loss(out.values, mb.values, mb.returns, tc.vf_clip)
        h_d, h_c = hp.entropies(out.discrete_logits, out.cont_log_std, mask)
        lw = learner.astype(jnp.float32)
        n_l = jnp.maximum(lw.sum(), 1.0)
        ent_loss, em = hybrid_entropy_loss(
            (lw * h_d).sum() / n_l,
            (lw * h_c).sum() / n_l,
            ent_coeff,
            er.discrete_entropy_weight,
            er.continuous_entropy_weight,
            er.min_entropy_threshold,
            er.penalty_scale,
        )
        ew = 1.0 - lw
        imitation = -jnp.sum(ew * mb.awr_weight * (lp_d.sum(-1) + lp_c.sum(-1))) / jnp.maximum(ew.sum(), 1.0)
        reg = (
            weight_regularizer(params["weighting"], aw.weight_regularization)
            if aw.enable_learnable_weights
            else 0.0
        )
        rest = tc.vf_coef * v_loss + ent_loss + eg.imitation_coeff * imitation + reg
        metrics = {
            "discrete_loss": d_loss,
            "continuous_loss": c_loss,
            "value_loss": v_loss,
            "imitation_loss": imitation,
            "weight_reg_loss": jnp.asarray(reg, jnp.float32),
            "discrete_entropy": em["discrete_entropy"],
            "continuous_entropy": em["continuous_entropy"],
            "discrete_penalty": em["discrete_penalty"],
            "continuous_penalty": em["continuous_penalty"],
            "entropy_loss": em["total"],
            "value_loss_per_component": v_per,
            "component_base_weights": w_info["base_weights"],
            "component_attention_weights": w_info["attention_weights"],
            "component_final_weights": w_info["final_weights"],
            "wsa_weights": jnp.mean(out.wsa_weights, axis=0)
            if out.wsa_weights.shape[-1]
            else out.wsa_weights[0],
            **pm,
        }
        return jnp.stack([d_loss, c_loss, rest]), metrics

    nan = jnp.asarray(jnp.nan, jnp.float32)

    def apply_grads(params, opt_state, grads, coef, losses, metrics):
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        metrics = {
            **metrics,
            "discrete_weight_used": coef[0],
            "continuous_weight_used": coef[1],
            "grad_norm": tree_global_norm(grads),
            "total_loss": jnp.dot(coef, losses),
        }
        return params, opt_state, metrics

    def measured_step(carry, mb):
        """Seed 001 step: per-loss gradients from one forward pass and one batched vjp (three cotangents),
        their norms update the EMA, and the final gradient is sum_i w_i g_i (no further backward pass)."""
        params, opt_state, gstate, ent_coeff = carry
        losses, vjp_fn, metrics = jax.vjp(lambda p: loss_vector(p, mb, ent_coeff), params, has_aux=True)
        # Three vjp calls on one forward pass; a vmap over the cotangents was 5.6x the plain update on CPU
        # (benchmarks/balance_overhead.py), three separate calls are cheaper.
        per_loss = jax.tree_util.tree_map(
            lambda *g: jnp.stack(g), *[vjp_fn(c)[0] for c in jnp.eye(3, dtype=losses.dtype)]
        )
        norms = jax.vmap(tree_global_norm)(jax.tree_util.tree_map(lambda g: g[:2], per_loss))
        w, gstate, gm = grad_scale_update(gstate, norms, gs_cfg)
        coef = jnp.concatenate([w, jnp.ones((1,), w.dtype)])
        grads = jax.tree_util.tree_map(lambda g: jnp.tensordot(coef, g, axes=1), per_loss)
        metrics = {
            **metrics,
            "discrete_grad_norm": gm["ema_norms"][0],
            "continuous_grad_norm": gm["ema_norms"][1],
            "discrete_grad_norm_raw": norms[0],
            "continuous_grad_norm_raw": norms[1],
            "discrete_scale": gm["scales"][0],
            "continuous_scale": gm["scales"][1],
            "gradient_scaling_active": gm["gradient_scaling_active"],
        }
        params, opt_state, metrics = apply_grads(params, opt_state, grads, coef, losses, metrics)
        return (params, opt_state, gstate, ent_coeff), metrics

    def weighted_step(carry, mb):
        """One backward pass of ``w_d L_d + w_c L_c + L_rest`` with fixed weights: the base weights when
        scaling is off, else the weights from the current EMA (between two measured steps)."""
        params, opt_state, gstate, ent_coeff = carry
        if gs.enable_adaptive_scaling:
            adaptive, scales = adaptive_weights(
                gstate.ema_norms, gs_cfg.base_weights, gs_cfg.target, gs_cfg.min_scale, gs_cfg.max_scale
            )
            active = gstate.count > gs_cfg.warmup_steps
            w = jnp.where(active, adaptive, gs_cfg.base_weights)
            ema, active_f = gstate.ema_norms, active.astype(jnp.float32)
        else:
            w, scales, ema, active_f = (
                base_w,
                jnp.full((2,), nan),
                jnp.full((2,), nan),
                jnp.zeros((), jnp.float32),
            )
        coef = jnp.concatenate([w, jnp.ones((1,), w.dtype)])

        def total(p):
            lv, m = loss_vector(p, mb, ent_coeff)
            return jnp.dot(coef, lv), (lv, m)

        grads, (losses, metrics) = jax.grad(total, has_aux=True)(params)
        metrics = {
            **metrics,
            "discrete_grad_norm": ema[0],
            "continuous_grad_norm": ema[1],
            "discrete_grad_norm_raw": nan,
            "continuous_grad_norm_raw": nan,
            "discrete_scale": scales[0],
            "continuous_scale": scales[1],
            "gradient_scaling_active": active_f,
        }
        params, opt_state, metrics = apply_grads(params, opt_state, grads, coef, losses, metrics)
        return (params, opt_state, gstate, ent_coeff), metrics

    def minibatch_pass(carry, shuffled):
        """All minibatches of one epoch. With ``norm_refresh == "minibatch"`` every step is measured (the
        seed's behaviour); with ``"epoch"`` only the first one is, and the others reuse its weights. The
        split is static, so it stays cheap under ``vmap`` (no ``lax.cond``)."""
        if not gs.enable_adaptive_scaling:
            return jax.lax.scan(weighted_step, carry, shuffled)
        if gs.norm_refresh == "minibatch":
            return jax.lax.scan(measured_step, carry, shuffled)
        first = jax.tree_util.tree_map(lambda x: x[0], shuffled)
        carry, m0 = measured_step(carry, first)
        if tc.num_minibatches == 1:
            return carry, jax.tree_util.tree_map(lambda x: x[None], m0)
        rest = jax.tree_util.tree_map(lambda x: x[1:], shuffled)
        carry, m = jax.lax.scan(weighted_step, carry, rest)
        m = {k: jnp.concatenate([m0[k][None], m[k]]) for k in m}
        return carry, m

    # ------------------------------------------------------------------ one update
    def update(runner: RunnerState):
        ratio = expert_ratio_at(cfg, runner.update_count)
        ent_coeff = entropy_coeff_at(cfg, runner.update_count)
        runner = runner._replace(stats=_stats_reset_totals(runner.stats))
        (runner, _), traj = jax.lax.scan(env_step, (runner, ratio), None, T)

        # Value of the observation each transition led to (before auto-reset): the bootstrap for every
        # step; GAE uses it across truncations and ignores it after terminations.
        final_flat = jax.tree_util.tree_map(lambda x: x.reshape((T * E,) + x.shape[2:]), traj.final_obs)
        next_values = policy_apply(runner.params["network"], final_flat).values.reshape(T, E, C)

        rewards = traj.rewards
        reward_norm = runner.reward_norm
        if rn.enable:
            reward_norm = reward_norm_update(reward_norm, rewards.reshape(T * E, C))
            rewards = reward_norm_apply(reward_norm, rewards, rn.clip)
        adv, returns = gae(
            rewards, traj.values, traj.terminated, traj.truncated, next_values, tc.gamma, tc.gae_lambda
        )

        N = T * E
        flat = lambda x: x.reshape((N,) + x.shape[2:])  # noqa: E731
        actor_id = flat(traj.actor_id)
        # Seed 003: imitation weights from advantages normalised within each actor's frames.
        a_total = flat(adv[..., 0])
        if eg.per_actor_normalization:
            a_norm = group_normalize(a_total, actor_id, 2)
            sizes = group_sizes(actor_id, 2)
        else:
            a_norm = group_normalize(a_total, None, 1)
            sizes = None
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
        nmb = tc.num_minibatches

        def epoch(carry, key):
            perm = jax.random.permutation(key, N)
            shuffled = jax.tree_util.tree_map(lambda x: x[perm].reshape((nmb, N // nmb) + x.shape[1:]), batch)
            carry, m = minibatch_pass(carry, shuffled)
            return carry, m

        key, k_epochs = jax.random.split(runner.key)
        carry = (runner.params, runner.opt_state, runner.grad_scale, ent_coeff)
        (params, opt_state, gstate, _), m = jax.lax.scan(
            epoch, carry, jax.random.split(k_epochs, tc.update_epochs)
        )
        # Mean over epochs and minibatches, ignoring NaN (metrics measured only on some minibatches; a metric
        # that is NaN everywhere, e.g. of a feature switched off, stays NaN).
        metrics = jax.tree_util.tree_map(lambda x: jnp.nanmean(x, axis=(0, 1)), m)

        st = runner.stats
        n_done = jnp.maximum(st.done_count, 1.0)
        lw = (traj.actor_id == LEARNER).astype(jnp.float32)
        tot = traj.rewards[..., 0]
        metrics.update(
            episodes=st.done_count,
            episode_return=jnp.where(st.done_count > 0, st.done_return / n_done, jnp.nan),
            episode_length=jnp.where(st.done_count > 0, st.done_length / n_done, jnp.nan),
            success_rate=jnp.where(st.done_count > 0, st.success_count / n_done, jnp.nan),
            steps_to_success=jnp.where(
                st.success_count > 0, st.success_length / jnp.maximum(st.success_count, 1.0), jnp.nan
            ),
            current_entropy_coeff=ent_coeff,
            expert_ratio=ratio,
            expert_share=1.0 - lw.mean(),
            reward_mean_learner=(lw * tot).sum() / jnp.maximum(lw.sum(), 1.0),
            reward_mean_expert=((1 - lw) * tot).sum() / jnp.maximum((1 - lw).sum(), 1.0),
            reward_components_mean=traj.rewards.mean(axis=(0, 1)),
            advantage_std_per_component=adv.reshape(N, C).std(axis=0),
            env_steps=(runner.update_count + 1).astype(jnp.float32) * (T * E),
        )
        runner = runner._replace(
            params=params,
            opt_state=opt_state,
            grad_scale=gstate,
            reward_norm=reward_norm,
            update_count=runner.update_count + 1,
            key=key,
        )
        return runner, metrics

    def run(runner: RunnerState, num_updates: int):
        return jax.lax.scan(lambda r, _: update(r), runner, None, num_updates)

    def train(key):
        return run(init(key), cfg.num_updates)

    return Trainer(cfg, ad, network, init, update, run, train, policy_apply)


class MiniBatch(NamedTuple):
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


def make_run_chunk(trainer: Trainer, num_updates: int, num_seeds: int | None = None, seed_axis: str = "vmap"):
    """Jitted ``runner -> (runner, metrics)`` over ``num_updates`` updates, over a leading seed axis when
    ``num_seeds`` is given: ``seed_axis="vmap"`` runs the seeds side by side (one batched program, the fast
    choice for small networks and accelerators), ``"map"`` one after another with ``jax.lax.map`` (same
    program and results up to float rounding, memory of one seed; faster on a small CPU for the WSA policy,
    whose CNNs become slow grouped convolutions under ``vmap``). The host loop reuses it, so it compiles
    once."""
    if seed_axis not in SEED_AXES:
        raise ValueError(f"seed_axis={seed_axis!r} is not allowed; allowed: {SEED_AXES}")
    fn = partial(trainer.run, num_updates=num_updates)
    if num_seeds is not None:
        fn = jax.vmap(fn) if seed_axis == "vmap" else partial(jax.lax.map, fn)
    return jax.jit(fn, donate_argnums=0)


def metrics_to_host(metrics: dict) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in jax.device_get(metrics).items()}
