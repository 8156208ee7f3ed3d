"""Redraw a run's plots from its metrics.jsonl: ``python experiments/plot.py runs/<name>``."""

import argparse
from pathlib import Path

from balancedrl.training.adapters import make_adapter
from balancedrl.training.config import load_config
from balancedrl.training.plots import plot_run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("run_dir", type=Path)
    args = p.parse_args()
    cfg = load_config(args.run_dir / "config.yaml")
    ac = cfg.actor_critic
    ext = tuple(f"{i}_{q.model_type}" for i, q in enumerate(ac.wsa_config.ptms)) if ac.use_wsa else ()
    comps = make_adapter(cfg.env).component_names
    for path in plot_run(args.run_dir, comps, ext):
        print(path)


if __name__ == "__main__":
    main()
