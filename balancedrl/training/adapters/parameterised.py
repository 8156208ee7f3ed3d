"""Trainer adapters for the parameterised-action benchmarks Platform-v0 and Goal-v0 (Masson et al. 2016).

Both are one-slot (M = 1) hybrid tasks with A = 3 discrete actions and one reward component (``total``),
trained with the one-slot :class:`balancedrl.networks.mlp.MLPActorCritic` (separate 2 x ``hidden_dim`` tanh
actor / critic towers; one shared actor head gives the 3 logits and the P parameter means; a
**state-independent** log-std vector ``[P]`` initialised to ``actor_critic.log_std_init``, as in
PureJaxRL's continuous PPO and H-PPO, Fan et al. 2019):

* Platform-v0 (``balancedrl/envs/platform.py``, docs/specs/parameterised_envs.md §1): actions run / hop / leap, P = 3 parameters,
  ``param_owner = (0, 1, 2)`` (each action owns one parameter), bounds ``[0, 30] x [0, 720] x [0, 430]``;
  observation: the env's scaled 9-vector in [0, 1].
* Goal-v0 (``balancedrl/envs/goal.py``, docs/specs/parameterised_envs.md §2): actions kick-to / shoot-low / shoot-high, P = 4,
  ``param_owner = (0, 0, 1, 2)`` (kick-to owns (q1, q2); q2 is read by the env's rule and ignored by it),
  bounds ``[0, 40] x [-15, 15] x [-7.01, 7.01]^2``; observation: the env's scaled 17-vector in [-1, 1]
  (the MP-DQN wrapper).

The policy's continuous log-probability counts only the chosen action's parameters (``policy.log_probs``
with ``param_owner``), the parameterised-action convention of H-PPO / P-DQN / MP-DQN. Parameters are
sampled raw ``u ~ N(mean, sigma)`` and squashed ``low + (high - low) (tanh u + 1) / 2`` into the bounds.
The env action is ``{"discrete": d[0], "continuous": c[0]}`` in physical units.

Success (the environments' own ``info["success"]``, counted by the trainer and by ``evaluate`` on the step
that ends an episode):

* Platform-v0: the player reached the right end, ``x >= 1035``. Since the rewards telescope to
  ``final_x / 1035`` (docs/specs/parameterised_envs.md §1.9) this is exactly "episode return = 1" (>= 0.99... up to float32 summation
  error). The *standard metric* (docs/specs/parameterised_envs.md §3) is the mean return, i.e. the mean fraction of the level covered,
  not the success rate.
* Goal-v0: the ball ended in the net (episode return 50; docs/specs/parameterised_envs.md §2.7 step 5). The standard metric is the
  scoring rate = success rate.

Training reward (``reward_components``): Platform's reward as is (returns in [0, 1]); Goal's reward divided
by 50 (MP-DQN's scaling, Bester et al. 2019, docs/specs/parameterised_envs.md §2.9), so a goal is worth +1 and a miss about -0.1 to
-0.4, which suits PPO's value clipping (``vf_clip``). The logged ``episode_return`` and the evaluation
returns stay in the env's own units (goal = 50).

Parameter prior (``actor_critic.param_prior: mpdqn``): the fixed linear state -> parameter map that
MP-DQN's experiment scripts install in their action-parameter network before training (Bester et al. 2019,
``initialise_params``), in the squashed scale ``2 (param - low) / (high - low) - 1``:

* Platform-v0: constant run 3, hop 10, leap 400 (physical units; zero weights);
* Goal-v0 (17 scaled features, docs/specs/parameterised_envs.md §2.8; indices 10, 11 = ball x, y; 14, 15 = keeper-to-ball unit
  vector): kick-to ``q1 = -0.375 + 0.5 b_x + 0.0625 u_x``, ``q2 = 0.8333 b_y + 0.1111 u_y``; shoot low
  ``s1 = +0.8573`` and shoot high ``s2 = -0.8573`` (one metre inside either post: 6.01 / 7.01).

MP-DQN's published Goal and Platform results were trained with these priors; without one, every
hybrid PPO seed here learns to shoot from the start on Goal (scoring rate 0, as HyAR reports for H-PPO).

``env.params`` in the config overrides fields of the env's params (``max_steps_in_episode``,
``max_ticks``); unknown names raise ``ValueError`` naming them.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from balancedrl import envs
from balancedrl.training.adapters.base import EnvAdapter, one_slot_hybrid_adapter

__all__ = ["platform_adapter", "goal_adapter", "GOAL_REWARD_SCALE"]

GOAL_REWARD_SCALE = 1.0 / 50.0  # MP-DQN's reward scaling for Goal-v0 (training signal only)


def _scaled(values, low, high) -> np.ndarray:
    """Physical parameter values -> the squashed scale ``2 (v - low) / (high - low) - 1``."""
    low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    return 2.0 * (np.asarray(values, np.float64) - low) / (high - low) - 1.0


def _platform_mpdqn_prior(env) -> tuple[np.ndarray, np.ndarray]:
    bias = _scaled([3.0, 10.0, 400.0], env.param_low, env.param_high)
    return np.zeros((3, 9)), bias


def _goal_mpdqn_prior(env) -> tuple[np.ndarray, np.ndarray]:
    w = np.zeros((4, 17))
    w[0, [10, 14]] = [0.5, 0.0625]
    w[1, [11, 15]] = [0.8333333333333334, 0.1111111111111111]
    shoot = 0.857346647646219686  # (7.01 - 1) / 7.01
    return w, np.array([-0.375, 0.0, shoot, -shoot])


def _one_slot_hybrid_adapter(name: str, env_cfg, reward_scale: float, mpdqn_prior: Callable) -> EnvAdapter:
    env, params = envs.make(name, **dict(env_cfg.params))
    return one_slot_hybrid_adapter(name, env, params, reward_scale, {"mpdqn": mpdqn_prior(env)})


def platform_adapter(env_cfg) -> EnvAdapter:
    """Platform-v0: A = 3 (run, hop, leap), P = 3, ``param_owner = (0, 1, 2)``; success = end reached."""
    return _one_slot_hybrid_adapter("Platform-v0", env_cfg, 1.0, _platform_mpdqn_prior)


def goal_adapter(env_cfg) -> EnvAdapter:
    """Goal-v0: A = 3 (kick-to, shoot low, shoot high), P = 4, ``param_owner = (0, 0, 1, 2)``;
    success = scored; training reward = reward / 50."""
    return _one_slot_hybrid_adapter("Goal-v0", env_cfg, GOAL_REWARD_SCALE, _goal_mpdqn_prior)
