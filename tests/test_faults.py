"""Faults on real training processes: SIGKILL at random points (inside checkpoint writes too) and damaged
checkpoint files. The run either resumes to the same metrics and final state as an uninterrupted run, or
the resume is refused with one line naming the damaged file (docs/reliability.md).

Every process is a real ``python -m balancedrl train`` subprocess on a tiny CartPole-v1 config (6 updates,
a checkpoint after each; benchmarks/fault_injection.py). The random points are drawn from a seed printed
in every failure message; ``BALANCEDRL_FAULT_SEED=<n>`` replays one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from balancedrl.training import checkpoint as ckpt  # noqa: E402
from benchmarks.fault_injection import (  # noqa: E402
    NUM_UPDATES,
    STAGES,
    damage,
    one_line_naming,
    same_result,
    subprocess_env,
    train,
    train_cmd,
)

SEED = int(os.environ.get("BALANCEDRL_FAULT_SEED", random.SystemRandom().randrange(2**31)))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """The persistent compilation cache `make test` sets up, else one for this module."""
    return os.environ.get("JAX_COMPILATION_CACHE_DIR") or str(tmp_path_factory.mktemp("jax_cache"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache):
    """An uninterrupted run."""
    run_dir = tmp_path_factory.mktemp("ref") / "run"
    out = train(run_dir, env=subprocess_env(cache_dir=cache))
    assert out.returncode == 0, out.stderr[-3000:]
    assert ckpt.list_checkpoints(run_dir) == list(range(1, NUM_UPDATES + 1))
    return run_dir


def test_kills_inside_checkpoint_writes_and_at_random_moments_resume_to_the_same_run(reference, cache, tmp_path):
    """SIGKILL at a random stage of a random update's checkpoint write; the resumed process SIGKILLed from
    outside at a random moment (its checkpoint writes slowed down so the kill often lands inside one);
    a last resume: metrics and final state equal the uninterrupted run's, interrupted writes are named."""
    rng = random.Random(SEED)
    u1 = rng.randint(1, NUM_UPDATES - 1)
    s1 = rng.choice(STAGES[:-1])  # every stage but the last leaves the checkpoint incomplete
    delay = rng.uniform(0.0, 1.5)
    msg = f"seed {SEED}: {s1}@{u1}, then a kill {delay:.2f} s after the resumed run's first save began; "
    run_dir = tmp_path / "run"
    out = train(run_dir, env=subprocess_env({"BALANCEDRL_FAULT": f"{s1}@{u1}"}, cache))
    assert out.returncode == -signal.SIGKILL, msg + out.stderr[-2000:]
    assert ckpt.list_checkpoints(run_dir) == list(range(1, u1)), msg

    proc = subprocess.Popen(
        train_cmd(run_dir, "--resume"),
        env=subprocess_env({"BALANCEDRL_FAULT_SLEEP": "0.15"}, cache),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    first = proc.stdout.readline()  # the first line comes once the resume point is chosen
    d, t0 = ckpt.checkpoint_dir(run_dir), time.time()
    while proc.poll() is None and time.time() - t0 < 300:  # until the resumed run's first save begins
        if any(p.name.startswith(".update_") for p in d.glob(".*")) or len(ckpt.list_checkpoints(run_dir)) >= u1:
            break
        time.sleep(0.01)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    printed = first + proc.communicate()[0]
    # A kill after the arrays' directory got its final name leaves an incomplete checkpoint, named on resume
    # (before that, only a hidden temporary directory exists, which is removed).
    skipped = f"skipped {ckpt.checkpoint_dir(run_dir)}/update_{u1:07d}: incomplete"
    assert (skipped in printed) == (s1 in ("renamed", "meta-tmp")), msg + printed

    out = train(run_dir, "--resume", env=subprocess_env(cache_dir=cache))
    assert out.returncode == 0, msg + out.stderr[-2000:]
    assert same_result(reference, run_dir) is None, msg + str(same_result(reference, run_dir))
    assert not list(ckpt.checkpoint_dir(run_dir).glob(".update_*")), msg + "temporary files left behind"


def test_damaged_checkpoint_is_refused_naming_the_file_then_skipped_on_request(reference, cache, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    rng = random.Random(SEED + 2)
    last = ckpt.checkpoint_dir(run_dir) / f"update_{NUM_UPDATES:07d}" / ckpt.ARRAYS
    data = last.read_bytes()
    i = rng.randrange(len(data))
    last.write_bytes(data[:i] + bytes([data[i] ^ 0x40]) + data[i + 1 :])  # one flipped bit
    config = (run_dir / "config.yaml").read_bytes()
    env = subprocess_env(cache_dir=cache)
    out = train(run_dir, "--resume", env=env)
    assert out.returncode == 4 and one_line_naming(out.stderr, str(last)), f"seed {SEED}: {out.stderr[-2000:]}"
    assert (run_dir / "config.yaml").read_bytes() == config
    out = train(run_dir, "--resume", "--skip-damaged", env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "damaged" in out.stdout
    assert same_result(reference, run_dir) is None
    assert list(ckpt.checkpoint_dir(run_dir).glob(f"update_{NUM_UPDATES:07d}.damaged-*"))


@pytest.mark.parametrize("target", ["arrays", "meta"])
def test_every_damage_is_detected_or_harmless(reference, tmp_path, target):
    """Flipped bytes, truncation or deletion of a checkpoint's files (in-process, no training): the
    checkpoint is refused naming the file, or (metadata deleted) it is an incomplete one that is skipped,
    or the damage left its content intact (a JSON whitespace byte)."""
    rng = random.Random(SEED + (3 if target == "arrays" else 4))
    fp = ckpt.load_metadata(reference, NUM_UPDATES)["fingerprint"]
    for trial in range(12):
        run_dir = tmp_path / f"r{trial}"
        shutil.copytree(reference / "checkpoints", run_dir / "checkpoints")
        d = ckpt.checkpoint_dir(run_dir)
        path = d / f"update_{NUM_UPDATES:07d}" / ckpt.ARRAYS if target == "arrays" else ckpt.meta_path(run_dir, NUM_UPDATES)
        what = damage(path, rng)
        try:
            plan = ckpt.plan_resume(run_dir, fp)
        except ckpt.DamagedCheckpointError as e:
            assert str(path) in str(e), (SEED, what, str(e))
            continue
        if plan.update == NUM_UPDATES - 1:
            assert what.startswith("deleted") and target == "meta", (SEED, what)
        else:  # nothing refused: the checkpoint must still hold exactly what was written
            assert plan.update == NUM_UPDATES and target == "meta", (SEED, what)
            ref_meta = (ckpt.meta_path(reference, NUM_UPDATES)).read_text()
            assert json.loads(path.read_text()) == json.loads(ref_meta), (SEED, what)
