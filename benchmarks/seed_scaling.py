"""Training throughput against the number of vmapped seeds (1, 4, 16, 64) on a small Durotaxis-v0 config.

The small config (``default.yaml`` with 8 envs x 16 steps, max_nodes 32, hidden_dim 16, one GNN layer) keeps
64 seeds within memory and time on a small CPU. Each seed count's jitted, seed-vmapped ``make_run_chunk`` is
compiled ahead of time, then one call is timed. Throughput = seeds x updates x 128 / time.

Usage: ``python benchmarks/seed_scaling.py [--quick] [--seeds 1 4 16 64]``
Writes ``benchmarks/results/seed_scaling.json``.
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

SMALL = [
    "env.num_envs=8",
    "env.params={max_nodes: 32, init_nodes: 6, critical_nodes: 16, overcrowd_nodes: 24}",
    "actor_critic.hidden_dim=16",
    "actor_critic.num_gnn_layers=1",
    "trainer.num_steps=16",
    "trainer.num_minibatches=4",
]


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 updates per timed chunk instead of 8")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 4, 16, 64])
    a = ap.parse_args(argv)
    cfg = load_bench_config("default.yaml", SMALL)
    updates = 2 if a.quick else 8
    machine = machine_info()
    rows = []
    for s in a.seeds:
        r = measure_training(cfg, s, updates)
        rows.append(r)
        print(
            f"seeds={s:<3} {r['steps_per_s']:>12,.0f} env steps/s "
            f"(compile {r['compile_s']:.1f} s)",
            flush=True,
        )
    base = rows[0]["steps_per_s"]
    for r in rows:
        r["speedup_vs_first"] = r["steps_per_s"] / base
        r["per_seed_steps_per_s"] = r["steps_per_s"] / r["seeds"]
    print()
    print(
        f"seed scaling, Durotaxis-v0 small config ({cfg.env.num_envs} envs x {cfg.trainer.num_steps} steps), "
        f"{machine_line(machine)}"
    )
    print(
        format_table(
            rows,
            [
                ("seeds", "seeds", "d"),
                ("steps_per_s", "env steps/s", ",.0f"),
                ("per_seed_steps_per_s", "per seed", ",.0f"),
                ("speedup_vs_first", f"x vs {rows[0]['seeds']} seed(s)", ".2f"),
                ("compile_s", "compile s", ".1f"),
            ],
        )
    )
    path = write_json("seed_scaling", {"quick": a.quick, "overrides": SMALL, "rows": rows}, machine)
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()
