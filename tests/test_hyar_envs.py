"""HyAR's extra benchmarks (Hard Goal, Catch Point, Hard Move n = 4..10): replay of every recorded step of
the original code (docs/specs/hyar_envs.md §4.5), actuator tables, float32 discrete outcomes, random-policy statistics."""

from __future__ import annotations

import json
from functools import lru_cache, partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from balancedrl.envs import make
from balancedrl.envs.catch_point import CatchPoint
from balancedrl.envs.goal import GoalNoise
from balancedrl.envs.hard_goal import HardGoal
from balancedrl.envs.hard_move import HardMove, actuator_bits, actuator_tables

# Copied from shared/reference/hybrid_envs_2/ (recordings of the original HyAR code, every draw stored).
DATA = Path(__file__).resolve().parent / "data" / "hybrid_envs_2"
N_PAD = 144  # longest recorded Hard Goal step has 142 ticks


@lru_cache(maxsize=None)
def _load(name: str) -> dict:
    return json.loads((DATA / name).read_text())


# ---------------------------------------------------------------------- actuator tables
@pytest.mark.parametrize("n", [4, 6, 8, 10])
def test_actuator_tables_bit_exact(n):
    """docs/specs/hyar_envs.md §3.2: movement, motions and max_dist equal the original's to the last bit (BLAS sum order)."""
    ref = _load("hard_move_tables.json")[f"n{n}"]
    t = actuator_tables(n)
    np.testing.assert_array_equal(t["movement"], np.asarray(ref["movement"]))
    np.testing.assert_array_equal(t["motions"], np.asarray(ref["motions"]))
    assert t["max_dist"] == ref["max_dist"]
    # a plain left-to-right sum differs in some rows for n >= 8 (so the order matters and is tested)
    plain = np.zeros((2**n, 2))
    for k in range(n):
        plain = plain + actuator_bits(n)[:, k, None] * t["movement"][k]
    assert (np.any(plain / t["max_dist"] != t["motions"])) == (n >= 8)


def test_actuator_bit_order():
    """LSB of a drives actuator n - 1 (docs/specs/hyar_envs.md §3.7): n = 4, a = 1 moves in -y; a = 8 (actuator 0) in +x."""
    bits = actuator_bits(4)
    np.testing.assert_array_equal(bits[1], [0, 0, 0, 1])
    np.testing.assert_array_equal(bits[8], [1, 0, 0, 0])
    m = actuator_tables(4)["motions"]
    assert m[1][1] < 0 and m[1][0] == 0 and m[8][0] > 0 and m[8][1] == 0
    np.testing.assert_array_equal(m[[0, 5, 10, 15]], 0.0)  # cancelling patterns
    np.testing.assert_array_equal(actuator_tables(10)["motions"][[528, 1023]], 0.0)


# ---------------------------------------------------------------------- point-mass envs (Catch Point, Hard Move)
POINT_CASES = {
    "catch_point": ("catch_point_reference.json", lambda dt: CatchPoint(dt), 25),
    "hard_move_n4": ("hard_move_n4_reference.json", lambda dt: HardMove(4, dt), 30),
    "hard_move_n10": ("hard_move_n10_reference.json", lambda dt: HardMove(10, dt), 30),
    # same recording, one shared parameter p = params[a] (checked in float32 only, to keep compiles few)
    "hard_move_n10_shared": ("hard_move_n10_reference.json", lambda dt: HardMove(10, dt, "shared"), 30),
}


def _point_arrays(case: str):
    fname, _, T = POINT_CASES[case]
    data = _load(fname)
    eps = data["episodes"]
    A = 2 ** data["constants"]["N_ACTUATORS"] if "N_ACTUATORS" in data["constants"] else 1
    E = len(eps)
    a = np.zeros((E, T), np.int32)
    cont = np.zeros((E, T, A))
    for e, ep in enumerate(eps):
        for t, s in enumerate(ep["steps"]):
            a[e, t] = s["a"]
            if "p_all" in s:
                cont[e, t] = s["p_all"]
            elif A == 1:
                cont[e, t, 0] = s["p"]
            else:
                cont[e, t, s["a"]] = s["p"]
    draws = np.asarray([ep["reset_draws"] for ep in eps])
    if case.endswith("_shared"):
        cont = np.take_along_axis(cont, a[..., None], axis=-1)
    return eps, draws, a, cont


