"""Hybrid PPO as one jitted ``lax.scan`` (PureJaxRL shape), assembled from the parts in this package.

``make_train(config) -> Trainer`` gives pure functions:

* ``init(key) -> RunnerState``;
* ``update(runner) -> (runner, metrics)``: one rollout (:func:`.rollout.collect`), the learning targets
  (:func:`.targets.compute_targets`), and ``update_epochs`` x ``num_minibatches`` balanced gradient steps
  (:func:`.learner.learn` on the named losses of :func:`.losses.loss_vector`);
* ``run(runner, n) -> (runner, metrics[n])``: ``n`` updates in one ``lax.scan``;
* ``train(key) -> (runner, metrics[num_updates])``, so ``jax.jit(jax.vmap(train))(keys)`` is a seed sweep.

``docs/architecture.md`` walks through one update with the file and function of each step.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from balancedrl import balancers
from balancedrl.entropy import linear_schedule
from balancedrl.normalization import reward_norm_init
from balancedrl.optim import make_optimizer
from balancedrl.training.adapters import EnvAdapter, make_adapter
from balancedrl.training.config import SEED_AXES, Config
from balancedrl.training.context import LossLayout, TrainContext
from balancedrl.training.learner import LearnCarry, learn
from balancedrl.training.losses import LOSS_NAMES, fixed_coefficients
from balancedrl.training.meta import EPS_ROOT, check_fixed_weights, meta_init, uses_meta
from balancedrl.training.rollout import collect
from balancedrl.training.state import (
    LEARNER,
    MiniBatch,
    RunnerState,
    Transition,
    stats_init,
    stats_reset_totals,
)
from balancedrl.training.targets import compute_targets
from balancedrl.weighting import ComponentWeighting

__all__ = [
    "MiniBatch", "RunnerState", "Trainer", "Transition", "build_balancer", "loss_layout", "make_run_chunk",
    "make_train", "metrics_to_host",
]


class Trainer(NamedTuple):
    config: Config
    adapter: EnvAdapter
    network: Any
    init: Any
    update: Any
    run: Any
    train: Any
    policy_apply: Any
    context: TrainContext


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


def loss_layout(cfg: Config) -> LossLayout:
    """The named losses, the balanced ones (``trainer.balancer.losses``) and every fixed coefficient."""
    fixed = fixed_coefficients(cfg)
    balanced = tuple(LOSS_NAMES.index(n) for n in cfg.trainer.balancer.losses)
    return LossLayout(LOSS_NAMES, balanced, np.array([fixed[n] for n in LOSS_NAMES], np.float32))


def build_balancer(cfg: Config, layout: LossLayout) -> balancers.Balancer:
    """``trainer.balancer.name`` with ``trainer.balancer.hyper``.

    ``grad_scaling`` takes its settings from ``trainer.gradient_scaling``, with the balanced losses' fixed
    coefficients as base weights; with ``enable_adaptive_scaling: false`` it is the ``fixed`` balancer at
    those coefficients. ``fixed`` without ``weights`` uses the fixed coefficients.
    """
    bc = cfg.trainer.balancer
    base = [float(layout.fixed_coefs[i]) for i in layout.balanced]
    hyper = dict(bc.hyper)
    if bc.name == "grad_scaling":
        gs = cfg.trainer.gradient_scaling
        if not gs.enable_adaptive_scaling:
            return balancers.make("fixed", weights=base)
        settings = dict(
            base_weights=base,
            target=gs.gradient_norm_target,
            momentum=gs.scaling_momentum,
            min_scale=gs.min_scaling_factor,
            max_scale=gs.max_scaling_factor,
            warmup_steps=gs.warmup_steps,
        )
        return balancers.make("grad_scaling", **{**settings, **hyper})
    if bc.name == "fixed":
        hyper.setdefault("weights", base)
    return balancers.make(bc.name, **hyper)


def make_context(cfg: Config, adapter: EnvAdapter | None = None):
    """``(context, network, net_init)``: the static record every trainer step receives."""
    tc = cfg.trainer
    ad = adapter or make_adapter(cfg.env)
    network, net_init, frozen = ad.make_network(cfg.actor_critic)
    aw = tc.advantage_weighting
    num_grad_steps = cfg.num_updates * tc.update_epochs * tc.num_minibatches
    lr = optax.linear_schedule(tc.learning_rate, 0.0, num_grad_steps) if tc.anneal_lr else tc.learning_rate
    check_fixed_weights(cfg, ad.num_components, ad.component_names)
    eps_root = EPS_ROOT if uses_meta(cfg) else 0.0  # differentiable Adam for the meta-gradient only
    tx, _ = make_optimizer(lr, aw.weight_learning_rate, tc.max_grad_norm, aw.weight_max_grad_norm, frozen=frozen,
                           eps_root=eps_root)
    layout = loss_layout(cfg)
    ctx = TrainContext(
        cfg=cfg,
        adapter=ad,
        policy_apply=network.apply,
        weighting=ComponentWeighting(ad.num_components, use_attention=aw.enable_attention_weighting),
        tx=tx,
        balancer=build_balancer(cfg, layout),
        layout=layout,
        cache_apply=_cache_apply(network),
    )
    return ctx, network, net_init


def _cache_apply(network):
    """``(vars, obs) -> frozen embeddings`` for a network with frozen feature extractors, else None."""
    from balancedrl.networks.actor_critic import HybridActorCritic, cached_width

    if isinstance(network, HybridActorCritic) and cached_width(network.config) > 0:
        return partial(network.apply, only_frozen=True)
    return None


def init_runner(ctx: TrainContext, net_init, key) -> RunnerState:
    ad, E, C = ctx.adapter, ctx.cfg.env.num_envs, ctx.adapter.num_components
    k_net, k_w, k_env, k_run = jax.random.split(key, 4)
    obs, env_state = jax.vmap(ad.env.reset, in_axes=(0, None))(jax.random.split(k_env, E), ad.env_params)
    one_obs = jax.tree_util.tree_map(lambda x: x[0], obs)
    params = {
        "network": net_init(k_net, one_obs),
        "weighting": (meta_init(ctx.cfg, C, k_w) if uses_meta(ctx.cfg)
                      else ctx.weighting.init(k_w, jnp.zeros((2, C), jnp.float32))),
    }
    return RunnerState(
        params=params,
        opt_state=ctx.tx.init(params),
        balancer=ctx.balancer.init(len(ctx.layout.balanced), params),
        reward_norm=reward_norm_init(C),
        env_state=env_state,
        obs=obs,
        stats=stats_init(E),
        update_count=jnp.zeros((), jnp.int32),
        key=k_run,
    )


def rollout_metrics(runner: RunnerState, traj: Transition, adv, batch_size: int) -> dict:
    """Episode statistics of the update's rollout and what the expert and the rewards did."""
    st = runner.stats
    n_done = jnp.maximum(st.done_count, 1.0)
    lw = (traj.actor_id == LEARNER).astype(jnp.float32)
    tot = traj.rewards[..., 0]
    C = traj.rewards.shape[-1]
    return dict(
        episodes=st.done_count,
        episode_return=jnp.where(st.done_count > 0, st.done_return / n_done, jnp.nan),
        episode_length=jnp.where(st.done_count > 0, st.done_length / n_done, jnp.nan),
        success_rate=jnp.where(st.done_count > 0, st.success_count / n_done, jnp.nan),
        steps_to_success=jnp.where(
            st.success_count > 0, st.success_length / jnp.maximum(st.success_count, 1.0), jnp.nan
        ),
        expert_share=1.0 - lw.mean(),
        reward_mean_learner=(lw * tot).sum() / jnp.maximum(lw.sum(), 1.0),
        reward_mean_expert=((1 - lw) * tot).sum() / jnp.maximum((1 - lw).sum(), 1.0),
        reward_components_mean=traj.rewards.mean(axis=(0, 1)),
        advantage_std_per_component=adv.reshape(-1, C).std(axis=0),
        env_steps=(runner.update_count + 1).astype(jnp.float32) * batch_size,
    )


