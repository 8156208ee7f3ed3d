"""One trainer adapter for any gymnax environment with a Box observation, derived from its action space.

The action space decides the slot's shape (one slot, ``M = 1``, one reward component ``total``, the
:class:`balancedrl.networks.mlp.MLPActorCritic` network), so that with every balancing technique off the
trainer is standard PPO (PureJaxRL's ``ppo.py`` / ``ppo_continuous_action.py``):

* ``Discrete(n)``: ``A = n`` discrete actions, ``P = 0`` parameters; the env action is ``discrete[0]``.
  The continuous surrogate is identically 0, and so is its gradient.
* ``Box(low, high, shape)``: ``A = 1`` (one certain discrete action: log-prob 0, entropy 0) and
  ``P = prod(shape)`` parameters used by it (``param_owner = -1``), squashed into ``[low, high]``; the env
  action is ``continuous[0]`` reshaped to ``shape``.
* ``Tuple((Discrete(n), Box(low, high, shape)))``: the hybrid case, ``A = n`` discrete actions and
  ``P = prod(shape)`` parameters shared by all of them (``param_owner = -1``); the env action is the tuple
  ``(discrete[0], continuous[0] reshaped)``. (No gymnax 1.0 environment has one; tested on a stand-in.)

Observations that are not float32 vectors (MinAtar's ``10 x 10 x C`` booleans, Catch, DeepSea, Pong
images; FourRooms' int32 vector) are flattened and cast by :class:`balancedrl.envs.gymnax_envs.FlatObservation`:
the MLP trainer takes float vectors, and a reshape loses nothing. (A convolutional torso would learn MinAtar faster; that is a network choice, not an adapter's.)

gymnax 1.0's ``step`` returns ``(obs, state, reward, terminated, truncated, info)`` with
``info["final_observation"]`` (the pre-reset observation), which the trainer bootstraps from on truncation.

Success, counted at episode ends, is the task's own event (:data:`SUCCESS_RULES`): ``"survive"`` (the episode
reached the time limit without terminating: CartPole), ``"reach"`` (it terminated before the time limit:
the goal of Acrobot and Mountain Car), ``"never"`` otherwise (no success event is defined for the task).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from balancedrl.training.adapters.base import EnvAdapter, mlp_network_factory, one_slot_mask, total_reward

__all__ = ["SUCCESS_RULES", "action_layout", "gymnax_adapter"]

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


def _box_bounds(space):
    shape = tuple(space.shape)
    size = int(np.prod(shape))
    low = np.broadcast_to(np.asarray(space.low, np.float32), shape).reshape(size)
    high = np.broadcast_to(np.asarray(space.high, np.float32), shape).reshape(size)
    return shape, size, low, high


def action_layout(name: str, space):
    """``(A, P, low [P], high [P], to_env_action)`` of a gymnax action space (see the module docstring)."""
    from gymnax.environments import spaces

    if isinstance(space, spaces.Discrete):
        none = np.zeros((0,), np.float32)
        return int(space.n), 0, none, none, (lambda d, c: d[0])
    if isinstance(space, spaces.Box):
        shape, size, low, high = _box_bounds(space)
        return 1, size, low, high, (lambda d, c: jnp.reshape(c[0], shape))
    if (
        isinstance(space, spaces.Tuple)
        and len(space.spaces) == 2
        and isinstance(space.spaces[0], spaces.Discrete)
        and isinstance(space.spaces[1], spaces.Box)
    ):
        shape, size, low, high = _box_bounds(space.spaces[1])
        return int(space.spaces[0].n), size, low, high, (lambda d, c: (d[0], jnp.reshape(c[0], shape)))
    raise ValueError(
        f"env.name = {name!r} has action space {space!r}; allowed: Discrete, Box, Tuple((Discrete, Box))"
    )


def adapter_for(name: str, env, params) -> EnvAdapter:
    """The adapter of gymnax environment ``env`` (with ``params``) registered as ``name``."""
    from gymnax.environments import spaces

    from balancedrl.envs.gymnax_envs import FlatObservation

    obs_space = env.observation_space(params)
    if not isinstance(obs_space, spaces.Box):
        raise ValueError(
            f"env.name = {name!r} has observation space {type(obs_space).__name__}; allowed: Box (flattened)"
        )
    # the observation reset really returns (FourRooms' Box says float32 and returns int32): shape-only trace
    obs = jax.eval_shape(env.reset, jax.random.PRNGKey(0), params)[0]
    if len(obs.shape) != 1 or obs.dtype != jnp.float32:
        env = FlatObservation(env)
    A, P, low, high, to_env_action = action_layout(name, env.action_space(params))
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


def gymnax_adapter(env_cfg) -> EnvAdapter:
    """The adapter of gymnax environment ``env_cfg.name`` with ``env_cfg.params`` overrides."""
    from balancedrl import envs

    env, params = envs.make(env_cfg.name, **dict(env_cfg.params))
    return adapter_for(env_cfg.name, env, params)
