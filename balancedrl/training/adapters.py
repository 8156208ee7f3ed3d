"""Environment adapters: what the trainer needs to know about an environment, in one frozen record.

The trainer works on *slots* (``M`` per observation) that each take a hybrid action (DESIGN §3). An adapter
tells it the slot count, the action sizes, which discrete action owns which continuous parameter, the
parameter bounds, how to read the reward components, success and the alive-slot mask from an observation
/ ``info``, how to build the environment's action, the scripted expert (if any) and the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax.numpy as jnp
import numpy as np

from balancedrl.types import REWARD_COMPONENTS, HybridAction


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

    @property
    def num_components(self) -> int:
        return len(self.component_names)


def network_config_from(ac) -> Any:
    """Translate the YAML ``actor_critic`` section into :class:`balancedrl.networks.NetworkConfig`."""
    from balancedrl.networks.actor_critic import NetworkConfig, WSAConfig

    w = ac.wsa_config
    wsa = WSAConfig(
        embedding_dim=w.embedding_dim,
        context_dim=w.context_dim,
        ptms=tuple((p.model_type, bool(p.freeze)) for p in w.ptms),
        attention_temperature=w.attention_temperature,
        fusion=w.fusion,
        raster_size=w.raster_size,
    )
    return NetworkConfig(
        hidden_dim=ac.hidden_dim,
        num_gnn_layers=ac.num_gnn_layers,
        gnn_layer=ac.gnn_layer,
        log_std_init=ac.log_std_init,
        use_wsa=ac.use_wsa,
        wsa=wsa,
    )


def durotaxis_adapter(env_cfg) -> EnvAdapter:
    from balancedrl import envs
    from balancedrl.envs.durotaxis import SPAWN
    from balancedrl.networks.actor_critic import HybridActorCritic, frozen_param_names, init_network

    env, params = envs.make("Durotaxis-v0", **dict(env_cfg.params))
    low, high = (np.asarray(x) for x in envs.continuous_bounds(params))

    def make_network(ac):
        if ac.param_prior != "none":
            raise ValueError(
                f"config key 'actor_critic.param_prior' = {ac.param_prior!r} is not available for "
                "Durotaxis-v0; allowed: ['none']"
            )
        ncfg = network_config_from(ac)
        module = HybridActorCritic(ncfg)
        return module, (lambda key, obs: init_network(ncfg, key, obs)), frozen_param_names(ncfg)

    def expert(key, obs):
        a = envs.expert_action(key, obs, params)
        return a.discrete.astype(jnp.int32), a.continuous

    return EnvAdapter(
        name="Durotaxis-v0",
        env=env,
        env_params=params,
        num_slots=params.max_nodes,
        num_discrete=3,
        num_continuous=4,
        param_owner=(SPAWN,) * 4,
        cont_low=low,
        cont_high=high,
        component_names=REWARD_COMPONENTS,
        slot_mask=lambda obs: obs.mask,
        to_env_action=lambda d, c: HybridAction(d, c),
        reward_components=lambda reward, info: info["reward_components"],
        success=lambda info: info["success"],
        make_network=make_network,
        expert=expert,
    )


_ADAPTERS: dict[str, Callable] = {"Durotaxis-v0": durotaxis_adapter}


def register_adapter(name: str, factory: Callable) -> None:
    _ADAPTERS[name] = factory


def make_adapter(env_cfg) -> EnvAdapter:
    if env_cfg.name not in _ADAPTERS:
        raise ValueError(
            f"config key 'env.name' = {env_cfg.name!r} has no trainer adapter; allowed: {', '.join(_ADAPTERS)}"
        )
    return _ADAPTERS[env_cfg.name](env_cfg)


# --- gymnax tasks (CartPole-v1, Pendulum-v1): balancedrl/training/gymnax_adapters.py, imported lazily inside
# the factory so that this module never imports it at load time (no circular import).
def _lazy_gymnax_factory(name: str) -> Callable:
    def factory(env_cfg) -> EnvAdapter:
        from balancedrl.training import gymnax_adapters

        return gymnax_adapters.ADAPTER_FACTORIES[name](env_cfg)

    return factory


_ADAPTERS.update({_n: _lazy_gymnax_factory(_n) for _n in ("CartPole-v1", "Pendulum-v1")})


# --- parameterised-action benchmarks (Platform-v0, Goal-v0): balancedrl/training/hybrid_adapters.py, lazily.
def _lazy_hybrid_factory(name: str) -> Callable:
    def factory(env_cfg) -> EnvAdapter:
        from balancedrl.training import hybrid_adapters

        return hybrid_adapters.ADAPTER_FACTORIES[name](env_cfg)

    return factory


_ADAPTERS.update({_n: _lazy_hybrid_factory(_n) for _n in ("Platform-v0", "Goal-v0")})