def update_step(ctx: TrainContext, runner: RunnerState):
    """One PPO update: rollout -> targets -> balanced learning; returns ``(runner, metrics)``."""
    cfg = ctx.cfg
    ratio = expert_ratio_at(cfg, runner.update_count)
    ent_coeff = entropy_coeff_at(cfg, runner.update_count)
    runner = runner._replace(stats=stats_reset_totals(runner.stats))
    runner, traj = collect(ctx, runner, ratio)
    batch, reward_norm, adv = compute_targets(ctx, runner.params["network"], runner.reward_norm, traj, runner.obs)
    key, k_epochs = jax.random.split(runner.key)
    w0 = jnp.asarray([ctx.layout.fixed_coefs[i] for i in ctx.layout.balanced], jnp.float32)
    carry = LearnCarry(runner.params, runner.opt_state, runner.balancer, w0)
    carry, metrics = learn(ctx, carry, batch, ent_coeff, k_epochs)
    metrics.update(
        current_entropy_coeff=ent_coeff, expert_ratio=ratio, **rollout_metrics(runner, traj, adv, cfg.batch_size)
    )
    runner = runner._replace(
        params=carry.params,
        opt_state=carry.opt_state,
        balancer=carry.balancer,
        reward_norm=reward_norm,
        update_count=runner.update_count + 1,
        key=key,
    )
    return runner, metrics


def make_train(config: Config, adapter: EnvAdapter | None = None) -> Trainer:
    """Assemble the pure training functions for ``config`` (see the module docstring)."""
    ctx, network, net_init = make_context(config, adapter)
    init = partial(init_runner, ctx, net_init)
    update = partial(update_step, ctx)

    def run(runner: RunnerState, num_updates: int):
        return jax.lax.scan(lambda r, _: update(r), runner, None, num_updates)

    def train(key):
        return run(init(key), config.num_updates)

    return Trainer(config, ctx.adapter, network, init, update, run, train, network.apply, ctx)


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
