"""Trainer adapters of HyAR's tasks (HardGoal-v0, CatchPoint-v0, HardMove-n{4,6,8,10}-v0): sizes, bounds and
``param_owner`` read from the envs, the trainer's discrete index -> env action mapping, success flags and
reward scales on scripted steps, which parameters a log-probability counts, and tiny ``make_train`` runs
(one update each for Hard Goal, Catch Point and the largest Hard Move, n = 10, whose head has 1,024 logits;
Hard Move with the techniques on, so that path is compiled too)."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from balancedrl import envs
from balancedrl import policy as hp
from balancedrl.envs.hard_move import actuator_bits, actuator_tables
from balancedrl.factorised import bits_from_action
from balancedrl.training.adapters import make_adapter
from balancedrl.training.adapters.hyar import HARD_GOAL_REWARD_SCALE, POINT_REWARD_SCALE
from balancedrl.training.config import EnvConfig, load_config
from balancedrl.training.trainer import make_train

CONFIGS = Path(__file__).resolve().parent.parent / "experiments" / "configs"
HARD_MOVES = tuple(f"HardMove-n{n}-v0" for n in (4, 6, 8, 10))
TINY = [
    "env.num_envs=2",
    "trainer.num_steps=16",
    "trainer.update_epochs=1",
    "trainer.num_minibatches=1",
    "trainer.total_timesteps=32",  # 1 update of 32 transitions
    "actor_critic.hidden_dim=8",
    "trainer.gradient_scaling.warmup_steps=0",
    "trainer.entropy_regularization.entropy_decay_episodes=1",
]
ON = [
    "trainer.gradient_scaling.enable_adaptive_scaling=true",
    "trainer.entropy_regularization.enable_adaptive_entropy=true",
    "trainer.entropy_regularization.min_entropy_threshold=0.05",
    "trainer.entropy_regularization.penalty_scale=1.0",
]
CORE = ["discrete_loss", "continuous_loss", "value_loss", "entropy_loss", "total_loss", "grad_norm",
        "discrete_entropy", "continuous_entropy", "discrete_weight_used", "continuous_weight_used"]


@pytest.fixture(scope="module")
def adapters():
    return {name: make_adapter(EnvConfig(name=name)) for name in ("HardGoal-v0", "CatchPoint-v0", *HARD_MOVES)}


# ------------------------------------------------------------------ structure from the envs


def test_every_hyar_task_is_trainable():
    assert {"HardGoal-v0", "CatchPoint-v0", *HARD_MOVES} <= set(envs.trainable_envs())


@pytest.mark.parametrize(
    "name,A,P,owner",
    [
        ("HardGoal-v0", 11, 12, (0, 0, *range(1, 11))),
        ("CatchPoint-v0", 2, 1, (0,)),
        *((f"HardMove-n{n}-v0", 2**n, 1, (-1,)) for n in (4, 6, 8, 10)),
    ],
)
def test_sizes_bounds_and_owner_come_from_the_env(adapters, name, A, P, owner):
    ad = adapters[name]
    assert (ad.num_slots, ad.num_discrete, ad.num_continuous) == (1, A, P)
    assert ad.param_owner == owner
    space = ad.env.action_space(ad.env_params)
    assert int(space.spaces["discrete"].n) == A
    np.testing.assert_array_equal(ad.cont_low, np.broadcast_to(np.float32(space.spaces["continuous"].low), (P,)))
    np.testing.assert_array_equal(ad.cont_high, np.broadcast_to(np.float32(space.spaces["continuous"].high), (P,)))
    np.testing.assert_array_equal(ad.cont_low, -np.ones(P, np.float32))
    assert ad.param_owner == tuple(int(i) for i in ad.env.param_owner)
    assert ad.component_names == ("total",)
    obs = jnp.zeros(ad.env.observation_space(ad.env_params).shape)  # 17 (Hard Goal) or 4 features
    module, init, frozen = ad.make_network(load_config(None).actor_critic)
    out = jax.eval_shape(lambda k, o: module.apply(init(k, o), o), jax.random.PRNGKey(1), obs)  # shapes only
    assert out.discrete_logits.shape == (1, A) and out.cont_mean.shape == (1, P) and frozen == ()
    assert bool(ad.slot_mask(obs)[0])


def test_env_params_override_and_unknown_names(adapters):
    ad = make_adapter(EnvConfig(name="HardMove-n6-v0", params={"max_steps_in_episode": 12}))
    assert ad.env_params.max_steps_in_episode == 12 and ad.num_discrete == 64
    with pytest.raises(ValueError, match="max_step"):
        make_adapter(EnvConfig(name="CatchPoint-v0", params={"max_step": 3}))


# ------------------------------------------------------------------ trainer index -> env action


@pytest.mark.parametrize("n", [4, 10])
def test_hard_move_index_is_the_env_pattern(adapters, n):
    """Trainer index ``a`` fires the actuators of HyAR's ``binaryEncoding(a)`` (MSB = actuator 0): the env's
    force is ``2 p sum_k bits_k movement_k / max_dist`` (NumPy reference); the factorised head's bit order
    is the same."""
    ad = adapters[f"HardMove-n{n}-v0"]
    tables = actuator_tables(n)
    bits = actuator_bits(n)
    np.testing.assert_array_equal(np.asarray(bits_from_action(jnp.arange(2**n), n)), bits)
    rng = np.random.default_rng(n)
    a = rng.integers(0, 2**n, 64) if n == 10 else np.arange(2**n)
    p = rng.uniform(-1, 1, a.shape).astype(np.float32)
    _, state = ad.env.reset(jax.random.PRNGKey(0), ad.env_params)

    def force(d, c):
        act = ad.to_env_action(d[None], c[None])
        assert act["discrete"].shape == () and act["continuous"].shape == (1,)
        return ad.env.step(jax.random.PRNGKey(1), state, act, ad.env_params)[5]["force"]

    got = np.asarray(jax.jit(jax.vmap(force))(jnp.asarray(a, jnp.int32), jnp.asarray(p)[:, None]))
    want = 2.0 * p[:, None] * (bits[a] @ tables["movement"]) / tables["max_dist"]
    np.testing.assert_allclose(got, want, atol=2e-6)


def test_catch_point_and_hard_goal_actions(adapters):
    cp, hg = adapters["CatchPoint-v0"], adapters["HardGoal-v0"]
    _, s = cp.env.reset(jax.random.PRNGKey(0), cp.env_params)
    step = jax.jit(lambda d, c: cp.env.step(jax.random.PRNGKey(1), s, cp.to_env_action(d, c), cp.env_params)[5])
    f = np.asarray(step(jnp.asarray([0]), jnp.asarray([[0.5]]))["force"])
    np.testing.assert_allclose(f, [2.0 * np.sin(0.5 * np.pi), 2.0 * np.cos(0.5 * np.pi)], atol=1e-6)  # move
    np.testing.assert_array_equal(np.asarray(step(jnp.asarray([1]), jnp.asarray([[0.5]]))["force"]), [0.0, 0.0])
    # Hard Goal: index 0 = kick-to with p[0:2]; index a >= 1 = shot region (a - 1) mod 5 with p[a + 1]
    c = jnp.asarray(np.linspace(-0.9, 0.9, 12), jnp.float32)
    for a, want_g in ((0, 0), (1, 1), (5, 1), (6, 2), (10, 2)):
        g, _, u, _ = hg.env.goal_action(hg.to_env_action(jnp.asarray([a]), c[None]))
        assert int(g) == want_g
        if a == 0:
            np.testing.assert_allclose(np.asarray(u), np.asarray(c[0:2]))
        else:
            r = (a - 1) % 5
            lo, hi = [[-1, -0.6], [-0.6, -0.2], [0.2, 0.2], [0.2, 0.6], [0.6, 1]][r]
            np.testing.assert_allclose(float(u[0]), float(c[a + 1]) * (lo - hi) / 2 + lo - (lo - hi) / 2, atol=1e-6)


def test_log_prob_counts_the_parameters_the_action_reads(adapters):
    """Catch Point's catch reads no parameter; Hard Move's shared strength is read by every pattern."""
    for name, d, used in (("CatchPoint-v0", 0, True), ("CatchPoint-v0", 1, False), ("HardMove-n8-v0", 7, True),
                          ("HardMove-n8-v0", 0, True)):
        ad = adapters[name]
        A = ad.num_discrete
        _, lp_c, u = hp.log_probs(jnp.zeros((1, A)), jnp.zeros((1, 1)), jnp.zeros((1, 1)), jnp.asarray([d]),
                                  jnp.asarray([[0.3]]), jnp.ones((1,), bool), ad.param_owner)
        assert bool(u[0]) == used
        want = (-0.5 * 0.09 - 0.5 * np.log(2 * np.pi)) if used else 0.0
        np.testing.assert_allclose(float(lp_c[0]), want, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------ success flags and reward scales


def test_success_flags_and_reward_scales(adapters):
    hm = adapters["HardMove-n4-v0"]
    # at rest 0.05 from the target: pattern 0 (no force) stays inside the 0.2 radius -> success, r = 20 - d2
    s = hm.env.state_from_vector(jnp.asarray([0.0, 0.0, 0.0, 0.0, 0.05, 0.0]))
    _, _, r, term, trunc, info = hm.env.step(jax.random.PRNGKey(0), s, hm.to_env_action(jnp.asarray([0]),
                                                                                          jnp.asarray([[0.0]])),
                                             hm.env_params)
    assert bool(term) and not bool(trunc) and bool(hm.success(info))
    np.testing.assert_allclose(float(r), 20.0 - 0.0025, rtol=1e-6)
    np.testing.assert_allclose(hm.reward_components(r, info), [(20.0 - 0.0025) * POINT_REWARD_SCALE], rtol=1e-6)
    far = hm.env.state_from_vector(jnp.asarray([0.0, 0.0, 0.0, 0.0, 0.9, 0.0]))
    _, _, r, term, _, info = hm.env.step(jax.random.PRNGKey(0), far, {"discrete": 0, "continuous": jnp.zeros(1)},
                                         hm.env_params)
    assert not bool(term) and not bool(hm.success(info)) and float(hm.reward_components(r, info)[0]) < 0
    cp = adapters["CatchPoint-v0"]
    s = cp.env.state_from_vector(jnp.asarray([0.0, 0.0, 0.0, 0.0, 0.1, 0.0, 0.0]))
    _, _, r, term, _, info = cp.env.step(jax.random.PRNGKey(0), s, cp.to_env_action(jnp.asarray([1]),
                                                                                    jnp.asarray([[0.0]])),
                                         cp.env_params)
    assert bool(term) and bool(cp.success(info)) and float(r) > 19.9
    hg = adapters["HardGoal-v0"]  # the flag itself is the env's (tests/test_hyar_envs.py): read, not recomputed
    for flag in (True, False):
        assert bool(hg.success({"success": jnp.asarray(flag)})) == flag
    np.testing.assert_allclose(hg.reward_components(jnp.float32(50.0), {}), [50.0 * HARD_GOAL_REWARD_SCALE])
    np.testing.assert_allclose(hg.reward_components(jnp.float32(-7.5), {}), [-7.5 * HARD_GOAL_REWARD_SCALE])

def test_hard_goal_mpdqn_prior_is_goals_kick_to(adapters):
    """``param_prior: mpdqn``: the initial squashed kick-to means are MP-DQN's Goal prior (published
    constants, NumPy), ``q1 = -0.375 + 0.5 b_x + 0.0625 u_x``, ``q2 = 0.8333 b_y + 0.1111 u_y``; the ten shot
    parameters start mid-region (0). The head's 0.01-gain init moves them by well under 0.05."""
    ac = load_config(None, ["actor_critic.param_prior=mpdqn"]).actor_critic
    hg = adapters["HardGoal-v0"]
    o = np.random.default_rng(4).uniform(-1, 1, 17)  # the scaled 17 features
    o[10:12] = (0.9, -0.8)  # ball x, y: a clearly non-zero kick-to prior
    module, init, _ = hg.make_network(ac)
    got = np.tanh(np.asarray(jax.jit(lambda k, x: module.apply(init(k, x), x).cont_mean[0])(
        jax.random.PRNGKey(1), jnp.asarray(o, jnp.float32))))
    want = np.zeros(12)
    want[0] = -0.375 + 0.5 * o[10] + 0.0625 * o[14]
    want[1] = 0.8333333 * o[11] + 0.1111111 * o[15]
    np.testing.assert_allclose(got, want, atol=0.05)
    assert np.abs(want[0:2]).max() > 0.1  # the prior is not trivially 0 here
    with pytest.raises(ValueError, match="actor_critic.param_prior"):
        adapters["CatchPoint-v0"].make_network(ac)


