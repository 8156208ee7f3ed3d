"""balancedrl environments: Durotaxis-v0 (pure JAX) and a registry ``make(name, **kwargs)``."""

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
from balancedrl.envs.expert import expert_action
from balancedrl.envs.graphs import edge_mask, node_mask, to_graphs_tuple
from balancedrl.envs.render import render_frame, write_gif

# name -> (module, class). The parameterised-action ports live in modules imported lazily.
_REGISTRY = {
    "Durotaxis-v0": ("balancedrl.envs.durotaxis", "Durotaxis"),
    "Platform-v0": ("balancedrl.envs.platform", "Platform"),
    "Goal-v0": ("balancedrl.envs.goal", "Goal"),
    "HardGoal-v0": ("balancedrl.envs.hard_goal", "HardGoal"),
    "CatchPoint-v0": ("balancedrl.envs.catch_point", "CatchPoint"),
    **{f"HardMove-n{n}-v0": ("balancedrl.envs.hard_move", "HardMove") for n in (4, 6, 8, 10)},
}
# constructor arguments fixed by the name
_CTOR_KWARGS = {f"HardMove-n{n}-v0": {"n": n} for n in (4, 6, 8, 10)}
# static constructor options a caller may pass to make() (they change shapes, so they are not params)
_CTOR_OPTIONS = {f"HardMove-n{n}-v0": ("param_layout",) for n in (4, 6, 8, 10)}


def registered_envs() -> tuple[str, ...]:
    """Names accepted by ``make``."""
    return tuple(_REGISTRY)


def make(name: str, **kwargs):
    """``(env, params)`` for a registered environment; kwargs override fields of ``env.default_params``.

    For Durotaxis-v0, ``max_nodes`` (static) is passed to the constructor and the params alike; with
    ``max_nodes`` ≠ 64 and no ``overcrowd_nodes`` given, overcrowd_nodes = min(48, ⌊3M/4⌋).
    For HardMove-n{4,6,8,10}-v0 the name fixes ``n``; ``param_layout`` ("per_action" | "shared") goes to
    the constructor.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown environment name {name!r}; known: {', '.join(_REGISTRY)}")
    module, cls_name = _REGISTRY[name]
    cls = getattr(importlib.import_module(module), cls_name)
    if name == "Durotaxis-v0":
        M = kwargs.pop("max_nodes", 64)
        env = cls(max_nodes=M)
        if M != 64 and "overcrowd_nodes" not in kwargs:
            kwargs["overcrowd_nodes"] = min(48, (3 * M) // 4)  # keep 48/64's room for one step's spawns
    else:
        ctor = dict(_CTOR_KWARGS.get(name, {}))
        for opt in _CTOR_OPTIONS.get(name, ()):
            if opt in kwargs:
                ctor[opt] = kwargs.pop(opt)
        env = cls(**ctor)
    params = env.default_params
    if kwargs:
        fields = set(getattr(params, "__dataclass_fields__", {}))
        unknown = sorted(set(kwargs) - fields)
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown} for {name}; allowed: {sorted(fields)}")
        params = params.replace(**kwargs)
    if name == "Durotaxis-v0":
        validate_params(params)
    return env, params


__all__ = [
    "Durotaxis",
    "DurotaxisParams",
    "DurotaxisState",
    "HybridActionSpace",
    "MultiDiscrete",
    "continuous_bounds",
    "edge_mask",
    "expert_action",
    "make",
    "node_mask",
    "registered_envs",
    "render_frame",
    "state_from_tree",
    "to_graphs_tuple",
    "validate_params",
    "write_gif",
]
