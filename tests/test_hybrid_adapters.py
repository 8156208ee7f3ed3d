"""Platform-v0 / Goal-v0 trainer adapters: structure, the parameterised-action log-probability (only the
chosen action's parameter counts, against a NumPy reference), the success flags, and tiny ``make_train``
runs of 2 updates with finite metrics (Platform with the techniques on, Goal with them off, so both
gradient paths of the trainer are compiled once each)."""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from balancedrl import policy as hp
from balancedrl.envs.goal import Goal
from balancedrl.envs.platform import Platform
from balancedrl.training.adapters import make_adapter
from balancedrl.training.adapters.parameterised import GOAL_REWARD_SCALE
from balancedrl.training.config import EnvConfig, load_config
from balancedrl.training.trainer import make_train

CONFIGS = Path(__file__).resolve().parent.parent / "experiments" / "configs"
TINY = [
    "env.num_envs=2",
    "trainer.num_steps=8",
    "trainer.update_epochs=1",
    "trainer.num_minibatches=2",
    "trainer.total_timesteps=32",  # 2 updates
    "actor_critic.hidden_dim=8",
    "trainer.gradient_scaling.warmup_steps=0",
    "trainer.entropy_regularization.entropy_decay_episodes=2",
]
OFF = [
    "trainer.gradient_scaling.enable_adaptive_scaling=false",
    "trainer.entropy_regularization.enable_adaptive_entropy=false",
]
CORE = ["discrete_loss", "continuous_loss", "value_loss", "entropy_loss", "total_loss", "grad_norm",
        "discrete_entropy", "continuous_entropy", "discrete_weight_used", "continuous_weight_used"]


@pytest.fixture(scope="module")
def platform():
    return make_adapter(EnvConfig(name="Platform-v0"))


@pytest.fixture(scope="module")
def goal():
    return make_adapter(EnvConfig(name="Goal-v0"))


# ------------------------------------------------------------------ structure


def test_adapter_structure(platform, goal):
    for ad, P, owner, env_cls, obs_dim in ((platform, 3, (0, 1, 2), Platform, 9), (goal, 4, (0, 0, 1, 2), Goal, 17)):
        assert (ad.num_slots, ad.num_discrete, ad.num_continuous) == (1, 3, P)
        assert ad.param_owner == owner
        assert ad.component_names == ("total",)
        np.testing.assert_array_equal(ad.cont_low, np.float32(env_cls.param_low))
        np.testing.assert_array_equal(ad.cont_high, np.float32(env_cls.param_high))
        obs, _ = ad.env.reset(jax.random.PRNGKey(0), ad.env_params)
        assert obs.shape == (obs_dim,)
        assert ad.slot_mask(obs).shape == (1,) and bool(ad.slot_mask(obs)[0])
        module, init, frozen = ad.make_network(load_config(None).actor_critic)
        out = module.apply(init(jax.random.PRNGKey(1), obs), obs)
        assert out.discrete_logits.shape == (1, 3) and out.cont_mean.shape == (1, P)
        assert out.values.shape == (1,) and frozen == ()


def test_mpdqn_prior_sets_the_initial_parameter_means(platform, goal):
    """With ``param_prior: mpdqn`` the squashed initial mean is MP-DQN's prior (NumPy reference from the
    published constants); the head's 0.01-gain init moves it by well under 1% of each range."""
    ac = load_config(None, ["actor_critic.param_prior=mpdqn"]).actor_critic
    for ad, key in ((platform, 3), (goal, 4)):
        obs, _ = ad.env.reset(jax.random.PRNGKey(key), ad.env_params)
        module, init, _ = ad.make_network(ac)
        out = module.apply(init(jax.random.PRNGKey(1), obs), obs)
        lo, hi = ad.cont_low, ad.cont_high
        got = lo + (hi - lo) * (np.tanh(np.asarray(out.cont_mean[0])) + 1.0) / 2.0
        if ad is platform:
            want = np.array([3.0, 10.0, 400.0])
        else:
            o = np.asarray(obs, np.float64)
            scaled = np.array([-0.375 + 0.5 * o[10] + 0.0625 * o[14], 0.8333333 * o[11] + 0.1111111 * o[15],
                               6.01 / 7.01, -6.01 / 7.01])
            want = lo + (hi - lo) * (scaled + 1.0) / 2.0
        np.testing.assert_allclose(got, want, atol=0.01 * float(np.max(hi - lo)))
    # the default keeps the plain head (mean ~ 0 -> the middle of each range)
    module, init, _ = goal.make_network(load_config(None).actor_critic)
    obs, _ = goal.env.reset(jax.random.PRNGKey(0), goal.env_params)
    assert np.all(np.abs(np.asarray(module.apply(init(jax.random.PRNGKey(1), obs), obs).cont_mean)) < 0.1)