# ------------------------------------------------------------------ factorised Bernoulli head (Hard Move)


def _np_actor_logits(variables, obs):
    """NumPy forward pass of the MLP actor up to the policy head (2 tanh layers, then the dense head)."""
    p = jax.tree_util.tree_map(np.asarray, variables["params"])
    h = np.asarray(obs, np.float64)
    for i in range(2):
        h = np.tanh(h @ p[f"actor_{i}"]["kernel"] + p[f"actor_{i}"]["bias"])
    return h @ p["policy_head"]["kernel"] + p["policy_head"]["bias"]


def test_factorised_head_log_prob_matches_enumeration_n4(adapters):
    """``discrete_head: factorised`` on HardMove-n4-v0: the head gives n = 4 Bernoulli logits (+ 1 mean) and
    the trainer's categorical log-prob of every pattern ``a`` is ``sum_k log Bern(b_k(a); sigma(l_k))`` with
    HyAR's bit order (NumPy enumeration of the 16 patterns); greedy = every actuator with ``l_k > 0``."""
    ad = adapters["HardMove-n4-v0"]
    ac = load_config(None, ["actor_critic.discrete_head=factorised", "actor_critic.hidden_dim=16"]).actor_critic
    module, init, _ = ad.make_network(ac)
    obs = jnp.asarray(np.random.default_rng(0).normal(size=(3, 4)), jnp.float32)
    variables = jax.jit(init)(jax.random.PRNGKey(2), obs[0])
    # a head of gain 0.01 gives logits ~0; scale it so that the probabilities differ clearly
    head = variables["params"]["policy_head"]
    variables["params"]["policy_head"] = {"kernel": head["kernel"] * 300.0, "bias": jnp.asarray([0.5, -1.0, 0.0, 2.0, 0.0])}
    assert variables["params"]["policy_head"]["kernel"].shape == (16, 4 + 1)  # n logits + P = 1 mean
    out = jax.jit(module.apply)(variables, obs)
    logits_n = _np_actor_logits(variables, np.asarray(obs))[:, :4]  # [3, n]
    bits = actuator_bits(4)  # [16, 4]: HyAR's binaryEncoding, actuator 0 = most significant bit
    q = 1.0 / (1.0 + np.exp(-logits_n))
    want = np.sum(np.where(bits[None] == 1, np.log(q)[:, None], np.log1p(-q)[:, None]), axis=-1)  # [3, 16]
    assert np.ptp(want) > 1.0
    lp = jax.jit(jax.vmap(lambda lg, d: hp.log_probs(lg, out.cont_mean[0], out.cont_log_std[0], d, jnp.zeros((1, 1)),
                                             jnp.ones((1,), bool), ad.param_owner)[0][0], in_axes=(None, 0)))
    for i in range(3):
        got = np.asarray(lp(out.discrete_logits[i], jnp.arange(16)[:, None]))
        np.testing.assert_allclose(got, want[i], atol=2e-5)
    np.testing.assert_allclose(np.exp(want).sum(-1), 1.0, rtol=1e-12)
    d, _ = hp.greedy(out.discrete_logits, out.cont_mean, ad.cont_low, ad.cont_high)
    want_mode = (logits_n > 0).astype(int) @ (2 ** np.arange(3, -1, -1))
    np.testing.assert_array_equal(np.asarray(d[:, 0]), want_mode)
    # n = 10: n + 1 head outputs instead of 2^n + 1
    m10, init10, _ = adapters["HardMove-n10-v0"].make_network(ac)
    v10 = jax.eval_shape(init10, jax.random.PRNGKey(0), jnp.zeros(4))
    assert v10["params"]["policy_head"]["kernel"].shape == (16, 11)


