"""Trainer adapters for standard gymnax tasks: CartPole-v1 (discrete only) and Pendulum-v1 (continuous only).

Both are one-slot (M = 1) special cases of the hybrid policy (DESIGN §3), with one reward component
(``total``) and the :class:`balancedrl.networks.mlp.MLPActorCritic` network, so that the trainer with
every balancing technique off is standard PPO (PureJaxRL's ``ppo.py`` / ``ppo_continuous_action.py``):

* CartPole-v1: A = 2 discrete actions, P = 0 parameters (``param_owner = ()``); env action ``discrete[0]``.
  The continuous surrogate is identically 0 (no parameter is ever used) and so is its gradient.
* Pendulum-v1: A = 1 (one certain discrete action: log-prob 0, entropy 0), P = 1 torque parameter used by
  every action (``param_owner = (-1,)``), squashed into ``[-max_torque, max_torque] = [-2, 2]``;
  env action ``continuous[0]`` (shape [1]).

gymnax 1.0.1's ``Environment.step`` returns ``(obs, state, reward, terminated, truncated, info)`` with
``info["final_observation"]`` (the pre-reset observation), which the trainer bootstraps from on
truncation, so the environments are used as they are.

Success metric (counted by the trainer at episode ends): CartPole-v1 succeeds when the episode ends by the
time limit, i.e. the pole stayed up for ``max_steps_in_episode`` (500) steps (``truncated & ~terminated``);
Pendulum-v1 has no natural success event, so success is always False (its ``success_rate`` reads 0).

``env.params`` in the config overrides fields of gymnax's default env params (e.g.
``{max_steps_in_episode: 200}``); unknown names raise ``ValueError`` naming them.
"""

from __future__ import annotations

from typing import Callable

import gymnax
import jax.numpy as jnp
import numpy as np

from balancedrl.networks.mlp import MLPActorCritic
from balancedrl.training.adapters import EnvAdapter, register_adapter

__all__ = ["cartpole_adapter", "pendulum_adapter", "ADAPTER_FACTORIES", "make_gymnax_env"]


def apply_param_overrides(params, overrides: dict | None, name: str):
    """``params.replace(**overrides)`` after checking every name is a field of ``params``."""
    overrides = dict(overrides or {})
    if overrides:
        known = set(getattr(params, "__dataclass_fields__", {}))
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(
                f"config key 'env.params' has unknown field(s) {unknown} for {name}; allowed: {sorted(known)}"
            )
        params = params.replace(**overrides)
    return params


def make_gymnax_env(name: str, overrides: dict | None = None):
    """``(env, params)`` from ``gymnax.make(name)`` with ``overrides`` applied to the default params."""
    env, params = gymnax.make(name)
    return env, apply_param_overrides(params, overrides, name)


def _one_slot_mask(obs):
    """All-true alive mask ``[..., 1]`` for a flat observation ``[..., D]``."""
    return jnp.ones(jnp.shape(obs)[:-1] + (1,), bool)


def _mlp_network_factory(num_discrete: int, num_continuous: int, priors: dict | None = None) -> Callable:
    """``make_network(ac) -> (module, init(key, obs), frozen=())`` using ``ac.hidden_dim``,
    ``ac.log_std_init`` and ``ac.param_prior`` (a name in ``priors``: ``(weight [P, D], bias [P])`` in the
    squashed scale, see :class:`MLPActorCritic`). The GNN / WSA keys do not apply and are ignored."""
    priors = {"none": None, **(priors or {})}

    def make_network(ac):
        name = ac.param_prior
        if name not in priors:
            raise ValueError(
                f"config key 'actor_critic.param_prior' = {name!r} is not available for this environment; "
                f"allowed: {sorted(priors)}"
            )
        weight, bias = priors[name] or (None, None)
        module = MLPActorCritic(
            num_discrete=num_discrete,
            num_continuous=num_continuous,
            num_components=1,
            hidden_dim=int(ac.hidden_dim),
            num_layers=2,
            log_std_init=float(ac.log_std_init),
            param_prior_weight=None if weight is None else tuple(map(tuple, np.asarray(weight).tolist())),
            param_prior_bias=None if bias is None else tuple(np.asarray(bias).tolist()),
        )
        return module, (lambda key, obs: module.init(key, obs)), ()

    return make_network


def _total_reward(reward, info):
    return jnp.reshape(reward, (1,)).astype(jnp.float32)


def cartpole_adapter(env_cfg) -> EnvAdapter:
    """CartPole-v1: discrete only (A = 2, P = 0); success = survived to the time limit."""
    env, params = make_gymnax_env("CartPole-v1", env_cfg.params)
    return EnvAdapter(
        name="CartPole-v1",
        env=env,
        env_params=params,
        num_slots=1,
        num_discrete=2,
        num_continuous=0,
        param_owner=(),
        cont_low=np.zeros((0,), np.float32),
        cont_high=np.zeros((0,), np.float32),
        component_names=("total",),
        slot_mask=_one_slot_mask,
        to_env_action=lambda d, c: d[0],
        reward_components=_total_reward,
        success=lambda info: jnp.logical_and(info["truncated"], jnp.logical_not(info["terminated"])),
        make_network=_mlp_network_factory(2, 0),
        expert=None,
    )


def pendulum_adapter(env_cfg) -> EnvAdapter:
    """Pendulum-v1: continuous only (A = 1, P = 1, torque in [-max_torque, max_torque]); no success event."""
    env, params = make_gymnax_env("Pendulum-v1", env_cfg.params)
    t = float(params.max_torque)
    return EnvAdapter(
        name="Pendulum-v1",
        env=env,
        env_params=params,
        num_slots=1,
        num_discrete=1,
        num_continuous=1,
        param_owner=(-1,),
        cont_low=np.asarray([-t], np.float32),
        cont_high=np.asarray([t], np.float32),
        component_names=("total",),
        slot_mask=_one_slot_mask,
        to_env_action=lambda d, c: c[0],
        reward_components=_total_reward,
        success=lambda info: jnp.zeros((), bool),
        make_network=_mlp_network_factory(1, 1),
        expert=None,
    )


ADAPTER_FACTORIES: dict[str, Callable] = {"CartPole-v1": cartpole_adapter, "Pendulum-v1": pendulum_adapter}

for _name, _factory in ADAPTER_FACTORIES.items():
    register_adapter(_name, _factory)
