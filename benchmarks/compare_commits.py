"""Speed of the current tree against a baseline tree, measured side by side in one run.

For each row (``benchmarks/compare_targets.py`` PRESETS) two worker processes are started, one per tree,
each with ``PYTHONPATH`` = that tree and its working directory in it (so ``import balancedrl`` and
``experiments/configs`` are the tree's own). Each worker compiles its target once, then the rounds are
interleaved: baseline, current, current, baseline, ... (the order alternates every round), one timed call
each. Reported per side: the median over rounds of env steps per wall second and per CPU second of the
worker process; ratio = current / baseline (wall and CPU). On a shared machine the CPU-second ratio is the
steadier one; both are written.

Baseline: issue 18's commit dd8fa87, as a git worktree (created if absent; shared read-only):

    git -C /work/main worktree add /work/wt/baseline-dd8fa87 dd8fa87
    python benchmarks/compare_commits.py [--rows durotaxis_env_1024 cartpole_ppo_1seed] [--rounds 7]
        [--baseline /work/wt/baseline-dd8fa87] [--smoke] [--out benchmarks/results/compare_commits.json]

Rows already in the output file are kept unless measured again (``--out`` merges).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_BASELINE = Path("/work/wt/baseline-dd8fa87")
BASELINE_COMMIT = "dd8fa87"


# ------------------------------------------------------------------ worker (runs inside one tree)
def worker(preset_json: str) -> None:
    """Build the target, compile it (first call), then answer 'run' lines with one JSON timing each."""
    sys.path.insert(0, str(HERE))
    from compare_targets import TARGETS

    import balancedrl

    target, kwargs = json.loads(preset_json)
    t0 = time.perf_counter()
    call, steps = TARGETS[target](**kwargs)
    call(0)
    ready = {"ready": True, "compile_s": time.perf_counter() - t0, "steps_per_call": steps}
    ready["balancedrl"] = str(Path(balancedrl.__file__).resolve().parent.parent)
    print(json.dumps(ready), flush=True)
    i = 0
    for line in sys.stdin:
        if line.strip() != "run":
            break
        i += 1
        w0, c0 = time.perf_counter(), time.process_time()
        call(i)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        print(json.dumps({"wall_s": wall, "cpu_s": cpu}), flush=True)


# ------------------------------------------------------------------ parent
class Side:
    def __init__(self, label: str, tree: Path, preset: tuple, xla_flags: str | None):
        env = dict(os.environ, PYTHONPATH=str(tree))
        if xla_flags is not None:
            env["XLA_FLAGS"] = xla_flags
        self.label, self.tree = label, tree
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(preset)],
            cwd=tree,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.ready: dict | None = None
        self.rounds: list[dict] = []

    def read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.label} worker in {self.tree} exited (code {self.proc.wait()})")
        return json.loads(line)

    def run(self) -> None:
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        self.rounds.append(self.read())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)

    def summary(self) -> dict:
        steps = self.ready["steps_per_call"]
        wall = [r["wall_s"] for r in self.rounds]
        cpu = [r["cpu_s"] for r in self.rounds]
        return {
            "tree": str(self.tree),
            "imported_from": self.ready["balancedrl"],
            "compile_s": self.ready["compile_s"],
            "steps_per_call": steps,
            "wall_s": wall,
            "cpu_s": cpu,
            "steps_per_s_median": steps / statistics.median(wall),
            "steps_per_cpu_s_median": steps / statistics.median(cpu),
        }


def compare(name: str, preset: tuple, baseline: Path, current: Path, rounds: int, xla_flags=None) -> dict:
    """One row: both workers compiled, then ``rounds`` interleaved timed calls per side."""
    sides = {"baseline": Side("baseline", baseline, preset, xla_flags), "current": Side("current", current, preset, xla_flags)}
    try:
        for s in sides.values():  # compile one after the other (the two cores are shared)
            s.ready = s.read()
        order = ["baseline", "current"]
        for _ in range(rounds):
            for label in order:
                sides[label].run()
            order.reverse()
    finally:
        for s in sides.values():
            s.close()
    b, c = sides["baseline"].summary(), sides["current"].summary()
    row = {
        "row": name,
        "target": preset[0],
        "kwargs": preset[1],
        "rounds": rounds,
        "baseline": b,
        "current": c,
        "ratio_wall": c["steps_per_s_median"] / b["steps_per_s_median"],
        "ratio_cpu": c["steps_per_cpu_s_median"] / b["steps_per_cpu_s_median"],
    }
    print(
        f"{name}: baseline {b['steps_per_s_median']:,.0f} / current {c['steps_per_s_median']:,.0f} env steps/s"
        f" -> x{row['ratio_wall']:.2f} wall, x{row['ratio_cpu']:.2f} CPU-time",
        flush=True,
    )
    return row


def git_head(tree: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "-uno"], capture_output=True, text=True)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def main(argv=None) -> dict:
    sys.path.insert(0, str(HERE))
    from compare_targets import DEFAULT_ROWS, PRESETS

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", nargs="+", default=list(DEFAULT_ROWS), help=f"any of {sorted(PRESETS)}")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--baseline", type=Path, default=DEFAULT_BASELINE)
    ap.add_argument("--current", type=Path, default=REPO)
    ap.add_argument("--smoke", action="store_true", help="tiny rows, 1 round: checks the machinery in seconds")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("BENCH_RESULTS_DIR") or REPO / "benchmarks" / "results") / "compare_commits.json")
    a = ap.parse_args(argv)
    unknown = [r for r in a.rows if r not in PRESETS]
    if unknown:
        ap.error(f"unknown rows {unknown}; known: {sorted(PRESETS)}")
    if a.rounds < 1:
        ap.error(f"--rounds must be >= 1, got {a.rounds}")
    if not (a.baseline / "balancedrl").is_dir():
        ap.error(
            f"baseline tree {a.baseline} has no balancedrl/: create it with "
            f"git -C /work/main worktree add {a.baseline} {BASELINE_COMMIT}"
        )
    from common import machine_info

    presets = {r: PRESETS[r] for r in a.rows}
    rounds = a.rounds
    if a.smoke:
        presets = {"smoke_durotaxis_env_8": ("env_random_policy", {"env": "Durotaxis-v0", "num_envs": 8, "steps": 2})}
        rounds = 1
    doc = json.loads(a.out.read_text()) if a.out.exists() and not a.smoke else {}
    doc.setdefault("rows", {})
    for name, preset in presets.items():
        row = compare(name, preset, a.baseline.resolve(), a.current.resolve(), rounds)
        row["baseline"]["commit"] = git_head(a.baseline)
        row["current"]["commit"] = git_head(a.current)
        row["machine"] = machine_info()
        row["date_utc"] = row["machine"]["date_utc"]
        doc["rows"][name] = row
    doc["benchmark"] = "compare_commits"
    doc["how"] = __doc__.split("\n\n")[1].replace("\n", " ")
    doc["machine"] = machine_info()
    if not a.smoke:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(doc, indent=1) + "\n")
        print("wrote", a.out)
    return doc


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(sys.argv[2])
    else:
        main()
