"""Fault injection: kill real training processes and damage their checkpoints, then resume.

Each try trains a tiny CartPole-v1 run (6 updates, a checkpoint after every update) through the command
line, in a fresh subprocess, and injects one randomly drawn fault:

* ``kill-stage``: SIGKILL at a random stage of a random update's checkpoint write (``BALANCEDRL_FAULT``);
* ``kill-random``: SIGKILL from outside at a random moment, with every checkpoint write slowed down
  (``BALANCEDRL_FAULT_SLEEP``) so that many kills land inside a write;
* ``corrupt``: the run stops after a random update (``--stop-after``), then one byte of its newest
  checkpoint's array file or metadata is flipped, or the file is truncated or deleted.

Then it resumes (``--resume``) until the run finishes. A try passes when the resumed run's
``metrics.jsonl`` and final checkpoint equal an uninterrupted run's, or when the resume is refused with a
one-line message naming the damaged file (and ``--resume --skip-damaged`` then finishes the run with equal
results). Usage::

    python benchmarks/fault_injection.py --tries 20 [--seed 0] [--out benchmarks/results/fault_injection.json]

tests/test_faults.py runs a few of the same tries.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from balancedrl.training.checkpoint import ARRAYS, checkpoint_dir, list_checkpoints, scan_checkpoints  # noqa: E402
from balancedrl.training.logging import read_metrics  # noqa: E402

NUM_UPDATES = 6
TINY = [
    "env.name=CartPole-v1",
    "env.num_envs=2",
    "actor_critic.hidden_dim=8",
    "trainer.num_steps=8",
    "trainer.update_epochs=1",
    "trainer.num_minibatches=1",
    f"trainer.total_timesteps={16 * NUM_UPDATES}",
    "run.chunk_updates=1",
    "run.checkpoint_every=1",
    "run.render_gif=false",
]
STAGES = ("arrays-partial", "arrays-written", "renamed", "meta-tmp", "complete")
FAULTS = ("kill-stage", "kill-random", "corrupt")


def subprocess_env(extra: dict | None = None, cache_dir: str | None = None) -> dict:
    env = dict(os.environ)
    for k in ("BALANCEDRL_FAULT", "BALANCEDRL_FAULT_SLEEP"):
        env.pop(k, None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONUNBUFFERED"] = "1"  # what a killed process printed is kept
    if cache_dir:
        env["JAX_COMPILATION_CACHE_DIR"] = cache_dir
        env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
    env.update(extra or {})
    return env


def train_cmd(run_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "balancedrl", "train", "--no-progress", "--no-eval",
        "--run-dir", str(run_dir), *extra, "--set", *TINY,
    ]  # fmt: skip


def train(run_dir: Path, *extra: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        train_cmd(run_dir, *extra), env=env or subprocess_env(), capture_output=True, text=True, timeout=timeout
    )


def final_state(run_dir: Path) -> tuple[list[dict], list[np.ndarray]]:
    """metrics.jsonl rows and the arrays of the newest checkpoint."""
    last = list_checkpoints(run_dir)[-1]
    data = (checkpoint_dir(run_dir) / f"update_{last:07d}" / ARRAYS).read_bytes()
    with np.load(io.BytesIO(data)) as z:
        arrays = [z[k] for k in sorted(z.files)]
    return read_metrics(Path(run_dir) / "metrics.jsonl"), arrays


def same_result(a: Path, b: Path) -> str | None:
    """None when runs ``a`` and ``b`` ended in the same metrics and state, else what differs."""
    rows_a, arr_a = final_state(a)
    rows_b, arr_b = final_state(b)
    if rows_a != rows_b:
        ua, ub = [r["update"] for r in rows_a], [r["update"] for r in rows_b]
        return f"metrics.jsonl differs (updates {ua} vs {ub})"
    if len(arr_a) != len(arr_b) or any(not np.array_equal(x, y) for x, y in zip(arr_a, arr_b)):
        return "final checkpoint arrays differ"
    return None


def damage(path: Path, rng: random.Random) -> str:
    """Flip one byte of, truncate, or delete ``path``; return what was done."""
    mode = rng.choice(("flip", "flip", "truncate", "delete"))
    data = path.read_bytes()
    if mode == "delete":
        path.unlink()
        return f"deleted {path.name}"
    if mode == "truncate":
        path.write_bytes(data[: rng.randrange(len(data))])
        return f"truncated {path.name}"
    i = rng.randrange(len(data))
    path.write_bytes(data[:i] + bytes([data[i] ^ rng.randrange(1, 256)]) + data[i + 1 :])
    return f"flipped byte {i} of {path.name}"


def resume_until_done(run_dir: Path, env: dict, limit: int = 4) -> subprocess.CompletedProcess:
    for _ in range(limit):
        out = train(run_dir, "--resume", env=env)
        if out.returncode != 0:
            return out
        if list_checkpoints(run_dir) and list_checkpoints(run_dir)[-1] == NUM_UPDATES:
            return out
    return out


def one_line_naming(stderr: str, name: str) -> bool:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    return bool(lines) and name in lines[-1] and "Traceback" not in stderr


def try_fault(fault: str, rng: random.Random, ref: Path, work: Path, cache_dir: str | None = None) -> dict:
    """Inject ``fault`` into a fresh run in ``work``; return ``{fault, detail, outcome, ok}``."""
    env = subprocess_env(cache_dir=cache_dir)
    work.mkdir(parents=True, exist_ok=True)
    run_dir = work / "run"
    detail = ""
    if fault == "kill-stage":
        stage, update = rng.choice(STAGES), rng.randint(1, NUM_UPDATES)
        detail = f"SIGKILL at {stage} of update {update}"
        out = train(run_dir, env=subprocess_env({"BALANCEDRL_FAULT": f"{stage}@{update}"}, cache_dir))
        if out.returncode != -signal.SIGKILL:
            return dict(fault=fault, detail=detail, outcome=f"not killed (rc {out.returncode})", ok=False,
                        stderr=out.stderr[-2000:])
    elif fault == "kill-random":
        proc = subprocess.Popen(
            train_cmd(run_dir), env=subprocess_env({"BALANCEDRL_FAULT_SLEEP": "0.15"}, cache_dir),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        # Wait for training to start (the first checkpoint directory), then kill within the next few updates.
        t0 = time.time()
        while proc.poll() is None and not (run_dir / "checkpoints").is_dir() and time.time() - t0 < 300:
            time.sleep(0.05)
        delay = rng.uniform(0.0, 2.5)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        rc = proc.wait()
        d = checkpoint_dir(run_dir)
        torn = d.is_dir() and (
            any(p.name.startswith(".update_") for p in d.iterdir()) or any(not c for _, c in scan_checkpoints(run_dir))
        )
        detail = f"SIGKILL {delay:.2f} s after the first checkpoint began" + (
            f" ({'inside' if torn else 'between'} checkpoint writes)"
            if rc == -signal.SIGKILL
            else f" (the run had already ended, rc {rc})"
        )
    elif fault == "corrupt":
        stop = rng.randint(2, NUM_UPDATES)
        out = train(run_dir, "--stop-after", str(stop), env=env)
        if out.returncode != 0:
            return dict(fault=fault, detail=f"--stop-after {stop}", outcome="first run failed", ok=False,
                        stderr=out.stderr[-2000:])
        d = checkpoint_dir(run_dir)
        target = rng.choice([d / f"update_{stop:07d}" / ARRAYS, d / f"update_{stop:07d}.json"])
        config_before = (run_dir / "config.yaml").read_bytes()
        detail = f"--stop-after {stop}, then {damage(target, rng)}"
        out = train(run_dir, "--resume", env=env)
        if out.returncode != 0:
            named = one_line_naming(out.stderr, target.name) and str(d) in out.stderr
            if not named or out.returncode != 4:
                return dict(fault=fault, detail=detail, outcome=f"refused without naming the file (rc {out.returncode})",
                            ok=False, stderr=out.stderr[-2000:])
            if (run_dir / "config.yaml").read_bytes() != config_before:
                return dict(fault=fault, detail=detail, outcome="refused but config.yaml rewritten", ok=False)
            out = train(run_dir, "--resume", "--skip-damaged", env=env)
            if out.returncode != 0:
                return dict(fault=fault, detail=detail, outcome="--skip-damaged failed", ok=False,
                            stderr=out.stderr[-2000:])
            detail += "; refused naming the file, then --skip-damaged"
    else:
        raise ValueError(f"unknown fault {fault!r}; allowed: {FAULTS}")
    out = resume_until_done(run_dir, env)
    if out.returncode != 0:
        return dict(fault=fault, detail=detail, outcome=f"resume failed (rc {out.returncode})", ok=False,
                    stderr=out.stderr[-2000:])
    diff = same_result(ref, run_dir)
    skipped = [ln for ln in out.stdout.splitlines() if "skipped" in ln]
    return dict(
        fault=fault, detail=detail, outcome=diff or "resumed to the uninterrupted run's metrics and state",
        ok=diff is None, skipped=skipped,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tries", type=int, default=20)
    p.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fault_injection.json"))
    args = p.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="fault_injection_"))
    cache = str(tmp / "jax_cache")
    t0 = time.time()
    try:
        ref = tmp / "reference"
        out = train(ref, env=subprocess_env(cache_dir=cache))
        if out.returncode != 0:
            print(out.stderr[-3000:])
            return 1
        results = []
        for i in range(args.tries):
            fault = rng.choice(FAULTS)
            t = time.time()
            r = try_fault(fault, rng, ref, tmp / f"try_{i:02d}", cache)
            r["seconds"] = round(time.time() - t, 1)
            results.append(r)
            print(f"[{i + 1:2d}/{args.tries}] {'ok  ' if r['ok'] else 'FAIL'} {fault:<11} {r['detail']}: {r['outcome']}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    passed = sum(r["ok"] for r in results)
    summary = {"seed": seed, "tries": len(results), "passed": passed, "wall_s": round(time.time() - t0, 1),
               "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=1))
    print(f"{passed}/{len(results)} tries passed (seed {seed}); written {args.out}")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
