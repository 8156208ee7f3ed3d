"""A seed sweep over several processes with ``jax.distributed``, JAX's multi-controller runtime (one Python
process per host, all running the same program; on CPU the cross-process collectives are gloo's).

Every process runs the same ``balancedrl sweep`` command with its own ``--process-id``. Of the sweep's ``S``
seeds, process ``p`` of ``N`` trains the block ``[p S/N, (p+1) S/N)`` (``S`` must be a multiple of ``N``: the
seeds of one process are one vmapped program, so every process runs the same shapes). Seed ``i`` starts from
``jax.random.split(PRNGKey(run.seed), S)[i]`` whatever ``N`` is, so a seed's run does not depend on how
the seeds are split; only float rounding can differ, because XLA vectorises a batch of ``S/N`` seeds
differently from a batch of ``S``.

The seeds never exchange anything while they train, so the only collectives are gathers to process 0,
which alone touches the run directory (docs/distributed.md):

* after every chunk of updates, the chunk's metrics of all seeds (``gather_seeds``), so every process takes
  the same non-finite decision and process 0 writes ``metrics.jsonl``;
* at a checkpoint, the whole runner state of all seeds; process 0 writes it;
* at the end, every seed's evaluation episodes; process 0 writes ``eval.json``, the plots and the GIF;
* before training, process 0 alone locks the run directory and chooses the checkpoint to resume
  (``leader_outcome``); its verdict, and on a resume the restored state, are broadcast to the others.

With one process every function here is the identity, and the sweep is the single-process one.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, NamedTuple

import jax
import numpy as np

from balancedrl.training.config import ConfigError

_MESSAGE_BYTES = 2048


class PeerError(RuntimeError):
    """Process 0 stopped before training (bad run directory, lock, checkpoint); its message is carried."""


class Launch(NamedTuple):
    """Where this process sits in a multi-process sweep."""

    coordinator: str
    num_processes: int
    process_id: int


def check_launch(
    coordinator: str | None, num_processes: int | None, process_id: int | None, num_seeds: int
) -> Launch | None:
    """Validate the ``--coordinator / --num-processes / --process-id`` combination before anything starts
    (no JAX call): None when none is given (one process); :class:`ConfigError` naming the flag otherwise.
    A seed count that is not a multiple of the process count is refused, not padded: padded seeds would
    cost a full run each and appear in no result."""
    given = {
        "--coordinator": coordinator,
        "--num-processes": num_processes,
        "--process-id": process_id,
    }
    if all(v is None for v in given.values()):
        return None
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise ConfigError(
            f"a multi-process sweep needs --coordinator HOST:PORT, --num-processes N and --process-id I "
            f"together; missing: {', '.join(missing)}"
        )
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"--coordinator {coordinator!r}: must be HOST:PORT (process 0's address and a free port), "
            "e.g. 10.0.0.1:12355"
        )
    if num_processes < 1:
        raise ConfigError(f"--num-processes {num_processes}: must be >= 1")
    if not 0 <= process_id < num_processes:
        raise ConfigError(
            f"--process-id {process_id}: out of range for --num-processes {num_processes} "
            f"(allowed: 0 .. {num_processes - 1})"
        )
    check_seed_split(num_seeds, num_processes)
    return Launch(coordinator, num_processes, process_id)


def check_seed_split(num_seeds: int, num_processes: int) -> None:
    if num_seeds % num_processes:
        up = -(-num_seeds // num_processes) * num_processes
        raise ConfigError(
            f"--seeds {num_seeds} is not a multiple of --num-processes {num_processes}: every process trains "
            f"the same number of seeds; use e.g. --seeds {up}"
        )


# The process re-executes itself with this program when a launch is requested: jax.distributed.initialize
# must run before JAX's backend starts, and importing balancedrl starts it (gymnax builds arrays at import).
BOOTSTRAP = """
import json, sys
import jax
launch = json.loads(sys.argv[1])
jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize(
    coordinator_address=launch["coordinator"],
    num_processes=launch["num_processes"],
    process_id=launch["process_id"],
    initialization_timeout=launch["timeout_s"],
)
from balancedrl.cli import main
sys.exit(main(sys.argv[2:]))
"""


def exec_launched(launch: Launch, argv: list[str], timeout_s: int = 300) -> None:
    """Replace this process (``os.execv``, same pid) by a fresh interpreter that calls
    ``jax.distributed.initialize`` (gloo collectives on CPU; it waits up to ``timeout_s`` for every process)
    and then ``balancedrl.cli.main(argv)``. Does not return."""
    import json
    import os
    import sys

    spec = json.dumps({**launch._asdict(), "timeout_s": int(timeout_s)})
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-c", BOOTSTRAP, spec, *argv])


def check_initialized(launch: Launch) -> None:
    """The running ``jax.distributed`` runtime is the one ``launch`` asks for."""
    got = (jax.process_count(), jax.process_index())
    if got != (launch.num_processes, launch.process_id):
        raise ConfigError(
            f"jax.distributed is already initialized as process {got[1]} of {got[0]}, but the command asks "
            f"for --process-id {launch.process_id} of --num-processes {launch.num_processes}"
        )


def is_leader() -> bool:
    """Process 0: the one that writes the run directory."""
    return jax.process_index() == 0


def seed_block(num_seeds: int) -> slice:
    """This process's seeds: ``[p S/N, (p+1) S/N)``; every seed with one process."""
    n, p = jax.process_count(), jax.process_index()
    check_seed_split(num_seeds, n)
    per = num_seeds // n
    return slice(p * per, (p + 1) * per)


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _raw(tree):
    """Typed PRNG keys as their uint32 data (collectives move plain arrays), and the inverse."""
    impls = jax.tree_util.tree_map(lambda x: jax.random.key_impl(x) if _is_key(x) else None, tree)
    data = jax.tree_util.tree_map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)
    return data, impls


