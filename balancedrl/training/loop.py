"""The host loop: jitted update chunks with a progress bar, JSONL metrics, verified checkpoints, exact
resume, a lock on the run directory, a stop on non-finite numbers, final evaluation, plots and a GIF
(fault behaviour: docs/reliability.md).

Seeds are always a leading axis (``run.num_seeds`` >= 1), vmapped (``run.seed_axis: vmap``) or run one after
another in the same program (``map``). With more than one device, a vmapped seed axis and a seed count
divisible by the device count, the seed axis is sharded over the devices (``jax.sharding``). Under
``jax.distributed`` (``balancedrl sweep --num-processes N``) each process trains its block of the seeds and
process 0 alone writes the run directory (:mod:`balancedrl.training.distributed`, docs/distributed.md).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import yaml
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from balancedrl.training import checkpoint as ckpt
from balancedrl.training import distributed
from balancedrl.training.config import Config, ConfigError, to_dict
from balancedrl.training.evaluate import make_evaluate, summarize
from balancedrl.training.logging import always_measured, check_loggers, open_loggers, rows_from_metrics
from balancedrl.training.runlock import RunLock
from balancedrl.training.trainer import Trainer, make_run_chunk, make_train, metrics_to_host


class RunError(RuntimeError):
    """The run directory is in a state that would lose or mix results."""


class NonFiniteError(RunError):
    """A loss, metric, parameter or optimizer state became NaN or infinite."""


def seed_keys(cfg: Config, seeds: slice | None = None) -> jax.Array:
    """The keys of the sweep's seeds ``seeds`` (default: all): seed ``i`` starts from
    ``split(PRNGKey(run.seed), run.num_seeds)[i]``, whichever process trains it. Sharded over this process's
    devices when there are several, the seed axis is vmapped and they divide the seed count."""
    keys = jax.random.split(jax.random.PRNGKey(cfg.run.seed), cfg.run.num_seeds)
    if seeds is not None:
        keys = keys[seeds]
    sharding = _seed_sharding(keys.shape[0], cfg.run.seed_axis)
    return keys if sharding is None else jax.device_put(keys, sharding)


def _seed_sharding(num_seeds: int, seed_axis: str) -> NamedSharding | None:
    devices = jax.local_devices()
    if len(devices) > 1 and seed_axis == "vmap" and num_seeds % len(devices) == 0:
        return NamedSharding(Mesh(np.array(devices), ("seeds",)), PartitionSpec("seeds"))
    return None


def extractor_names(trainer: Trainer) -> tuple[str, ...]:
    ac = trainer.config.actor_critic
    if not ac.use_wsa:
        return ()
    return tuple(f"{i}_{p.model_type}" for i, p in enumerate(ac.wsa_config.ptms))


def _chunk_mean(x: np.ndarray, fmt: str) -> str:
    """Progress-bar figure: mean over seeds and the chunk's updates that logged a value (NaN means no
    episode ended in that update), or "-" when none did (no all-NaN warning)."""
    finite = np.asarray(x)[np.isfinite(x)]
    return format(float(finite.mean()), fmt) if finite.size else "-"


def build_trainer(cfg: Config) -> Trainer:
    """``make_train(cfg)``, with a bad environment parameter (``env.params``) reported as a config error."""
    try:
        return make_train(cfg)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"cannot build {cfg.env.name} (env.params = {cfg.env.params}): {e}") from e


@jax.jit
def _finite_leaves(tree):
    """One flag per floating-point leaf of ``tree``: all of its entries are finite."""
    leaves = [x for x in jax.tree_util.tree_leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]) if leaves else jnp.ones((0,), bool)


def nonfinite_state_leaf(runner) -> str | None:
    """Path of the first non-finite parameter or optimizer-state leaf of ``runner`` (None: all finite)."""
    tree = {"params": runner.params, "opt_state": runner.opt_state} if hasattr(runner, "opt_state") else runner
    flags = distributed.all_processes(np.asarray(_finite_leaves(tree)))  # every process decides alike
    if flags.all():
        return None
    paths = [
        jax.tree_util.keystr(p)
        for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]
        if jnp.issubdtype(x.dtype, jnp.inexact)
    ]
    return paths[int(np.argmin(flags))]


def first_nonfinite_metric(m: dict[str, np.ndarray], first_update: int):
    """``(update, metric, seed, value)`` of the first non-finite value in a chunk's host metrics
    (``[S, n, ...]``): an infinity in any metric, or NaN in one that is always measured; None if none."""
    any_v = next(iter(m.values()))
    num_seeds, n = any_v.shape[:2]
    for i in range(n):
        for k in sorted(m, key=lambda k: (not always_measured(k), k)):  # losses first: the likelier cause
            v = np.asarray(m[k])[:, i]
            if not np.issubdtype(v.dtype, np.floating):
                continue
            bad = np.isinf(v) | (np.isnan(v) if always_measured(k) else False)
            if np.any(bad):
                s = int(np.argwhere(bad.reshape(num_seeds, -1))[0][0])
                val = v[s].ravel()[np.argmax(bad[s].ravel())]
                return first_update + i + 1, k, s, float(val)
    return None


def run_training(
    cfg: Config,
    run_dir: str | Path | None = None,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
    evaluate: bool = True,
    plots: bool = True,
    skip_damaged: bool = False,
) -> Path:
    """Train ``cfg`` into ``run_dir`` (default ``<run.out_dir>/<run.name>``) and return the run directory.

    ``resume`` continues from the newest complete and valid checkpoint (incomplete ones, left by a kill
    mid-save, are skipped and named; a damaged one is refused naming its file, or skipped with
    ``skip_damaged``); ``stop_after`` stops (with a checkpoint) after that many updates, as an interrupted
    run would. Metrics rows written after the checkpoint that is resumed from are dropped, so a resumed run's
    metrics equal an uninterrupted run's. Everything is validated (config, environment, checkpoint) before
    anything in the run directory is written, and the directory is locked against a second writer
    (:mod:`balancedrl.training.runlock`). Non-finite losses, metrics or parameters stop the run with
    :class:`NonFiniteError` naming the update and the metric; that state is never checkpointed.
    """
    run_dir = Path(run_dir or Path(cfg.run.out_dir) / cfg.run.name).absolute()
    trainer = build_trainer(cfg)  # validates env.params before the run directory is touched
    check_loggers(cfg.run.loggers)  # a missing optional logger package, too
    seeds = distributed.seed_block(cfg.run.num_seeds)  # this process's seeds (all of them with one process)
    locks = []

    def prepare():  # on process 0 only: the lock, the resume decision, the run directory
        lock = RunLock(run_dir).acquire()
        locks.append(lock)
        if lock.took_over is not None:
            print(f"taking over the lock of {run_dir}: its holder, process {lock.took_over}, is gone")
        return _restore_or_init(cfg, trainer, run_dir, resume, skip_damaged, seeds)

    try:
        prepared = _share_start(cfg, trainer, distributed.leader_outcome(prepare), seeds)
        return _run_locked(cfg, trainer, run_dir, prepared, seeds, stop_after, progress, evaluate, plots)
    finally:
        for lock in locks:
            lock.release()


class _NoLog:
    """The metrics log of a process other than 0: it writes nothing."""

    def write(self, rows) -> None:
        pass

    def close(self) -> None:
        pass


def _share_start(cfg, trainer, prepared, seeds: slice):
    """Every process's ``(runner of its seeds, start update, fingerprint, log)`` from process 0's
    ``prepared``: the start update is broadcast; on a resume, so is the restored state of all seeds, and each
    process keeps its block; from scratch, each process initialises its own seeds."""
    if jax.process_count() == 1:
        return prepared
    leader = distributed.is_leader()
    runner, start = prepared[:2] if leader else (None, 0)
    start = int(distributed.broadcast_from_leader(np.asarray(start, np.int64)))
    init = jax.jit(jax.vmap(trainer.init))
    if start:
        like = jax.eval_shape(init, seed_keys(cfg))
        full = runner if leader else jax.tree_util.tree_map(lambda x: np.zeros(x.shape, x.dtype), like)
        block = jax.tree_util.tree_map(lambda x: np.asarray(x)[seeds], distributed.broadcast_from_leader(full))
        sharding = _seed_sharding(seeds.stop - seeds.start, cfg.run.seed_axis)
        runner = jax.device_put(block, sharding) if sharding is not None else block
    elif not leader:
        runner = init(seed_keys(cfg, seeds))
    if leader:
        return runner, start, prepared[2], prepared[3]
    return runner, start, ckpt.config_fingerprint(to_dict(cfg)), _NoLog()


def _restore_or_init(cfg, trainer, run_dir: Path, resume: bool, skip_damaged: bool, seeds: slice):
    """``(runner, start update, config fingerprint, loggers)``: a restore holds every seed, an
    initialisation the seeds ``seeds``. Everything is validated (checkpoint choice, checksums,
    configuration, restore) before anything in ``run_dir`` is written."""
    cfg_dict = to_dict(cfg)
    fingerprint = ckpt.config_fingerprint(cfg_dict)
    existing = ckpt.list_checkpoints(run_dir)
    if existing and not resume:
        raise RunError(
            f"run directory {run_dir} already has checkpoints (latest update {existing[-1]}); pass --resume to "
            "continue it or choose another run.name / --run-dir"
        )
    plan = ckpt.plan_resume(run_dir, fingerprint if resume else None, skip_damaged)
    for path, reason in plan.skipped:
        print(f"resume: skipped {path}: {reason}")
    if resume and plan.update is None and plan.damaged:
        raise ckpt.DamagedCheckpointError(
            f"{run_dir} has no valid checkpoint left (damaged: {', '.join(map(str, plan.damaged))})"
        )
    init = jax.jit(jax.vmap(trainer.init))
    start = plan.update or 0
    if start:
        runner = ckpt.restore_checkpoint(run_dir, start, jax.eval_shape(init, seed_keys(cfg)), fingerprint)
        print(f"resume: from {ckpt.checkpoint_dir(run_dir) / f'update_{start:07d}'}")
    else:
        if resume:
            print(f"no complete checkpoint in {run_dir}; starting from scratch")
        runner = init(seed_keys(cfg, seeds))

    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt.write_atomic(run_dir / "config.yaml", yaml.safe_dump(cfg_dict, sort_keys=False))
    ckpt.clean_after_resume(run_dir, plan)
    log = open_loggers(cfg.run.loggers, run_dir, cfg_dict, cfg.batch_size)
    log.truncate_after(start)
    return runner, start, fingerprint, log


def _stop_if_nonfinite(m, runner, u: int, n: int, rows, log, last_ckpt: int) -> None:
    """Write the finite rows and raise :class:`NonFiniteError` naming the first non-finite metric (or state
    leaf) of the chunk that ran updates ``u + 1 .. u + n``; the bad state is never checkpointed."""
    bad = first_nonfinite_metric(m, u)
    leaf = nonfinite_state_leaf(runner) if bad is None else None
    if bad is None and leaf is None:
        return
    upd = bad[0] if bad is not None else u + n
    log.write([r for r in rows if r["update"] <= upd])
    what = (
        f"metric '{bad[1]}' = {bad[3]} (seed {bad[2]})"
        if bad is not None
        else f"state leaf {leaf} (first non-finite parameter or optimizer state)"
    )
    raise NonFiniteError(
        f"non-finite values at update {upd}: {what}; stopped without checkpointing this state "
        f"(last checkpoint: update {last_ckpt}); check the configuration, e.g. trainer.learning_rate"
    )


def _run_locked(cfg, trainer, run_dir, prepared, seeds, stop_after, progress, evaluate, plots) -> Path:
    runner, start, fingerprint, log = prepared
    leader = distributed.is_leader()
    S = cfg.run.num_seeds
    total = cfg.num_updates if stop_after is None else min(cfg.num_updates, stop_after)
    # The largest chunk <= run.chunk_updates that divides the run, so one compiled program serves it all.
    chunk = max(
        d for d in range(1, min(cfg.run.chunk_updates, cfg.num_updates) + 1) if cfg.num_updates % d == 0
    )
    S_local = seeds.stop - seeds.start
    run_chunk = make_run_chunk(trainer, chunk, S_local, cfg.run.seed_axis)
    ext = extractor_names(trainer)
    steps_per_update = cfg.batch_size * S
    bar = tqdm(
        total=cfg.num_updates,
        initial=start,
        unit="upd",
        disable=not (progress and leader),
        dynamic_ncols=True,
        desc=cfg.run.name,
    )
    u = start
    last_ckpt = start
    t_start = time.time()
    try:
        while u < total:
            n = min(chunk, total - u)
            fn = run_chunk if n == chunk else make_run_chunk(trainer, n, S_local, cfg.run.seed_axis)
            t0 = time.time()
            runner, metrics = fn(runner)
            m = distributed.gather_seeds(metrics_to_host(metrics))  # all S seeds on every process
            dt = time.time() - t0
            rows = rows_from_metrics(m, u, trainer.adapter.component_names, ext)
            _stop_if_nonfinite(m, runner, u, n, rows, log, last_ckpt)
            log.write(rows)
            u += n
            bar.update(n)
            bar.set_postfix(
                sps=f"{n * steps_per_update / dt:,.0f}",
                ret=_chunk_mean(m["episode_return"], ".1f"),
                succ=_chunk_mean(m["success_rate"], ".2f"),
            )
            if u - last_ckpt >= cfg.run.checkpoint_every or u == total:
                state = distributed.gather_seeds(runner)
                if leader:
                    ckpt.save_checkpoint(
                        run_dir, u, state, {"fingerprint": fingerprint, "env_steps": u * cfg.batch_size}
                    )
                last_ckpt = u
    finally:
        bar.close()
        log.close()
    wall = time.time() - t_start
    if leader:
        timing = {
            "updates": u - start,
            "wall_s": wall,
            "env_steps_per_s": (u - start) * steps_per_update / max(wall, 1e-9),
            "backend": jax.default_backend(),
            "devices": jax.device_count(),
        }
        if jax.process_count() > 1:
            timing["processes"] = jax.process_count()
        ckpt.write_atomic(run_dir / "timing.json", json.dumps(timing, indent=1))

    if u < cfg.num_updates:
        return run_dir
    if evaluate:
        evaluate_run(trainer, runner, run_dir, cfg.run.eval_episodes)
    if not leader:
        return run_dir
    if plots:
        from balancedrl.training.plots import plot_run

        plot_run(run_dir, trainer.adapter.component_names, ext)
    if plots and cfg.run.render_gif and trainer.adapter.render_frame is not None:
        render_policy_gif(trainer, seed_slice(runner.params["network"], 0), run_dir / "episode.gif")
    return run_dir


def seed_slice(tree, s: int):
    """Seed ``s`` of a pytree whose leaves carry a leading seed axis (a vmapped run's params)."""
    return jax.tree_util.tree_map(lambda x: x[s], tree)


def evaluate_run(
    trainer: Trainer, runner, run_dir: Path, num_episodes: int, key_seed: int = 12345
) -> dict | None:
    """Evaluate every seed's greedy policy, plus the random policy and the expert; write ``eval.json`` and
    print a table. Under ``jax.distributed`` each process plays its seeds' episodes and process 0 gathers
    them, writes and returns the result (None elsewhere)."""
    ad = trainer.adapter
    key = jax.random.PRNGKey(key_seed)
    S_local = jax.tree_util.tree_leaves(runner.params)[0].shape[0]
    # `policy` is the stochastic policy PPO trains (actions sampled); `policy_greedy` takes the mode of
    # every head, which for this per-node factorised policy is a different (and here weaker) policy.
    modes = (("policy", "sample"), ("policy_greedy", "greedy"))
    episodes = {}
    for name, mode in modes:
        ev = make_evaluate(ad, trainer.policy_apply, num_episodes, mode)
        runs = [jax.device_get(ev(seed_slice(runner.params["network"], s), key)) for s in range(S_local)]
        episodes[name] = {k: np.stack([np.asarray(r[k]) for r in runs]) for k in runs[0]}
    episodes = distributed.gather_seeds(episodes)  # [S, episodes] per policy, every seed
    if not distributed.is_leader():
        return None
    result = {}
    for name, _ in modes:
        S = next(iter(episodes[name].values())).shape[0]
        per_seed = [summarize({k: v[s] for k, v in episodes[name].items()}) for s in range(S)]
        result[name] = _mean_summary(per_seed)
        if S > 1:
            result[f"{name}_per_seed"] = per_seed
    result["random"] = summarize(make_evaluate(ad, trainer.policy_apply, num_episodes, "random")(None, key))
    if ad.expert is not None:
        result["expert"] = summarize(
            make_evaluate(ad, trainer.policy_apply, num_episodes, "expert")(None, key)
        )
    ckpt.write_atomic(run_dir / "eval.json", json.dumps(result, indent=1))
    print(format_eval_table(result, num_episodes))
    return result


def _mean_summary(items: list[dict]) -> dict:
    out = {}
    for k in items[0]:
        vals = [it[k] for it in items if it[k] is not None]
        out[k] = float(np.mean(vals)) if vals else None
    out["episodes"] = int(sum(it["episodes"] for it in items))
    return out


def format_eval_table(result: dict, num_episodes: int) -> str:
    lines = [
        f"evaluation over {num_episodes} episodes per policy (steps: mean length of the successful ones)",
        f"{'policy':<14}{'success':>10}{'return':>10}{'steps':>10}",
    ]
    for name in ("policy", "policy_greedy", "random", "expert"):
        if name in result:
            r = result[name]
            steps = "-" if r["mean_steps"] is None else f"{r['mean_steps']:.1f}"
            lines.append(f"{name:<14}{r['success_rate']:>10.3f}{r['mean_return']:>10.2f}{steps:>10}")
    return "\n".join(lines)


def greedy_policy_fn(trainer: Trainer, net_vars):
    """``policy_fn(key, obs, params) -> env action`` of a trained network's greedy policy (for rendering)."""
    from balancedrl import policy as hp

    ad = trainer.adapter
    low, high = jnp.asarray(ad.cont_low), jnp.asarray(ad.cont_high)

    def policy_fn(key, obs, params):
        out = trainer.policy_apply(net_vars, obs)
        return ad.to_env_action(*hp.greedy(out.discrete_logits, out.cont_mean, low, high))

    return policy_fn


def render_policy_gif(trainer: Trainer, net_vars, path: Path, seed: int = 0) -> Path:
    """Roll out one greedy episode and write it as a GIF (rendering is NumPy, off the jitted path)."""
    from balancedrl.envs import write_gif
    from balancedrl.envs.render import rollout_states

    ad = trainer.adapter
    states = rollout_states(
        ad.env, ad.env_params, greedy_policy_fn(trainer, net_vars), jax.random.PRNGKey(seed)
    )
    write_gif([ad.render_frame(jax.device_get(s), ad.env_params) for s in states], path)
    return path


def load_run(run_dir: Path):
    """``(trainer, runner)`` of a run directory's latest complete checkpoint."""
    from balancedrl.training.config import load_config

    run_dir = Path(run_dir).absolute()
    if not (run_dir / "config.yaml").is_file():
        raise RunError(f"{run_dir} has no config.yaml; is it a run directory?")
    cfg = load_config(run_dir / "config.yaml")
    fingerprint = ckpt.config_fingerprint(to_dict(cfg))
    plan = ckpt.plan_resume(run_dir, fingerprint)  # a damaged newest checkpoint is refused, naming its file
    for path, reason in plan.skipped:
        print(f"skipped {path}: {reason}")
    if plan.update is None:
        raise RunError(f"{run_dir} has no complete checkpoint (train it first, or pick another --run)")
    trainer = build_trainer(cfg)
    like = jax.eval_shape(jax.vmap(trainer.init), seed_keys(cfg))
    runner = ckpt.restore_checkpoint(run_dir, plan.update, like, fingerprint)
    return trainer, runner


def load_run_policy(run_dir: Path, seed_index: int = 0):
    """``(env, env_params, policy_fn)`` of a run's greedy policy (seed ``seed_index``)."""
    trainer, runner = load_run(run_dir)
    net_vars = seed_slice(runner.params["network"], seed_index)
    return trainer.adapter.env, trainer.adapter.env_params, greedy_policy_fn(trainer, net_vars)


def evaluate_checkpoint(run_dir: Path, num_episodes: int | None = None) -> dict:
    """Evaluate a run's latest checkpoint (``balancedrl eval --run DIR``); writes ``eval.json``.
    ``num_episodes`` None means ``run.eval_episodes``; otherwise it must be >= 1."""
    if num_episodes is not None and (isinstance(num_episodes, bool) or int(num_episodes) != num_episodes or num_episodes < 1):
        raise RunError(f"--episodes {num_episodes!r}: must be an integer >= 1 (omit it for run.eval_episodes)")
    trainer, runner = load_run(run_dir)
    return evaluate_run(
        trainer,
        runner,
        Path(run_dir).absolute(),
        trainer.config.run.eval_episodes if num_episodes is None else num_episodes,
    )
