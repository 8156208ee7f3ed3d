"""Durotaxis-v0 and its shaping variants: ``M = max_nodes`` slots (one per node), actions none / spawn /
delete, the four spawn parameters owned by spawn, the env's reward components (six for Durotaxis-v0, five
for the variants: ``env.component_names``), the scripted expert and the GNN (or WSA) actor-critic."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from balancedrl.training.adapters.base import EnvAdapter
from balancedrl.types import REWARD_COMPONENTS, HybridAction


def network_config_from(ac, num_components: int = len(REWARD_COMPONENTS)) -> Any:
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
        num_components=num_components,
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

    env, params = envs.make(env_cfg.name, **dict(env_cfg.params))
    low, high = (np.asarray(x) for x in envs.continuous_bounds(params))
    components = tuple(getattr(env, "component_names", REWARD_COMPONENTS))

    def make_network(ac):
        if ac.param_prior != "none":
            raise ValueError(
                f"config key 'actor_critic.param_prior' = {ac.param_prior!r} is not available for "
                "Durotaxis-v0; allowed: ['none']"
            )
        ncfg = network_config_from(ac, len(components))
        module = HybridActorCritic(ncfg)
        return module, (lambda key, obs: init_network(ncfg, key, obs)), frozen_param_names(ncfg)

    def expert(key, obs):
        a = envs.expert_action(key, obs, params)
        return a.discrete.astype(jnp.int32), a.continuous

    return EnvAdapter(
        name=env_cfg.name,
        env=env,
        env_params=params,
        num_slots=params.max_nodes,
        num_discrete=3,
        num_continuous=4,
        param_owner=(SPAWN,) * 4,
        cont_low=low,
        cont_high=high,
        component_names=components,
        slot_mask=lambda obs: obs.mask,
        to_env_action=lambda d, c: HybridAction(d, c),
        reward_components=lambda reward, info: info["reward_components"],
        success=lambda info: info["success"],
        make_network=make_network,
        expert=expert,
        render_frame=envs.render_frame,
        truncation_period=int(params.max_steps_in_episode),
    )
