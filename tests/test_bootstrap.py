"""Bootstrap values only where the GAE reads them (``targets.bootstrap_values`` with ``last_obs``) equal the
full pass over every final observation, wherever an episode was truncated and inside episodes.

Tiny Durotaxis (16 slots, 1-layer GNN) with a 5-step time limit and 12-step rollouts, so every environment
truncates two or three times per rollout (``K = ceil(12 / 5) = 3`` gathered steps per environment)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from balancedrl.training.config import load_config
from balancedrl.training.rollout import collect
from balancedrl.training.targets import bootstrap_values
from balancedrl.training.trainer import init_runner, make_context

TINY = [
    "env.num_envs=3",
    "env.params={max_nodes: 16, init_nodes: 4, critical_nodes: 8, overcrowd_nodes: 12, max_steps_in_episode: 5}",
    "actor_critic.hidden_dim=8",
    "actor_critic.num_gnn_layers=1",
    "trainer.num_steps=12",
]


@pytest.mark.parametrize("period", [5, 12])  # the adapter's value, and one that forces K = 1 (wrong here)
def test_cheap_bootstrap_matches_full_pass(period):
    cfg = load_config("experiments/configs/default.yaml", TINY)
    ctx, _, net_init = make_context(cfg)
    assert ctx.adapter.truncation_period == 5
    if period != 5:
        ctx = dataclasses.replace(ctx, adapter=dataclasses.replace(ctx.adapter, truncation_period=period))
    runner = init_runner(ctx, net_init, jax.random.PRNGKey(3))
    runner, traj = jax.jit(lambda r: collect(ctx, r, jnp.zeros(())))(runner)
    net = runner.params["network"]
    full = np.asarray(jax.jit(lambda p, t: bootstrap_values(ctx, p, t))(net, traj))
    cheap = np.asarray(jax.jit(lambda p, t, o: bootstrap_values(ctx, p, t, o))(net, traj, runner.obs))
    trunc = np.asarray(traj.truncated & ~traj.terminated)
    read = ~np.asarray(traj.terminated)  # the GAE reads V(s_{t+1}) wherever the step did not terminate
    assert trunc.sum(axis=0).max() >= 2, "the rollout must truncate some environment twice"
    if period == 5:
        np.testing.assert_allclose(cheap[read], full[read], rtol=1e-5, atol=1e-6)
    else:  # K = 1 misses a second truncation: the check above can fail
        assert not np.allclose(cheap[read], full[read], rtol=1e-5, atol=1e-6)


def test_frozen_cnn_embeddings_cached_from_rollout():
    """WSA: the rollout stores the frozen CNN's embeddings; the losses computed from them equal the losses
    that recompute the frozen CNN from the observations."""
    from balancedrl.training.losses import loss_vector
    from balancedrl.training.targets import compute_targets

    cfg = load_config(
        "experiments/configs/default.yaml",
        TINY[:-1] + ["trainer.num_steps=4", "actor_critic.use_wsa=true", "actor_critic.wsa_config.raster_size=8"],
    )
    ctx, _, net_init = make_context(cfg)
    assert ctx.cache_apply is not None
    runner = init_runner(ctx, net_init, jax.random.PRNGKey(0))
    runner, traj = jax.jit(lambda r: collect(ctx, r, jnp.zeros(())))(runner)
    assert traj.frozen_emb.shape == (4, 3, 64)
    batch, _, _ = compute_targets(ctx, runner.params["network"], runner.reward_norm, traj, runner.obs)
    cached, _ = jax.jit(lambda p, b: loss_vector(ctx, p, b, 0.01))(runner.params, batch)
    fresh, _ = jax.jit(lambda p, b: loss_vector(ctx, p, b, 0.01))(runner.params, batch._replace(frozen_emb=None))
    np.testing.assert_allclose(np.asarray(cached), np.asarray(fresh), rtol=1e-5, atol=1e-6)
    # and the cache is what the frozen CNN gives for the stored observations
    again = ctx.cache_apply(runner.params["network"], batch.obs)
    np.testing.assert_allclose(np.asarray(batch.frozen_emb), np.asarray(again), rtol=1e-5, atol=1e-6)
