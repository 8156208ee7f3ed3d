"""Cost of the balancing techniques: time of one ``trainer.update`` on Durotaxis-v0 (default.yaml) with
adaptive gradient scaling (the gradient-scaling source) on / off and learnable component weights (the component-weighting source) on / off.

Variants (everything else as ``default.yaml``): ``plain`` (both off: fixed 0.7/0.3 loss weights, `total`
advantage), ``grad_scaling`` (scaling on, norms measured on every minibatch as in the gradient-scaling source), ``grad_scaling_epoch``
(norms measured once per epoch, the other minibatches reuse the weights), ``learnable_weights`` (weights + attention on), ``both``.
Each variant's ``jax.jit(trainer.update)`` is compiled first; then ``--rounds`` rounds time every variant
once, interleaved (plain, grad_scaling, ..., plain, ...) so that machine-load drift hits all alike; the
median per variant is reported with its ratio to ``plain``. One update = rollout (num_envs x num_steps env
steps) + GAE + update_epochs x num_minibatches gradient steps, so the rollout is in both numerator and
denominator. Design aim: grad_scaling <= 1.5x plain.

Usage: ``python benchmarks/balance_overhead.py [--quick] [--rounds 7]``
Writes ``benchmarks/results/balance_overhead.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    block,
    format_table,
    load_bench_config,
    machine_info,
    machine_line,
    median,
    time_call,
    write_json,
)

GS = "trainer.gradient_scaling.enable_adaptive_scaling"
LW = "trainer.advantage_weighting.enable_learnable_weights"
AT = "trainer.advantage_weighting.enable_attention_weighting"
NR = "trainer.balancer.norm_refresh"
VARIANTS = {
    "plain": [f"{GS}=false", f"{LW}=false", f"{AT}=false"],
    "grad_scaling": [f"{GS}=true", f"{NR}=minibatch", f"{LW}=false", f"{AT}=false"],
    "grad_scaling_epoch": [f"{GS}=true", f"{NR}=epoch", f"{LW}=false", f"{AT}=false"],
    "learnable_weights": [f"{GS}=false", f"{LW}=true", f"{AT}=true"],
    "both": [f"{GS}=true", f"{NR}=minibatch", f"{LW}=true", f"{AT}=true"],
}


def main(argv=None) -> dict:
    from balancedrl.training.trainer import make_train

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds instead of --rounds")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra config override for every variant (repeatable)",
    )
    a = ap.parse_args(argv)
    rounds = 3 if a.quick else a.rounds
    machine = machine_info()
    fns, runners, compile_s = {}, {}, {}
    for name, ov in VARIANTS.items():
        cfg = load_bench_config("default.yaml", [*ov, *a.overrides])
        tr = make_train(cfg)
        runner = block(jax.jit(tr.init)(jax.random.PRNGKey(0)))
        fn = jax.jit(tr.update)
        t0 = time.perf_counter()
        block(fn(runner))
        compile_s[name] = time.perf_counter() - t0
        fns[name], runners[name] = fn, runner
        print(f"compiled {name:<18} ({compile_s[name]:.1f} s)", flush=True)
    times = {n: [] for n in VARIANTS}
    for _ in range(rounds):
        for n in VARIANTS:
            dt, _ = time_call(fns[n], runners[n])
            times[n].append(dt)
    base = median(times["plain"])
    rows = [
        {
            "variant": n,
            "median_s": median(t),
            "min_s": min(t),
            "ratio": median(t) / base,
            "compile_and_first_s": compile_s[n],
            "times_s": t,
        }
        for n, t in times.items()
    ]
    print()
    print(
        f"one trainer.update on Durotaxis-v0 (default.yaml: {cfg.env.num_envs} envs x "
        f"{cfg.trainer.num_steps} "
        f"steps, {cfg.trainer.update_epochs} epochs x {cfg.trainer.num_minibatches} minibatches), "
        f"{rounds} interleaved rounds, {machine_line(machine)}"
    )
    print(
        format_table(
            rows,
            [
                ("variant", "variant", ""),
                ("median_s", "median s", ".3f"),
                ("min_s", "min s", ".3f"),
                ("ratio", "x plain (median)", ".2f"),
            ],
        )
    )
    ratio = {r["variant"]: r["ratio"] for r in rows}
    for name in ("grad_scaling", "grad_scaling_epoch"):
        if name in ratio:
            verdict = "met" if ratio[name] <= 1.5 else "NOT met"
            print(f"{name} / plain = {ratio[name]:.2f}x (design aim <= 1.5x: {verdict})")
    for name in ("learnable_weights", "both"):
        if name in ratio:
            print(f"{name} / plain = {ratio[name]:.2f}x")
    payload = {
        "quick": a.quick,
        "rounds": rounds,
        "config": "default.yaml",
        "overrides": a.overrides,
        "rows": rows,
    }
    path = write_json("balance_overhead", payload, machine)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
