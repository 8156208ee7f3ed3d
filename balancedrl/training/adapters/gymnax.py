"""One trainer adapter for any gymnax environment with a flat observation, derived from its action space.

The action space decides the slot's shape (one slot, ``M = 1``, one reward component ``total``, the
:class:`balancedrl.networks.mlp.MLPActorCritic` network), so that with every balancing technique off the
trainer is standard PPO (PureJaxRL's ``ppo.py`` / ``ppo_continuous_action.py``):

* ``Discrete(n)``: ``A = n`` discrete actions, ``P = 0`` parameters; the env action is ``discrete[0]``.
  The continuous surrogate is identically 0, and so is its gradient.
* ``Box(low, high, shape)``: ``A = 1`` (one certain discrete action: log-prob 0, entropy 0) and
  ``P = prod(shape)`` parameters used by it (``param_owner = -1``), squashed into ``[low, high]``; the env
  action is ``continuous[0]`` reshaped to ``shape``.

gymnax 1.0's ``step`` returns ``(obs, state, reward, terminated, truncated, info)`` with
``info["final_observation"]`` (the pre-reset observation), which the trainer bootstraps from on truncation.

Success, counted at episode ends, is the task's own event (:data:`SUCCESS_RULES`): ``"survive"`` (the episode
reached the time limit without terminating: CartPole), ``"reach"`` (it terminated before the time limit:
the goal of Acrobot and Mountain Car), ``"never"`` otherwise (Pendulum has no success event).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from balancedrl.training.adapters.base import EnvAdapter, mlp_network_factory, one_slot_mask, total_reward

__all__ = ["SUCCESS_RULES", "gymnax_adapter"]

SUCCESS_RULES = {
    "CartPole-v1": "survive",
    "Acrobot-v1": "reach",
    "MountainCar-v0": "reach",
    "MountainCarContinuous-v0": "reach",
}

_SUCCESS = {
    "survive": lambda info: jnp.logical_and(info["truncated"], jnp.logical_not(info["terminated"])),
    "reach": lambda info: jnp.logical_and(info["terminated"], jnp.logical_not(info["truncated"])),
    "never": lambda info: jnp.zeros((), bool),
}


def gymnax_adapter(env_cfg) -> EnvAdapter:
    """The adapter of gymnax environment ``env_cfg.name`` (see the module docstring)."""
    from gymnax.environments import spaces

    from balancedrl import envs

    name = env_cfg.name
    env, params = envs.make(name, **dict(env_cfg.params))
    obs_shape = env.observation_space(params).shape
    if len(obs_shape) != 1:
        raise ValueError(f"env.name = {name!r} has observation shape {obs_shape}; allowed: flat (1-D) observations")
    space = env.action_space(params)
    if isinstance(space, spaces.Discrete):
        A, P = int(space.n), 0
        low = high = np.zeros((0,), np.float32)

        def to_env_action(d, c):
            return d[0]
    elif isinstance(space, spaces.Box):
        shape = tuple(space.shape)
        A, P = 1, int(np.prod(shape))
        low = np.broadcast_to(np.asarray(space.low, np.float32), shape).reshape(P)
        high = np.broadcast_to(np.asarray(space.high, np.float32), shape).reshape(P)

        def to_env_action(d, c):
            return jnp.reshape(c[0], shape)
    else:
        raise ValueError(f"env.name = {name!r} has action space {type(space).__name__}; allowed: Discrete, Box")
    return EnvAdapter(
        name=name,
        env=env,
        env_params=params,
        num_slots=1,
        num_discrete=A,
        num_continuous=P,
        param_owner=(-1,) * P,
        cont_low=low,
        cont_high=high,
        component_names=("total",),
        slot_mask=one_slot_mask,
        to_env_action=to_env_action,
        reward_components=total_reward,
        success=_SUCCESS[SUCCESS_RULES.get(name, "never")],
        make_network=mlp_network_factory(A, P),
        expert=None,
    )


