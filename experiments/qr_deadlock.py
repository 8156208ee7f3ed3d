"""Reproducer: a vmapped LAPACK QR (flax's orthogonal init) hangs XLA's CPU runtime on a 2-core machine.

Runs ``jax.jit(jax.vmap(f))`` over ``--seeds`` keys, ``f`` drawing eight 64x64 orthogonal matrices, once
with jax/flax's initialiser (LAPACK ``geqrf``) and once with ``balancedrl.networks.init.orthogonal``
(Gram-Schmidt, no LAPACK), each ``--tries`` times in a child process with a time limit, and prints how many
tries of each hung. The deadlock is a race (two batched QRs must run at once), so the LAPACK version hangs
on some tries, not all, where XLA's intra-op pool has 2 threads (2 cores); on bigger machines it may
always return (README, Development).

Usage: ``python experiments/qr_deadlock.py [--seeds 5] [--timeout 40] [--tries 3]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

CHILD = """
import sys, jax
from balancedrl.networks.init import orthogonal
init = jax.nn.initializers.orthogonal(1.0) if sys.argv[1] == "lapack" else orthogonal(1.0)
f = lambda key: [init(k, (64, 64)) for k in jax.random.split(key, 8)]
g = jax.jit(jax.vmap(f))
for i in range(200):
    jax.block_until_ready(g(jax.random.split(jax.random.PRNGKey(i), int(sys.argv[2]))))
"""


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=40.0)
    ap.add_argument("--tries", type=int, default=3)
    a = ap.parse_args(argv)
    out = {}
    for impl in ("lapack", "gram_schmidt"):
        hung = 0
        for _ in range(a.tries):
            try:
                subprocess.run(
                    [sys.executable, "-c", CHILD, impl, str(a.seeds)],
                    check=True,
                    timeout=a.timeout,
                    env=os.environ,
                )
            except subprocess.TimeoutExpired:
                hung += 1
        out[impl] = hung
        print(
            f"{impl:>13} init, {a.seeds} vmapped seeds, {os.cpu_count()} CPUs: hung (no result after "
            f"{a.timeout:.0f} s) in {hung} of {a.tries} tries",
            flush=True,
        )
    return out


if __name__ == "__main__":
    main()
