"""What ``benchmarks/compare_commits.py`` times: one function per kind of target, and named rows (PRESETS).

This module is imported by the *worker* processes, each with ``PYTHONPATH`` pointing at the tree it
measures, so it must use only what both trees have: ``balancedrl.envs.make``, ``balancedrl.training.
config.load_config`` and ``balancedrl.training.trainer.make_train / make_run_chunk``; nothing from
``benchmarks.common`` (which the other tree may not have).

A target function takes keyword arguments and returns ``(call, env_steps_per_call)``: ``call(i)`` runs
one timed unit of work (already compiled by a first call the worker makes) and blocks until it is done.
To add a row: add a PRESETS entry ``name: (target, kwargs)``; a new kind of work: a function in TARGETS.
"""

from __future__ import annotations

from pathlib import Path

import jax


def env_random_policy(env: str = "Durotaxis-v0", num_envs: int = 1024, steps: int = 50):
    """``steps`` vmapped steps (gymnax auto-reset) of ``num_envs`` envs with ``action_space.sample``
    actions, in one jitted ``lax.scan`` (as benchmarks/env_throughput.py and hybrid_env_throughput.py)."""
    from balancedrl.envs import make

    e, params = make(env)
    space = e.action_space(params)

    @jax.jit
    def rollout(key):
        k0, k1 = jax.random.split(key)
        _, state = jax.vmap(e.reset, in_axes=(0, None))(jax.random.split(k0, num_envs), params)

        def body(state, k):
            ka, ks = jax.random.split(k)
            act = jax.vmap(space.sample)(jax.random.split(ka, num_envs))
            _, state, r, term, trunc, _ = jax.vmap(e.step, in_axes=(0, 0, 0, None))(
                jax.random.split(ks, num_envs), state, act, params
            )
            return state, r.sum() + term.sum() + trunc.sum()

        _, out = jax.lax.scan(body, state, jax.random.split(k1, steps))
        return out.sum()

    def call(i: int):
        jax.block_until_ready(rollout(jax.random.PRNGKey(i)))

    return call, num_envs * steps


def train(config: str = "cartpole.yaml", seeds: int = 1, updates: int = 20, overrides: tuple = ()):
    """``updates`` PPO updates of ``seeds`` vmapped seeds: the jitted ``make_run_chunk`` the host loop uses,
    on ``experiments/configs/<config>`` of the tree being measured (cwd) with ``overrides``."""
    from balancedrl.training.config import load_config
    from balancedrl.training.trainer import make_run_chunk, make_train

    cfg = load_config(Path("experiments/configs") / config, list(overrides))
    trainer = make_train(cfg)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    state = {"runner": jax.block_until_ready(jax.jit(jax.vmap(trainer.init))(keys))}
    chunk = make_run_chunk(trainer, updates, seeds)

    def call(i: int):
        runner, metrics = chunk(state["runner"])
        state["runner"] = jax.block_until_ready(runner)

    return call, seeds * updates * cfg.batch_size


TARGETS = {"env_random_policy": env_random_policy, "train": train}

# row name -> (target, kwargs). CartPole: PureJaxRL's settings (experiments/configs/cartpole.yaml).
PRESETS = {
    "durotaxis_env_1024": ("env_random_policy", {"env": "Durotaxis-v0", "num_envs": 1024, "steps": 50}),
    "cartpole_ppo_1seed": ("train", {"config": "cartpole.yaml", "seeds": 1, "updates": 40}),
    "cartpole_ppo_8seeds": ("train", {"config": "cartpole.yaml", "seeds": 8, "updates": 10}),
    "durotaxis_train_1seed": ("train", {"config": "default.yaml", "seeds": 1, "updates": 2}),
    "durotaxis_train_8seeds": ("train", {"config": "default.yaml", "seeds": 8, "updates": 1}),
    "wsa_train_1seed": (
        "train",
        {"config": "default.yaml", "seeds": 1, "updates": 1, "overrides": ("actor_critic.use_wsa=true",)},
    ),
    # HyAR's suite (issue 17; not in dd8fa87: compare against a later commit with --baseline)
    **{
        f"{name.split('-v0')[0].lower().replace('-', '_')}_env_1024": (
            "env_random_policy",
            {"env": name, "num_envs": 1024, "steps": 20},
        )
        for name in (
            "HardGoal-v0",
            "CatchPoint-v0",
            "HardMove-n4-v0",
            "HardMove-n6-v0",
            "HardMove-n8-v0",
            "HardMove-n10-v0",
        )
    },
}
DEFAULT_ROWS = ("durotaxis_env_1024", "cartpole_ppo_1seed", "cartpole_ppo_8seeds")
