"""Seed sweep: ``python experiments/sweep.py --seeds 8 --config experiments/configs/default.yaml``.

The seeds are one vmapped axis of a single jitted program (sharded over devices when there are several);
the learning curve is plotted as mean ± 95% CI over seeds."""

import sys

from balancedrl.cli import main

if __name__ == "__main__":
    sys.exit(main(["sweep", *sys.argv[1:]]))
