"""Durotaxis-v0 random-policy throughput: jitted, vmapped ``env.step`` (with gymnax auto-reset).

For each batch size the whole rollout is one ``lax.scan`` inside one ``jax.jit``; compile time is
excluded (a warm-up call), timings use ``block_until_ready``, best of ``--repeats``; env steps per wall
second and per CPU second of the process (the steadier figure on a loaded machine).

    .venv/bin/python benchmarks/env_throughput.py [--batches 1 64 1024] [--steps ...]

Writes a table to stdout and JSON to benchmarks/results/env_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from balancedrl.envs import make


def build_rollout(env, params, batch: int, steps: int):
    space = env.action_space(params)

    def rollout(key):
        k_reset, k_run = jax.random.split(key)
        _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, batch), params)

        def body(state, k):
            k_act, k_step = jax.random.split(k)
            action = jax.vmap(space.sample)(jax.random.split(k_act, batch))
            _, state, reward, term, trunc, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(k_step, batch), state, action, params
            )
            return state, reward.sum() + term.sum() + trunc.sum()

        state, out = jax.lax.scan(body, state, jax.random.split(k_run, steps))
        return out.sum()

    return jax.jit(rollout)


def measure(batch: int, steps: int, repeats: int) -> dict:
    env, params = make("Durotaxis-v0")
    fn = build_rollout(env, params, batch, steps)
    t0 = time.perf_counter()
    fn(jax.random.PRNGKey(0)).block_until_ready()
    compile_s = time.perf_counter() - t0
    best, best_cpu = float("inf"), float("inf")
    for r in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn(jax.random.PRNGKey(r + 1)).block_until_ready()
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return {
        "batch": batch,
        "steps": steps,
        "seconds": best,
        "steps_per_s": batch * steps / best,
        # per CPU second of this process: on a loaded shared machine, the estimate of an idle one
        "steps_per_cpu_s": batch * steps / best_cpu,
        "first_call_s": compile_s,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024])
    ap.add_argument("--steps", type=int, nargs="+", default=None, help="steps per batch size")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "env_throughput.json"))
    args = ap.parse_args(argv)
    default_steps = {1: 4000, 64: 1000, 1024: 200}
    steps = args.steps or [default_steps.get(b, max(50, 200_000 // b)) for b in args.batches]
    if len(steps) != len(args.batches):
        raise ValueError(f"--steps has {len(steps)} values for {len(args.batches)} batch sizes")
    rows = [measure(b, s, args.repeats) for b, s in zip(args.batches, steps, strict=False)]
    print(f"{'envs':>6} {'steps':>6} {'seconds':>9} {'env steps/s':>12} {'per CPU s':>12} {'first call s':>13}")
    for r in rows:
        print(f"{r['batch']:>6} {r['steps']:>6} {r['seconds']:>9.3f} {r['steps_per_s']:>12,.0f} "
              f"{r['steps_per_cpu_s']:>12,.0f} {r['first_call_s']:>13.1f}")
    result = {
        "env": "Durotaxis-v0",
        "policy": "uniform random (action_space.sample)",
        "includes_auto_reset": True,
        "rows": rows,
        "machine": {
            "processor": platform.processor(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "jax_backend": jax.default_backend(),
            "jax_version": jax.__version__,
            "devices": [str(d) for d in jax.devices()],
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    jnp.zeros(()).block_until_ready()
    main()
