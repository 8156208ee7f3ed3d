"""Parameterised-action benchmarks: random-policy statistics and vmapped random-policy throughput.

Platform-v0 / Goal-v0 (docs/specs/parameterised_envs.md §3) and HyAR's HardGoal-v0, CatchPoint-v0, HardMove-n{4,6,8,10}-v0 (docs/specs/hyar_envs.md §4.4;
``HardMove-n10-v0/shared`` is n = 10 with one shared parameter instead of 1,024).

Usage: ``python benchmarks/hybrid_env_throughput.py [--episodes 4000] [--steps 50] [--envs A,B] [--sizes 1,64,1024]``
Writes ``benchmarks/results/hybrid_env_throughput.json`` (numbers + machine info; entries of envs not run
this time are kept). Throughput = macro env steps per second of ``jax.vmap(env.step)`` (auto-reset) inside a
jitted ``lax.scan`` with uniformly random actions (``action_space.sample``), for 1, 64 and 1024 parallel envs.
Success: ``info["success"]`` where the env reports it, else Platform's end reached / Goal's +50.
Each throughput is recorded per wall second (``steps_per_second``) and per CPU second of this process
(``steps_per_cpu_second``: on a loaded shared machine, the estimate of what an idle one gives). The
machine's 1-minute load average at the start is in ``machine``.
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

from balancedrl.envs.catch_point import CatchPoint
from balancedrl.envs.goal import Goal
from balancedrl.envs.hard_goal import HardGoal
from balancedrl.envs.hard_move import HardMove
from balancedrl.envs.platform import Platform

# name -> (constructor, random-episode horizon)
ENVS = {
    "Platform-v0": (Platform, 30),
    "Goal-v0": (Goal, 6),
    "HardGoal-v0": (HardGoal, 6),
    "CatchPoint-v0": (CatchPoint, 25),
    **{f"HardMove-n{n}-v0": ((lambda n=n: HardMove(n)), 30) for n in (4, 6, 8, 10)},
    "HardMove-n10-v0/shared": ((lambda: HardMove(10, param_layout="shared")), 30),
}
# original code, uniform random actions and parameters (docs/specs/parameterised_envs.md §3, docs/specs/hyar_envs.md §4.4)
REFERENCE = {
    "Platform-v0": {"mean_return": 0.154, "se_return": 0.002, "mean_length": 2.17},
    "Goal-v0": {"mean_return": -8.16, "se_return": 0.06, "mean_length": 1.04, "success_rate": 0.0005},
    "HardGoal-v0": {"mean_return": -7.42, "se_return": 0.04, "mean_length": 1.01, "success_rate": 0.0005},
    "CatchPoint-v0": {"mean_return": -29.3, "se_return": 0.6, "mean_length": 21.3, "success_rate": 0.0445},
    "HardMove-n4-v0": {"mean_return": -40.8, "se_return": 0.8, "mean_length": 28.9, "success_rate": 0.0465},
    "HardMove-n10-v0": {"mean_return": -38.4, "se_return": 2.0, "mean_length": 28.8, "success_rate": 0.047},
}


def random_episodes(env, n: int, horizon: int, seed: int = 0) -> dict:
    """First-episode return/length of ``n`` uniform-random episodes (vmapped, masked after termination)."""
    params = env.default_params

    def episode(key):
        k_reset, k_run = jax.random.split(key)
        _, state = env.reset(k_reset, params)

        def body(carry, k):
            state, alive, ret, length, success = carry
            ka, ks = jax.random.split(k)
            act = env.action_space(params).sample(ka)
            _, new, r, term, info = env.step_env(ks, state, act, params)
            done = term | env.is_truncated(new, params)
            ok = info["success"] if "success" in info else jnp.zeros((), bool)
            state = jax.tree.map(lambda x, y: jnp.where(alive, x, y), new, state)
            return (
                state,
                alive & ~done,
                ret + jnp.where(alive, r, 0.0),
                length + alive,
                success | (alive & ok),
            ), None

        init = (state, jnp.ones((), bool), jnp.zeros(()), jnp.zeros((), jnp.int32), jnp.zeros((), bool))
        (_, alive, ret, length, success), _ = jax.lax.scan(body, init, jax.random.split(k_run, horizon))
        return ret, length, success, alive

    ret, length, success, alive = jax.jit(jax.vmap(episode))(jax.random.split(jax.random.key(seed), n))
    ret, length, alive = np.asarray(ret, np.float64), np.asarray(length), np.asarray(alive)
    if isinstance(env, (Platform, Goal)) and not isinstance(env, HardGoal):  # no info["success"]
        success = ret >= (49.999 if isinstance(env, Goal) else 0.999999)
    success = np.asarray(success, np.float64)
    return {
        "episodes": n,
        "mean_return": float(ret.mean()),
        "se_return": float(ret.std(ddof=1) / np.sqrt(n)),
        "mean_length": float(length.mean()),
        "success_rate": float(success.mean()),
        "se_success_rate": float(success.std(ddof=1) / np.sqrt(n)),
        "unfinished_at_horizon": int(alive.sum()),
    }


def throughput(env, num_envs: int, steps: int, repeats: int = 3) -> tuple[float, float]:
    """(env steps per wall second, env steps per CPU second of this process), each from the best call.
    On a shared, loaded machine the CPU-second figure is the one that estimates an idle machine."""
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
            return state, (r.sum(), info["ticks"].sum() if "ticks" in info else jnp.int32(num_envs))

        _, (r, ticks) = jax.lax.scan(body, state, jax.random.split(k1, steps))
        return r.sum(), ticks.sum()

    jax.block_until_ready(run(jax.random.key(0)))  # compile
    best, best_cpu = float("inf"), float("inf")
    for i in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        jax.block_until_ready(run(jax.random.key(i + 1)))
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return num_envs * steps / best, num_envs * steps / best_cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--episodes", type=int, default=4000)
    ap.add_argument("--steps", type=int, default=50, help="scan length for the throughput runs")
    ap.add_argument("--envs", default=",".join(ENVS), help=f"comma-separated subset of {list(ENVS)}")
    ap.add_argument("--sizes", default="1,64,1024", help="numbers of parallel envs")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "hybrid_env_throughput.json"))
    args = ap.parse_args()
    names = [n for n in args.envs.split(",") if n]
    unknown = sorted(set(names) - set(ENVS))
    if unknown:
        raise SystemExit(f"unknown env(s) {unknown}; known: {list(ENVS)}")
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.exists() else {}
    result["machine"] = {
        "platform": pyplatform.platform(),
        "processor": pyplatform.processor(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "load_average_at_start": os.getloadavg(),
    }
    result["reference_random_policy"] = REFERENCE
    for key in ("random_policy", "steps_per_second", "steps_per_cpu_second"):
        result.setdefault(key, {})
    for name in names:
        make_env, horizon = ENVS[name]
        env = make_env()
        t0 = time.perf_counter()
        stats = random_episodes(env, args.episodes, horizon)
        stats["seconds"] = time.perf_counter() - t0
        result["random_policy"][name] = stats
        print(name, "random policy:", json.dumps(stats))
        result["steps_per_second"][name] = {}
        result["steps_per_cpu_second"][name] = {}
        for n in (int(x) for x in args.sizes.split(",")):
            sps, cps = throughput(env, n, args.steps)
            result["steps_per_second"][name][str(n)] = sps
            result["steps_per_cpu_second"][name][str(n)] = cps
            print(f"{name} num_envs={n}: {sps:,.0f} macro steps/s (wall), {cps:,.0f} per CPU second")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print("wrote", out)


if __name__ == "__main__":
    main()
