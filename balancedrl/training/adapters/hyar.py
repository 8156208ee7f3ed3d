"""Trainer adapters for HyAR's hybrid-action tasks (Li et al., ICLR 2022): Hard Goal, Catch Point and Hard
Move with n = 4, 6, 8, 10 actuators (the environments of docs/specs/hyar_envs.md).

All are one-slot (M = 1) tasks with one reward component (``total``), trained with the one-slot
:class:`balancedrl.networks.mlp.MLPActorCritic` (as Platform-v0 / Goal-v0, see
:mod:`balancedrl.training.adapters.parameterised`). The action sizes, ``param_owner`` and the parameter
bounds are read from the environment; the trainer's discrete index *is* the environment's discrete action
and its squashed parameters are the environment's ``continuous`` vector, so the env action is
``{"discrete": d[0], "continuous": c[0]}``.

* HardGoal-v0: A = 11 (kick-to, 5 shot regions x 2 identical shots), P = 12 in ``[-1, 1]``,
  ``param_owner = (0, 0, 1, ..., 10)`` (kick-to owns (p0, p1), p1 has no effect in the env; shot ``a``
  owns ``p[a + 1]``). Observation: the MP-DQN scaled 17-vector.
* CatchPoint-v0: A = 2 (move, catch), P = 1 in ``[-1, 1]`` (the move's direction), ``param_owner = (0,)``:
  the catch reads no parameter, so its log-probability counts none.
* HardMove-n{n}-v0: A = 2^n actuator patterns, **one** strength ``p`` in ``[-1, 1]`` read by every pattern
  (SPEC2 §3.3, "one strength for the whole pattern"): the env's ``param_layout="shared"``, ``P = 1``,
  ``param_owner = (-1,)``. The original ``per_action`` interface (2^n parameter slots of which the chosen
  one is read) describes the same dynamics with a 2^n times larger parameter vector; the Gaussian head
  over the shared layout is the same policy family with one mean instead of 2^n.

Hard Move's discrete head (``actor_critic.discrete_head``):

* ``categorical`` (default): the **joint categorical over the 2^n patterns**, ``2^n`` logits from the MLP's
  policy head. Exact by construction (sample, log-prob, entropy and KL are the trainer's ordinary
  categorical ones) and affordable at HyAR's sizes: at n = 10 the head is a ``hidden_dim x 1025`` dense
  layer (65,600 weights at ``hidden_dim = 64``, ~8x the rest of the actor's 8,448) and a 1,024-way
  softmax per step.
* ``factorised``: n independent Bernoulli actuators (n logits, :mod:`balancedrl.factorised`); the network
  turns them into the 2^n exact joint log-probabilities (:class:`balancedrl.networks.mlp.MLPActorCritic`),
  so the trainer's losses are unchanged and exact. Fewer weights (``hidden_dim x (n + 1)``) and an
  actuator-wise structure; the family cannot express correlations between actuators.

Either way the trainer's discrete index is HyAR's action index ``a`` (actuator k fires iff bit
``n - 1 - k`` of ``a`` is set, the env's and :mod:`balancedrl.factorised`'s encoding).

Success: the environments' own ``info["success"]``, set on the step that ends an episode with HyAR's
success event (Hard Goal: return 50, a goal; Catch Point / Hard Move: a step with ``r > 4``, i.e. within
0.2 of the target, a successful catch for Catch Point) -- the flag HyAR's evaluation counts (SPEC2 §1.7,
§2.7, §3.6). Time limits (Catch Point 25 steps, Hard Move 30) are truncations.

Training reward (``reward_components``), a fixed scale so that a success is worth about +1 and PPO's value
clipping (``vf_clip``) works on the returns' scale; the logged ``episode_return`` and the evaluation returns
stay in the env's units:

* Hard Goal: reward / 50 (:data:`HARD_GOAL_REWARD_SCALE`, Goal-v0's MP-DQN scaling): goal +1, a miss about
  -0.1 .. -0.4;
* Catch Point and Hard Move: reward / 20 (:data:`POINT_REWARD_SCALE`): the success step gives
  ``(20 - d2) / 20`` in (0.998, 1], each other step ``-d2 / 20`` (random play: about -1.5 to -2 per
  episode in these units, SPEC2 §4.4).

Parameter prior (``actor_critic.param_prior``): ``mpdqn`` for Hard Goal only -- Goal-v0's MP-DQN kick-to
prior (same scaled observation, and the kick-to parameters map ``[-1, 1]`` onto Goal's ``[0, 40] x [-15, 15]``
exactly as the squashed scale does) for ``(p0, p1)``, and 0 (the middle of each shot region) for the ten
shot parameters. ``none`` everywhere else.

``env.params`` overrides fields of the env's params (``max_steps_in_episode``, Goal's ``max_ticks``);
unknown names raise ``ValueError``.
"""

from __future__ import annotations

import numpy as np

from balancedrl import envs
from balancedrl.training.adapters.base import EnvAdapter, one_slot_hybrid_adapter

__all__ = [
    "HARD_GOAL_REWARD_SCALE",
    "POINT_REWARD_SCALE",
    "catch_point_adapter",
    "hard_goal_adapter",
    "hard_move_adapter",
]

HARD_GOAL_REWARD_SCALE = 1.0 / 50.0  # a goal (+50) -> +1 (training signal only)
POINT_REWARD_SCALE = 1.0 / 20.0  # Catch Point / Hard Move success bonus (+20) -> +1 (training signal only)


def _hard_goal_mpdqn_prior() -> tuple[np.ndarray, np.ndarray]:
    """Goal-v0's MP-DQN kick-to prior on (p0, p1) in the squashed scale; shots start mid-region (0)."""
    from balancedrl.training.adapters.parameterised import _goal_mpdqn_prior

    w_goal, b_goal = _goal_mpdqn_prior(None)
    w = np.zeros((12, 17))
    b = np.zeros(12)
    w[0:2], b[0:2] = w_goal[0:2], b_goal[0:2]
    return w, b


def hard_goal_adapter(env_cfg) -> EnvAdapter:
    """HardGoal-v0: A = 11, P = 12, ``param_owner = (0, 0, 1..10)``; success = scored; reward / 50."""
    env, params = envs.make("HardGoal-v0", **dict(env_cfg.params))
    return one_slot_hybrid_adapter("HardGoal-v0", env, params, HARD_GOAL_REWARD_SCALE, {"mpdqn": _hard_goal_mpdqn_prior()})


def catch_point_adapter(env_cfg) -> EnvAdapter:
    """CatchPoint-v0: A = 2 (move, catch), P = 1, ``param_owner = (0,)``; success = caught; reward / 20."""
    env, params = envs.make("CatchPoint-v0", **dict(env_cfg.params))
    return one_slot_hybrid_adapter("CatchPoint-v0", env, params, POINT_REWARD_SCALE)


def hard_move_adapter(env_cfg) -> EnvAdapter:
    """HardMove-n{n}-v0 (n from ``env_cfg.name``): A = 2^n, one shared strength (P = 1,
    ``param_owner = (-1,)``); success = within 0.2 of the target; reward / 20."""
    name = env_cfg.name
    env, params = envs.make(name, param_layout="shared", **dict(env_cfg.params))
    return one_slot_hybrid_adapter(name, env, params, POINT_REWARD_SCALE, factorised=True)
