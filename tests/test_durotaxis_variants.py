"""Durotaxis-Sparse-v0 / Durotaxis-Misscaled-v0 (issue 16): registry, reward formulas, unchanged dynamics,
the pre-learning checks (expert succeeds, greedy-on-crowding fails, random never succeeds)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from balancedrl.envs import (
    SHAPED_COMPONENTS,
    Durotaxis,
    DurotaxisParams,
    DurotaxisShaped,
    DurotaxisShapedParams,
    expert_action,
    make,
    oracle_weights,
    registered_envs,
)
from balancedrl.envs.durotaxis_variants import CHANNEL_ROLES, MISSCALED_SCALES

NAMES = ("Durotaxis-Sparse-v0", "Durotaxis-Misscaled-v0")
EXPERT, GREEDY_CROWDING, RANDOM = 0, 1, 2
PER_POLICY = 6  # envs per (variant, policy)
T = 60


def test_registered_and_defaults():
    assert set(NAMES) <= set(registered_envs())
    for name in NAMES:
        env, p = make(name)
        assert isinstance(env, DurotaxisShaped) and isinstance(p, DurotaxisShapedParams)
        assert env.name == name and env.component_names == SHAPED_COMPONENTS
        assert (p.coef_graph, p.coef_spawn, p.coef_delete, p.coef_edge, p.coef_total_node) == (0, 0, 0, 0, 0)
        assert (p.success_bonus, p.failure_penalty, p.time_cost) == (10.0, -10.0, 0.1)
    assert make("Durotaxis-Sparse-v0")[1].channel_scales == (1.0, 1.0, 1.0, 1.0)
    scales = make("Durotaxis-Misscaled-v0")[1].channel_scales
    assert scales == MISSCALED_SCALES and min(scales) == 1e-3 and max(scales) == 1e3
    assert [CHANNEL_ROLES[c] for c in SHAPED_COMPONENTS] == [
        "objective", "helpful", "helpful", "uninformative", "misleading"]
    np.testing.assert_allclose(oracle_weights(make("Durotaxis-Sparse-v0")[1]), [1, 1, 1, 0, 0])
    np.testing.assert_allclose(oracle_weights(make("Durotaxis-Misscaled-v0")[1]), [1, 1e3, 0.1, 0, 0])
    # Durotaxis-v0 itself is untouched
    env0, p0 = make("Durotaxis-v0")
    assert type(env0) is Durotaxis and type(p0) is DurotaxisParams and p0.coef_graph == 1.0
    assert env0 != make("Durotaxis-Sparse-v0")[0] != make("Durotaxis-Misscaled-v0")[0]
    env_s, p_s = make("Durotaxis-Sparse-v0", max_nodes=16)
    assert env_s.max_nodes == 16 and p_s.overcrowd_nodes == 12


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"coef_graph": 1.0}, "coef_graph"),
        ({"coef_spawn": 0.5}, "coef_spawn"),
        ({"noise_std": -1.0}, "noise_std"),
        ({"channel_scales": (1.0, 2.0)}, "channel_scales"),
        ({"channel_scales": (1.0, 2.0, float("inf"), 1.0)}, "channel_scales"),
        ({"init_nodes": 0}, "init_nodes"),
        ({"not_a_field": 1}, "not_a_field"),
    ],
)
def test_bad_params_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make("Durotaxis-Misscaled-v0", **kwargs)
    with pytest.raises(ValueError, match="variant"):
        DurotaxisShaped(variant="Durotaxis-Dense-v0")


@pytest.fixture(scope="module")
def rollouts():
    """One compile: both variants (params stacked; step_env depends on the params only) x {expert, every
    node spawns every step (greedy on crowding), uniform random} x PER_POLICY envs x T steps of step_env,
    with Durotaxis-v0 stepped alongside on its own state with the same keys and actions."""
    env, _ = make("Durotaxis-Sparse-v0")
    env0, p0 = make("Durotaxis-v0")
    params = [make(n)[1] for n in NAMES]
    B = PER_POLICY * 3
    stacked = jax.tree.map(lambda *x: jnp.stack([jnp.asarray(v) for v in x for _ in range(B)]), *params)
    policy = jnp.tile(jnp.repeat(jnp.arange(3), PER_POLICY), len(NAMES))

    def one(key, p, kind):
        k0, key = jax.random.split(key)
        obs, s = env.reset_env(k0, p)
        _, s0 = env0.reset_env(k0, p0)

        def body(c, k):
            obs, s, s0 = c
            ka, ks = jax.random.split(k)
            a_e = expert_action(ka, obs, p)
            a_g = a_e._replace(discrete=jnp.ones_like(a_e.discrete))  # spawn everywhere, front-style params
            a_r = env.action_space(p).sample(ka)
            a = jax.tree.map(lambda e, g, r: jnp.where(kind == EXPERT, e, jnp.where(kind == RANDOM, r, g)),
                             a_e, a_g, a_r)
            obs2, s2, rew, term, info = env.step_env(ks, s, a, p)
            _, s02, _, term0, info0 = env0.step_env(ks, s0, a, p0)
            rec = dict(pos=s.pos, alive=s.alive, pos2=s2.pos, alive2=s2.alive, pos0=s02.pos, alive0=s02.alive,
                       rew=rew, comp=info["reward_components"], success=info["success"],
                       failure=info["failure"], term=term, term0=term0, success0=info0["success"])
            return (obs2, s2, s02), rec

        _, recs = jax.lax.scan(body, (obs, s, s0), jax.random.split(key, T))
        return recs

    keys = jax.random.split(jax.random.PRNGKey(5), len(policy))
    recs = jax.jit(jax.vmap(one))(keys, stacked, policy)
    recs = jax.tree.map(np.asarray, recs)
    scales = np.repeat(np.array([p.channel_scales for p in params]), B, axis=0)  # [E, 4]
    # live[e, t]: the step happened before the episode ended (step_env does not auto-reset)
    ended = np.cumsum(recs["term"], axis=1) - recs["term"] > 0
    return recs, np.asarray(policy), scales, ~ended, params[0]


def test_dynamics_identical_to_durotaxis_v0(rollouts):
    recs, *_ = rollouts
    np.testing.assert_array_equal(recs["alive2"], recs["alive0"])
    # equal up to float rounding: the two steps are compiled into different fusions
    np.testing.assert_allclose(recs["pos2"], recs["pos0"], rtol=1e-6, atol=1e-4)
    np.testing.assert_array_equal(recs["term"], recs["term0"])
    np.testing.assert_array_equal(recs["success"], recs["success0"])


def test_total_is_the_true_objective_only(rollouts):
    recs, _, _, _, p = rollouts
    expected = (np.where(recs["success"], p.success_bonus, 0.0) + np.where(recs["failure"], p.failure_penalty, 0.0)
                - p.time_cost)
    np.testing.assert_allclose(recs["comp"][..., 0], expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(recs["rew"], recs["comp"][..., 0])
    assert recs["success"].any() and recs["failure"].any()


def _masked_x(pos, alive, fn, fill):
    return np.where(alive.any(-1), fn(np.where(alive, pos[..., 0], fill), axis=-1), 0.0)


def test_shaping_channels_follow_their_formulas(rollouts):
    recs, _, scales, _, p = rollouts
    W, comp = p.width, recs["comp"]
    n1, n2 = recs["alive"].sum(-1), recs["alive2"].sum(-1)
    kept = n2 > 0  # on the emptying step every channel but the noise is 0

    def cx(pos, alive):
        return (np.where(alive, pos[..., 0], 0).sum(-1) / np.maximum(alive.sum(-1), 1))

    front = 100 * (_masked_x(recs["pos2"], recs["alive2"], np.max, -np.inf)
                   - _masked_x(recs["pos"], recs["alive"], np.max, -np.inf)) / W
    centroid = 100 * (cx(recs["pos2"], recs["alive2"]) - cx(recs["pos"], recs["alive"])) / W
    crowding = 100 * (n2 - n1) / p.overcrowd_nodes
    for i, ref in ((1, front), (2, centroid), (4, crowding)):
        s = scales[:, i - 1][:, None]
        np.testing.assert_allclose(comp[..., i], s * np.where(kept, ref, 0.0), rtol=1e-4,
                                   atol=2e-4 * s.max() + 1e-6, err_msg=SHAPED_COMPONENTS[i])
    assert np.abs(comp[..., 4]).max() > 0 and np.abs(comp[..., 1]).max() > 0
    # noise: zero mean, std = noise_std * scale, independent of the dynamics (checked above)
    for v in (0, 1):
        rows = slice(v * len(scales) // 2, (v + 1) * len(scales) // 2)
        z = comp[rows, :, 3].ravel() / (p.noise_std * scales[rows, 2][0])
        assert abs(z.mean()) < 4 / np.sqrt(z.size)
        assert abs(z.std() - 1.0) < 0.1


def test_expert_succeeds_greedy_on_crowding_fails_random_never_succeeds(rollouts):
    recs, policy, scales, live, _ = rollouts
    succ = (recs["success"] & live).any(1)
    fail = (recs["failure"] & live).any(1)
    assert succ[policy == EXPERT].all()
    assert fail[policy == GREEDY_CROWDING].all() and not succ[policy == GREEDY_CROWDING].any()
    assert not succ[policy == RANDOM].any()  # the sparse total alone gives no success to learn from
    # The misleading channel really misleads: it pays the failing greedy policy more than the expert,
    # while the oracle weights (true objective + helpful channels) rank the expert far above it.
    ret = (recs["comp"] * live[..., None]).sum(1)  # [E, 5] undiscounted episode sums within T
    unscaled = ret / np.concatenate([np.ones((len(ret), 1)), scales], axis=1)
    crowd = unscaled[:, 4]
    assert crowd[policy == GREEDY_CROWDING].min() > crowd[policy == EXPERT].max()
    oracle = unscaled @ np.array([1.0, 1.0, 1.0, 0.0, 0.0])
    assert oracle[policy == EXPERT].min() > oracle[policy == GREEDY_CROWDING].max() + 50
    mis = slice(len(ret) // 2, None)  # the Misscaled rows: its oracle weights undo its scales
    np.testing.assert_allclose(ret[mis] @ oracle_weights(make("Durotaxis-Misscaled-v0")[1]), oracle[mis],
                               rtol=1e-4)


def test_gymnax_step_with_auto_reset():
    """The auto-resetting gymnax ``step`` (six values) carries the variant's reward vector."""
    env, p = make("Durotaxis-Misscaled-v0", max_nodes=8, init_nodes=4, critical_nodes=4)

    @jax.jit
    def one(k, noise_std):
        pp = p.replace(noise_std=noise_std)
        obs, s = env.reset(k, pp)
        _, _, r, term, trunc, info = env.step(k, s, env.action_space(pp).sample(k), pp)
        return r, info["reward_components"]

    r0, comp0 = one(jax.random.PRNGKey(0), 0.0)
    r1, comp1 = one(jax.random.PRNGKey(0), 1.0)
    assert comp0.shape == (len(SHAPED_COMPONENTS),)
    assert r0 == comp0[0] and comp0[3] == 0.0 and comp1[3] != 0.0
    np.testing.assert_array_equal(np.delete(comp0, 3), np.delete(comp1, 3))
