"""Training speed of this tree against a baseline tree (a ``git worktree`` of an older commit), timed interleaved.

Each side runs in its own worker process with ``PYTHONPATH`` at its tree, builds the jitted chunk that the
host loop uses (``make_run_chunk(make_train(cfg), n, seeds)``) from that tree's code and config, compiles it,
then waits: the parent asks the two workers in turn for one timed call (baseline, current, baseline, ...),
so a change of machine load hits both sides alike. A row's ratio is the median over rounds of
``current env steps/s / baseline env steps/s`` within a round; the medians of each side are given too.

Rows (``--rows``): ``durotaxis`` (this tree's ``--config``, default the main job's ``default.yaml``,
against the baseline's ``default.yaml``), ``durotaxis8`` (the same, 8 vmapped seeds), ``wsa`` (both configs with
``actor_critic.use_wsa=true``, 1 seed); ``durotaxis_default`` and ``wsa_default`` run ``default.yaml`` on
both sides (the code's share of the speed-up).

Usage: ``python benchmarks/train_speedup.py --baseline /work/wt/baseline-dd8fa87 [--rounds 5] [--rows ...]``
Writes ``benchmarks/results/train_speedup.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# row -> (seeds, extra overrides for both sides, updates per timed call: baseline, current, this tree's
# config: None for --config)
ROWS = {
    "durotaxis": (1, [], 2, 4, None),
    "durotaxis8": (8, [], 1, 2, None),
    "wsa": (1, ["actor_critic.use_wsa=true"], 1, 2, None),
    # the same config on both sides: what the code alone changed
    "durotaxis_default": (1, [], 2, 2, "experiments/configs/default.yaml"),
    "wsa_default": (1, ["actor_critic.use_wsa=true"], 1, 1, "experiments/configs/default.yaml"),
}


def worker(config: str, overrides: list[str], seeds: int, updates: int) -> None:
    """Compile one chunk, then answer each line on stdin with one timed call (a JSON line on stdout)."""
    import jax

    from balancedrl.training.config import load_config
    from balancedrl.training.trainer import make_run_chunk, make_train

    cfg = load_config(config, overrides)
    trainer = make_train(cfg)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    runner = jax.block_until_ready(jax.jit(jax.vmap(trainer.init))(keys))
    t0 = time.perf_counter()
    chunk = make_run_chunk(trainer, updates, seeds).lower(runner).compile()
    compile_s = time.perf_counter() - t0
    runner, _ = jax.block_until_ready(chunk(runner))  # one untimed call (first-run allocations)
    steps = seeds * updates * cfg.batch_size
    print(json.dumps({"ready": True, "compile_s": compile_s, "env_steps": steps,
                      "num_envs": cfg.env.num_envs, "num_steps": cfg.trainer.num_steps}), flush=True)
    for _ in sys.stdin:
        t0 = time.perf_counter()
        runner, _ = jax.block_until_ready(chunk(runner))
        dt = time.perf_counter() - t0
        print(json.dumps({"seconds": dt, "steps_per_s": steps / dt}), flush=True)


class Side:
    def __init__(self, tree: Path, config: str, overrides, seeds, updates):
        env = dict(os.environ, PYTHONPATH=str(tree))
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(tree / config),
               "--seeds", str(seeds), "--updates", str(updates), "--set", *overrides]
        self.p = subprocess.Popen(cmd, env=env, cwd=tree, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def read(self) -> dict:
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.p.args} ended (exit {self.p.wait()})")
        return json.loads(line)

    def time_once(self) -> dict:
        self.p.stdin.write("go\n")
        self.p.stdin.flush()
        return self.read()

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", default="/work/wt/baseline-dd8fa87", help="baseline tree (git worktree)")
    ap.add_argument("--baseline-config", default="experiments/configs/default.yaml")
    ap.add_argument("--config", default="experiments/configs/default.yaml", help="this tree's config")
    ap.add_argument("--rows", nargs="+", choices=sorted(ROWS), default=list(ROWS))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default="train_speedup")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--seeds", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--updates", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--set", nargs="*", default=[], help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        return worker(a.worker, a.set, a.seeds, a.updates)

    sys.path.insert(0, str(REPO))
    from benchmarks.common import machine_info, machine_line, median, write_json

    base_tree = Path(a.baseline).resolve()
    commit = subprocess.run(["git", "-C", str(base_tree), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    rows = []
    for name in a.rows:
        seeds, extra, n_base, n_cur, own_config = ROWS[name]
        base = Side(base_tree, a.baseline_config, extra, seeds, n_base)
        cur = Side(REPO, own_config or a.config, extra, seeds, n_cur)
        try:
            info_b, info_c = base.read(), cur.read()
            tb, tc, ratio = [], [], []
            for _ in range(a.rounds):
                b, c = base.time_once(), cur.time_once()
                tb.append(b["steps_per_s"])
                tc.append(c["steps_per_s"])
                ratio.append(c["steps_per_s"] / b["steps_per_s"])
        finally:
            base.close()
            cur.close()
        row = {
            "row": name, "seeds": seeds, "overrides": extra, "config": own_config or a.config,
            "baseline_steps_per_s": median(tb), "current_steps_per_s": median(tc), "ratio": median(ratio),
            "ratios": ratio, "baseline_rounds": tb, "current_rounds": tc,
            "baseline_compile_s": info_b["compile_s"], "current_compile_s": info_c["compile_s"],
            "baseline_batch": [info_b["num_envs"], info_b["num_steps"]],
            "current_batch": [info_c["num_envs"], info_c["num_steps"]],
        }
        rows.append(row)
        print(f"{name:>11} seeds={seeds}: baseline {row['baseline_steps_per_s']:,.0f}  current "
              f"{row['current_steps_per_s']:,.0f} env steps/s  ratio {row['ratio']:.2f}x "
              f"(rounds {', '.join(f'{r:.2f}' for r in ratio)})", flush=True)
        write_json(a.out, {"baseline": str(base_tree), "baseline_commit": commit, "current_commit": head,
                           "config": a.config, "baseline_config": a.baseline_config, "rounds": a.rounds,
                           "rows": rows}, machine_info())
    print(f"machine: {machine_line()}")
    return rows


if __name__ == "__main__":
    main()
