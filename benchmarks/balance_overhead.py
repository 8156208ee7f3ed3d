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

``--balancers``: one row per registered balancer instead (``trainer.balancer.name``), on each task of
``--tasks`` (``durotaxis``: default.yaml; ``platform``: platform.yaml) with K = 2 (discrete, continuous) and
K = 4 (+ value, entropy) balanced losses, every other technique off, per-epoch refresh
(``norm_refresh=epoch``); each row is x ``sum`` on the same task and K, timed interleaved in the same
process. Design aims (issue 15): every method <= 1.5x, FAMO and uncertainty weighting <= 1.1x.

Usage: ``python benchmarks/balance_overhead.py [--quick] [--rounds 7] [--balancers [--tasks platform] [--k 2]]``
Writes ``benchmarks/results/balance_overhead.json`` (``balancer_overhead_<task>.json`` per task with ``--balancers``,
so that one task's rows never overwrite another's).
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


TASKS = {"durotaxis": "default.yaml", "platform": "platform.yaml"}
LOSS_SETS = {2: "[discrete, continuous]", 4: "[discrete, continuous, value, entropy]"}
OFF = [f"{GS}=false", f"{LW}=false", f"{AT}=false", "trainer.reward_normalization.enable=false"]


def balancer_variants(tasks, ks) -> dict:
    """``{(task, K, method): (config file, overrides)}`` for every registered balancer but ``fixed``."""
    from balancedrl.balancers import available

    out = {}
    for task in tasks:
        for k in ks:
            for method in [m for m in available() if m != "fixed"]:
                ov = OFF + [f"trainer.balancer.name={method}", f"trainer.balancer.losses={LOSS_SETS[k]}", f"{NR}=epoch"]
                out[(task, k, method)] = (TASKS[task], ov)
    return out


def time_interleaved(variants: dict, overrides: list[str], rounds: int) -> tuple[dict, dict]:
    """Compile each variant's ``jax.jit(trainer.update)``, then time all of them once per round,
    interleaved. Returns ``(times_s per variant, compile_s per variant)``."""
    from balancedrl.training.trainer import make_train

    fns, runners, compile_s = {}, {}, {}
    for name, (config, ov) in variants.items():
        tr = make_train(load_bench_config(config, [*ov, *overrides]))
        runner = block(jax.jit(tr.init)(jax.random.PRNGKey(0)))
        fn = jax.jit(tr.update)
        t0 = time.perf_counter()
        block(fn(runner))
        compile_s[name] = time.perf_counter() - t0
        fns[name], runners[name] = fn, runner
        print(f"compiled {name} ({compile_s[name]:.1f} s)", flush=True)
    times = {n: [] for n in variants}
    for _ in range(rounds):
        for n in variants:
            times[n].append(time_call(fns[n], runners[n])[0])
    return times, compile_s


def main_balancers(a, rounds: int, machine) -> dict:
    variants = balancer_variants(a.tasks, a.k)
    times, compile_s = time_interleaved(variants, a.overrides, rounds)
    rows = []
    for (task, k, method), t in times.items():
        base = median(times[(task, k, "sum")])
        rows.append(
            {"task": task, "K": k, "method": method, "median_s": median(t), "ratio": median(t) / base,
             "compile_and_first_s": compile_s[(task, k, method)], "times_s": t}
        )
    print(f"\none trainer.update per balancer, x sum on the same task and K, {rounds} interleaved rounds, "
          f"{machine_line(machine)}")
    print(format_table(rows, [("task", "task", ""), ("K", "K", ""), ("method", "method", ""),
                              ("median_s", "median s", ".3f"), ("ratio", "x sum", ".2f")]))
    for r in rows:
        aim = 1.1 if r["method"] in ("famo", "uncertainty") else 1.5
        if r["ratio"] > aim:
            print(f"{r['task']} K={r['K']} {r['method']}: {r['ratio']:.2f}x sum (aim <= {aim}x: NOT met)")
    for task in a.tasks:
        payload = {"quick": a.quick, "rounds": rounds, "task": task, "k": a.k, "overrides": a.overrides,
                   "rows": [r for r in rows if r["task"] == task]}
        print(f"wrote {write_json(f'balancer_overhead_{task}', payload, machine)}")
    return {"rows": rows}


def main(argv=None) -> dict:
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
    ap.add_argument("--balancers", action="store_true", help="one row per registered balancer")
    ap.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=sorted(TASKS))
    ap.add_argument("--k", nargs="+", type=int, choices=sorted(LOSS_SETS), default=sorted(LOSS_SETS))
    a = ap.parse_args(argv)
    rounds = 3 if a.quick else a.rounds
    machine = machine_info()
    if a.balancers:
        return main_balancers(a, rounds, machine)
    times, compile_s = time_interleaved({n: ("default.yaml", ov) for n, ov in VARIANTS.items()}, a.overrides, rounds)
    cfg = load_bench_config("default.yaml", a.overrides)
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
