"""Checkpoints of the whole runner state (parameters, optimizer, normalisation, EMA, RNG, envs), verified.

Layout of ``<run_dir>/checkpoints/``::

    update_0000050/arrays.npz     every leaf of the state, in tree-flatten order (``a00000``, ``a00001``, ...)
    update_0000050.json           metadata, written LAST: the "complete" marker

A save writes ``arrays.npz`` into a hidden temporary directory, fsyncs it, renames the directory to
``update_0000050`` and only then writes the metadata to a temporary name and ``os.replace``-s it into place
(atomic on POSIX). The metadata holds the config fingerprint, the sha256 and size of ``arrays.npz``, the
shape and dtype of every leaf, and a sha256 of the metadata itself. So at any instant of a kill:

* no ``update_N.json``: the checkpoint is *incomplete* (an interrupted write) and is never restored; a
  resume skips it (saying so) and a later save of the same update replaces it;
* ``update_N.json`` present: every byte of the checkpoint was written; a restore re-hashes
  ``arrays.npz`` and refuses (naming the file) when a byte differs, when the metadata is damaged, when the
  leaf shapes or dtypes differ from the expected state, or when it was written by another configuration.

Why not orbax: an orbax save of the trainer state fails for action spaces without a continuous head (a
zero-size ``log_std``), and orbax does not check what it reads back; one ``.npz`` is enough for a state
this size and makes the checksum cover every byte. Checkpoints of the earlier orbax layout (no
``format`` in their metadata) are still restored, with a warning that they carry no checksum.

Test hook (tests/test_faults.py): ``BALANCEDRL_FAULT=<stage>@<update>`` SIGKILLs the process at that stage
of that update's save (stages: ``arrays-partial``, ``arrays-written``, ``renamed``, ``meta-tmp``,
``complete``); ``BALANCEDRL_FAULT_SLEEP=<seconds>`` sleeps between the stages, so a kill from outside
lands inside a write.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import signal
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

FORMAT = "balancedrl-checkpoint-v1"
ARRAYS = "arrays.npz"
_NAME = re.compile(r"^update_(\d{7})$")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete, corrupted or does not match the configuration."""


class DamagedCheckpointError(CheckpointError):
    """A complete checkpoint whose bytes no longer match what was written (or whose metadata is unreadable)."""


class ConfigMismatchError(CheckpointError):
    """A checkpoint written by another configuration."""


def config_fingerprint(config_dict: dict) -> str:
    """Hash of everything that changes the computation (the ``run`` section only names and schedules I/O)."""
    relevant = {k: v for k, v in config_dict.items() if k != "run"}
    relevant["run_seed"] = config_dict.get("run", {}).get("seed")
    relevant["run_num_seeds"] = config_dict.get("run", {}).get("num_seeds")
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir).absolute() / "checkpoints"


def _name(update: int) -> str:
    return f"update_{update:07d}"


def meta_path(run_dir: str | Path, update: int) -> Path:
    return checkpoint_dir(run_dir) / f"{_name(update)}.json"


def list_checkpoints(run_dir: str | Path) -> list[int]:
    """Update indices of complete checkpoints (directory plus metadata marker), ascending. Complete does not
    mean valid: :func:`verify_checkpoint` re-hashes the bytes."""
    return [u for u, complete in scan_checkpoints(run_dir) if complete]


def scan_checkpoints(run_dir: str | Path) -> list[tuple[int, bool]]:
    """``(update, complete)`` of every checkpoint directory, ascending; ``complete`` is whether its metadata
    marker exists (False: an interrupted write)."""
    d = checkpoint_dir(run_dir)
    if not d.is_dir():
        return []
    out = []
    for p in d.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_dir():
            out.append((int(m.group(1)), (d / f"{p.name}.json").is_file()))
    return sorted(out)


# ------------------------------------------------------------------------------------------------ fault hook


def _fault_point(stage: str, update: int) -> None:
    delay = os.environ.get("BALANCEDRL_FAULT_SLEEP")
    if delay:
        time.sleep(float(delay))
    if os.environ.get("BALANCEDRL_FAULT") == f"{stage}@{update}":
        os.kill(os.getpid(), signal.SIGKILL)


# ------------------------------------------------------------------------------------------------ hashing


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _meta_digest(meta: dict) -> str:
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return _sha256(json.dumps(body, sort_keys=True, default=str).encode())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace`` (readers see the old file or
    the new one, never a torn one)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


# ------------------------------------------------------------------------------------------------ leaves


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _to_host(leaf) -> np.ndarray:
    if _is_key(leaf):
        leaf = jax.random.key_data(leaf)
    return np.asarray(jax.device_get(leaf))


def _spec(leaf) -> tuple[tuple[int, ...], str]:
    if _is_key(leaf):
        leaf = jax.eval_shape(jax.random.key_data, leaf)
    return tuple(int(s) for s in leaf.shape), str(np.dtype(leaf.dtype))


