"""Cost of the trainer's meta-gradient component weights (``trainer.advantage_weighting.mode: meta_gradient``)
against the same trainer with fixed equal weights, side by side in one process.

Config: ``experiments/configs/component_weights.yaml`` on Durotaxis-Sparse-v0 (the experiment's base). Two
jitted programs of ``--updates`` PPO updates (rollout + targets + ``update_epochs x num_minibatches`` steps),
``--seeds`` vmapped seeds each: ``plain`` (``fallback: mean``: the equal-weight sum, one backward pass per
minibatch) and ``meta`` (the same network step plus, per minibatch, the meta-gradient: an inner surrogate
forward + backward, the outer surrogate through the differentiable optimizer step, and the backward through
both). Each of ``--rounds`` rounds times one call of each, interleaved; reported: the median seconds per
update and the ratio meta / plain (the whole update, rollout included, is what a training run pays).

Usage: ``python benchmarks/meta_train_cost.py [--rounds 5 --updates 4 --seeds 8]``; writes
``benchmarks/results/meta_train_cost.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import block, load_bench_config, machine_info, machine_line, median, write_json  # noqa: E402

MODES = {
    "plain": ["trainer.advantage_weighting.enable_learnable_weights=false",
              "trainer.advantage_weighting.fallback=mean"],
    "meta": ["trainer.advantage_weighting.mode=meta_gradient", "trainer.advantage_weighting.weight_learning_rate=0.03"],
}


def main(argv=None) -> None:
    from balancedrl.training.trainer import make_run_chunk, make_train

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--updates", type=int, default=4, help="updates per timed call (4: the experiment's chunk, a compile-cache hit)")
    ap.add_argument("--seeds", type=int, default=8)
    args = ap.parse_args(argv)
    machine = machine_info()
    chunks, runners, compile_s = {}, {}, {}
    for name, ov in MODES.items():
        cfg = load_bench_config("component_weights.yaml", ["env.name=Durotaxis-Sparse-v0", *ov])
        trainer = make_train(cfg)
        runner = block(jax.jit(jax.vmap(trainer.init))(jax.random.split(jax.random.PRNGKey(0), args.seeds)))
        t0 = time.perf_counter()
        chunks[name] = make_run_chunk(trainer, args.updates, args.seeds)
        runners[name], _ = block(chunks[name](runner))  # compile + warm-up
        compile_s[name] = time.perf_counter() - t0
    times = {n: [] for n in MODES}
    for _ in range(args.rounds):
        for name in MODES:
            t0 = time.perf_counter()
            runners[name], _ = block(chunks[name](runners[name]))
            times[name].append((time.perf_counter() - t0) / args.updates)
    med = {n: median(v) for n, v in times.items()}
    ratio = med["meta"] / med["plain"]
    print(f"{machine_line(machine)}; load {machine['load_average_1_5_15min']}")
    for n in MODES:
        print(f"{n:>6}: {med[n]:.3f} s/update (median of {args.rounds}), compile + first call {compile_s[n]:.0f} s")
    print(f"meta / plain = {ratio:.2f}")
    path = write_json("meta_train_cost", {
        "config": "experiments/configs/component_weights.yaml + env.name=Durotaxis-Sparse-v0",
        "seeds": args.seeds, "updates_per_call": args.updates, "rounds": args.rounds,
        "seconds_per_update_median": med, "seconds_per_update_all": times, "ratio_meta_over_plain": ratio,
        "compile_and_first_call_s": compile_s,
    }, machine)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
