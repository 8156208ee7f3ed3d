"""Metrics as JSON lines: one line per (update, seed) in ``<run_dir>/metrics.jsonl``.

Scalars keep the source project's names (``discrete_weight_used``, ``continuous_grad_norm``, ``current_entropy_coeff``,
...). Per-component vectors are also written as named scalars (``component_final_weight/total``, ...), and
WSA weights as ``wsa_weight/<extractor>``. NaN (a feature that is off, or no finished episode) is written
as ``null``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

_VECTOR_NAMES = {
    "component_base_weights": "component_base_weight",
    "component_attention_weights": "component_attention_weight",
    "component_final_weights": "component_final_weight",
    "value_loss_per_component": "value_loss",
    "reward_components_mean": "reward_mean",
    "advantage_std_per_component": "advantage_std",
}


def _clean(x: float):
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


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
                if x.ndim == 0:
                    row[k] = _clean(x)
                elif k in _VECTOR_NAMES:
                    for name, xi in zip(component_names, x):
                        row[f"{_VECTOR_NAMES[k]}/{name}"] = _clean(xi)
                elif k == "wsa_weights":
                    for name, xi in zip(extractor_names, x):
                        row[f"wsa_weight/{name}"] = _clean(xi)
                else:
                    row[k] = [_clean(xi) for xi in np.ravel(x)]
            rows.append(row)
    return rows


class MetricsLog:
    """Append-only JSONL writer that can be truncated back to a checkpoint on resume."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def truncate_after(self, update: int) -> None:
        """Drop rows written after ``update`` (they belong to a run that stopped before its next checkpoint)."""
        if not self.path.exists():
            return
        keep = [
            line
            for line in self.path.read_text().splitlines()
            if line and json.loads(line)["update"] <= update
        ]
        self.path.write_text("".join(line + "\n" for line in keep))

    def write(self, rows: list[dict]) -> None:
        with self.path.open("a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")


def read_metrics(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
