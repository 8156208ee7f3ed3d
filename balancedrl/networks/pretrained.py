"""Orbax checkpoint I/O for the pre-trained CNN extractor (docs/design.md §5, the WSA source "PTM").

The shipped checkpoint `balancedrl/assets/ptm/cnn_v1` holds the parameters of a
`ResNetEncoder(channels=(8, 16, 16), embedding_dim=64)` trained by `experiments/pretrain_ptms.py`
(its metadata, training data and loss are in `cnn_v1.json` next to it). Loading goes through
orbax (`PyTreeCheckpointer.restore`); a missing checkpoint raises FileNotFoundError and a
structure/shape mismatch raises ValueError, both naming the checkpoint path and the mismatch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

DEFAULT_PTM_PATH = Path(__file__).resolve().parent.parent / "assets" / "ptm" / "cnn_v1"
# Architecture of the shipped checkpoint (kept in sync with its cnn_v1.json).
PTM_CHANNELS = (8, 16, 16)
PTM_EMBEDDING_DIM = 64


def _checkpointer():
    import orbax.checkpoint as ocp  # imported lazily: orbax is slow to import

    return ocp.PyTreeCheckpointer()


def _flatten(tree: Any) -> dict[str, tuple[int, ...]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {jax.tree_util.keystr(p): tuple(getattr(x, "shape", np.shape(x))) for p, x in flat}


def describe_mismatch(expected: Any, got: Any) -> str:
    """Human-readable list of missing / unexpected / shape-mismatched leaves ('' if they agree)."""
    fe, fg = _flatten(expected), _flatten(got)
    lines = []
    for k in sorted(set(fe) - set(fg)):
        lines.append(f"missing {k} (expected shape {fe[k]})")
    for k in sorted(set(fg) - set(fe)):
        lines.append(f"unexpected {k} (shape {fg[k]})")
    for k in sorted(set(fe) & set(fg)):
        if fe[k] != fg[k]:
            lines.append(f"{k}: expected shape {fe[k]}, checkpoint has {fg[k]}")
    return "; ".join(lines)


def save_ptm(params: Any, path: str | Path, metadata: dict | None = None) -> Path:
    """Save a parameter pytree with orbax to `path` (a directory; overwritten). Optional
    `metadata` goes to `<path>.json`. Returns the absolute path."""
    path = Path(path).resolve()
    params = jax.tree_util.tree_map(lambda x: np.asarray(x, np.float32), params)
    _checkpointer().save(path, params, force=True)
    if metadata is not None:
        path.with_suffix(".json").write_text(json.dumps(metadata, indent=2, sort_keys=True))
    return path


def load_ptm(path: str | Path | None = None, like: Any | None = None) -> Any:
    """Restore pre-trained extractor parameters (default: the shipped `cnn_v1`).

    Args:
      path: checkpoint directory; None → `DEFAULT_PTM_PATH`.
      like: optional pytree with the expected structure and shapes (e.g. the freshly initialised
        extractor params, or `jax.eval_shape` of them); a mismatch raises ValueError naming the
        path and every difference.
    Returns: a nested dict of float32 jax arrays.
    """
    path = Path(DEFAULT_PTM_PATH if path is None else path).resolve()
    if not path.exists():
        raise FileNotFoundError(
            f"pre-trained model checkpoint not found at {path}; run "
            f"`python experiments/pretrain_ptms.py --out {path}` to create it"
        )
    try:
        restored = _checkpointer().restore(path)
    except Exception as exc:  # orbax raises several types for unreadable directories
        raise ValueError(f"could not restore an orbax checkpoint from {path}: {exc}") from exc
    restored = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), restored)
    if like is not None:
        diff = describe_mismatch(like, restored)
        if diff:
            raise ValueError(f"pre-trained checkpoint at {path} does not match the model: {diff}")
    return restored


def insert_pretrained(variables: Any, ptm_params: Any, name: str) -> Any:
    """Return a copy of `variables` with `variables['params'][name]` replaced by `ptm_params`.

    Raises KeyError if the module `name` does not exist and ValueError on a structure/shape
    mismatch (naming the module and each differing parameter path).
    """
    params = variables["params"] if "params" in variables else None
    if params is None:
        raise KeyError("variables has no 'params' collection")
    if name not in params:
        raise KeyError(f"no module named {name!r} in params; available: {sorted(params)}")
    diff = describe_mismatch(params[name], ptm_params)
    if diff:
        raise ValueError(f"pre-trained params do not fit module {name!r}: {diff}")
    new_params = dict(params)
    new_params[name] = jax.tree_util.tree_map(
        lambda old, new: jnp.asarray(new, old.dtype), params[name], ptm_params
    )
    out = dict(variables)
    out["params"] = new_params
    return out
