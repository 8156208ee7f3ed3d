"""Render one Durotaxis-v0 episode to a GIF.

    .venv/bin/python experiments/render_episode.py --policy expert --out episode.gif --seed 0

    .venv/bin/python experiments/render_episode.py --run runs/durotaxis_default --out trained.gif

``--run`` renders the greedy policy of a run's latest checkpoint (seed 0).
``balancedrl.envs.render.rollout_states(env, params, policy_fn, key, max_steps)`` is the hook for other
policies: ``policy_fn(key, obs, params) -> HybridAction``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from balancedrl.envs import expert_action, make, render_frame, write_gif  # noqa: E402
from balancedrl.envs.render import rollout_states  # noqa: E402


def random_policy(env, params):
    """Uniformly random hybrid actions (``env.action_space(params).sample``)."""
    space = env.action_space(params)
    return lambda key, obs, p: space.sample(key)


POLICIES = {"expert": lambda env, params: expert_action, "random": random_policy}


def main(argv=None):
    ap = argparse.ArgumentParser(description="Render one Durotaxis-v0 episode to a GIF.")
    ap.add_argument("--policy", choices=sorted(POLICIES), default="expert")
    ap.add_argument("--run", type=Path, default=None, help="render this run's trained greedy policy instead")
    ap.add_argument("--out", default="episode.gif")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--size", type=int, nargs=2, default=[300, 200], metavar=("W_PX", "H_PX"))
    ap.add_argument("--fps", type=int, default=10)
    args = ap.parse_args(argv)
    if args.run is not None:
        from balancedrl.training.loop import load_run_policy

        env, params, policy_fn = load_run_policy(args.run)
    else:
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
