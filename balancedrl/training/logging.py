"""Metrics as JSON lines: one line per (update, seed) in ``<run_dir>/metrics.jsonl``; and the same rows to
TensorBoard and Weights & Biases when ``run.loggers`` names them (:func:`open_loggers`).

Scalars keep the source project's names (``discrete_weight_used``, ``continuous_grad_norm``, ``current_entropy_coeff``,
...). Per-component vectors are also written as named scalars (``component_final_weight/total``, ...), and
WSA weights as ``wsa_weight/<extractor>``.

"Not measured" and "non-finite" are kept apart: NaN in a metric that may legitimately be unmeasured (a
feature that is off, no finished episode) is written as ``null``; NaN in a metric that is always measured
(:func:`always_measured`: the losses and the gradient norm) is written as the string ``"nan"``, and an
infinity anywhere as ``"inf"`` / ``"-inf"``. :func:`read_metrics` turns those strings back into floats.

``run.loggers`` (``[jsonl]`` by default; jsonl is always among them, as resume, plots and eval read it):

* ``tensorboard`` (extra ``tensorboard``: tensorboardX, no torch or TensorFlow): event files in
  ``<run_dir>/tensorboard/seed_<s>/``, one run per seed so their curves overlay; every finite scalar of a row
  at ``global_step`` = env steps of that seed (``update x env.num_envs x trainer.num_steps``), with
  ``counters/update`` and ``counters/env_steps``; the run config (flattened dotted keys) as TensorBoard
  hyper-parameters (the HParams plugin).
* ``wandb`` (extra ``wandb``): one W&B run per run directory, project ``run.wandb_project``, its id kept in
  ``<run_dir>/wandb_run_id`` so a resumed run continues it; config = the run config; one ``log`` per
  update with ``seed_<s>/<metric>``, ``update`` and ``env_steps`` (W&B's step is the update). Where it goes
  is W&B's own setting (``WANDB_MODE=offline`` keeps it on disk, ``WANDB_DIR`` says where).

Both skip null / non-finite values (jsonl keeps those apart, see above). A resumed run re-logs the updates
after its checkpoint to them (jsonl drops the old rows; TensorBoard shows both, W&B keeps the later).
"""

from __future__ import annotations

import json
import math
import secrets
from pathlib import Path

import numpy as np

from balancedrl.training.checkpoint import write_atomic

_VECTOR_NAMES = {
    "component_base_weights": "component_base_weight",
    "component_attention_weights": "component_attention_weight",
    "component_final_weights": "component_final_weight",
    "value_loss_per_component": "value_loss",
    "reward_components_mean": "reward_mean",
    "advantage_std_per_component": "advantage_std",
}


_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def always_measured(name: str) -> bool:
    """Metrics every update measures (so NaN there is a fault, never "not measured")."""
    return "loss" in name or name == "grad_norm"


def _clean(x: float, measured: bool = False):
    x = float(x)
    if math.isnan(x):
        return "nan" if measured else None
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def rows_from_metrics(
    metrics: dict[str, np.ndarray], first_update: int, component_names, extractor_names=()
) -> list[dict]:
    """``metrics[k]`` has shape ``[S, n, ...]`` (seeds, updates); returns one dict per (update, seed)."""
    any_v = next(iter(metrics.values()))
    num_seeds, n = any_v.shape[:2]
    rows = []
    for i in range(n):
        for s in range(num_seeds):
            row = {"update": first_update + i + 1, "seed": s}
            for k, v in metrics.items():
                x = v[s, i]
                req = always_measured(k)
                if x.ndim == 0:
                    row[k] = _clean(x, req)
                elif k in _VECTOR_NAMES:
                    for name, xi in zip(component_names, x):
                        row[f"{_VECTOR_NAMES[k]}/{name}"] = _clean(xi, req)
                elif k == "wsa_weights":
                    for name, xi in zip(extractor_names, x):
                        row[f"wsa_weight/{name}"] = _clean(xi, req)
                else:
                    row[k] = [_clean(xi, req) for xi in np.ravel(x)]
            rows.append(row)
    return rows


class MetricsLog:
    """Append-only JSONL writer that can be truncated back to a checkpoint on resume."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def truncate_after(self, update: int) -> None:
        """Drop rows written after ``update`` (they belong to a run that stopped before its next checkpoint),
        and a torn last line left by a killed writer. Rewritten atomically (temporary file + rename)."""
        if not self.path.exists():
            return
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill mid-write
            if isinstance(row, dict) and isinstance(row.get("update"), int) and row["update"] <= update:
                keep.append(line)
        write_atomic(self.path, "".join(line + "\n" for line in keep))

    def write(self, rows: list[dict]) -> None:
        with self.path.open("a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")


def _revive(x):
    if isinstance(x, str) and x in _NONFINITE:
        return _NONFINITE[x]
    if isinstance(x, list):
        return [_revive(v) for v in x]
    return x


def read_metrics(path: str | Path) -> list[dict]:
    """Rows of a ``metrics.jsonl``; ``"nan"``/``"inf"``/``"-inf"`` come back as floats, ``null`` as None."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [{k: _revive(v) for k, v in r.items()} for r in rows]