def _rollout(env):
    """vmapped free-running episodes from recorded reset draws with recorded actions (no auto-reset)."""
    params = env.default_params

    def episode(d, acts, conts):
        state = env.reset_from_draws(d)
        obs0 = env.get_obs(state)

        def body(state, x):
            obs, new, r, term, info = env.step_env(
                jax.random.key(0), state, {"discrete": x[0], "continuous": x[1]}, params
            )
            trunc = env.is_truncated(new, params)
            out = (obs, env.state_to_vector(new), r, term, trunc, info["success"], info["force"])
            return new, out

        _, outs = jax.lax.scan(body, state, (acts, conts))
        return obs0, env.state_to_vector(state), outs

    return jax.vmap(episode)


def _replay_point_cases(cases, dtype):
    """All cases in ONE jitted program (compiles are the slow part on a loaded CPU)."""
    envs = {c: POINT_CASES[c][1](dtype) for c in cases}
    arrays = {c: _point_arrays(c) for c in cases}
    inputs = {
        c: (jnp.asarray(d, dtype), jnp.asarray(a), jnp.asarray(cont, dtype))
        for c, (_, d, a, cont) in arrays.items()
    }
    outs = jax.jit(lambda x: {c: _rollout(envs[c])(*x[c]) for c in cases})(inputs)
    return {c: (arrays[c][0], jax.tree.map(np.asarray, outs[c])) for c in cases}


def _check_point(eps, out, atol):
    obs0, state0, (obs, state, r, term, trunc, success, force) = out
    for e, ep in enumerate(eps):
        np.testing.assert_allclose(obs0[e], ep["init_obs"], rtol=0, atol=atol)
        np.testing.assert_allclose(state0[e], ep["init_state"], rtol=0, atol=atol)
        n = ep["length"]
        ended = term[e] | trunc[e]
        assert int(np.argmax(ended)) + 1 == n and ended.any(), (ep["name"], n)
        assert bool(success[e, n - 1]) == ep["success"] and not success[e, : n - 1].any(), ep["name"]
        for t, s in enumerate(ep["steps"]):
            assert bool(term[e, t]) == s["done"] and bool(trunc[e, t] & ~term[e, t]) == s["truncated"], (
                ep["name"],
                t,
            )
            np.testing.assert_allclose(obs[e, t], s["obs"], rtol=0, atol=atol, err_msg=f"{ep['name']} {t}")
            np.testing.assert_allclose(
                state[e, t], s["state"], rtol=0, atol=atol, err_msg=f"{ep['name']} {t}"
            )
            np.testing.assert_allclose(r[e, t], s["r"], rtol=0, atol=atol, err_msg=f"{ep['name']} {t}")
            np.testing.assert_allclose(force[e, t], s["force"][:2], rtol=0, atol=atol)
        ret = r[e, :n].astype(np.float64).sum()
        np.testing.assert_allclose(ret, ep["return"], rtol=0, atol=atol * 30)


def test_point_envs_replay_float64():
    """Every recorded step, free-running from the recorded reset draws: all values within 1e-9, identical
    termination, truncation, success and episode lengths (Catch Point: also the catch budget)."""
    with jax.enable_x64(True):
        out = _replay_point_cases([c for c in POINT_CASES if not c.endswith("_shared")], jnp.float64)
    for eps, res in out.values():
        _check_point(eps, res, atol=1e-9)


def test_point_envs_replay_float32_discrete_outcomes():
    """float32: identical done / truncated / success flags and episode lengths; values within 1e-4
    (Hard Move n = 10 also with ``param_layout="shared"``)."""
    for eps, res in _replay_point_cases(list(POINT_CASES), jnp.float32).values():
        _check_point(eps, res, atol=1e-4)


