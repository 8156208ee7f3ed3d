"""Render one Durotaxis-v0 episode to a GIF.

    .venv/bin/python experiments/render_episode.py --policy expert --out episode.gif --seed 0

``rollout_states(env, params, policy_fn, key, max_steps)`` is the hook for other policies (a trained
checkpoint): ``policy_fn(key, obs, params) -> HybridAction``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from balancedrl.envs import expert_action, make, render_frame, write_gif  # noqa: E402


def random_policy(env, params):
    """Uniformly random hybrid actions (``env.action_space(params).sample``)."""
    space = env.action_space(params)
    return lambda key, obs, p: space.sample(key)


POLICIES = {"expert": lambda env, params: expert_action, "random": random_policy}


def _transition(env, policy_fn, params, key, obs, state):
    k_act, k_step = jax.random.split(key)
    action = policy_fn(k_act, obs, params)
    obs, state, _, terminated, info = env.step_env(k_step, state, action, params)
    return obs, state, terminated | info["truncated"]


# env and policy_fn are static (hashable); params are traced, so one compile serves every params value.
_transition_jit = jax.jit(_transition, static_argnums=(0, 1))


def rollout_states(env, params, policy_fn, key, max_steps=None):
    """Run one episode with ``step_env`` (no auto-reset); return the list of states, reset included.

    ``policy_fn(key, obs, params) -> HybridAction`` must be hashable (a module-level function or a
    cached closure). Stops after termination, truncation or ``max_steps`` (default
    ``params.max_steps_in_episode``).
    """
    max_steps = int(params.max_steps_in_episode if max_steps is None else max_steps)
    key, k_reset = jax.random.split(key)
    obs, state = env.reset(k_reset, params)
    states = [state]
    for _ in range(max_steps):
        key, k = jax.random.split(key)
        obs, state, done = _transition_jit(env, policy_fn, params, k, obs, state)
        states.append(state)
        if bool(done):
            break
    return states


def main(argv=None):
    ap = argparse.ArgumentParser(description="Render one Durotaxis-v0 episode to a GIF.")
    ap.add_argument("--policy", choices=sorted(POLICIES), default="expert")
    ap.add_argument("--out", default="episode.gif")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--size", type=int, nargs=2, default=[300, 200], metavar=("W_PX", "H_PX"))
    ap.add_argument("--fps", type=int, default=10)
    args = ap.parse_args(argv)
    env, params = make("Durotaxis-v0")
    policy_fn = POLICIES[args.policy](env, params)
    states = rollout_states(env, params, policy_fn, jax.random.PRNGKey(args.seed), args.max_steps)
    frames = [render_frame(s, params, size=tuple(args.size)) for s in states]
    path = write_gif(frames, args.out, fps=args.fps)
    n = int(states[-1].alive.sum())
    print(f"wrote {path}: {len(frames)} frames ({len(states) - 1} steps, {n} nodes at the end)")
    return path


if __name__ == "__main__":
    main()
