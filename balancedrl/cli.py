"""Command line: ``balancedrl train | sweep | eval`` (also ``python -m balancedrl``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="balancedrl", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp):
        sp.add_argument("--config", help="YAML config file (default: built-in defaults)")
        sp.add_argument(
            "--set",
            nargs="*",
            default=[],
            metavar="KEY=VALUE",
            help="override config keys, e.g. trainer.learning_rate=1e-3",
        )
        sp.add_argument("--run-dir", help="run directory (default: <run.out_dir>/<run.name>)")
        sp.add_argument(
            "--resume", action="store_true", help="continue from the newest complete and valid checkpoint"
        )
        sp.add_argument(
            "--skip-damaged",
            action="store_true",
            help="with --resume: skip damaged checkpoints (renamed *.damaged) instead of refusing",
        )
        sp.add_argument("--stop-after", type=int, help="stop after this many updates (checkpointed)")
        sp.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        sp.add_argument(
            "--no-eval", action="store_true", help="skip the final evaluation, plots and GIF (checkpoints only)"
        )

    common(sub.add_parser("train", help="train one run (run.num_seeds vmapped seeds)"))
    sw = sub.add_parser(
        "sweep", help="train N vmapped seeds (sharded over devices; over processes with --coordinator)"
    )
    common(sw)
    sw.add_argument("--seeds", type=int, required=True, help="number of seeds")
    sw.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="multi-process sweep (jax.distributed): process 0's address and a free port, the same on every process",
    )
    sw.add_argument("--num-processes", type=int, metavar="N", help="multi-process sweep: number of processes")
    sw.add_argument(
        "--process-id", type=int, metavar="I", help="multi-process sweep: this process's index, 0 .. N-1"
    )
    ev = sub.add_parser("eval", help="evaluate a finished or checkpointed run")
    ev.add_argument("--run", required=True, help="run directory")
    ev.add_argument(
        "--episodes", type=int, default=None, help="episodes per policy (default: run.eval_episodes)"
    )
    return p


def _errors():
    """Exceptions that mean bad input or a run directory in a refused state: one line, no traceback."""
    from balancedrl.training.checkpoint import CheckpointError
    from balancedrl.training.config import ConfigError
    from balancedrl.training.distributed import PeerError
    from balancedrl.training.loop import NonFiniteError, RunError
    from balancedrl.training.runlock import RunLockError

    return (
        (ConfigError, "config error", 2),
        (NonFiniteError, "non-finite error", 3),
        (CheckpointError, "checkpoint error", 4),
        (RunLockError, "run directory locked", 5),
        (RunError, "run error", 6),
        (PeerError, "stopped", 7),
    )


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done, 2 config, 3 non-finite numbers, 4 checkpoint, 5 run directory locked, 6 run
    directory state, 7 (multi-process sweep) process 0 stopped before training. ``BALANCEDRL_TRACEBACK=1``
    re-raises with the full traceback."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    if args.command == "eval" and args.episodes is not None and args.episodes < 1:
        print(f"error: --episodes {args.episodes}: must be >= 1 (omit it for run.eval_episodes)", file=sys.stderr)
        return 2
    if args.command != "eval" and args.stop_after is not None and args.stop_after < 1:
        print(f"error: --stop-after {args.stop_after}: must be >= 1", file=sys.stderr)
        return 2
    try:
        return _main(args, argv)
    except Exception as e:
        for cls, label, code in _errors():
            if isinstance(e, cls):
                if os.environ.get("BALANCEDRL_TRACEBACK"):
                    raise
                print(f"{label}: {' '.join(str(e).split())}", file=sys.stderr)
                _exit_together_if_distributed(code)
                return code
        raise


def _exit_together_if_distributed(code: int) -> None:
    import jax

    if jax.distributed.is_initialized():
        from balancedrl.training.distributed import exit_together

        exit_together(code)


def _launch(args, argv: list[str]) -> None:
    """A multi-process sweep: check the flags; if ``jax.distributed`` is not running yet, re-execute this
    process so that it starts first (:func:`balancedrl.training.distributed.exec_launched`)."""
    import jax

    from balancedrl.training import distributed

    launch = distributed.check_launch(args.coordinator, args.num_processes, args.process_id, args.seeds)
    if launch is None:
        return
    if jax.distributed.is_initialized():
        distributed.check_initialized(launch)
    else:
        distributed.exec_launched(launch, argv)


def _main(args, argv: list[str]) -> int:
    from balancedrl.training.config import load_config

    if args.command == "sweep":
        _launch(args, argv)

    if args.command in ("train", "sweep"):
        overrides = list(args.set)
        if args.command == "sweep":
            overrides.append(f"run.num_seeds={args.seeds}")
        cfg = load_config(args.config, overrides)
        from balancedrl.training.loop import run_training

        run_dir = run_training(
            cfg,
            run_dir=args.run_dir,
            resume=args.resume,
            stop_after=args.stop_after,
            progress=not args.no_progress,
            skip_damaged=args.skip_damaged,
            evaluate=not args.no_eval,
            plots=not args.no_eval,
        )
        import jax

        if jax.process_index() == 0:
            print(f"run directory: {run_dir}")
        else:
            from balancedrl.training.distributed import seed_block

            b = seed_block(cfg.run.num_seeds)
            print(f"process {jax.process_index()}: trained seeds {b.start} .. {b.stop - 1}; process 0 wrote the run")
    else:
        from balancedrl.training.loop import evaluate_checkpoint

        evaluate_checkpoint(Path(args.run), args.episodes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
