"""Hard Goal at 1,024 envs: the current code against itself minus one change, interleaved, CPU time.

Variants: ``final``; ``no_compaction`` (the tick loop as a plain ``lax.while_loop``: vmap runs every lane
until the slowest stops); ``fold_in_noise`` (per-tick noise from ``uniform(fold_in(key, t))`` as before).
Prints env steps per CPU second (median of 5 interleaved rounds) and each variant's time / final's.

Usage: ``python benchmarks/hard_goal_ablation.py`` (docs/performance.md, "Environments").
"""

from __future__ import annotations

import time

import jax
import numpy as np

import balancedrl.envs.goal as G
from balancedrl.envs.hard_goal import HardGoal

N, S, ROUNDS = 1024, 20, 5
FINAL_LOOP = G.compacting_while_loop
FINAL_STEP = G.Goal.step_env


def plain_while(cond, body, consts, init):
    return jax.lax.while_loop(lambda c: cond(consts, c), lambda c: body(consts, c), init)


def fold_in_step(self, key, state, action, params):
    dt = self.dtype

    def fetch(key, t, i):
        u = jax.random.uniform(jax.random.fold_in(key, t), (2, 3), dt, -1.0, 1.0)
        return u[0], u[1]

    return self._macro_step(state, action, params, fetch, key, unit_noise=True, trace_len=0)


def build(mode: str):
    G.compacting_while_loop = plain_while if mode == "no_compaction" else FINAL_LOOP
    G.Goal.step_env = fold_in_step if mode == "fold_in_noise" else FINAL_STEP
    env = HardGoal()
    params = env.default_params

    @jax.jit
    def run(key):
        k0, k1 = jax.random.split(key)
        _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k0, N), params)

        def body(state, k):
            ka, ks = jax.random.split(k)
            act = jax.vmap(env.action_space(params).sample)(jax.random.split(ka, N))
            _, state, _, _, _, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(ks, N), state, act, params
            )
            return state, info["ticks"].sum()

        _, ticks = jax.lax.scan(body, state, jax.random.split(k1, S))
        return ticks.sum()

    jax.block_until_ready(run(jax.random.key(0)))  # compile while this variant's code is patched in
    return run


def main() -> None:
    modes = ["final", "no_compaction", "fold_in_noise"]
    fns = {m: build(m) for m in modes}
    G.compacting_while_loop, G.Goal.step_env = FINAL_LOOP, FINAL_STEP
    cpu = {m: [] for m in modes}
    for r in range(ROUNDS):
        for m, f in fns.items():
            c0 = time.process_time()
            jax.block_until_ready(f(jax.random.key(r + 1)))
            cpu[m].append(time.process_time() - c0)
    for m in modes:
        med = float(np.median(cpu[m]))
        print(f"{m}: {N * S / med:,.0f} env steps per CPU s, time / final {med / np.median(cpu['final']):.2f}")


if __name__ == "__main__":
    main()
