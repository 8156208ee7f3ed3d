"""The trainer's ``trainer.advantage_weighting.mode`` (issue 16): meta_gradient and fixed weights.

A tiny Platform-v0 MLP with three reward components (total, 2 x total, -total: the value head widened to
three) keeps compilation cheap. Checked: the config rules; fixed-mode advantages against NumPy; in a learner
step the weights' group moves by Adam's first step on the meta-gradient while the network's update is the
plain step's; a jitted meta-mode training run is finite, moves the weights and compiles once."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from balancedrl.training.adapters import make_adapter
from balancedrl.training.config import ConfigError, load_config
from balancedrl.training.learner import LearnCarry, loss_only_step, with_meta_gradient
from balancedrl.training.meta import meta_combine, meta_weight_gradient
from balancedrl.training.rollout import collect
from balancedrl.training.targets import compute_targets
from balancedrl.training.trainer import init_runner, make_context, make_run_chunk, make_train

PLATFORM = "experiments/configs/platform.yaml"
BASE = [
    "env.num_envs=4",
    "actor_critic.hidden_dim=8",
    "trainer.num_steps=8",
    "trainer.update_epochs=2",
    "trainer.num_minibatches=2",
    "trainer.total_timesteps=64",
    "trainer.gradient_scaling.enable_adaptive_scaling=false",
]
META = ["trainer.advantage_weighting.mode=meta_gradient", "trainer.advantage_weighting.weight_learning_rate=0.05"]
NAMES = ("total", "double", "negated")


def three_component_adapter(cfg):
    """Platform-v0 with reward components (r, 2r, -r) and a three-headed critic."""
    base = make_adapter(cfg.env)

    def make_network(ac):
        module, _, frozen = base.make_network(ac)
        module = module.clone(num_components=len(NAMES))
        return module, (lambda key, obs: module.init(key, obs)), frozen

    def reward_components(reward, info):
        r = jnp.asarray(reward, jnp.float32)
        return jnp.stack([r, 2.0 * r, -r])

    return dataclasses.replace(base, component_names=NAMES, reward_components=reward_components,
                               make_network=make_network)


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["trainer.advantage_weighting.mode=learned"], "'trainer.advantage_weighting.mode' = 'learned' is not allowed"),
        (["trainer.advantage_weighting.meta_parameterization=exp"], "meta_parameterization"),
        (["trainer.advantage_weighting.mode=fixed"], "fixed_weights' = \\[\\] is empty"),
        (["trainer.advantage_weighting.fixed_weights=[1, 0]"], "only used with trainer.advantage_weighting.mode"),
        (["trainer.advantage_weighting.mode=fixed", "trainer.advantage_weighting.fixed_weights=[1, .inf]"],
         "finite numbers"),
        (["trainer.advantage_weighting.mode=fixed", "trainer.advantage_weighting.fixed_weights=[1, true]"],
         "finite numbers"),
        (META + ["trainer.num_minibatches=1"], "'trainer.num_minibatches' = 1 leaves no held-out minibatch"),
        (META + ["trainer.balancer.losses=[discrete, continuous, regularizer]"], "balances 'regularizer'"),
    ],
)
def test_config_rules(overrides, match):
    with pytest.raises(ConfigError, match=match):
        load_config(PLATFORM, BASE + overrides)


def test_fixed_weights_length_is_checked_against_the_environment():
    cfg = load_config(PLATFORM, BASE + ["trainer.advantage_weighting.mode=fixed",
                                         "trainer.advantage_weighting.fixed_weights=[1, 0.5]"])
    with pytest.raises(ConfigError, match=r"has 2 entries; allowed: 1, one per reward component of Platform-v0"):
        make_context(cfg)


def test_fixed_mode_advantage_is_the_zscored_weighted_sum():
    cfg = load_config(PLATFORM, BASE + ["trainer.advantage_weighting.mode=fixed",
                                         "trainer.advantage_weighting.fixed_weights=[1, 1000, 0.1]"])
    rng = np.random.default_rng(0)
    adv = rng.normal(size=(12, 3)).astype(np.float32) * np.array([1.0, 1e-3, 10.0], np.float32)
    mask = np.arange(12) < 9
    out, info = meta_combine(cfg, None, jnp.asarray(adv), jnp.asarray(mask))
    a = adv[mask] @ np.array([1.0, 1000.0, 0.1])
    np.testing.assert_allclose(np.asarray(out)[mask], (a - a.mean()) / (a.std() + 1e-8), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(out)[~mask], 0.0)
    np.testing.assert_allclose(info["final_weights"], [1.0, 1000.0, 0.1])
    assert np.isnan(info["base_weights"]).all()


@pytest.fixture(scope="module")
def meta_setup():
    cfg = load_config(PLATFORM, BASE + META)
    ctx, _, net_init = make_context(cfg, three_component_adapter(cfg))
    runner = init_runner(ctx, net_init, jax.random.PRNGKey(0))
    runner, traj = collect(ctx, runner, 0.0)
    batch, _, _ = compute_targets(ctx, runner.params["network"], runner.reward_norm, traj)
    w0 = jnp.asarray([ctx.layout.fixed_coefs[i] for i in ctx.layout.balanced], jnp.float32)
    carry = LearnCarry(runner.params, runner.opt_state, runner.balancer, w0)
    half = batch.actor_id.shape[0] // 2
    mb0, mb1 = (jax.tree_util.tree_map(lambda x, s=s: x[s], batch) for s in (slice(0, half), slice(half, None)))
    return ctx, carry, mb0, mb1


def test_weights_follow_the_meta_gradient_and_the_network_step_is_unchanged(meta_setup):
    ctx, carry, mb0, mb1 = meta_setup
    assert set(carry.params["weighting"]) == {"logits"}
    np.testing.assert_array_equal(carry.params["weighting"]["logits"], np.zeros(3))
    key = jax.random.PRNGKey(1)
    g, m = jax.jit(lambda c: meta_weight_gradient(ctx, c.params, c.opt_state, mb0, mb1))(carry)
    g = np.asarray(g["logits"])
    assert np.isfinite(g).all() and np.abs(g).max() > 0 and np.isfinite(float(m["meta_outer_loss"]))
    meta_carry, mm = jax.jit(lambda c: with_meta_gradient(loss_only_step)(ctx, c, (mb0, mb1), 0.01, key))(carry)
    plain_carry, _ = jax.jit(lambda c: loss_only_step(ctx, c, mb0, 0.01, key))(carry)
    # Adam's first step on the (clipped) meta-gradient: -lr * g / (sqrt(g^2 + eps_root) + eps) (the
    # meta-gradient is tiny here, ~1e-8, so both epsilons show)
    gc = g.astype(np.float64) * min(1.0, 0.5 / np.linalg.norm(g))
    expected = -0.05 * gc / (np.sqrt(gc**2 + 1e-16) + 1e-8)
    np.testing.assert_allclose(meta_carry.params["weighting"]["logits"], expected, rtol=1e-4, atol=1e-7)
    # the PPO surrogate's own gradient would not move the weights at all (eta is held constant there)
    np.testing.assert_array_equal(plain_carry.params["weighting"]["logits"], np.zeros(3))
    for a, b in zip(jax.tree_util.tree_leaves(meta_carry.params["network"]),
                    jax.tree_util.tree_leaves(plain_carry.params["network"])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_allclose(mm["meta_grad_norm"], np.linalg.norm(g), rtol=1e-5)


def test_meta_mode_training_run_is_finite_moves_the_weights_and_compiles_once():
    cfg = load_config(PLATFORM, BASE + META)
    trainer = make_train(cfg, three_component_adapter(cfg))
    run = make_run_chunk(trainer, 2, num_seeds=2)
    runner = jax.vmap(trainer.init)(jax.random.split(jax.random.PRNGKey(0), 2))
    runner, m1 = run(runner)
    runner, m2 = run(runner)
    assert run._cache_size() == 1  # no recompilation across updates
    logits = np.asarray(runner.params["weighting"]["logits"])
    assert np.isfinite(logits).all() and np.abs(logits).max() > 0.05  # several Adam steps of lr 0.05
    for m in (m1, m2):
        for k in ("meta_outer_loss", "meta_inner_loss", "meta_grad_norm", "total_loss", "component_final_weights"):
            assert np.isfinite(np.asarray(m[k])).all(), k
        w = np.asarray(m["component_final_weights"])
        np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-5)  # softmax weights
    for leaf in jax.tree_util.tree_leaves(runner.params["network"]):
        assert np.isfinite(np.asarray(leaf)).all()