# ---------------------------------------------------------------------- Hard Goal (Goal-v0 physics, per-step replay)
@pytest.fixture(scope="module")
def hard_goal_ref():
    return _hard_goal_arrays()


def _hard_goal_arrays():
    """Per-step replay inputs: previous raw state and step counter, action, draws padded to N_PAD."""
    data = _load("hard_goal_reference.json")
    rows = {"state": [], "time": [], "a": [], "p": [], "act": [], "goalie": [], "first": [], "y0": []}
    steps = []
    for ep in data["episodes"]:
        prev, t = ep["init_state"], ep.get("init_time", 0)
        for j, s in enumerate(ep["steps"]):
            act, goalie = np.zeros((N_PAD, 3)), np.zeros((N_PAD, 3))
            an = np.asarray(s.get("act_noise", []), np.float64).reshape(-1, 3)
            gn = np.asarray(s.get("goalie_noise", []), np.float64).reshape(-1, 3)
            act[: len(an)], goalie[: len(gn)] = an, gn
            for key, v in (
                ("state", prev),
                ("time", t),
                ("a", s["a"]),
                ("p", s["p"]),
                ("act", act),
                ("goalie", goalie),
                ("first", j == 0),
                ("y0", ep["reset_draw"]),
            ):
                rows[key].append(v)
            steps.append((ep, j, s))
            prev, t = s["state"], s["time"]
    return data, {k: np.asarray(v) for k, v in rows.items()}, steps


def _hard_goal_replay(env, arrays, reset_first: bool):
    params = env.default_params
    dt = env.dtype

    def one(sv, t, a, p, an, gn, first, y0):
        state = env.state_from_vector(sv, t)
        if reset_first:
            fresh = env.reset_from_y0(y0).replace(time=state.time)
            state = jax.tree.map(lambda x, y: jnp.where(first, x, y), fresh, state)
        return env.step_with_noise(state, {"discrete": a, "continuous": p}, params, GoalNoise(an, gn))

    args = [jnp.asarray(arrays[k], dt) for k in ("state",)]
    args += [jnp.asarray(arrays["time"], jnp.int32), jnp.asarray(arrays["a"], jnp.int32)]
    args += [jnp.asarray(arrays[k], dt) for k in ("p", "act", "goalie")]
    args += [jnp.asarray(arrays["first"]), jnp.asarray(arrays["y0"], dt)]

    def all_steps(*args):
        obs, state, r, term, info = jax.vmap(one)(*args)
        fresh = jax.vmap(env.reset_from_y0)(args[-1])  # the port's reset from each episode's draw
        reset = (jax.vmap(env.get_obs)(fresh), jax.vmap(env.raw_obs)(fresh))
        return obs, jax.vmap(env.raw_obs)(state), r, term, info, reset

    return jax.tree.map(np.asarray, jax.jit(all_steps)(*args))


def _check_hard_goal(out, steps, atol_obs, atol_trace, atol_r):
    obs, state, r, term, info, _ = out
    for i, (ep, j, s) in enumerate(steps):
        k = s["k"]
        where = f"{ep['name']} step {j}"
        assert info["ticks"][i] == k, where
        assert bool(term[i]) == s["done"] and int(info["time"][i]) == s["time"], where
        assert "".join("KDT"[c] for c in info["do"][i, :k]) == s.get("do", ""), where
        assert int(info["goal_action"][i]) == s["env_a"], where
        last = j == len(ep["steps"]) - 1
        assert bool(info["success"][i]) == (last and ep["success"]), where
        assert not info["tick_cap_hit"][i]
        np.testing.assert_allclose(obs[i], s["obs"], rtol=0, atol=atol_obs, err_msg=where)
        np.testing.assert_allclose(state[i], s["state"], rtol=0, atol=atol_trace, err_msg=where)
        if k:
            np.testing.assert_allclose(info["trace"][i, :k], np.asarray(s["trace"]), rtol=0, atol=atol_trace)
        np.testing.assert_allclose(r[i], s["r"], rtol=0, atol=atol_r, err_msg=where)
        n_u = len(s["u"])
        np.testing.assert_allclose(info["u"][i, :n_u], s["u"], rtol=0, atol=atol_obs, err_msg=where)
        np.testing.assert_allclose(info["env_p"][i, :n_u], s["env_p"], rtol=0, atol=atol_obs, err_msg=where)


