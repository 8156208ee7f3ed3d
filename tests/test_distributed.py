"""A seed sweep over two processes with ``jax.distributed`` (gloo collectives on loopback) equals the
single-process sweep of the same seeds; flags that cannot work are refused in one line before anything starts
(docs/distributed.md).

The processes are real ``python -m balancedrl sweep`` subprocesses on a tiny CartPole-v1 config (4 seeds, 4
updates): process 0 and process 1 run in different working directories with the same relative
``--run-dir``, as on two hosts, so anything process 1 wrote would show up in its directory.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from balancedrl.cli import main
from balancedrl.training.checkpoint import ARRAYS, checkpoint_dir, list_checkpoints
from balancedrl.training.distributed import BOOTSTRAP, _pack, _unpack, check_launch

ROOT = Path(__file__).resolve().parents[1]
SEEDS = 4
UPDATES = 4
TINY = [
    "env.name=CartPole-v1",
    "env.num_envs=2",
    "actor_critic.hidden_dim=8",
    "trainer.num_steps=8",
    "trainer.update_epochs=1",
    "trainer.num_minibatches=1",
    f"trainer.total_timesteps={16 * UPDATES}",
    "run.chunk_updates=1",
    "run.checkpoint_every=2",
    "run.eval_episodes=4",
    "run.render_gif=false",
]
# XLA vectorises a batch of 2 seeds differently from a batch of 4, so parameters agree up to float rounding
# (measured: max |difference| 7e-9 after 6 updates; the metrics were bit-equal), not bit for bit.
RTOL, ATOL = 1e-5, 1e-6


def _env(cache: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["JAX_PLATFORMS"] = "cpu"
    env["JAX_COMPILATION_CACHE_DIR"] = cache
    env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sweep(*extra: str) -> list[str]:
    return [sys.executable, "-m", "balancedrl", "sweep", "--seeds", str(SEEDS), "--no-progress", *extra,
            "--set", *TINY]  # fmt: skip


def _two_processes(
    hosts: list[Path], cache: str, *extra: str, direct: bool = False
) -> list[subprocess.CompletedProcess]:
    """``sweep --run-dir run`` as processes 0 and 1 of 2, process i in ``hosts[i]``. ``direct`` starts the
    program the command re-executes itself into (``distributed.BOOTSTRAP``) without the command's first
    import of balancedrl (a few CPU seconds per process)."""
    port = _free_port()
    cmds = []
    for i in range(2):
        flags = ["--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)]
        cmd = _sweep("--run-dir", "run", *flags, *extra)
        if direct:
            spec = json.dumps({"coordinator": f"127.0.0.1:{port}", "num_processes": 2, "process_id": i,
                               "timeout_s": 300})  # fmt: skip
            cmd = [sys.executable, "-c", BOOTSTRAP, spec, *cmd[3:]]
        cmds.append(cmd)
    procs = [
        subprocess.Popen(
            cmd,
            cwd=host,
            env=_env(cache),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for cmd, host in zip(cmds, hosts)
    ]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=900)
        outs.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return outs


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return os.environ.get("JAX_COMPILATION_CACHE_DIR") or str(tmp_path_factory.mktemp("jax_cache"))


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _assert_close(a, b, what: str):
    if a is None or b is None:
        assert a is None and b is None, what
        return
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=RTOL, atol=ATOL, err_msg=what)


def _assert_same_sweep(ref: Path, run: Path):
    ra, rb = _rows(ref), _rows(run)
    assert [(r["update"], r["seed"]) for r in ra] == [(r["update"], r["seed"]) for r in rb]
    assert len(ra) == SEEDS * UPDATES
    for a, b in zip(ra, rb):
        assert a.keys() == b.keys()
        for k in a:
            _assert_close(a[k], b[k], f"metrics.jsonl update {a['update']} seed {a['seed']} {k}")
    assert list_checkpoints(run)[-1] == UPDATES
    last = f"update_{UPDATES:07d}"
    with (
        np.load(checkpoint_dir(ref) / last / ARRAYS) as za,
        np.load(checkpoint_dir(run) / last / ARRAYS) as zb,
    ):
        assert za.files == zb.files
        for k in za.files:
            assert za[k].dtype == zb[k].dtype and za[k].shape == zb[k].shape, k
            if np.issubdtype(za[k].dtype, np.floating):
                _assert_close(za[k], zb[k], f"final checkpoint leaf {k}")
            else:  # counters, PRNG keys, flags: exact
                np.testing.assert_array_equal(za[k], zb[k], err_msg=f"final checkpoint leaf {k}")
    ea, eb = (json.loads((r / "eval.json").read_text()) for r in (ref, run))
    assert ea.keys() == eb.keys() and len(ea["policy_per_seed"]) == SEEDS
    for name in ea:
        pairs = zip(ea[name], eb[name]) if isinstance(ea[name], list) else [(ea[name], eb[name])]
        for sa, sb in pairs:
            assert sa.keys() == sb.keys()
            for k in sa:
                _assert_close(sa[k], sb[k], f"eval.json {name} {k}")


def test_pack_unpack_round_trip_of_mixed_leaves():
    rng = np.random.default_rng(0)
    leaves = [
        rng.normal(size=(3, 4, 2)).astype(np.float32),
        np.array([[True], [False], [True]]),
        rng.integers(0, 2**32, size=(3, 2), dtype=np.uint32),
        np.zeros((3, 0), np.float32),  # a zero-size leaf (no continuous head)
        np.arange(3, dtype=np.int32),
    ]
    buf = _pack(leaves, 3)
    assert buf.shape == (3, sum(x.nbytes for x in leaves) // 3) and buf.dtype == np.uint8
    two = np.concatenate([buf, buf[::-1]])  # what a gather of two processes returns
    for x, y in zip(leaves, _unpack(two, leaves)):
        assert y.dtype == x.dtype
        np.testing.assert_array_equal(y, np.concatenate([x, x[::-1]]))


@pytest.mark.parametrize(
    "flags, fragment",
    [
        (["--num-processes", "2", "--process-id", "0"], "missing: --coordinator"),
        (["--coordinator", "127.0.0.1:1234"], "missing: --num-processes, --process-id"),
        (["--coordinator", "localhost", "--num-processes", "2", "--process-id", "0"], "must be HOST:PORT"),
        (
            ["--coordinator", "h:1", "--num-processes", "0", "--process-id", "0"],
            "--num-processes 0: must be >= 1",
        ),
        (["--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"], "allowed: 0 .. 1"),
        (["--coordinator", "h:1", "--num-processes", "3", "--process-id", "0"], "use e.g. --seeds 6"),
    ],
)
def test_bad_launch_flags_are_one_line_errors(flags, fragment, capsys, tmp_path):
    assert main(["sweep", "--seeds", str(SEEDS), "--run-dir", str(tmp_path / "run"), *flags]) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


def test_check_launch_without_flags_is_one_process():
    assert check_launch(None, None, None, 5) is None
    assert check_launch("10.0.0.1:12355", 4, 3, 8) == ("10.0.0.1:12355", 4, 3)


def test_two_processes_equal_one_process_also_across_a_resume(tmp_path, cache):
    """Processes 0 and 1 train seeds {0, 1} and {2, 3}; stopped after update 2 (process 0 checkpoints the
    gathered state) and resumed (process 0 restores it and broadcasts it): metrics, final state and
    evaluation equal a single-process sweep of the 4 seeds. A second start without --resume is refused by
    process 0, and process 1 stops too, with process 0's reason."""
    hosts = [tmp_path / "host0", tmp_path / "host1"]
    for h in hosts:
        h.mkdir()
    ref = tmp_path / "ref"
    single = subprocess.Popen(
        _sweep("--run-dir", str(ref)),
        env=_env(cache),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = _two_processes(hosts, cache, "--stop-after", "2")
    out, err = single.communicate(timeout=900)
    assert single.returncode == 0, err[-3000:]
    for i, r in enumerate(first):
        assert r.returncode == 0, f"process {i}: {r.stderr[-3000:]}"
    run = hosts[0] / "run"
    assert list_checkpoints(run) == [2]
    assert "trained seeds 2 .. 3" in first[1].stdout

    refused = _two_processes(hosts, cache, direct=True)
    assert refused[0].returncode == 6 and "--resume" in refused[0].stderr, refused[0].stderr[-3000:]
    assert refused[1].returncode == 7, refused[1].stderr[-3000:]
    assert "process 0 stopped: RunError:" in refused[1].stderr and "--resume" in refused[1].stderr

    second = _two_processes(hosts, cache, "--resume", direct=True)
    for i, r in enumerate(second):
        assert r.returncode == 0, f"process {i}: {r.stderr[-3000:]}"
    assert "resume: from" in second[0].stdout
    _assert_same_sweep(ref, run)
    assert json.loads((run / "timing.json").read_text())["processes"] == 2
    assert not (hosts[1] / "run").exists()  # process 1 wrote nothing
