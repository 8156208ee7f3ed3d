"""Metrics as JSON lines: one line per (update, seed) in ``<run_dir>/metrics.jsonl``.

Scalars keep the source project's names (``discrete_weight_used``, ``continuous_grad_norm``, ``current_entropy_coeff``,
...). Per-component vectors are also written as named scalars (``component_final_weight/total``, ...), and
WSA weights as ``wsa_weight/<extractor>``.

"Not measured" and "non-finite" are kept apart: NaN in a metric that may legitimately be unmeasured (a
feature that is off, no finished episode) is written as ``null``; NaN in a metric that is always measured
(:func:`always_measured`: the losses and the gradient norm) is written as the string ``"nan"``, and an
infinity anywhere as ``"inf"`` / ``"-inf"``. :func:`read_metrics` turns those strings back into floats.
"""

from __future__ import annotations

import json
import math
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
