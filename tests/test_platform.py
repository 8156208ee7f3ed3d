"""Platform-v0 port: replay of every recorded step (docs/specs/parameterised_envs.md §4.3), reset, keyed step, random-policy stats."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from balancedrl.envs.platform import PARAM_HIGH, PARAM_LOW, Platform, PlatformNoise

# Copied from shared/reference/hybrid_envs/ (recorded episodes of the original implementation).
REF = Path(__file__).resolve().parent / "data" / "hybrid_envs" / "platform_reference.json"
N_PAD = 144  # longest possible flight (docs/specs/parameterised_envs.md §1.12)


@pytest.fixture(scope="module")
def ref():
    data = json.loads(REF.read_text())
    rows = {"state": [], "a": [], "p": [], "player": [], "enemy": [], "jump": [], "steps": []}
    for ep in data["episodes"]:
        prev = ep["init_state"]
        for s in ep["steps"]:
            k, nz = s["k"], s["noise"]
            pl, en = np.zeros(N_PAD), np.zeros(N_PAD)
            pl[:k], en[:k] = nz["player"], nz["enemy"]
            rows["state"].append(prev)
            rows["a"].append(s["a"])
            rows["p"].append(s["p"])
            rows["player"].append(pl)
            rows["enemy"].append(en)
            rows["jump"].append(np.zeros(2) if nz["jump"] is None else nz["jump"])
            rows["steps"].append(s)
            prev = s["state"]
    arrays = {key: np.asarray(v, np.float64) for key, v in rows.items() if key != "steps"}
    arrays["a"] = arrays["a"].astype(np.int32)
    return data, arrays, rows["steps"]


def _replay(env, arrays):
    params = env.default_params

    def one(sv, a, p, pl, en, j):
        state = env.state_from_vector(sv)
        return env.step_with_noise(state, {"discrete": a, "continuous": p}, params, PlatformNoise(pl, en, j))

    dt = env.dtype
    args = [jnp.asarray(arrays[key], dt) for key in ("state", "a", "p", "player", "enemy", "jump")]
    args[1] = jnp.asarray(arrays["a"], jnp.int32)
    obs, state, r, term, info = jax.jit(jax.vmap(one))(*args)
    return jax.tree.map(np.asarray, (obs, jax.vmap(env.state_to_vector)(state), r, term, info))


def _check(out, steps, atol_obs, atol_trace, atol_r):
    obs, state, r, term, info = out
    for i, s in enumerate(steps):
        k = s["k"]
        assert info["ticks"][i] == k, (i, info["ticks"][i], k)
        assert bool(term[i]) == s["done"], i
        np.testing.assert_array_equal(info["enemy_id"][i, :k], s["noise"]["enemy_id"])
        assert not info["tick_cap_hit"][i]
        np.testing.assert_allclose(obs[i], s["obs"], rtol=0, atol=atol_obs)
        np.testing.assert_allclose(state[i], s["state"], rtol=0, atol=atol_trace)
        np.testing.assert_allclose(info["trace"][i, :k], np.asarray(s["trace"]), rtol=0, atol=atol_trace)
        np.testing.assert_allclose(r[i], s["r"], rtol=0, atol=atol_r)


def test_replay_float32_all_steps(ref):
    _, arrays, steps = ref
    out = _replay(Platform(), arrays)
    # docs/specs/parameterised_envs.md §4.3: float32 keeps k/done/enemy_id; scaled obs error ~4e-7 (tolerance 1e-5). Raw trace: x ~ 1e3.
    _check(out, steps, atol_obs=1e-5, atol_trace=2e-3, atol_r=1e-5)


def test_replay_float64_all_steps_and_reset(ref):
    data, arrays, steps = ref
    with jax.enable_x64(True):
        env = Platform(jnp.float64)
        out = _replay(env, arrays)
        obs0, state0 = env.reset(jax.random.key(0))
        obs0, vec0 = np.asarray(obs0), np.asarray(env.state_to_vector(state0))
    _check(out, steps, atol_obs=1e-9, atol_trace=1e-9, atol_r=1e-9)
    for ep in data["episodes"]:
        np.testing.assert_array_equal(obs0, ep["init_obs"])
        np.testing.assert_array_equal(vec0, ep["init_state"])


def test_reset_float32(ref):
    data, _, _ = ref
    env = Platform()
    obs, state = jax.jit(env.reset)(jax.random.key(1))
    assert obs.dtype == jnp.float32 and obs.shape == (9,)
    np.testing.assert_allclose(np.asarray(obs), data["episodes"][0]["init_obs"], atol=1e-7)
    assert int(state.time) == 0


@pytest.fixture(scope="module")
def fns():
    env = Platform()
    return env, jax.jit(env.step_env), jax.jit(env.step_with_noise)


def test_keyed_step_matches_replay_of_same_draws(fns):
    """step_env draws normal(fold_in(key, t), 4) * (0.025, 0.025, 1, 1) per tick and shares the tick code."""
    env, step_env, step_noise = fns
    params = env.default_params
    _, state = env.reset(jax.random.key(0))
    key = jax.random.key(42)
    scale = jnp.asarray([0.025, 0.025, 1.0, 1.0])
    draws = jax.vmap(lambda t: jax.random.normal(jax.random.fold_in(key, t), (4,)) * scale)(jnp.arange(N_PAD))
    noise = PlatformNoise(draws[:, 0], draws[:, 1], draws[0, 2:])
    for a, p in [(1, [10.0, 300.0, 100.0]), (0, [25.0, 0.0, 0.0])]:
        act = {"discrete": jnp.int32(a), "continuous": jnp.asarray(p, jnp.float32)}
        o1, s1, r1, t1, i1 = step_env(key, state, act, params)
        o2, s2, r2, t2, i2 = step_noise(state, act, params, noise)
        np.testing.assert_array_equal(np.asarray(o1), np.asarray(o2))
        assert int(i1["ticks"]) == int(i2["ticks"]) and float(r1) == float(r2) and bool(t1) == bool(t2)
    # tick cap: same jitted function, params are dynamic
    act = {"discrete": jnp.int32(1), "continuous": jnp.asarray([0.0, 300.0, 0.0])}
    _, _, _, term, info = step_env(key, state, act, params.replace(max_ticks=5))
    assert int(info["ticks"]) == 5 and bool(info["tick_cap_hit"]) and not bool(term)


def test_step_jit_vmap_and_bounds(fns):
    env = fns[0]
    params = env.default_params
    n = 64
    keys = jax.random.split(jax.random.key(3), 3 * n).reshape(3, n)

    @jax.jit
    def run(keys):
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys[0], params)
        acts = jax.vmap(env.action_space(params).sample)(keys[1])
        return (obs, state, acts), jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys[2], state, acts, params)

    (obs, state, acts), (obs2, state2, r, term, trunc, info) = run(keys)
    assert obs2.shape == (n, 9) and r.shape == (n,) and term.dtype == jnp.bool_
    assert np.all(np.asarray(obs2) >= 0.0) and np.all(np.asarray(obs2) <= 1.0)
    ticks = np.asarray(info["ticks"])
    disc = np.asarray(acts["discrete"])
    assert np.all(ticks[disc == 0] <= 20) and np.all(ticks <= 144) and np.all(ticks >= 1)
    assert not np.any(np.asarray(info["tick_cap_hit"]))
    assert not np.any(np.asarray(trunc))


def test_action_space_and_param_mask():
    env = Platform()
    space = env.action_space(env.default_params)
    acts = jax.jit(jax.vmap(space.sample))(jax.random.split(jax.random.key(0), 300))
    disc, cont = np.asarray(acts["discrete"]), np.asarray(acts["continuous"])
    assert set(disc.tolist()) == {0, 1, 2}
    assert np.all(cont >= PARAM_LOW) and np.all(cont <= PARAM_HIGH) and cont.shape == (300, 3)
    mask = np.asarray(env.param_mask(jnp.asarray([0, 1, 2])))
    np.testing.assert_array_equal(mask, np.eye(3, dtype=bool))
    np.testing.assert_array_equal(env.param_owner, [0, 1, 2])


def test_bad_inputs():
    with pytest.raises(ValueError, match="dtype"):
        Platform(jnp.int32)
    with pytest.raises(TypeError, match="discrete"):
        env = Platform()
        env.step_env(jax.random.key(0), env.reset(jax.random.key(0))[1], 3, env.default_params)


def test_random_policy_statistics_small():
    """docs/specs/parameterised_envs.md §3: uniform random policy, mean return 0.154, mean length 2.17 (2,000 eps); 512 eps, wide tol."""
    env = Platform()
    params = env.default_params
    n, horizon = 512, 15

    def episode(key):
        k_reset, k_run = jax.random.split(key)
        _, state = env.reset(k_reset, params)

        def body(carry, k):
            state, alive, ret, length = carry
            ka, ks = jax.random.split(k)
            act = env.action_space(params).sample(ka)
            _, state, r, term, _ = env.step_env(ks, state, act, params)
            ret = ret + jnp.where(alive, r, 0.0)
            length = length + alive
            return (state, alive & ~term, ret, length), None

        init = (state, jnp.ones((), bool), jnp.zeros(()), jnp.zeros((), jnp.int32))
        (_, alive, ret, length), _ = jax.lax.scan(body, init, jax.random.split(k_run, horizon))
        return ret, length, alive

    ret, length, alive = jax.jit(jax.vmap(episode))(jax.random.split(jax.random.key(7), n))
    ret, length = np.asarray(ret), np.asarray(length)
    assert not np.any(np.asarray(alive))
    assert abs(ret.mean() - 0.154) < 0.025, ret.mean()
    assert abs(length.mean() - 2.17) < 0.3, length.mean()
    assert np.all(ret < 1.0)
