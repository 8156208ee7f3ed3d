"""What the trainer needs to know about an environment, in one frozen record, and the pieces adapters share.

The trainer works on *slots* (``M`` per observation) that each take a hybrid action: one discrete choice
and ``P`` continuous parameters, of which ``param_owner`` says which discrete action uses which. An adapter
tells it the slot count, the action sizes, which discrete action owns which continuous parameter, the
parameter bounds, how to read the reward components, success and the alive-slot mask from an observation
/ ``info``, how to build the environment's action, the scripted expert (if any) and the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True, eq=False)
class EnvAdapter:
    name: str
    env: Any
    env_params: Any
    num_slots: int
    num_discrete: int
    num_continuous: int
    param_owner: tuple  # len num_continuous; -1 = used by every discrete action
    cont_low: np.ndarray  # [P]
    cont_high: np.ndarray  # [P]
    component_names: tuple
    slot_mask: Callable  # obs -> bool [..., M]
    to_env_action: Callable  # (discrete [M], continuous [M, P]) -> env action
    reward_components: Callable  # (reward [], info) -> [C]
    success: Callable  # info -> bool []
    make_network: Callable  # ActorCriticConfig -> (module, init_fn(key, obs) -> variables, frozen names)
    expert: Callable | None = None  # (key, obs) -> (discrete [M], continuous [M, P])
    render_frame: Callable | None = None  # (env state, env params) -> RGB uint8 [H, W, 3], for episode GIFs
    # Every truncation is a time limit of this many steps (episode time restarts at 0), so one environment
    # truncates at most ceil(T / truncation_period) times in T steps; the trainer then computes bootstrap
    # values only there (targets.bootstrap_values). None: unknown, every final observation is evaluated.
    truncation_period: int | None = None

    @property
    def num_components(self) -> int:
        return len(self.component_names)


def one_slot_mask(obs):
    """All-true alive mask ``[..., 1]`` for a flat observation ``[..., D]``."""
    return jnp.ones(jnp.shape(obs)[:-1] + (1,), bool)


def total_reward(reward, info):
    """The environment's reward as the one component ``total``: ``[1]``."""
    return jnp.reshape(reward, (1,)).astype(jnp.float32)


def mlp_network_factory(
    num_discrete: int, num_continuous: int, priors: dict | None = None, factorised: bool = False
) -> Callable:
    """``make_network(ac) -> (module, init(key, obs), frozen=())`` using ``ac.hidden_dim``,
    ``ac.log_std_init``, ``ac.param_prior`` (a name in ``priors``: ``(weight [P, D], bias [P])`` in the
    squashed scale, see :class:`MLPActorCritic`) and ``ac.discrete_head`` (``"factorised"`` only where
    ``factorised`` is true: tasks whose 2^n discrete actions are n binary choices). The GNN / WSA keys do not
    apply and are ignored."""
    from balancedrl.networks.mlp import MLPActorCritic

    priors = {"none": None, **(priors or {})}

    def make_network(ac):
        name = ac.param_prior
        if name not in priors:
            raise ValueError(
                f"config key 'actor_critic.param_prior' = {name!r} is not available for this environment; "
                f"allowed: {sorted(priors)}"
            )
        weight, bias = priors[name] or (None, None)
        head = getattr(ac, "discrete_head", "categorical")
        if head != "categorical" and not factorised:
            raise ValueError(
                f"config key 'actor_critic.discrete_head' = {head!r} is not available for this environment; "
                f"allowed: ['categorical']"
            )
        module = MLPActorCritic(
            num_discrete=num_discrete,
            num_continuous=num_continuous,
            num_components=1,
            hidden_dim=int(ac.hidden_dim),
            num_layers=2,
            log_std_init=float(ac.log_std_init),
            param_prior_weight=None if weight is None else tuple(map(tuple, np.asarray(weight).tolist())),
            param_prior_bias=None if bias is None else tuple(np.asarray(bias).tolist()),
            discrete_head=head,
        )
        return module, (lambda key, obs: module.init(key, obs)), ()

    return make_network


def one_slot_hybrid_adapter(
    name: str, env, params, reward_scale: float, priors: dict | None = None, factorised: bool = False
) -> EnvAdapter:
    """A one-slot parameterised-action task (Platform, Goal, HyAR's suite): the env's action count,
    ``param_owner`` and bounds, its dict action ``{"discrete": d[0], "continuous": c[0]}`` in physical units,
    its ``info["success"]``, reward ``total`` x ``reward_scale`` (training signal only), and the MLP
    actor-critic with the given parameter ``priors`` (and a factorised discrete head if asked)."""
    num_discrete = int(env.num_actions)
    num_params = len(env.param_owner)
    return EnvAdapter(
        name=name,
        env=env,
        env_params=params,
        num_slots=1,
        num_discrete=num_discrete,
        num_continuous=num_params,
        param_owner=tuple(int(i) for i in env.param_owner),
        cont_low=np.asarray(env.param_low, np.float32),
        cont_high=np.asarray(env.param_high, np.float32),
        component_names=("total",),
        slot_mask=one_slot_mask,
        to_env_action=lambda d, c: {"discrete": d[0], "continuous": c[0]},
        reward_components=lambda reward, info: jnp.reshape(reward * reward_scale, (1,)).astype(jnp.float32),
        success=lambda info: jnp.asarray(info["success"], bool),
        make_network=mlp_network_factory(num_discrete, num_params, priors, factorised),
        expert=None,
    )