def test_param_prior_is_refused_where_none_exists():
    ac = load_config(None, ["actor_critic.param_prior=mpdqn"]).actor_critic
    for name in ("CartPole-v1", "Durotaxis-v0"):
        with pytest.raises(ValueError, match="actor_critic.param_prior"):
            make_adapter(EnvConfig(name=name)).make_network(ac)
    with pytest.raises(ValueError, match="actor_critic.param_prior"):
        load_config(None, ["actor_critic.param_prior=expert"])


def test_env_params_override_and_error():
    ad = make_adapter(EnvConfig(name="Platform-v0", params={"max_steps_in_episode": 50}))
    assert ad.env_params.max_steps_in_episode == 50
    with pytest.raises(ValueError, match="max_step"):
        make_adapter(EnvConfig(name="Goal-v0", params={"max_step": 3}))


# ------------------------------------------------------------------ log-prob convention


def _np_logp(raw, mean, log_std):
    return -0.5 * ((raw - mean) / np.exp(log_std)) ** 2 - log_std - 0.5 * math.log(2 * math.pi)


@pytest.fixture(scope="module")
def platform_sampler(platform):
    """jit(vmap(sample)) over keys for one Platform slot, plus jit(vmap(log_probs)) for re-scoring."""
    mask = jnp.ones((1,), bool)
    owner, lo, hi = platform.param_owner, platform.cont_low, platform.cont_high
    sample = jax.jit(jax.vmap(lambda k, lg, m, ls: hp.sample(k, lg, m, ls, mask, owner, lo, hi)))
    score = jax.jit(jax.vmap(lambda lg, m, ls, d, r: hp.log_probs(lg, m, ls, d, r, mask, owner)))
    return sample, score


def test_platform_logp_counts_only_chosen_parameter(platform, platform_sampler):
    sample, score = platform_sampler
    n = 16
    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.normal(size=(n, 1, 3)), jnp.float32)
    mean = jnp.asarray(rng.normal(size=(n, 1, 3)), jnp.float32)
    log_std = jnp.asarray(rng.normal(scale=0.3, size=(n, 1, 3)), jnp.float32)
    s = sample(jax.random.split(jax.random.PRNGKey(0), n), logits, mean, log_std)
    d, raw, lp = np.asarray(s.discrete[:, 0]), np.asarray(s.raw[:, 0]), np.asarray(s.logp_continuous[:, 0])
    per = _np_logp(raw, np.asarray(mean[:, 0]), np.asarray(log_std[:, 0]))  # [n, 3]
    np.testing.assert_allclose(lp, per[np.arange(n), d], rtol=1e-5, atol=1e-5)  # the chosen one only
    assert np.all(np.abs(lp - per.sum(-1)) > 1e-4)  # not the sum over all three
    assert len(set(d.tolist())) >= 2
    # moving the two unused parameters changes nothing; moving the used one does
    unused = jnp.asarray(np.arange(3)[None, :] != d[:, None])[:, None, :]
    _, lp2, used = score(logits, mean, log_std, s.discrete, s.raw + jnp.where(unused, 5.0, 0.0))
    np.testing.assert_allclose(np.asarray(lp2), np.asarray(s.logp_continuous), rtol=1e-6)
    assert np.all(np.asarray(used))
    _, lp3, _ = score(logits, mean, log_std, s.discrete, s.raw + jnp.where(unused, 0.0, 0.5))
    assert np.all(np.abs(np.asarray(lp3) - np.asarray(lp2)) > 1e-4)
    sq = np.asarray(s.squashed[:, 0])
    assert np.all((sq >= platform.cont_low) & (sq <= platform.cont_high))


