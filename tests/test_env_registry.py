"""The one environment registry: names, lazy factories, refusals, and gymnax tasks trained through it with
no code of their own (Acrobot-v1, MountainCarContinuous-v0, Breakout-MinAtar: the generic adapter)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from balancedrl import envs
from balancedrl.envs import registry
from balancedrl.training.adapters import make_adapter
from balancedrl.training.config import ConfigError, load_config
from balancedrl.training.trainer import make_run_chunk, make_train


def test_names_come_from_one_place():
    names = set(envs.registered_envs())
    assert {"Durotaxis-v0", "Platform-v0", "Goal-v0", "CartPole-v1", "Pendulum-v1", "Acrobot-v1"} <= names
    assert set(envs.trainable_envs()) <= names


def test_duplicates_unknown_names_and_bad_factories_are_refused():
    with pytest.raises(ValueError, match="already registered"):
        envs.register("Platform-v0", "balancedrl.envs.platform:make_platform")
    with pytest.raises(ValueError, match="unknown environment name 'Nope-v0'; known: .*Durotaxis-v0"):
        envs.make("Nope-v0")
    with pytest.raises(ValueError, match="module:function"):
        registry.resolve("not_a_factory")
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['bogus'\] for Platform-v0"):
        envs.make("Platform-v0", bogus=1)
    with pytest.raises(ConfigError, match="'env.name' = 'Nope-v0' is not allowed; allowed: .*Acrobot-v1"):
        load_config(None, ["env.name=Nope-v0"])


def test_an_environment_without_adapter_can_be_made_but_not_trained():
    name = "Platform-NoAdapter-test"
    registry.register(name, "balancedrl.envs.platform:make_platform")
    try:
        env, params = envs.make(name)
        assert params.max_steps_in_episode == envs.make("Platform-v0")[1].max_steps_in_episode
        assert name not in envs.trainable_envs()
        cfg = load_config(None).env
        cfg.name = name
        with pytest.raises(ValueError, match="has no trainer adapter"):
            make_adapter(cfg)
    finally:
        registry._SPECS.pop(name)


@pytest.mark.parametrize(
    "name,discrete,continuous", [("Acrobot-v1", 3, 0), ("MountainCarContinuous-v0", 1, 1), ("Pendulum-v1", 1, 1)]
)
def test_generic_gymnax_adapter_reads_the_action_space(name, discrete, continuous):
    ad = make_adapter(load_config("experiments/configs/cartpole.yaml", [f"env.name={name}"]).env)
    assert (ad.num_discrete, ad.num_continuous) == (discrete, continuous)
    assert ad.param_owner == (-1,) * continuous
    if continuous:
        space = ad.env.action_space(ad.env_params)
        np.testing.assert_allclose(ad.cont_low, np.broadcast_to(space.low, (continuous,)))
        np.testing.assert_allclose(ad.cont_high, np.broadcast_to(space.high, (continuous,)))


def _tiny_chunk(config, name):
    cfg = load_config(
        config,
        [f"env.name={name}", "env.num_envs=4", "actor_critic.hidden_dim=8", "trainer.num_steps=8",
         "trainer.update_epochs=1", "trainer.num_minibatches=1", "trainer.total_timesteps=64"],
    )
    trainer = make_train(cfg)
    runner = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    _, m = make_run_chunk(trainer, 2)(runner)
    return trainer, runner, jax.device_get(m)


def test_acrobot_trains_through_the_registry():
    _, _, m = _tiny_chunk("experiments/configs/acrobot.yaml", "Acrobot-v1")
    assert np.all(np.isfinite(m["total_loss"])) and np.all(m["reward_components_mean"] == -1.0)


def test_mountain_car_continuous_trains_through_the_registry():
    """Reward -0.1 a^2 per step (no goal reached in 16 steps): minus 0.1 x the mean squared action, in
    [-0.1, 0] since the action is squashed into [-1, 1]."""
    trainer, _, m = _tiny_chunk("experiments/configs/mountain_car_continuous.yaml", "MountainCarContinuous-v0")
    assert (trainer.adapter.num_discrete, trainer.adapter.num_continuous) == (1, 1)
    assert np.all(np.isfinite(m["total_loss"])) and np.all(np.isfinite(m["continuous_loss"]))
    r = m["reward_components_mean"]
    assert np.all((r <= 0.0) & (r >= -0.1)) and np.all(r < 0.0)


def test_minatar_trains_through_the_registry():
    """Breakout-MinAtar's 10 x 10 x 4 boolean image reaches the MLP flattened to 400 floats."""
    trainer, runner, m = _tiny_chunk("experiments/configs/acrobot.yaml", "Breakout-MinAtar")
    assert trainer.adapter.num_discrete == 3
    assert runner.obs.shape == (4, 400) and runner.obs.dtype == np.float32
    assert np.all(np.isfinite(m["total_loss"])) and np.all(np.isfinite(m["value_loss"]))


def test_durotaxis_variant_uses_its_own_components():
    """Durotaxis-Sparse-v0 reuses Durotaxis-v0's adapter; its five components size the value head."""
    from tests.golden.cases import DUROTAXIS_TINY

    cfg = load_config(
        "experiments/configs/default.yaml",
        ["env.name=Durotaxis-Sparse-v0", "trainer.total_timesteps=64", "run.render_gif=false"] + DUROTAXIS_TINY,
    )
    trainer = make_train(cfg)
    assert trainer.adapter.component_names == envs.SHAPED_COMPONENTS
    runner = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    obs = jax.tree_util.tree_map(lambda x: x[:1], runner.obs)
    out = jax.jit(trainer.policy_apply)(runner.params["network"], obs)
    assert out.values.shape == (1, 5)
    assert runner.reward_norm is not None and trainer.context.weighting.num_components == 5


def test_import_balancedrl_exposes_envs_and_balancers():
    import balancedrl

    assert balancedrl.envs.make is envs.make
    assert "famo" in balancedrl.balancers.available()


def test_import_balancedrl_alone_exposes_envs():
    """As the README writes it, in a fresh interpreter (no test has imported ``balancedrl.envs`` first)."""
    import subprocess
    import sys

    code = "import balancedrl; print(balancedrl.envs.make('CartPole-v1')[1].max_steps_in_episode)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "500"
