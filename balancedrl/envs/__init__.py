"""balancedrl environments (pure JAX, gymnax-style) and the one registry: ``make(name, **overrides)``,
``register(name, env_factory, adapter_factory)`` (:mod:`balancedrl.envs.registry`)."""

from __future__ import annotations

from balancedrl.envs.durotaxis import (
    Durotaxis,
    DurotaxisParams,
    DurotaxisState,
    HybridActionSpace,
    MultiDiscrete,
    continuous_bounds,
    state_from_tree,
    validate_params,
)
from balancedrl.envs.durotaxis_variants import (
    SHAPED_COMPONENTS,
    DurotaxisShaped,
    DurotaxisShapedParams,
    oracle_weights,
    validate_shaped_params,
)
from balancedrl.envs.expert import expert_action
from balancedrl.envs.graphs import edge_mask, node_mask, to_graphs_tuple
from balancedrl.envs.registry import make, register, registered_envs, trainable_envs
from balancedrl.envs.render import render_frame, write_gif

__all__ = [
    "Durotaxis",
    "DurotaxisParams",
    "DurotaxisShaped",
    "DurotaxisShapedParams",
    "DurotaxisState",
    "HybridActionSpace",
    "MultiDiscrete",
    "SHAPED_COMPONENTS",
    "continuous_bounds",
    "edge_mask",
    "expert_action",
    "make",
    "node_mask",
    "oracle_weights",
    "register",
    "registered_envs",
    "render_frame",
    "state_from_tree",
    "to_graphs_tuple",
    "trainable_envs",
    "validate_params",
    "validate_shaped_params",
    "write_gif",
]
