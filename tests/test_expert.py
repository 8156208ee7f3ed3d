"""Expert policy (docs/design.md §4): rule checks, jit/vmap, success rates of expert vs uniform random."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from balancedrl.envs import continuous_bounds, expert_action, make
from balancedrl.types import NUM_GLOBAL_FEATURES, NUM_NODE_FEATURES, Observation

N_EPISODES, T = 256, 200


@pytest.fixture(scope="module")
def env_params():
    return make("Durotaxis-v0")


@pytest.fixture(scope="module")
def outcomes(env_params):
    """One compile: 2 × 256 episodes (expert, uniform random) of step_env on random substrates.

    Returns per episode: first-done success flag, episode length (steps until the first done).
    """
    env, params = env_params
    space = env.action_space(params)

    def one(key, use_expert):
        k0, k1 = jax.random.split(key)
        obs, s = env.reset_env(k0, params)

        def body(c, k):
            obs, s, done, succ, length = c
            ka, ks = jax.random.split(k)
            a_e = expert_action(ka, obs, params)
            a_r = space.sample(ka)
            a = jax.tree.map(lambda e, r: jnp.where(use_expert, e, r), a_e, a_r)
            obs, s, _, term, info = env.step_env(ks, s, a, params)
            finished = term | info["truncated"]
            succ = jnp.where(done, succ, info["success"])
            length = jnp.where(done, length, s.time)
            return (obs, s, done | finished, succ, length), None

        init = (obs, s, jnp.array(False), jnp.array(False), jnp.array(0, jnp.int32))
        (_, _, done, succ, length), _ = jax.lax.scan(body, init, jax.random.split(k1, T))
        return succ, length, done

    keys = jax.random.split(jax.random.PRNGKey(2024), 2 * N_EPISODES)
    flags = jnp.array([True] * N_EPISODES + [False] * N_EPISODES)
    succ, length, done = jax.jit(jax.vmap(one))(keys, flags)
    return np.asarray(succ), np.asarray(length), np.asarray(done)


def test_expert_succeeds_random_fails(outcomes):
    succ, length, done = outcomes
    assert done.all()
    expert_rate = succ[:N_EPISODES].mean()
    random_rate = succ[N_EPISODES:].mean()
    print(f"expert success {expert_rate:.3f}, mean length {length[:N_EPISODES].mean():.1f}; "
          f"random success {random_rate:.3f}, mean length {length[N_EPISODES:].mean():.1f}")
    assert expert_rate >= 0.9
    assert random_rate <= 0.05
    assert 15 <= length[:N_EPISODES][succ[:N_EPISODES]].mean() <= 80


def _obs_from_x(xs, M=16):
    """Observation with alive nodes at the given x (x-rank filled as the env does)."""
    n = len(xs)
    nodes = np.zeros((M, NUM_NODE_FEATURES), np.float32)
    order = np.argsort(xs, kind="stable")
    rank = np.empty(n)
    rank[order] = np.arange(n)
    nodes[:n, 0] = np.asarray(xs) / 600
    nodes[:n, 6] = rank / max(n - 1, 1)
    mask = np.arange(M) < n
    glob = np.zeros(NUM_GLOBAL_FEATURES, np.float32)
    glob[0] = n / M
    return Observation(jnp.asarray(nodes), jnp.asarray(mask), jnp.full((M,), -1, jnp.int32),
                       jnp.asarray(glob))


def test_expert_rule_by_hand(env_params):
    _, params = env_params
    fn = jax.jit(expert_action)
    # N = 8: q = 2 -> the two front nodes spawn; N <= Nc/2 = 12 -> nobody deletes
    xs = [50, 10, 30, 70, 20, 60, 40, 80]
    a = fn(jax.random.PRNGKey(0), _obs_from_x(xs), params)
    d = np.asarray(a.discrete)
    np.testing.assert_array_equal(d[:8], [0, 0, 0, 1, 0, 0, 0, 1])
    assert np.all(d[8:] == 0)
    # N = 14 > 12: q = 3 -> front 3 spawn, back 3 delete
    xs = list(range(100, 240, 10))[::-1]
    d = np.asarray(fn(jax.random.PRNGKey(0), _obs_from_x(xs), params).discrete)
    np.testing.assert_array_equal(d[:14], [1, 1, 1] + [0] * 8 + [2, 2, 2])
    # a lone node spawns
    d = np.asarray(fn(jax.random.PRNGKey(0), _obs_from_x([300.0]), params).discrete)
    assert d[0] == 1 and np.all(d[1:] == 0)
    lo, hi = continuous_bounds(params)
    np.testing.assert_allclose(np.asarray(a.continuous[0]), [float(hi[0]), float(lo[1]), float(lo[2]), 0.0])


def test_expert_vmap_matches_single(env_params):
    _, params = env_params
    obs = [_obs_from_x(xs) for xs in ([5, 1, 3], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 11, 12, 13], [2.0])]
    batch = jax.tree.map(lambda *a: jnp.stack(a), *obs)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    out = jax.jit(jax.vmap(expert_action, in_axes=(0, 0, None)))(keys, batch, params)
    for i, o in enumerate(obs):
        single = expert_action(keys[i], o, params)
        np.testing.assert_array_equal(np.asarray(out.discrete[i]), np.asarray(single.discrete))
        np.testing.assert_allclose(np.asarray(out.continuous[i]), np.asarray(single.continuous))
