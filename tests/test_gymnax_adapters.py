"""gymnax tasks through the hybrid trainer: MLP shapes/init, the CartPole-v1 / Pendulum-v1 adapters, and tiny
``make_train`` runs (finite metrics; with every technique off the loss is standard PPO; with adaptive gradient
scaling on, the zero-gradient head gets the maximal scale and nothing goes NaN).

Compilation dominates on CPU: one tiny run per variant, shared through module-scope fixtures."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from balancedrl.networks.mlp import MLPActorCritic
from balancedrl.training.adapters import make_adapter
from balancedrl.training.config import load_config
from balancedrl.training.trainer import make_train

CONFIGS = Path(__file__).resolve().parent.parent / "experiments" / "configs"
TINY = [
    "env.num_envs=2",
    "trainer.num_steps=16",
    "trainer.update_epochs=2",
    "trainer.num_minibatches=2",
    "trainer.total_timesteps=96",  # 3 updates
]
CORE = [
    "discrete_loss",
    "continuous_loss",
    "value_loss",
    "entropy_loss",
    "total_loss",
    "grad_norm",
    "discrete_entropy",
    "discrete_weight_used",
    "continuous_weight_used",
]


def _cfg(name, extra=()):
    return load_config(CONFIGS / name, [*TINY, *extra])


# ------------------------------------------------------------------ network


@pytest.mark.parametrize("A,P", [(2, 0), (1, 1), (3, 2)])
def test_mlp_shapes_and_init(A, P):
    net = MLPActorCritic(num_discrete=A, num_continuous=P, num_components=1, hidden_dim=16, log_std_init=-0.7)
    x = jnp.ones((5, 3, 4))
    v = net.init(jax.random.PRNGKey(0), x[0, 0])
    out = net.apply(v, x)
    assert out.discrete_logits.shape == (5, 3, 1, A)
    assert out.cont_mean.shape == (5, 3, 1, P)
    assert out.cont_log_std.shape == (5, 3, 1, P)
    assert out.values.shape == (5, 3, 1)
    assert out.wsa_weights.shape == (5, 3, 0)
    np.testing.assert_allclose(out.cont_log_std, -0.7)
    p = v["params"]
    # separate towers, orthogonal kernels: hidden gain sqrt(2) -> W^T W = 2 I (for square-or-taller matrices)
    assert "actor_0" in p and "critic_0" in p
    w = np.asarray(p["actor_1"]["kernel"])
    np.testing.assert_allclose(w.T @ w, 2.0 * np.eye(16), atol=1e-4)
    head = np.asarray(p["policy_head"]["kernel"])
    np.testing.assert_allclose(np.linalg.norm(head, axis=0), 0.01, rtol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(p["value_head"]["kernel"]), axis=0), 1.0, rtol=1e-4)
    # jit and vmap agree with the batched call
    one = jax.jit(net.apply)(v, x[0, 0])
    np.testing.assert_allclose(one.values, out.values[0, 0], rtol=1e-5, atol=1e-6)
    vm = jax.vmap(net.apply, in_axes=(None, 0))(v, x)
    np.testing.assert_allclose(vm.discrete_logits, out.discrete_logits, rtol=1e-5, atol=1e-6)


def test_mlp_bad_sizes_raise():
    with pytest.raises(ValueError, match="num_discrete"):
        MLPActorCritic(num_discrete=0, num_continuous=1).init(jax.random.PRNGKey(0), jnp.ones(3))


# ------------------------------------------------------------------ adapters


def test_cartpole_adapter_fields():
    ad = make_adapter(_cfg("cartpole.yaml").env)
    assert (ad.num_slots, ad.num_discrete, ad.num_continuous, ad.param_owner) == (1, 2, 0, ())
    assert ad.component_names == ("total",)
    obs = jnp.zeros((7, 4))
    assert ad.slot_mask(obs).shape == (7, 1) and bool(ad.slot_mask(obs).all())
    assert int(ad.to_env_action(jnp.array([1]), jnp.zeros((1, 0)))) == 1
    np.testing.assert_allclose(ad.reward_components(jnp.float32(1.0), {}), [1.0])
    succ = jax.vmap(ad.success)(
        {"truncated": jnp.array([True, True, False]), "terminated": jnp.array([False, True, False])}
    )
    np.testing.assert_array_equal(succ, [True, False, False])


def test_pendulum_adapter_fields():
    ad = make_adapter(_cfg("pendulum.yaml").env)
    assert (ad.num_slots, ad.num_discrete, ad.num_continuous, ad.param_owner) == (1, 1, 1, (-1,))
    np.testing.assert_allclose(ad.cont_low, [-2.0])
    np.testing.assert_allclose(ad.cont_high, [2.0])
    a = ad.to_env_action(jnp.array([0]), jnp.array([[1.5]]))
    assert a.shape == (1,) and float(a[0]) == 1.5
    assert not bool(ad.success({}))


def test_unknown_env_param_raises():
    cfg = load_config(CONFIGS / "cartpole.yaml", ["env.params={not_a_field: 3}"])
    with pytest.raises(ValueError, match="not_a_field"):
        make_adapter(cfg.env)


# ------------------------------------------------------------------ tiny training runs


@pytest.fixture(scope="module")
def cartpole_off():
    cfg = _cfg("cartpole.yaml", ["env.params={max_steps_in_episode: 10}"])
    tr = make_train(cfg)
    _, m = jax.jit(tr.train)(jax.random.PRNGKey(0))
    return cfg, {k: np.asarray(v) for k, v in m.items()}


def test_cartpole_tiny_run_is_finite(cartpole_off):
    cfg, m = cartpole_off
    assert m["discrete_loss"].shape == (cfg.num_updates,) == (3,)
    for k in CORE:
        assert np.all(np.isfinite(m[k])), k
    np.testing.assert_array_equal(m["continuous_loss"], 0.0)
    # 10-step time limit: episodes finish, and success = reached the limit
    assert m["episodes"].sum() > 0
    sr = m["success_rate"][np.isfinite(m["success_rate"])]
    assert sr.size and np.all((sr >= 0) & (sr <= 1))
    np.testing.assert_array_less(m["episode_length"][np.isfinite(m["episode_length"])], 10.5)


def test_cartpole_all_off_is_standard_ppo(cartpole_off):
    """L = c_d L_clip + 0.5 L_V - 0.01 H with c_d = 1 / (1 + 1e-6) (averaged over minibatches)."""
    cfg, m = cartpole_off
    np.testing.assert_allclose(m["discrete_weight_used"], 1.0 / (1.0 + 1e-6), rtol=1e-6)
    np.testing.assert_allclose(m["entropy_loss"], -0.01 * m["discrete_entropy"], rtol=1e-5, atol=1e-7)
    expect = m["discrete_weight_used"] * m["discrete_loss"] + 0.5 * m["value_loss"] + m["entropy_loss"]
    np.testing.assert_allclose(m["total_loss"], expect, rtol=1e-4, atol=1e-6)
    # a fresh 2-action policy starts near-uniform: entropy about log 2
    assert abs(m["discrete_entropy"][0] - np.log(2.0)) < 0.05


def test_pendulum_tiny_vmapped_run_with_techniques_on():
    """Every technique on, two vmapped seeds. The discrete head (one certain action) has a zero gradient:
    adaptive gradient scaling gives it the maximal scale and stays finite; C = 1 makes the learnable
    weighting trivially 1."""
    cfg = _cfg(
        "pendulum.yaml",
        [
            "trainer.gradient_scaling.enable_adaptive_scaling=true",
            "trainer.gradient_scaling.warmup_steps=2",
            "trainer.advantage_weighting.enable_learnable_weights=true",
            "trainer.advantage_weighting.enable_attention_weighting=true",
            "trainer.entropy_regularization.enable_adaptive_entropy=true",
            "trainer.reward_normalization.enable=true",
        ],
    )
    tr = make_train(cfg)
    keys = jax.random.split(jax.random.PRNGKey(2), 2)
    lowered = jax.jit(jax.vmap(tr.train)).lower(keys)
    # a batched LAPACK QR (orthogonal init) can deadlock XLA's CPU pool: networks/init.py
    assert "lapack" not in lowered.as_text()
    _, m = lowered.compile()(keys)
    m = {k: np.asarray(v) for k, v in m.items()}
    assert m["continuous_loss"].shape == (2, 3)
    for k in CORE + ["continuous_entropy", "discrete_scale", "continuous_scale", "continuous_grad_norm_raw"]:
        assert np.all(np.isfinite(m[k])), k
    np.testing.assert_allclose(m["discrete_entropy"], 0.0, atol=1e-6)
    np.testing.assert_allclose(m["discrete_loss"], 0.0, atol=1e-6)
    np.testing.assert_array_equal(m["discrete_grad_norm_raw"], 0.0)
    np.testing.assert_allclose(m["discrete_scale"], cfg.trainer.gradient_scaling.max_scaling_factor)
    assert np.all(m["continuous_grad_norm_raw"] > 0)
    np.testing.assert_allclose(m["discrete_weight_used"] + m["continuous_weight_used"], 1.0, rtol=1e-5)
    np.testing.assert_allclose(m["component_final_weights"], 1.0, rtol=1e-6)
    assert np.all(m["continuous_entropy"] > 0)
    # different seeds give different runs
    assert not np.allclose(m["value_loss"][0], m["value_loss"][1])


# ------------------------------------------------------------------ every gymnax environment


def test_registered_gymnax_envs_are_gymnax_list():
    """Registered and skipped (with a reason) together are exactly gymnax's environments, disjointly."""
    from gymnax.registration import registered_envs

    from balancedrl import envs
    from balancedrl.envs.gymnax_envs import GYMNAX_ENVS, GYMNAX_SKIPPED

    assert set(GYMNAX_ENVS) | set(GYMNAX_SKIPPED) == set(registered_envs)
    assert not set(GYMNAX_ENVS) & set(GYMNAX_SKIPPED)
    assert all(reason for reason in GYMNAX_SKIPPED.values())
    assert set(GYMNAX_ENVS) <= set(envs.trainable_envs())
    assert not set(GYMNAX_SKIPPED) & set(envs.registered_envs())