# ------------------------------------------------------------------------------------------------ save


def save_checkpoint(run_dir: str | Path, update: int, state: Any, metadata: dict) -> Path:
    """Write ``state`` as checkpoint ``update`` (see the module docstring for the protocol); return its
    directory. A complete checkpoint of the same update is never overwritten; an incomplete one (left by a
    killed process) is replaced."""
    d = checkpoint_dir(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    path = d / _name(update)
    mp = meta_path(run_dir, update)
    if mp.exists():
        raise CheckpointError(f"checkpoint {path} already exists; refusing to overwrite it")
    leaves, treedef = jax.tree_util.tree_flatten(state)
    host = [_to_host(x) for x in leaves]
    buf = io.BytesIO()
    np.savez(buf, **{f"a{i:05d}": x for i, x in enumerate(host)})
    data = buf.getvalue()

    tmp_dir = d / f".{_name(update)}.tmp-{os.getpid()}"
    if tmp_dir.exists():
        shutil.rmtree(tmp_dir)
    tmp_dir.mkdir()
    with open(tmp_dir / ARRAYS, "wb") as f:
        half = len(data) // 2
        f.write(data[:half])
        f.flush()
        _fault_point("arrays-partial", update)
        f.write(data[half:])
        f.flush()
        os.fsync(f.fileno())
    _fsync_dir(tmp_dir)
    _fault_point("arrays-written", update)
    if path.exists():  # an incomplete checkpoint of this update (no metadata): a killed earlier attempt
        shutil.rmtree(path)
    os.replace(tmp_dir, path)
    _fsync_dir(d)
    _fault_point("renamed", update)

    meta = dict(
        metadata,
        update=update,
        format=FORMAT,
        files={ARRAYS: {"sha256": _sha256(data), "bytes": len(data)}},
        leaves=[list(_spec(x)) for x in leaves],
        treedef=str(treedef),
    )
    meta["meta_sha256"] = _meta_digest(meta)
    tmp = d / f".{mp.name}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(json.dumps(meta, indent=1, default=str))
        f.flush()
        os.fsync(f.fileno())
    _fault_point("meta-tmp", update)
    os.replace(tmp, mp)  # the complete marker
    _fsync_dir(d)
    _fault_point("complete", update)
    return path


# ------------------------------------------------------------------------------------------------ verify


def load_metadata(run_dir: str | Path, update: int) -> dict:
    """The metadata of a complete checkpoint, checked against its own sha256."""
    p = meta_path(run_dir, update)
    try:
        meta = json.loads(p.read_text())
    except FileNotFoundError as e:
        raise CheckpointError(f"checkpoint {checkpoint_dir(run_dir) / _name(update)} is incomplete: {p} is missing") from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DamagedCheckpointError(f"checkpoint metadata {p} is damaged (unreadable: {e})") from e
    if not isinstance(meta, dict):
        raise DamagedCheckpointError(f"checkpoint metadata {p} is damaged (not a mapping)")
    if "meta_sha256" in meta and meta["meta_sha256"] != _meta_digest(meta):
        raise DamagedCheckpointError(f"checkpoint metadata {p} is damaged (its sha256 does not match)")
    return meta


def _check_fingerprint(path: Path, meta: dict, fingerprint: str | None) -> None:
    if fingerprint is not None and meta.get("fingerprint") != fingerprint:
        raise ConfigMismatchError(
            f"checkpoint {path} was written with a different configuration (fingerprint "
            f"{meta.get('fingerprint')} != {fingerprint}); resume with the run's own config.yaml"
        )


def _read_arrays(path: Path, meta: dict) -> bytes:
    f = path / ARRAYS
    want = meta.get("files", {}).get(ARRAYS, {})
    try:
        data = f.read_bytes()
    except OSError as e:
        raise DamagedCheckpointError(f"checkpoint file {f} is damaged (unreadable: {e})") from e
    if len(data) != want.get("bytes") or _sha256(data) != want.get("sha256"):
        raise DamagedCheckpointError(
            f"checkpoint file {f} is damaged: its sha256 does not match the one recorded when it was written "
            f"({len(data)} bytes, {want.get('bytes')} expected)"
        )
    return data


def verify_checkpoint(run_dir: str | Path, update: int, fingerprint: str | None = None) -> dict:
    """Check a complete checkpoint's metadata, configuration and checksums without restoring it; return its
    metadata. Raises :class:`ConfigMismatchError` or :class:`DamagedCheckpointError` naming the file."""
    path = checkpoint_dir(run_dir) / _name(update)
    meta = load_metadata(run_dir, update)
    _check_fingerprint(path, meta, fingerprint)
    if meta.get("format") == FORMAT:
        _read_arrays(path, meta)
    return meta


def restore_checkpoint(run_dir: str | Path, update: int, like: Any, fingerprint: str | None = None) -> Any:
    """Restore the state saved at ``update`` into the structure/shapes/dtypes of ``like`` (an abstract or
    concrete pytree), after verifying the checksums. Raises :class:`CheckpointError` naming the path and
    the problem."""
    path = checkpoint_dir(run_dir) / _name(update)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {path} does not exist")
    meta = load_metadata(run_dir, update)
    _check_fingerprint(path, meta, fingerprint)
    if meta.get("format") != FORMAT:
        return _restore_orbax(path, like)
    data = _read_arrays(path, meta)
    leaves, treedef = jax.tree_util.tree_flatten(like)
    want = [_spec(x) for x in leaves]
    got = [(tuple(s), d) for s, d in meta.get("leaves", [])]
    if got != want:
        diff = next(
            (f"leaf {i}: checkpoint {g}, expected {w}" for i, (g, w) in enumerate(zip(got, want)) if g != w),
            f"{len(got)} leaves, expected {len(want)}",
        )
        raise CheckpointError(f"checkpoint {path} does not match the expected state ({diff})")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = [z[f"a{i:05d}"] for i in range(len(leaves))]
    except Exception as e:  # a zip that hashes right but does not parse: written by something else
        raise DamagedCheckpointError(f"checkpoint file {path / ARRAYS} is damaged ({e})") from e
    out = [
        jax.random.wrap_key_data(a, impl=jax.random.key_impl(x)) if _is_key(x) else a
        for a, x in zip(arrays, leaves)
    ]
    return jax.tree_util.tree_unflatten(treedef, out)


def _restore_orbax(path: Path, like: Any) -> Any:
    import orbax.checkpoint as ocp  # only for checkpoints written before the checksummed format

    print(f"warning: checkpoint {path} predates checksums (orbax layout); restoring it unverified")
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, like)
    ckptr = ocp.StandardCheckpointer()
    try:
        return ckptr.restore(path, abstract)
    except Exception as e:  # orbax raises several types for corrupted / mismatched trees
        raise CheckpointError(f"checkpoint {path} could not be restored into the expected state: {e}") from e
    finally:
        ckptr.close()


