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
