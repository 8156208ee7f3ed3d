"""``run.loggers``: config validation, the missing-extra error, TensorBoard event files read back (TFRecord
framing parsed here, events decoded with tensorboardX's own protobufs: no torch, no TensorFlow), and W&B in
offline mode (its ``.wandb`` record log parsed here, records decoded with wandb's protobufs), from a tiny
training run with all three loggers."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from balancedrl.training.config import ConfigError, load_config, to_dict
from balancedrl.training.logging import TensorBoardLogger, check_loggers, flat_config

CONFIGS = Path(__file__).resolve().parent.parent / "experiments" / "configs"
TINY = [
    "env.num_envs=2",
    "trainer.num_steps=8",
    "trainer.update_epochs=1",
    "trainer.num_minibatches=1",
    "trainer.total_timesteps=32",  # 2 updates of 16 env steps
    "actor_critic.hidden_dim=8",
    "run.chunk_updates=1",
    "run.checkpoint_every=2",
]


# ------------------------------------------------------------------ readers


def tfrecords(path: Path) -> list[bytes]:
    """Payloads of a TFRecord file: [u64 length][u32 crc][payload][u32 crc] repeated (CRCs not checked)."""
    data, out, pos = path.read_bytes(), [], 0
    while pos < len(data):
        (n,) = struct.unpack("<Q", data[pos : pos + 8])
        out.append(data[pos + 12 : pos + 12 + n])
        pos += 12 + n + 4
    assert pos == len(data)
    return out


def tb_events(run: Path):
    """``(scalars {tag: [(step, value)]}, hparams {name: value})`` of every event file under ``run``."""
    from tensorboardX.proto import event_pb2, plugin_hparams_pb2

    scalars, hparams = {}, {}
    for f in sorted(run.rglob("events.out.tfevents.*")):
        for rec in tfrecords(f):
            ev = event_pb2.Event.FromString(rec)
            for v in ev.summary.value:
                if v.metadata.plugin_data.plugin_name == "hparams":
                    hp = plugin_hparams_pb2.HParamsPluginData.FromString(v.metadata.plugin_data.content)
                    for k, x in hp.session_start_info.hparams.items():
                        hparams[k] = getattr(x, x.WhichOneof("kind"))
                elif v.HasField("simple_value") or v.WhichOneof("value") == "simple_value":
                    scalars.setdefault(v.tag, []).append((ev.step, v.simple_value))
    return scalars, hparams


def wandb_records(path: Path) -> list[bytes]:
    """Payloads of a W&B ``.wandb`` file: a 7-byte header (``:W&B``, magic, version), then LevelDB-log
    records in 32 KiB blocks: [u32 crc][u16 length][u8 type] + data; type 1 full, 2/3/4 first/middle/last."""
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, buf, out = 7, 32768, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        n, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        chunk = data[pos + 7 : pos + 7 + n]
        pos += 7 + n
        if kind == 1:
            out.append(chunk)
        elif kind == 2:
            buf = chunk
        elif kind == 3:
            buf += chunk
        elif kind == 4:
            out.append(buf + chunk)
    return out


# ------------------------------------------------------------------ config and extras


@pytest.mark.parametrize(
    "value,match",
    [
        ("[jsonl, mlflow]", r"'run.loggers' = \['jsonl', 'mlflow'\] is not allowed; allowed: .*tensorboard"),
        ("jsonl", r"'run.loggers' = 'jsonl' is not allowed"),
        ("[tensorboard]", r"must include 'jsonl'"),
        ("[jsonl, jsonl]", "names a logger twice"),
    ],
)
def test_bad_loggers_are_refused(value, match):
    with pytest.raises(ConfigError, match=match):
        load_config(CONFIGS / "cartpole.yaml", [f"run.loggers={value}"])


def test_default_is_jsonl():
    assert load_config(CONFIGS / "cartpole.yaml").run.loggers == ["jsonl"]


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails as if not installed
    with pytest.raises(ImportError, match=r"balancedrl\[tensorboard\]"):
        check_loggers(["jsonl", "tensorboard"])
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ImportError, match=r"balancedrl\[wandb\]"):
        check_loggers(["jsonl", "wandb"])
    check_loggers(["jsonl"])  # jsonl needs nothing


def test_flat_config():
    assert flat_config({"a": {"b": 1, "c": {"d": "x"}}, "e": [1, 2], "f": None, "g": {}}) == {
        "a.b": 1, "a.c.d": "x", "e": "[1, 2]", "f": "None", "g": "{}"
    }


# ------------------------------------------------------------------ TensorBoard, unit


def test_tensorboard_rows_read_back(tmp_path):
    pytest.importorskip("tensorboardX")
    tb = TensorBoardLogger(tmp_path, {"trainer": {"learning_rate": 0.01, "anneal_lr": True}, "run": {"name": "x"}}, 64)
    rows = [
        {"update": 1, "seed": 0, "total_loss": 0.5, "success_rate": None, "episode_return": float("nan")},
        {"update": 1, "seed": 1, "total_loss": 0.25, "success_rate": 1.0},
        {"update": 2, "seed": 0, "total_loss": 0.125, "episode_return": 3.0, "losses": [1.0, 2.0]},
    ]
    tb.write(rows)
    tb.close()
    s0, hp0 = tb_events(tmp_path / "tensorboard" / "seed_0")
    s1, hp1 = tb_events(tmp_path / "tensorboard" / "seed_1")
    assert s0["total_loss"] == [(64, 0.5), (128, 0.125)]
    assert s0["episode_return"] == [(128, 3.0)]  # NaN (not measured) is skipped
    assert "success_rate" not in s0 and "losses" not in s0
    assert s0["counters/update"] == [(64, 1.0), (128, 2.0)]
    assert s0["counters/env_steps"] == [(64, 64.0), (128, 128.0)]
    assert s1["total_loss"] == [(64, 0.25)] and s1["success_rate"] == [(64, 1.0)]
    assert hp0["trainer.learning_rate"] == pytest.approx(0.01) and hp0["trainer.anneal_lr"] is True
    assert hp0["run.name"] == "x" and hp0["seed_index"] == 0 and hp1["seed_index"] == 1


# ------------------------------------------------------------------ a tiny run with all three loggers


def test_tiny_run_with_all_loggers(tmp_path, monkeypatch):
    pytest.importorskip("tensorboardX")
    pytest.importorskip("wandb")
    from wandb.proto import wandb_internal_pb2 as pb

    from balancedrl.training.logging import read_metrics
    from balancedrl.training.loop import run_training

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = load_config(
        CONFIGS / "cartpole.yaml", [*TINY, "run.loggers=[jsonl, tensorboard, wandb]", "run.name=tiny_loggers"]
    )
    run_dir = run_training(cfg, run_dir=tmp_path / "run", progress=False, evaluate=False, plots=False)
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert [r["update"] for r in rows] == [1, 2]

    scalars, hparams = tb_events(run_dir / "tensorboard" / "seed_0")
    assert [s for s, _ in scalars["total_loss"]] == [16, 32]  # env steps = update x 2 envs x 8 steps
    np.testing.assert_allclose([v for _, v in scalars["total_loss"]], [r["total_loss"] for r in rows], rtol=1e-6)
    assert scalars["counters/update"] == [(16, 1.0), (32, 2.0)]
    assert hparams["trainer.learning_rate"] == pytest.approx(cfg.trainer.learning_rate)
    assert hparams["env.name"] == "CartPole-v1"

    files = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1, list(run_dir.rglob("*"))
    run_id = (run_dir / "wandb_run_id").read_text().strip()
    assert files[0].name == f"run-{run_id}.wandb"
    history, config = [], {}
    for rec in wandb_records(files[0]):
        r = pb.Record.FromString(rec)
        kind = r.WhichOneof("record_type")
        if kind == "history":
            history.append({i.key or "/".join(i.nested_key): i.value_json for i in r.history.item})
        elif kind == "run":
            config.update({i.key or "/".join(i.nested_key): i.value_json for i in r.run.config.update})
        elif kind == "config":
            config.update({i.key or "/".join(i.nested_key): i.value_json for i in r.config.update})
    assert [int(h["update"]) for h in history] == [1, 2]
    assert [int(h["env_steps"]) for h in history] == [16, 32]
    np.testing.assert_allclose(
        [float(h["seed_0/total_loss"]) for h in history], [r["total_loss"] for r in rows], rtol=1e-6
    )
    assert "trainer" in config and '"learning_rate"' in config["trainer"]
    assert to_dict(cfg)["run"]["loggers"] == ["jsonl", "tensorboard", "wandb"]
