"""Orbax checkpoints of the whole runner state (parameters, optimizer, normalisation, EMA, RNG, envs).

Layout: ``<run_dir>/checkpoints/update_0000050/`` (orbax) plus ``update_0000050.json`` (metadata written
*after* orbax has finalised the directory, so a checkpoint without its JSON is incomplete and ignored).
Orbax writes into a temporary directory and renames it when done, and a save never targets an existing
directory, so a failed or interrupted run cannot overwrite an earlier checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

_NAME = re.compile(r"^update_(\d{7})$")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete, corrupted or does not match the configuration."""


def config_fingerprint(config_dict: dict) -> str:
    """Hash of everything that changes the computation (the ``run`` section only names and schedules I/O)."""
    relevant = {k: v for k, v in config_dict.items() if k != "run"}
    relevant["run_seed"] = config_dict.get("run", {}).get("seed")
    relevant["run_num_seeds"] = config_dict.get("run", {}).get("num_seeds")
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir).absolute() / "checkpoints"


def list_checkpoints(run_dir: str | Path) -> list[int]:
    """Update indices of complete checkpoints (those with their metadata JSON), ascending."""
    d = checkpoint_dir(run_dir)
    if not d.is_dir():
        return []
    out = []
    for p in d.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_dir() and (d / f"{p.name}.json").is_file():
            out.append(int(m.group(1)))
    return sorted(out)


def save_checkpoint(run_dir: str | Path, update: int, state: Any, metadata: dict) -> Path:
    d = checkpoint_dir(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"update_{update:07d}"
    if path.exists():
        raise CheckpointError(f"checkpoint {path} already exists; refusing to overwrite it")
    ckptr = ocp.StandardCheckpointer()
    ckptr.save(path, state)
    ckptr.wait_until_finished()
    ckptr.close()
    meta = dict(metadata, update=update)
    tmp = d / f"update_{update:07d}.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1, default=str))
    tmp.rename(d / f"update_{update:07d}.json")
    return path


def load_metadata(run_dir: str | Path, update: int) -> dict:
    p = checkpoint_dir(run_dir) / f"update_{update:07d}.json"
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"checkpoint metadata {p} is unreadable: {e}") from e


def restore_checkpoint(run_dir: str | Path, update: int, like: Any, fingerprint: str | None = None) -> Any:
    """Restore the state saved at ``update`` into the structure/shapes/dtypes of ``like`` (an abstract or
    concrete pytree). Raises :class:`CheckpointError` naming the path and the problem."""
    path = checkpoint_dir(run_dir) / f"update_{update:07d}"
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {path} does not exist")
    meta = load_metadata(run_dir, update)
    if fingerprint is not None and meta.get("fingerprint") != fingerprint:
        raise CheckpointError(
            f"checkpoint {path} was written with a different configuration (fingerprint "
            f"{meta.get('fingerprint')} != {fingerprint}); resume with the run's own config.yaml"
        )
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, like)
    ckptr = ocp.StandardCheckpointer()
    try:
        return ckptr.restore(path, abstract)
    except Exception as e:  # orbax raises several types for corrupted / mismatched trees
        raise CheckpointError(f"checkpoint {path} could not be restored into the expected state: {e}") from e
    finally:
        ckptr.close()
