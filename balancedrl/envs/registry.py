"""The one registry of environments and their trainer adapters.

``register(name, env_factory, adapter_factory=None)`` adds an environment:

* ``env_factory(name, **overrides) -> (env, params)`` builds it, ``overrides`` replacing fields of its
  default params (the registered name is passed so that one factory can serve a family, e.g. every gymnax
  task or every Hard Move size);
* ``adapter_factory(env_cfg) -> EnvAdapter`` (:mod:`balancedrl.training.adapters`) tells the trainer how to
  act in it; an environment without one can be made but not trained.

Factories are callables or ``"module:function"`` strings imported on first use, so this module imports
nothing heavy and no module imports the trainer to register itself (no import cycle). Config validation,
the host loop and the plots ask this registry for names; nothing else lists them.
"""

from __future__ import annotations

import importlib
from typing import Callable, NamedTuple

__all__ = ["EnvSpec", "register", "spec", "registered_envs", "trainable_envs", "make", "resolve"]


class EnvSpec(NamedTuple):
    name: str
    env_factory: str | Callable
    adapter_factory: str | Callable | None


_SPECS: dict[str, EnvSpec] = {}


def resolve(factory: str | Callable) -> Callable:
    """A callable, or the function a ``"module:function"`` string names."""
    if callable(factory):
        return factory
    module, _, fn = factory.partition(":")
    if not fn:
        raise ValueError(f"factory {factory!r} must be a callable or a 'module:function' string")
    return getattr(importlib.import_module(module), fn)


def register(name: str, env_factory: str | Callable, adapter_factory: str | Callable | None = None) -> None:
    """Add environment ``name``; a taken name is refused."""
    if name in _SPECS:
        raise ValueError(f"environment {name!r} is already registered")
    _SPECS[name] = EnvSpec(name, env_factory, adapter_factory)


def spec(name: str) -> EnvSpec:
    if name not in _SPECS:
        raise ValueError(f"unknown environment name {name!r}; known: {', '.join(_SPECS)}")
    return _SPECS[name]


def registered_envs() -> tuple[str, ...]:
    """Every name :func:`make` accepts."""
    return tuple(_SPECS)


def trainable_envs() -> tuple[str, ...]:
    """Names with a trainer adapter: the values ``env.name`` accepts."""
    return tuple(n for n, s in _SPECS.items() if s.adapter_factory is not None)


def make(name: str, **overrides):
    """``(env, params)`` for a registered environment; ``overrides`` replace fields of its default params."""
    return resolve(spec(name).env_factory)(name, **overrides)


def with_overrides(params, overrides: dict | None, name: str):
    """``params.replace(**overrides)`` after checking that every name is a field of ``params``."""
    overrides = dict(overrides or {})
    if overrides:
        known = set(getattr(params, "__dataclass_fields__", {}))
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown} for {name}; allowed: {sorted(known)}")
        params = params.replace(**overrides)
    return params


def _gymnax_envs() -> tuple[str, ...]:
    """gymnax's environments that the generic adapter trains (the list and the skipped ones with their
    reasons live in :mod:`balancedrl.envs.gymnax_envs`, which imports gymnax only when one is made)."""
    from balancedrl.envs.gymnax_envs import GYMNAX_ENVS

    return GYMNAX_ENVS


_A = "balancedrl.training.adapters"
register("Durotaxis-v0", "balancedrl.envs.durotaxis:make_durotaxis", f"{_A}.durotaxis:durotaxis_adapter")
for _name in ("Durotaxis-Sparse-v0", "Durotaxis-Misscaled-v0"):
    register(_name, "balancedrl.envs.durotaxis_variants:make_durotaxis_shaped", f"{_A}.durotaxis:durotaxis_adapter")
register("Platform-v0", "balancedrl.envs.platform:make_platform", f"{_A}.parameterised:platform_adapter")
register("Goal-v0", "balancedrl.envs.goal:make_goal", f"{_A}.parameterised:goal_adapter")
register("HardGoal-v0", "balancedrl.envs.hard_goal:make_hard_goal", f"{_A}.hyar:hard_goal_adapter")
register("CatchPoint-v0", "balancedrl.envs.catch_point:make_catch_point", f"{_A}.hyar:catch_point_adapter")
for _n in (4, 6, 8, 10):
    register(f"HardMove-n{_n}-v0", "balancedrl.envs.hard_move:make_hard_move", f"{_A}.hyar:hard_move_adapter")
for _name in _gymnax_envs():
    register(_name, "balancedrl.envs.gymnax_envs:make_gymnax_env", f"{_A}.gymnax:gymnax_adapter")
