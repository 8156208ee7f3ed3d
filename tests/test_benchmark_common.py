"""Smoke test of the benchmarks' shared timing helper on a tiny CartPole-v1 config: ahead-of-time compiled,
seed-vmapped chunk; the step count is seeds x updates x num_envs x num_steps."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import format_table, load_bench_config, measure_training  # noqa: E402


def test_measure_training_counts_steps_and_times():
    cfg = load_bench_config(
        "cartpole.yaml", ["env.num_envs=2", "trainer.num_steps=8", "trainer.num_minibatches=2"]
    )
    r = measure_training(cfg, num_seeds=2, num_updates=3, repeats=2)
    assert r["env_steps"] == 2 * 3 * 2 * 8
    assert len(r["timed_s"]) == 2 and min(r["timed_s"]) > 0 and r["compile_s"] > 0
    assert r["steps_per_s"] == r["env_steps"] / min(r["timed_s"])
    table = format_table([r], [("seeds", "seeds", "d"), ("steps_per_s", "env steps/s", ",.0f")])
    assert table.splitlines()[0].split() == ["seeds", "env", "steps/s"]
