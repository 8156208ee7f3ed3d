"""Env steps/s of the full training loop (rollout + GAE + PPO epochs), compile excluded.

Tasks: CartPole-v1 (``experiments/configs/cartpole.yaml``: PureJaxRL's settings, an MLP), Durotaxis-v0
(``experiments/configs/default.yaml``: GNN policy, every technique on) and Durotaxis-v0 with
``actor_critic.use_wsa=true`` (WSA fusion of the pretrained CNN, a random CNN and the GNN token), and the
cheaper candidate ``experiments/configs/node_mlp.yaml`` (``durotaxis_node_mlp``, ``durotaxis_node_mlp_wsa``), each for 1 and 8
vmapped seeds. The ratios against an older commit come from ``benchmarks/train_speedup.py``. The timed function is the jitted ``make_run_chunk(trainer, n, seeds)`` the host loop
uses; it is compiled ahead of time (compile seconds reported separately), then one call is timed. The WSA rows
time a single update: on a 2-core CPU a 4-update WSA chunk had not finished after 12 minutes including compilation.

Usage: ``python benchmarks/train_throughput.py [--quick] [--seeds 1 8] [--tasks cartpole durotaxis ...]``
Writes ``benchmarks/results/train_throughput.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    format_table,
    load_bench_config,
    machine_info,
    machine_line,
    measure_training,
    write_json,
)

# task -> (config file, overrides, updates per timed chunk: full, quick)
TASKS = {
    "cartpole": ("cartpole.yaml", [], 100, 20),
    "durotaxis": ("default.yaml", [], 8, 2),
    "durotaxis_wsa": ("default.yaml", ["actor_critic.use_wsa=true"], 1, 1),
    # the cheaper candidate for the main job (docs/performance.md), and with the WSA policy
    "durotaxis_node_mlp": ("node_mlp.yaml", [], 8, 2),
    "durotaxis_node_mlp_wsa": ("node_mlp.yaml", ["actor_critic.use_wsa=true"], 2, 1),
}


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer updates per timed chunk")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=list(TASKS))
    ap.add_argument(
        "--repeats", type=int, default=1, help="timed calls per row (the fastest counts)"
    )
    a = ap.parse_args(argv)
    machine = machine_info()
    rows = []
    for task in a.tasks:
        cfg_file, overrides, full, quick = TASKS[task]
        cfg = load_bench_config(cfg_file, overrides)
        for s in a.seeds:
            r = measure_training(cfg, s, quick if a.quick else full, repeats=a.repeats)
            r.update(
                task=task,
                env=cfg.env.name,
                config=cfg_file,
                overrides=overrides,
                num_envs=cfg.env.num_envs,
                num_steps=cfg.trainer.num_steps,
            )
            rows.append(r)
            # written after every row: a long run (WSA, 8 seeds) keeps what it measured if stopped
            write_json("train_throughput", {"quick": a.quick, "complete": False, "rows": rows}, machine)
            print(
                f"{task:>14} seeds={s:<3} {r['steps_per_s']:>12,.0f} env steps/s "
                f"(compile {r['compile_s']:.1f} s)",
                flush=True,
            )
    print()
    print(f"training throughput, {machine_line(machine)}")
    print(
        format_table(
            rows,
            [
                ("task", "task", ""),
                ("seeds", "seeds", "d"),
                ("updates", "updates", "d"),
                ("env_steps", "env steps", ",d"),
                ("steps_per_s", "env steps/s", ",.0f"),
                ("compile_s", "compile s", ".1f"),
            ],
        )
    )
    path = write_json("train_throughput", {"quick": a.quick, "complete": True, "rows": rows}, machine)
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()