def _typed(data, impls):
    return jax.tree_util.tree_map(
        lambda x, impl: x if impl is None else jax.random.wrap_key_data(x, impl=impl),
        data,
        impls,
        is_leaf=lambda x: x is None,
    )


_barriers = itertools.count()


def barrier(timeout_s: float = 3600.0) -> None:
    """Wait until every process arrives (the coordination service's barrier, as JAX's own multi-process
    tests use it). Called before every collective: gloo gives a peer only 30 s to join one, and under load a
    peer that is still compiling arrives later than that."""
    from jax._src import distributed as jax_distributed

    name = f"balancedrl_{next(_barriers)}"
    jax_distributed.global_state.client.wait_at_barrier(name, int(timeout_s * 1000))


def _pack(leaves: list[np.ndarray], rows: int) -> np.ndarray:
    """The leaves' bytes side by side, ``[rows, total bytes]``: one collective (and one barrier) moves a
    whole pytree instead of one per leaf."""
    parts = [np.ascontiguousarray(x).reshape(rows, -1).view(np.uint8) for x in leaves]
    return np.concatenate(parts, axis=1) if parts else np.zeros((rows, 0), np.uint8)


def _unpack(buf: np.ndarray, like: list[np.ndarray]) -> list[np.ndarray]:
    """Inverse of :func:`_pack` for ``buf`` of ``[rows', total bytes]``: leaves of leading axis ``rows'``."""
    out, at = [], 0
    for x in like:
        width = x.nbytes // x.shape[0]  # bytes per row
        cols = np.ascontiguousarray(buf[:, at : at + width])
        out.append(cols.view(x.dtype).reshape((buf.shape[0],) + x.shape[1:]))
        at += width
    return out


def gather_seeds(tree: Any) -> Any:
    """Every process's ``tree`` (leaves with a leading seed axis, the same count on every process),
    concatenated in process order, on every process (one ``multihost_utils.process_allgather`` of the
    leaves' bytes); ``tree`` itself with one process."""
    if jax.process_count() == 1:
        return tree
    from jax.experimental import multihost_utils

    data, impls = _raw(tree)
    leaves, treedef = jax.tree_util.tree_flatten(data)
    leaves = [np.asarray(x) for x in leaves]
    rows = leaves[0].shape[0]
    barrier()
    buf = np.asarray(multihost_utils.process_allgather(_pack(leaves, rows), tiled=True))
    return _typed(jax.tree_util.tree_unflatten(treedef, _unpack(buf, leaves)), impls)


def all_processes(flags: np.ndarray) -> np.ndarray:
    """Element-wise AND of a boolean array over the processes (the same answer everywhere)."""
    flags = np.asarray(flags, bool)
    if jax.process_count() == 1:
        return flags
    return np.asarray(gather_seeds(flags[None])).all(axis=0)


def broadcast_from_leader(tree: Any) -> Any:
    """Process 0's ``tree`` on every process; the others pass anything of the same structure, shapes and
    dtypes (one ``multihost_utils.broadcast_one_to_all`` of the leaves' bytes)."""
    if jax.process_count() == 1:
        return tree
    from jax.experimental import multihost_utils

    data, impls = _raw(tree)
    leaves, treedef = jax.tree_util.tree_flatten(data)
    leaves = [np.asarray(x) for x in leaves]
    flat = _pack([x.reshape(1, -1) for x in leaves], 1)
    barrier()
    buf = np.asarray(multihost_utils.broadcast_one_to_all(flat))
    out = [y.reshape(x.shape) for x, y in zip(leaves, _unpack(buf, [x.reshape(1, -1) for x in leaves]))]
    return _typed(jax.tree_util.tree_unflatten(treedef, out), impls)


def leader_outcome(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on process 0 only and tell every process how it went: process 0 gets ``fn()`` (or its
    exception, re-raised), every other process None, or :class:`PeerError` with process 0's message when
    ``fn`` raised, so no process waits in a collective for a process that has stopped."""
    if jax.process_count() == 1:
        return fn()
    result, error = None, None
    if is_leader():
        try:
            result = fn()
        except Exception as e:  # told to the others below, then re-raised here
            error = e
    text = b"" if error is None else f"{type(error).__name__}: {' '.join(str(error).split())}".encode()
    msg = np.zeros(_MESSAGE_BYTES, np.uint8)
    msg[: min(len(text), _MESSAGE_BYTES)] = np.frombuffer(text[:_MESSAGE_BYTES], np.uint8)
    told = broadcast_from_leader({"failed": np.array(error is not None), "message": msg})
    if error is not None:
        raise error
    if bool(told["failed"]):
        text = bytes(told["message"]).rstrip(b"\0").decode(errors="replace")
        raise PeerError(f"process 0 stopped: {text}")
    return result


def exit_together(code: int, timeout_s: float = 120.0) -> None:
    """End a multi-process run that stopped on an error every process knows of (process 0's refusal told by
    :func:`leader_outcome`, a non-finite stop): wait for the others at a barrier, then leave without
    ``jax.distributed``'s shutdown barrier, whose fixed deadline a peer still busy on a loaded machine can
    miss, turning the clean exit code into an abort. Process 0, which hosts the coordination service, leaves
    last so that no peer sees it vanish before exiting. One process: returns and the caller exits normally."""
    import os
    import sys
    import time

    if jax.process_count() == 1:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        barrier(timeout_s)
    except Exception:  # a peer that never arrives: leave anyway, with this process's own code
        pass
    if is_leader():
        time.sleep(1.0)
    os._exit(code)
