"""Platform-v0 / Goal-v0: random-policy statistics (SPEC §3) and vmapped random-policy throughput.

Usage: ``python benchmarks/hybrid_env_throughput.py [--episodes 4000] [--steps 50]``
Writes ``benchmarks/results/hybrid_env_throughput.json`` (numbers + machine info).
Throughput = macro env steps per second of ``jax.vmap(env.step)`` (auto-reset) inside a jitted ``lax.scan``
with uniformly random actions, for 1, 64 and 1024 parallel envs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform as pyplatform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from balancedrl.envs.goal import Goal
from balancedrl.envs.platform import Platform


def random_episodes(env, n: int, horizon: int, seed: int = 0) -> dict:
    """First-episode return/length of ``n`` uniform-random episodes (vmapped, masked after termination)."""
    params = env.default_params

    def episode(key):
        k_reset, k_run = jax.random.split(key)
        _, state = env.reset(k_reset, params)

        def body(carry, k):
            state, alive, ret, length = carry
            ka, ks = jax.random.split(k)
            act = env.action_space(params).sample(ka)
            _, new, r, term, _ = env.step_env(ks, state, act, params)
            state = jax.tree.map(lambda x, y: jnp.where(alive, x, y), new, state)
            return (state, alive & ~term, ret + jnp.where(alive, r, 0.0), length + alive), None

        init = (state, jnp.ones((), bool), jnp.zeros(()), jnp.zeros((), jnp.int32))
        (_, alive, ret, length), _ = jax.lax.scan(body, init, jax.random.split(k_run, horizon))
        return ret, length, alive

    ret, length, alive = jax.jit(jax.vmap(episode))(jax.random.split(jax.random.key(seed), n))
    ret, length, alive = np.asarray(ret, np.float64), np.asarray(length), np.asarray(alive)
    return {
        "episodes": n,
        "mean_return": float(ret.mean()),
        "se_return": float(ret.std(ddof=1) / np.sqrt(n)),
        "mean_length": float(length.mean()),
        "success_rate": float(np.mean(ret >= (49.999 if isinstance(env, Goal) else 0.999999))),
        "unfinished_at_horizon": int(alive.sum()),
    }


def throughput(env, num_envs: int, steps: int, repeats: int = 3) -> float:
    params = env.default_params

    @jax.jit
    def run(key):
        k0, k1 = jax.random.split(key)
        _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k0, num_envs), params)

        def body(state, k):
            ka, ks = jax.random.split(k)
            act = jax.vmap(env.action_space(params).sample)(jax.random.split(ka, num_envs))
            _, state, r, _, _, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(ks, num_envs), state, act, params
            )
            return state, (r.sum(), info["ticks"].sum())

        _, (r, ticks) = jax.lax.scan(body, state, jax.random.split(k1, steps))
        return r.sum(), ticks.sum()

    jax.block_until_ready(run(jax.random.key(0)))  # compile
    best = float("inf")
    for i in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(run(jax.random.key(i + 1)))
        best = min(best, time.perf_counter() - t0)
    return num_envs * steps / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--episodes", type=int, default=4000)
    ap.add_argument("--steps", type=int, default=50, help="scan length for the throughput runs")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "hybrid_env_throughput.json"))
    args = ap.parse_args()
    result = {
        "machine": {
            "platform": pyplatform.platform(),
            "processor": pyplatform.processor(),
            "cpu_count": os.cpu_count(),
            "jax": jax.__version__,
            "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()],
        },
        "reference_random_policy": {
            "Platform-v0": {"mean_return": 0.154, "se_return": 0.002, "mean_length": 2.17},
            "Goal-v0": {"mean_return": -8.16, "se_return": 0.06, "mean_length": 1.04, "success_rate": 0.0005},
        },
        "random_policy": {},
        "steps_per_second": {},
    }
    for name, env, horizon in (("Platform-v0", Platform(), 30), ("Goal-v0", Goal(), 6)):
        t0 = time.perf_counter()
        stats = random_episodes(env, args.episodes, horizon)
        stats["seconds"] = time.perf_counter() - t0
        result["random_policy"][name] = stats
        print(name, "random policy:", json.dumps(stats))
        result["steps_per_second"][name] = {}
        for n in (1, 64, 1024):
            sps = throughput(env, n, args.steps)
            result["steps_per_second"][name][str(n)] = sps
            print(f"{name} num_envs={n}: {sps:,.0f} macro steps/s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print("wrote", out)


if __name__ == "__main__":
    main()
