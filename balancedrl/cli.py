"""Command line: ``balancedrl train | sweep | eval`` (also ``python -m balancedrl``)."""

from __future__ import annotations

import argparse
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
        sp.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
        sp.add_argument("--stop-after", type=int, help="stop after this many updates (checkpointed)")
        sp.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    common(sub.add_parser("train", help="train one run (run.num_seeds vmapped seeds)"))
    sw = sub.add_parser("sweep", help="train N vmapped seeds (sharded over devices when there are several)")
    common(sw)
    sw.add_argument("--seeds", type=int, required=True, help="number of seeds")
    ev = sub.add_parser("eval", help="evaluate a finished or checkpointed run")
    ev.add_argument("--run", required=True, help="run directory")
    ev.add_argument(
        "--episodes", type=int, default=None, help="episodes per policy (default: run.eval_episodes)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from balancedrl.training.config import ConfigError, load_config

    try:
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
            )
            print(f"run directory: {run_dir}")
        else:
            from balancedrl.training.loop import evaluate_checkpoint

            evaluate_checkpoint(Path(args.run), args.episodes)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