def test_platform_logp_jit_matches_eager(platform, platform_sampler):
    sample, _ = platform_sampler
    logits = jnp.zeros((2, 1, 3))
    mean = jnp.linspace(-1.0, 1.0, 6).reshape(2, 1, 3)
    log_std = jnp.full((2, 1, 3), -0.5)
    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    batched = sample(keys, logits, mean, log_std)
    mask = jnp.ones((1,), bool)
    for i in range(1):
        e = hp.sample(keys[i], logits[i], mean[i], log_std[i], mask, platform.param_owner, platform.cont_low,
                      platform.cont_high)
        np.testing.assert_allclose(batched.logp_continuous[i], e.logp_continuous, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(batched.discrete[i], e.discrete)


def test_goal_kickto_owns_two_parameters(goal):
    mean = jnp.asarray([[0.3, -0.2, 0.1, 0.5]])
    log_std = jnp.asarray([[-0.3, 0.1, 0.0, -0.6]])
    raw = jnp.asarray([[0.9, 0.4, -1.2, 0.7]])
    per = _np_logp(np.asarray(raw[0]), np.asarray(mean[0]), np.asarray(log_std[0]))
    for k, idx in ((0, [0, 1]), (1, [2]), (2, [3])):
        _, lp_c, _ = hp.log_probs(jnp.zeros((1, 3)), mean, log_std, jnp.asarray([k]), raw, jnp.ones((1,), bool),
                                  goal.param_owner)
        np.testing.assert_allclose(float(lp_c[0]), per[idx].sum(), rtol=1e-5)


# ------------------------------------------------------------------ success flags and env action


def test_platform_success_flag(platform):
    env, params = platform.env, platform.env_params
    near_end = env.state_from_vector(jnp.asarray([1000.0, 40.0, 60.0, 0.0, 230.0, -30.0, 730.0, -30.0]))
    step = jax.jit(lambda k, s, d, c: env.step(k, s, platform.to_env_action(d, c), params))
    c = jnp.asarray([[30.0, 0.0, 0.0]])
    _, _, r, term, _, info = step(jax.random.PRNGKey(0), near_end, jnp.asarray([0]), c)
    assert bool(term) and bool(platform.success(info))
    np.testing.assert_allclose(float(r), 35.0 / 1035.0, rtol=1e-5)
    _, state = env.reset(jax.random.PRNGKey(0), params)
    _, _, _, term, _, info = step(jax.random.PRNGKey(1), state, jnp.asarray([0]), c)
    assert not bool(term) and not bool(platform.success(info))


def test_goal_success_flag_and_reward_scale(goal):
    env, params = goal.env, goal.env_params
    # ball just in front of the goal, player behind it facing the goal, keeper far away: a shot scores
    vec = jnp.asarray([17.6, 0.0, 0.0, 0.0, 0.0, 12.0, 12.0, 0.0, 0.0, 0.0, 19.0, 0.0, 0.0, 0.0])
    state = env.state_from_vector(vec)
    step = jax.jit(lambda k, s, d, c: env.step(k, s, goal.to_env_action(d, c), params))
    _, _, r, term, _, info = step(jax.random.PRNGKey(0), state, jnp.asarray([1]), jnp.asarray([[0.0, 0.0, 0.0, 0.0]]))
    assert bool(term) and float(r) == 50.0 and bool(goal.success(info))
    np.testing.assert_allclose(goal.reward_components(r, info), [50.0 * GOAL_REWARD_SCALE])
    # shooting from the reset state never scores (docs/specs/parameterised_envs.md §3)
    _, s0 = env.reset(jax.random.PRNGKey(2), params)
    _, _, r, term, _, info = step(jax.random.PRNGKey(3), s0, jnp.asarray([2]), jnp.asarray([[0.0, 0.0, 0.0, 5.0]]))
    assert bool(term) and float(r) < 50.0 and not bool(goal.success(info))


# ------------------------------------------------------------------ tiny training runs


@pytest.fixture(scope="module", params=[("platform.yaml", ("trainer.num_minibatches=1",)), ("goal.yaml", tuple(OFF))], ids=["platform-on", "goal-off"])
def tiny_run(request):
    name, extra = request.param
    cfg = load_config(CONFIGS / name, [*TINY, *extra])
    assert cfg.num_updates == 2
    trainer = make_train(cfg)
    runner, metrics = jax.jit(trainer.train)(jax.random.PRNGKey(0))
    return cfg, runner, {k: np.asarray(v) for k, v in metrics.items()}


def test_tiny_train_finite(tiny_run):
    cfg, runner, m = tiny_run
    for k in CORE:
        assert m[k].shape[0] == 2, k
        assert np.all(np.isfinite(m[k])), (k, m[k])
    assert np.all(np.isfinite(m["episode_return"]))  # short episodes: some end in every update
    assert int(runner.update_count) == 2
    w = m["discrete_weight_used"] + m["continuous_weight_used"]
    np.testing.assert_allclose(w, 1.0, rtol=1e-5)
    if not cfg.trainer.gradient_scaling.enable_adaptive_scaling:
        np.testing.assert_allclose(m["discrete_weight_used"], 0.5, rtol=1e-6)
    leaves = jax.tree_util.tree_leaves(runner.params)
    assert all(np.all(np.isfinite(np.asarray(x))) for x in leaves)