def _gymnax_names():
    from balancedrl.envs.gymnax_envs import GYMNAX_ENVS

    return GYMNAX_ENVS


@pytest.mark.parametrize("name", _gymnax_names())
def test_every_gymnax_env_gives_the_trainer_float_vectors(name):
    """Shape-only trace (no compile) of reset, one step with the adapter's action and the network: the
    observation, the pre-reset observation and the network input are float32 vectors of one size."""
    from balancedrl.networks.mlp import MLPActorCritic

    ad = make_adapter(load_config(CONFIGS / "acrobot.yaml", [f"env.name={name}"]).env)
    key = jax.random.PRNGKey(0)
    obs, state = jax.eval_shape(ad.env.reset, key, ad.env_params)
    assert len(obs.shape) == 1 and obs.dtype == jnp.float32, (obs.shape, obs.dtype)
    d = jax.ShapeDtypeStruct((1,), jnp.int32)
    c = jax.ShapeDtypeStruct((1, ad.num_continuous), jnp.float32)
    step = lambda k, s, d, c: ad.env.step(k, s, ad.to_env_action(d, c), ad.env_params)
    obs2, _, reward, term, trunc, info = jax.eval_shape(step, key, state, d, c)
    assert obs2.shape == obs.shape == info["final_observation"].shape and obs2.dtype == jnp.float32
    assert reward.shape == () and term.shape == () and trunc.shape == ()
    assert ad.reward_components(jnp.zeros(()), {}).shape == (1,)
    net = MLPActorCritic(num_discrete=ad.num_discrete, num_continuous=ad.num_continuous, hidden_dim=8)
    out = jax.eval_shape(lambda o: net.apply(net.init(key, o), o), jnp.zeros(obs.shape))
    assert out.discrete_logits.shape == (1, ad.num_discrete)
    assert out.cont_mean.shape == (1, ad.num_continuous)