# ------------------------------------------------------------------------------------------------ resume


class ResumePlan(NamedTuple):
    """What a resume will do: start from ``update`` (None: no valid checkpoint), after ``skipped``
    ``(path, reason)`` of newer checkpoints; ``incomplete``/``damaged`` are the updates to clean away."""

    update: int | None
    skipped: list[tuple[str, str]]
    incomplete: list[int]
    damaged: list[int]


def plan_resume(run_dir: str | Path, fingerprint: str | None, skip_damaged: bool = False) -> ResumePlan:
    """Pick the newest complete and valid checkpoint. Incomplete ones (interrupted writes) are skipped.
    A damaged one raises :class:`DamagedCheckpointError` naming the file, unless ``skip_damaged``, which
    skips it too. A checkpoint of another configuration always raises. Nothing is changed on disk."""
    skipped, incomplete, damaged = [], [], []
    d = checkpoint_dir(run_dir)
    for update, complete in reversed(scan_checkpoints(run_dir)):
        path = d / _name(update)
        if not complete:
            skipped.append((str(path), "incomplete: its metadata marker was never written (interrupted save)"))
            incomplete.append(update)
            continue
        try:
            verify_checkpoint(run_dir, update, fingerprint)
        except DamagedCheckpointError as e:
            if not skip_damaged:
                raise DamagedCheckpointError(
                    f"{e}; refusing to resume from it (--skip-damaged resumes from the newest valid checkpoint "
                    "and renames the damaged ones to *.damaged)"
                ) from e
            skipped.append((str(path), f"damaged: {e}"))
            damaged.append(update)
            continue
        return ResumePlan(update, skipped, incomplete, damaged)
    return ResumePlan(None, skipped, incomplete, damaged)


def clean_after_resume(run_dir: str | Path, plan: ResumePlan) -> None:
    """Remove the incomplete checkpoints newer than the resume point and rename damaged ones to
    ``*.damaged`` (kept for inspection; no longer listed), so the resumed run can write those updates."""
    d = checkpoint_dir(run_dir)
    start = plan.update or 0
    for u in plan.incomplete:
        if u > start:
            shutil.rmtree(d / _name(u), ignore_errors=True)
    for u in plan.damaged:
        if u > start:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            os.replace(d / _name(u), d / f"{_name(u)}.damaged-{stamp}")
            if meta_path(run_dir, u).exists():
                os.replace(meta_path(run_dir, u), d / f"{_name(u)}.json.damaged-{stamp}")
    for tmp in d.glob(".update_*.tmp-*") if d.is_dir() else ():
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