def test_factorised_head_is_refused_elsewhere():
    ac = load_config(None, ["actor_critic.discrete_head=factorised"]).actor_critic
    for name in ("CatchPoint-v0", "HardGoal-v0"):
        with pytest.raises(ValueError, match="actor_critic.discrete_head"):
            make_adapter(EnvConfig(name=name)).make_network(ac)
    with pytest.raises(ValueError, match="actor_critic.discrete_head"):
        load_config(None, ["actor_critic.discrete_head=branching"])


# ------------------------------------------------------------------ tiny training runs


@pytest.fixture(
    scope="module",
    params=[("hard_goal.yaml", "HardGoal-v0", ()), ("catch_point.yaml", "CatchPoint-v0", ()),
            ("hard_move.yaml", "HardMove-n10-v0", (*ON, "actor_critic.discrete_head=factorised"))],
    ids=["hard_goal-off", "catch_point-off", "hard_move_n10-factorised-on"],
)
def tiny_run(request):
    path, name, extra = request.param
    cfg = load_config(CONFIGS / path, [f"env.name={name}", *TINY, *extra])
    assert cfg.num_updates == 1
    trainer = make_train(cfg)
    runner, metrics = jax.jit(trainer.train)(jax.random.PRNGKey(0))
    return cfg, runner, {k: np.asarray(v) for k, v in metrics.items()}


def test_tiny_train_finite_and_counts_success(tiny_run):
    cfg, runner, m = tiny_run
    for k in CORE:
        assert m[k].shape[0] == 1, k
        assert np.all(np.isfinite(m[k])), (k, m[k])
    assert int(runner.update_count) == 1
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree_util.tree_leaves(runner.params))
    # 32 transitions: Hard Goal episodes last 1-3 steps, so several end; point tasks may end none
    if cfg.env.name == "HardGoal-v0":
        assert m["episodes"][0] >= 5
    if m["episodes"][0] > 0:
        assert 0.0 <= m["success_rate"][0] <= 1.0 and np.isfinite(m["episode_return"][0])
    if not cfg.trainer.gradient_scaling.enable_adaptive_scaling:
        np.testing.assert_allclose(m["discrete_weight_used"], 0.5, rtol=1e-6)
