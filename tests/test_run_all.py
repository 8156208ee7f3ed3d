"""benchmarks/run_all.sh (dry runs: which benchmarks, which seeds per backend, argument errors) and
benchmarks/compare_commits.py's argument checks. Seconds: nothing is measured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "run_all.sh"


def _dry(*args, backend="cpu"):
    env = dict(os.environ, BENCH_BACKEND=backend, PY=sys.executable)
    return subprocess.run(["bash", str(SCRIPT), "--dry-run", *args], capture_output=True, text=True, env=env)


def test_full_run_lists_every_benchmark_and_gpu_seeds():
    out = _dry(backend="gpu")
    assert out.returncode == 0, out.stderr
    cmds = [line for line in out.stdout.splitlines() if line.startswith("+ ")]
    scripts = {p.name for p in (REPO / "benchmarks").glob("*.py")} - {"common.py", "compare_targets.py", "__init__.py"}
    scripts -= {"fault_injection.py"}  # a reliability check (kills processes), not a speed benchmark
    for name in scripts:
        assert any(f"benchmarks/{name}" in c for c in cmds), name
    train = next(c for c in cmds if "train_throughput.py" in c)
    assert "--seeds 1 8 64 512" in train and "durotaxis_wsa" in train
    cpu = next(c for c in _dry(backend="cpu").stdout.splitlines() if "train_throughput.py" in c)
    assert "--seeds 1 8 " in cpu + " " and "64" not in cpu


def test_modes_and_bad_arguments():
    smoke = _dry("--smoke", "--skip-compare")
    assert smoke.returncode == 0 and "mode=smoke" in smoke.stdout and "compare_commits" not in smoke.stdout
    quick = _dry("--quick")
    assert "--quick" in next(c for c in quick.stdout.splitlines() if "train_throughput.py" in c)
    bad = _dry("--fast")
    assert bad.returncode == 2 and "unknown argument '--fast'" in bad.stderr


def test_compare_commits_rejects_unknown_rows_and_missing_baseline(tmp_path):
    cmd = [sys.executable, str(REPO / "benchmarks" / "compare_commits.py")]
    out = subprocess.run([*cmd, "--rows", "nope"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 2 and "unknown rows ['nope']" in out.stderr
    out = subprocess.run([*cmd, "--baseline", str(tmp_path)], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 2 and "worktree add" in out.stderr
