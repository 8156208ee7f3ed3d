"""Evaluation: success rate, mean return and mean steps to success over many vmapped episodes.

Each episode runs from its own reset for at most ``max_steps`` steps inside one ``lax.while_loop`` that stops
at the episode's end (under vmap: once every episode has ended), so only the first episode of each environment
counts. Policies:
``greedy`` (mode of the trained policy), ``sample`` (stochastic trained policy), ``random`` (uniform
discrete choice and uniform parameters in bounds) and ``expert`` (the scripted expert, when the adapter has
one).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from balancedrl import policy as hp
from balancedrl.training.adapters import EnvAdapter

POLICIES = ("greedy", "sample", "random", "expert")


def _max_steps(ad: EnvAdapter) -> int:
    return int(getattr(ad.env_params, "max_steps_in_episode", 200))


def make_evaluate(ad: EnvAdapter, policy_apply, num_episodes: int, mode: str):
    """Return jitted ``evaluate(net_vars, key) -> dict`` of per-episode arrays ``return``, ``length``,
    ``success`` ([num_episodes] each)."""
    if mode not in POLICIES:
        raise ValueError(f"evaluation policy {mode!r} is not allowed; allowed: {', '.join(POLICIES)}")
    if mode == "expert" and ad.expert is None:
        raise ValueError(f"evaluation policy 'expert' is not available for {ad.name}")
    env, params = ad.env, ad.env_params
    low = jnp.asarray(ad.cont_low, jnp.float32)
    high = jnp.asarray(ad.cont_high, jnp.float32)
    M, P, A = ad.num_slots, ad.num_continuous, ad.num_discrete
    steps = _max_steps(ad)

    def act(net_vars, key, obs):
        if mode == "random":
            k1, k2 = jax.random.split(key)
            d = jax.random.randint(k1, (M,), 0, A)
            c = jax.random.uniform(k2, (M, P), minval=low, maxval=high)
            return d, c
        if mode == "expert":
            return ad.expert(key, obs)
        out = policy_apply(net_vars, obs)
        if mode == "greedy":
            return hp.greedy(out.discrete_logits, out.cont_mean, low, high)
        s = hp.sample(
            key,
            out.discrete_logits,
            out.cont_mean,
            out.cont_log_std,
            ad.slot_mask(obs),
            ad.param_owner,
            low,
            high,
        )
        return s.discrete, s.squashed

    def episode(net_vars, key):
        k_reset, k_run = jax.random.split(key)
        obs, state = env.reset(k_reset, params)

        def cond(carry):
            t, _, _, active = carry[:4]
            return active & (t < steps)

        def step(carry):
            t, obs, state, active, ret, length, success = carry
            k_act, k_env = jax.random.split(jax.random.fold_in(k_run, t))
            d, c = act(net_vars, k_act, obs)
            obs, state, reward, terminated, truncated, info = env.step(
                k_env, state, ad.to_env_action(d, c), params
            )
            ret = ret + reward
            length = length + 1.0
            success = ad.success(info).astype(jnp.float32)
            active = ~(terminated | truncated)
            return (t + 1, obs, state, active, ret, length, success)

        # A while_loop, not a scan over max_steps: under vmap it stops once every episode has ended, which
        # matters for envs whose typical episode is far shorter than its cap (Platform, Goal).
        z = jnp.zeros((), jnp.float32)
        carry = (jnp.zeros((), jnp.int32), obs, state, jnp.ones((), bool), z, z, z)
        _, _, _, _, ret, length, success = jax.lax.while_loop(cond, step, carry)
        return {"return": ret, "length": length, "success": success}

    @jax.jit
    def evaluate(net_vars, key):
        return jax.vmap(episode, in_axes=(None, 0))(net_vars, jax.random.split(key, num_episodes))

    return evaluate


def summarize(result: dict) -> dict:
    """``success_rate``, ``mean_return``, ``mean_steps`` (mean length of successful episodes; null if none),
    ``mean_length`` and ``episodes``."""
    r = {k: np.asarray(v) for k, v in jax.device_get(result).items()}
    succ = r["success"] > 0.5
    return {
        "success_rate": float(succ.mean()),
        "mean_return": float(r["return"].mean()),
        "mean_steps": float(r["length"][succ].mean()) if succ.any() else None,
        "mean_length": float(r["length"].mean()),
        "episodes": int(succ.size),
    }