def test_flat_observation_is_a_reshape_of_the_image():
    """MinAtar: the wrapped env's observations (and final_observation) are the raw ones, flattened row-major
    and cast; reset and step with the same keys give the same states."""
    from balancedrl import envs
    from balancedrl.envs.gymnax_envs import FlatObservation

    raw, params = envs.make("Breakout-MinAtar")
    flat = FlatObservation(raw)
    assert flat.observation_space(params).shape == (400,)
    assert flat.num_actions == raw.num_actions  # everything else is the wrapped env's

    def both(key):
        k1, k2 = jax.random.split(key)
        o_raw, s_raw = raw.reset(k1, params)
        o_flat, s_flat = flat.reset(k1, params)
        step_raw = raw.step(k2, s_raw, 1, params)
        step_flat = flat.step(k2, s_flat, 1, params)
        return o_raw, o_flat, step_raw, step_flat

    o_raw, o_flat, step_raw, step_flat = jax.jit(both)(jax.random.PRNGKey(3))
    assert o_raw.shape == (10, 10, 4) and o_flat.shape == (400,) and o_flat.dtype == jnp.float32
    np.testing.assert_array_equal(o_flat, np.asarray(o_raw, np.float32).reshape(-1))
    np.testing.assert_array_equal(step_flat[0], np.asarray(step_raw[0], np.float32).reshape(-1))
    np.testing.assert_array_equal(
        step_flat[5]["final_observation"], np.asarray(step_raw[5]["final_observation"], np.float32).reshape(-1)
    )
    assert float(step_flat[2]) == float(step_raw[2])
    for a, b in zip(jax.tree_util.tree_leaves(step_raw[1]), jax.tree_util.tree_leaves(step_flat[1])):
        np.testing.assert_array_equal(a, b)