def test_hard_goal_replay_float64_all_steps_and_reset(hard_goal_ref):
    """All 68 recorded steps (2,306 ticks) within 1e-9: scaled obs, state, tick traces, rewards, u, env_p;
    identical tick counts, tick letters, done, time and success; reset from the draw within 1e-12."""
    data, arrays, steps = hard_goal_ref
    with jax.enable_x64(True):
        out = _hard_goal_replay(HardGoal(jnp.float64), arrays, reset_first=False)
    _check_hard_goal(out, steps, atol_obs=1e-9, atol_trace=1e-9, atol_r=1e-9)
    init_obs, init_state = out[-1]
    first = arrays["first"]
    np.testing.assert_allclose(
        init_obs[first], [ep["init_obs"] for ep in data["episodes"]], rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(
        init_state[first], [ep["init_state"] for ep in data["episodes"]], rtol=0, atol=1e-12
    )


def test_hard_goal_replay_float32_discrete_outcomes(hard_goal_ref):
    """float32 (first steps from the port's own reset, as Goal-v0's float32 test): identical tick counts,
    tick letters, done, time, Goal action and success on every step; values within 1e-3 (obs, u, env_p)
    and 5e-3 (states, tick traces, rewards; measured 4.8e-4 and 1.7e-3)."""
    _, arrays, steps = hard_goal_ref
    out = _hard_goal_replay(HardGoal(), arrays, reset_first=True)
    _check_hard_goal(out, steps, atol_obs=1e-3, atol_trace=5e-3, atol_r=5e-3)


def test_hard_goal_action_mapping():
    """docs/specs/hyar_envs.md §1.2-1.3 by hand: p = +1 gives a region's first bound; region 2 ignores p; kick-to rescale."""
    cases = np.array(  # (a, p[a + 1], Goal action, u)
        [
            (1, 1.0, 1, -1.0),
            (1, -1.0, 1, -0.6),
            (5, -1.0, 1, 1.0),
            (9, 1.0, 2, 0.2),
            (3, 0.7, 1, 0.2),
            (8, -0.3, 2, 0.2),
            (6, -2.5, 2, -0.3),
            (7, -2.5, 2, 0.1),
        ]
    )
    a = cases[:, 0].astype(np.int32)
    cont = np.zeros((len(cases) + 1, 12), np.float32)
    cont[np.arange(len(cases)), a + 1] = cases[:, 1]
    cont[-1, :2] = (-0.95, 0.3)  # kick-to
    a = np.r_[a, 0].astype(np.int32)
    g, cont4, u, env_p = jax.tree.map(
        np.asarray,
        jax.jit(jax.vmap(lambda a, c: HardGoal().goal_action({"discrete": a, "continuous": c})))(a, cont),
    )
    np.testing.assert_array_equal(g, np.r_[cases[:, 2], 0])
    np.testing.assert_allclose(u[:-1, 0], cases[:, 3], atol=1e-6)
    np.testing.assert_allclose(
        env_p[:-1, 0], 14.020000457763672 * (cases[:, 3] + 1) / 2 - 7.010000228881836, atol=2e-6
    )
    np.testing.assert_allclose(env_p[-1], [1.0, 4.5], atol=1e-5)
    np.testing.assert_allclose(cont4[-1, :2], [1.0, 4.5], atol=1e-5)


# ---------------------------------------------------------------------- spaces, registry, jit / vmap
ALL_NAMES = [
    "HardGoal-v0",
    "CatchPoint-v0",
    "HardMove-n4-v0",
    "HardMove-n6-v0",
    "HardMove-n8-v0",
    "HardMove-n10-v0",
]


def test_registry_and_uniform_action_samples():
    """make() builds each env; action samples are uniform over the discrete actions and [-1, 1]^P
    (means and standard deviations within 5 standard errors)."""
    for name in ALL_NAMES:
        assert make(name)[0].name == name
    # n = 6, 8 share n = 4's and n = 10's code; fewer spaces, fewer compiles
    envs = {
        name: make(name) for name in ("HardGoal-v0", "CatchPoint-v0", "HardMove-n4-v0", "HardMove-n10-v0")
    }
    sizes = {n: 4000 if len(e.param_low) <= 64 else 400 for n, (e, _) in envs.items()}
    keys = {n: jax.random.split(jax.random.key(i), sizes[n]) for i, n in enumerate(envs)}
    samples = jax.jit(lambda k: {n: jax.vmap(e.action_space(p).sample)(k[n]) for n, (e, p) in envs.items()})(
        keys
    )
    for name, (env, _) in envs.items():
        assert env.name == name
        N, A, P = sizes[name], env.num_actions, len(env.param_low)
        disc, cont = np.asarray(samples[name]["discrete"]), np.asarray(samples[name]["continuous"])
        assert disc.shape == (N,) and disc.min() >= 0 and disc.max() <= A - 1
        if A <= 64:
            assert len(np.unique(disc)) == A
        assert abs(disc.mean() - (A - 1) / 2) < 5 * A / np.sqrt(12 * N)
        assert cont.shape == (N, P) and cont.min() >= -1 and cont.max() <= 1
        assert abs(cont.mean()) < 5 / np.sqrt(3 * N * P)
        assert abs(cont.std() - 1 / np.sqrt(3)) < 5 * np.sqrt(0.0667 / (N * P))  # s.d. of a uniform's s.d.
        assert len(env.param_owner) == P


def test_step_vmap_over_params():
    """gymnax ``step`` (auto-reset) vmapped over keys and over params with different episode caps."""
    envs = {name: make(name) for name in ("CatchPoint-v0",)}

    def run(env, key, p):
        k0, k1, k2 = jax.random.split(key, 3)
        _, state = env.reset(k0, p)
        return env.step(k2, state, env.action_space(p).sample(k1), p)

    keys = jax.random.split(jax.random.key(1), 2)
    vparams = {n: jax.tree.map(lambda x: jnp.asarray([x, 1]), p) for n, (_, p) in envs.items()}  # cap 1
    outs = jax.jit(lambda k, vp: {n: jax.vmap(partial(run, e))(k, vp[n]) for n, (e, _) in envs.items()})(
        keys, vparams
    )
    for obs, state, r, term, trunc, info in outs.values():
        assert obs.shape == (2, 4) and r.shape == (2,) and info["success"].shape == (2,)
        assert bool(trunc[1]) and not bool(trunc[0])
        assert np.asarray(state.time).tolist() == [1, 0] or bool(term[0])  # auto-reset after the cap


def test_bad_inputs():
    with pytest.raises(ValueError, match="n \\(number of actuators\\)"):
        HardMove(0)
    with pytest.raises(ValueError, match="param_layout"):
        HardMove(4, param_layout="factorised")
    with pytest.raises(ValueError, match="dtype"):
        CatchPoint(jnp.float16)
    env = HardMove(4)
    state = env.reset_from_draws(np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="16 entries"):
        env.step_env(
            jax.random.key(0), state, {"discrete": 1, "continuous": jnp.zeros(1)}, env.default_params
        )
    with pytest.raises(ValueError, match="shape \\(12,\\)"):
        HardGoal().goal_action({"discrete": 1, "continuous": jnp.zeros(4)})
    with pytest.raises(ValueError, match="param_layout"):
        make("HardMove-n4-v0", param_layout="bits")
    with pytest.raises(ValueError, match="unknown parameter"):
        make("CatchPoint-v0", radius=1.0)


# ---------------------------------------------------------------------- random-policy statistics (docs/specs/hyar_envs.md §4.4)
def _random_policy(env, n: int, horizon: int, seed: int):
    """vmapped (over keys and params) uniform-random episodes: return, length, success, still alive."""

    def episode(key, params):
        k_reset, k_run = jax.random.split(key)
        _, state = env.reset(k_reset, params)

        def body(carry, k):
            state, alive, ret, length, success = carry
            ka, ks = jax.random.split(k)
            _, new, r, term, info = env.step_env(ks, state, env.action_space(params).sample(ka), params)
            done = term | env.is_truncated(new, params)
            state = jax.tree.map(lambda x, y: jnp.where(alive, x, y), new, state)
            return (
                state,
                alive & ~done,
                ret + jnp.where(alive, r, 0.0),
                length + alive,
                success | (alive & info["success"]),
            ), None

        init = (state, jnp.ones((), bool), jnp.zeros(()), jnp.zeros((), jnp.int32), jnp.zeros((), bool))
        (_, alive, ret, length, success), _ = jax.lax.scan(body, init, jax.random.split(k_run, horizon))
        return ret, length, success, alive

    batched = jax.tree.map(lambda x: jnp.full((n,), x), env.default_params)  # vmapped over params too
    return jax.vmap(episode)(jax.random.split(jax.random.key(seed), n), batched)


# (env, episodes, horizon, docs/specs/hyar_envs.md §4.4: mean return, its s.e., mean length, success count, reference episodes)
RANDOM_CASES = {
    "HardGoal-v0": (lambda: HardGoal(), 128, 4, -7.42, 0.04, 1.01, 1, 2000),
    "CatchPoint-v0": (lambda: CatchPoint(), 1536, 25, -29.3, 0.6, 21.3, 89, 2000),
    "HardMove-n4-v0": (lambda: HardMove(4), 1536, 30, -40.8, 0.8, 28.9, 93, 2000),
    "HardMove-n10-v0": (lambda: HardMove(10, param_layout="shared"), 1024, 30, -38.4, 2.0, 28.8, 14, 300),
}


@lru_cache(maxsize=None)
def _random_stats(names: tuple) -> dict:
    """The named cases' random-policy runs in ONE jitted program."""
    envs = {name: RANDOM_CASES[name][0]() for name in names}
    f = jax.jit(lambda: {n: _random_policy(e, *RANDOM_CASES[n][1:3], seed=7) for n, e in envs.items()})
    return {n: [np.asarray(x, np.float64) for x in v] for n, v in f().items()}


@pytest.mark.parametrize("name", list(RANDOM_CASES))
def test_random_policy_matches_original(name):
    """Uniform random actions and parameters with the port's own RNG: success rate, mean return and mean
    length agree with the original's (docs/specs/hyar_envs.md §4.4) within 4 combined standard errors."""
    _, n, _, ref_ret, ref_se, ref_len, ref_succ, ref_n = RANDOM_CASES[name]
    group = (
        ("HardGoal-v0",) if name == "HardGoal-v0" else tuple(c for c in RANDOM_CASES if c != "HardGoal-v0")
    )
    ret, length, success, alive = _random_stats(group)[name]
    assert not alive.any()
    p_ref = ref_succ / ref_n
    se = np.sqrt(max(p_ref, 1 / ref_n) * (1 - p_ref) / ref_n + max(success.mean(), 1 / n) / n)
    assert abs(success.mean() - p_ref) < 4 * se, (success.mean(), p_ref, se)
    se_ret = np.hypot(ret.std(ddof=1) / np.sqrt(n), ref_se)
    assert abs(ret.mean() - ref_ret) < 4 * se_ret, (ret.mean(), ref_ret, se_ret)
    # the reference lengths are given to 3 digits; their s.e. is not given
    assert abs(length.mean() - ref_len) < 4 * length.std(ddof=1) / np.sqrt(n) + 0.02 * ref_len
