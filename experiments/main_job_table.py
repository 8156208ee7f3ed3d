"""Per-seed table of a main-job run (``balancedrl sweep --seeds N --config experiments/configs/main.yaml``).

For each seed: greedy and sampled success over the evaluation episodes (``eval.json``), the greedy policy's
mean steps of its successful episodes, the env steps at which the training success rate (finished episodes
of one update's rollout, ``metrics.jsonl``) first reached 0.9, both for one update's value and for the
mean of 4 consecutive updates, and the largest drop of the training success rate after it first reached
0.7 (``max_t (max_{t0 <= s <= t} x_s - x_t)``, per update).

Usage: ``python experiments/main_job_table.py RUN_DIR [--json OUT]``
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np


def seed_curves(run_dir: Path) -> tuple[dict[int, np.ndarray], int]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    by = defaultdict(dict)
    for r in rows:
        by[r.get("seed", 0)][r["update"]] = r["success_rate"]
    steps = rows[0]["env_steps"] / rows[0]["update"] if rows and "env_steps" in rows[0] else None
    return {s: np.array([np.nan if v is None else v for _, v in sorted(d.items())], float) for s, d in by.items()}, steps


def first_at(x: np.ndarray, level: float, window: int = 1) -> int | None:
    """1-based update at whose end the mean of the last ``window`` values first reaches ``level``."""
    for t in range(window - 1, len(x)):
        if np.nanmean(x[t - window + 1 : t + 1]) >= level:
            return t + 1
    return None


def largest_drop(x: np.ndarray, level: float = 0.7) -> float | None:
    t0 = first_at(x, level)
    if t0 is None:
        return None
    y = np.nan_to_num(x[t0 - 1 :], nan=0.0)
    return float(np.max(np.maximum.accumulate(y) - y))


def table(run_dir: Path) -> list[dict]:
    curves, steps_per_update = seed_curves(run_dir)
    ev = json.loads((run_dir / "eval.json").read_text())
    n = len(curves)
    greedy = ev.get("policy_greedy_per_seed", [ev["policy_greedy"]] * n)
    sample = ev.get("policy_per_seed", [ev["policy"]] * n)
    out = []
    for s in sorted(curves):
        x = curves[s]
        u1, u4 = first_at(x, 0.9), first_at(x, 0.9, 4)
        out.append({
            "seed": s,
            "greedy_success": greedy[s]["success_rate"],
            "sampled_success": sample[s]["success_rate"],
            "greedy_steps": greedy[s]["mean_steps"],
            "sampled_steps": sample[s]["mean_steps"],
            "steps_to_0.9_train": None if u1 is None else int(u1 * steps_per_update),
            "steps_to_0.9_train_mean4": None if u4 is None else int(u4 * steps_per_update),
            "largest_drop_after_0.7": largest_drop(x),
            "final_train_success_mean4": float(np.nanmean(x[-4:])),
        })
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    rows = table(a.run_dir)
    f = lambda v, spec: "—" if v is None else format(v, spec)  # noqa: E731
    print("| seed | greedy success | sampled success | greedy steps | env steps to 0.9 training success "
          "(1 update / mean of 4) | largest drop after 0.7 |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {f(r['greedy_success'], '.3f')} | {f(r['sampled_success'], '.3f')} | "
              f"{f(r['greedy_steps'], '.1f')} | {f(r['steps_to_0.9_train'], ',d')} / "
              f"{f(r['steps_to_0.9_train_mean4'], ',d')} | {f(r['largest_drop_after_0.7'], '.2f')} |")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1) + "\n")
    return rows


if __name__ == "__main__":
    main()
