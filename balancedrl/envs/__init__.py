"""balancedrl environments: Durotaxis-v0 (pure JAX), its shaping variants Durotaxis-Sparse-v0 and
Durotaxis-Misscaled-v0, and a registry ``make(name, **kwargs)``."""

from __future__ import annotations

import importlib

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
from balancedrl.envs.render import render_frame, write_gif

# name -> (module, class). Platform/Goal live in modules written separately and are imported lazily.
_REGISTRY = {
    "Durotaxis-v0": ("balancedrl.envs.durotaxis", "Durotaxis"),
    "Durotaxis-Sparse-v0": ("balancedrl.envs.durotaxis_variants", "DurotaxisShaped"),
    "Durotaxis-Misscaled-v0": ("balancedrl.envs.durotaxis_variants", "DurotaxisShaped"),
    "Platform-v0": ("balancedrl.envs.platform", "Platform"),
    "Goal-v0": ("balancedrl.envs.goal", "Goal"),
}


def registered_envs() -> tuple[str, ...]:
    """Names accepted by ``make``."""
    return tuple(_REGISTRY)


def make(name: str, **kwargs):
    """``(env, params)`` for a registered environment; kwargs override fields of ``env.default_params``.

    For Durotaxis-v0 and its variants, ``max_nodes`` (static) is passed to the constructor and the params
    alike; with ``max_nodes`` ≠ 64 and no ``overcrowd_nodes`` given, overcrowd_nodes = min(48, ⌊3M/4⌋).
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown environment name {name!r}; known: {', '.join(_REGISTRY)}")
    module, cls_name = _REGISTRY[name]
    cls = getattr(importlib.import_module(module), cls_name)
    durotaxis_family = name.startswith("Durotaxis-")
    if durotaxis_family:
        M = kwargs.pop("max_nodes", 64)
        env = cls(max_nodes=M) if name == "Durotaxis-v0" else cls(max_nodes=M, variant=name)
        if M != 64 and "overcrowd_nodes" not in kwargs:
            kwargs["overcrowd_nodes"] = min(48, (3 * M) // 4)  # keep 48/64's room for one step's spawns
    else:
        env = cls()
    params = env.default_params
    if kwargs:
        fields = set(getattr(params, "__dataclass_fields__", {}))
        unknown = sorted(set(kwargs) - fields)
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown} for {name}; allowed: {sorted(fields)}")
        params = params.replace(**kwargs)
    if name == "Durotaxis-v0":
        validate_params(params)
    elif durotaxis_family:
        validate_shaped_params(params)
    return env, params


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
    "registered_envs",
    "render_frame",
    "state_from_tree",
    "to_graphs_tuple",
    "validate_params",
    "validate_shaped_params",
    "write_gif",
]