def test_action_layout_discrete_box_and_hybrid_tuple():
    """The hybrid case on a stand-in space (no gymnax 1.0 env has one): Tuple((Discrete(3), Box(2))) gives
    three discrete actions sharing two bounded parameters, and the env action is the tuple."""
    from gymnax.environments import spaces

    from balancedrl.training.adapters.gymnax import action_layout

    A, P, low, high, to_env = action_layout("t", spaces.Discrete(4))
    assert (A, P, low.shape) == (4, 0, (0,)) and int(to_env(jnp.array([2]), jnp.zeros((1, 0)))) == 2
    A, P, low, high, to_env = action_layout("t", spaces.Box(-1.0, 2.0, (2, 2)))
    assert (A, P) == (1, 4)
    np.testing.assert_allclose(low, -1.0) and np.testing.assert_allclose(high, 2.0)
    assert to_env(jnp.array([0]), jnp.arange(4.0)[None]).shape == (2, 2)
    box = spaces.Box(jnp.array([-1.0, 0.0]), jnp.array([1.0, 5.0]), (2,))
    A, P, low, high, to_env = action_layout("t", spaces.Tuple([spaces.Discrete(3), box]))
    assert (A, P) == (3, 2)
    np.testing.assert_allclose(low, [-1.0, 0.0]) and np.testing.assert_allclose(high, [1.0, 5.0])
    d, c = to_env(jnp.array([2]), jnp.array([[0.5, 4.0]]))
    assert int(d) == 2 and np.allclose(c, [0.5, 4.0])
    with pytest.raises(ValueError, match=r"env.name = 'x' has action space .*allowed: Discrete, Box, Tuple"):
        action_layout("x", spaces.Tuple([box, spaces.Discrete(3)]))
