"""Forward-pass cost of the policy networks: parameters and time per batch of observations.

For the default GNN-only policy and the default WSA policy (pretrained CNN frozen + random CNN +
GNN token): parameter counts (total / trainable) and the median wall time of one jitted forward
pass on a batch of `--batch` observations with M = `--max-nodes` slots (compile excluded; inputs
are real Durotaxis-v0 observations after a few expert steps, or synthetic trees with
`--synthetic`). Prints a table and writes JSON (with machine info) to
benchmarks/results/network_forward.json.

    python benchmarks/network_forward.py [--batch 64] [--reps 50]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from balancedrl.networks import (  # noqa: E402
    HybridActorCritic,
    NetworkConfig,
    count_params,
    frozen_mask,
    init_network,
)
from balancedrl.networks.testing import random_observation_batch  # noqa: E402
from benchmarks.common import machine_info, write_json  # noqa: E402


def observations(batch: int, max_nodes: int, synthetic: bool, seed: int = 0):
    if synthetic:
        return jax.tree_util.tree_map(
            jnp.asarray, random_observation_batch(np.random.default_rng(seed), batch, max_nodes)
        )
    from balancedrl.envs import expert_action, make

    env, params = make("Durotaxis-v0", max_nodes=max_nodes)
    keys = jax.random.split(jax.random.PRNGKey(seed), batch)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)

    def step(carry, k):  # a few expert steps so the clusters have grown
        obs, state = carry
        act = jax.vmap(expert_action, in_axes=(0, 0, None))(jax.random.split(k, batch), obs, params)
        out = jax.vmap(env.step, in_axes=(0, 0, 0, None))(jax.random.split(k, batch), state, act, params)
        return (out[0], out[1]), None

    (obs, _), _ = jax.jit(lambda c, ks: jax.lax.scan(step, c, ks))((obs, state), jax.random.split(keys[0], 8))
    return obs


def bench(config: NetworkConfig, obs, reps: int) -> dict:
    one = jax.tree_util.tree_map(lambda x: x[0], obs)
    variables = init_network(config, jax.random.PRNGKey(0), one)
    apply = jax.jit(HybridActorCritic(config).apply)
    t0 = time.perf_counter()
    jax.block_until_ready(apply(variables, obs))
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(apply(variables, obs))
        times.append(time.perf_counter() - t)
    frozen = frozen_mask(variables["params"], config)
    n_frozen = sum(
        int(np.size(p))
        for p, f in zip(
            jax.tree_util.tree_leaves(variables["params"]), jax.tree_util.tree_leaves(frozen), strict=False
        )
        if f
    )
    total = count_params(variables)
    return {
        "params_total": total,
        "params_trainable": total - n_frozen,
        "forward_ms_median": 1e3 * float(np.median(times)),
        "forward_ms_p10": 1e3 * float(np.percentile(times, 10)),
        "forward_ms_p90": 1e3 * float(np.percentile(times, 90)),
        "compile_s": compile_s,
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--max-nodes", type=int, default=64)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--synthetic", action="store_true")
    args = ap.parse_args(argv)
    if args.batch < 1 or args.max_nodes < 2 or args.reps < 1:
        raise SystemExit(f"--batch >= 1, --max-nodes >= 2, --reps >= 1 required, got {vars(args)}")
    obs = observations(args.batch, args.max_nodes, args.synthetic)
    configs = {"gnn_only": NetworkConfig(), "wsa": NetworkConfig(use_wsa=True)}
    rows = {name: bench(cfg, obs, args.reps) for name, cfg in configs.items()}
    print(
        f"{'network':<10} {'params':>9} {'trainable':>10} {'fwd ms (median)':>16} "
        f"{'p10-p90':>15} {'compile s':>10}"
    )
    for name, r in rows.items():
        print(
            f"{name:<10} {r['params_total']:>9} {r['params_trainable']:>10} {r['forward_ms_median']:>16.2f} "
            f"{r['forward_ms_p10']:>7.2f}-{r['forward_ms_p90']:<7.2f} {r['compile_s']:>10.1f}"
        )
    result = {
        "batch": args.batch,
        "max_nodes": args.max_nodes,
        "reps": args.reps,
        "inputs": "synthetic" if args.synthetic else "Durotaxis-v0 after 8 expert steps",
        "results": rows,
    }
    path = write_json("network_forward", result, machine_info())
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