LOGGERS = ("jsonl", "tensorboard", "wandb")


def flat_config(d: dict, prefix: str = "") -> dict:
    """Nested config dict -> ``{"section.key": value}`` with values int / float / str / bool (lists and
    other values as their string)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flat_config(v, key + "."))
        elif isinstance(v, (bool, int, float, str)):
            out[key] = v
        else:
            out[key] = str(v)
    return out


def scalar_items(row: dict):
    """``(name, value)`` of a metrics row's finite scalar metrics (not the counters)."""
    for k, v in row.items():
        if k in ("update", "seed") or isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if math.isfinite(v):
            yield k, float(v)


def _require(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"run.loggers names {extra!r}, which needs the optional package {module!r} ({e}); "
            f"install it with: pip install 'balancedrl[{extra}]'"
        ) from e


class TensorBoardLogger:
    """Rows to TensorBoard event files through tensorboardX (see the module docstring)."""

    def __init__(self, run_dir: Path, config: dict, steps_per_update: int):
        self._tbx = _require("tensorboardX", "tensorboard")
        self.root = Path(run_dir) / "tensorboard"
        self.steps_per_update = steps_per_update
        self.config = flat_config(config)
        self.writers = {}

    def _writer(self, seed: int):
        if seed not in self.writers:
            from tensorboardX.summary import hparams

            w = self._tbx.SummaryWriter(str(self.root / f"seed_{seed}"))
            for summary in hparams({**self.config, "seed_index": seed}, {"episode_return": 0.0}):
                w.file_writer.add_summary(summary)
            self.writers[seed] = w
        return self.writers[seed]

    def write(self, rows: list[dict]) -> None:
        for r in rows:
            w = self._writer(int(r["seed"]))
            step = int(r["update"]) * self.steps_per_update
            w.add_scalar("counters/update", int(r["update"]), step)
            w.add_scalar("counters/env_steps", step, step)
            for k, v in scalar_items(r):
                w.add_scalar(k, v, step)

    def close(self) -> None:
        for w in self.writers.values():
            w.close()


class WandbLogger:
    """Rows to one Weights & Biases run (see the module docstring)."""

    def __init__(self, run_dir: Path, config: dict, steps_per_update: int, project: str, name: str):
        wandb = _require("wandb", "wandb")
        id_file = Path(run_dir) / "wandb_run_id"
        run_id = id_file.read_text().strip() if id_file.exists() else secrets.token_hex(4)
        id_file.write_text(run_id + "\n")
        self.steps_per_update = steps_per_update
        self.run = wandb.init(
            project=project, name=name, id=run_id, resume="allow", config=config, dir=str(run_dir)
        )
        self.run.define_metric("update")
        self.run.define_metric("env_steps")

    def write(self, rows: list[dict]) -> None:
        by_update: dict[int, dict] = {}
        for r in rows:
            u = int(r["update"])
            d = by_update.setdefault(u, {"update": u, "env_steps": u * self.steps_per_update})
            d.update({f"seed_{r['seed']}/{k}": v for k, v in scalar_items(r)})
        for u in sorted(by_update):
            self.run.log(by_update[u], step=u)

    def close(self) -> None:
        self.run.finish()


class Loggers:
    """The run's metrics log (:class:`MetricsLog`) and the other loggers ``run.loggers`` names, written and
    closed together."""

    def __init__(self, log: MetricsLog, others: list):
        self.log = log
        self.others = others

    def truncate_after(self, update: int) -> None:
        self.log.truncate_after(update)

    def write(self, rows: list[dict]) -> None:
        self.log.write(rows)
        for o in self.others:
            o.write(rows)

    def close(self) -> None:
        for o in self.others:
            o.close()


def check_loggers(names) -> None:
    """Fail now, naming the extra to install, if a logger in ``names`` needs a package that is missing."""
    if "tensorboard" in names:
        _require("tensorboardX", "tensorboard")
    if "wandb" in names:
        _require("wandb", "wandb")


def open_loggers(names, run_dir: Path, config: dict, steps_per_update: int) -> Loggers:
    """:class:`Loggers` for ``names`` (``run.loggers``); ``steps_per_update`` = env steps per seed and update.
    An optional package that is missing fails here, before training starts, naming the extra to install."""
    run_dir = Path(run_dir)
    others = []
    try:
        if "tensorboard" in names:
            others.append(TensorBoardLogger(run_dir, config, steps_per_update))
        if "wandb" in names:
            run = config.get("run", {})
            others.append(
                WandbLogger(run_dir, config, steps_per_update, run.get("wandb_project", "balancedrl"),
                            run.get("name"))
            )
    except BaseException:
        for o in others:
            o.close()
        raise
    return Loggers(MetricsLog(run_dir / "metrics.jsonl"), others)
