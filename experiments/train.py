"""Train one run: ``python experiments/train.py --config experiments/configs/default.yaml [--set k=v ...]``.

Same as ``balancedrl train``; kept so experiments/ holds every entry point."""

import sys

from balancedrl.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
