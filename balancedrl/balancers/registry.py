"""``make(name, **hyper) -> Balancer`` from one table of factories.

Adding a balancer: write its module with a ``make_<name>(**hyper) -> Balancer`` factory, add one line to
``_FACTORIES`` below, and its tests. Factories are imported lazily so a method's module loads only when used.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Callable

from balancedrl.balancers.base import Balancer

# name -> "module:factory"
_FACTORIES: dict[str, str] = {
    "sum": "balancedrl.balancers.scalarization:make_sum",
    "mean": "balancedrl.balancers.scalarization:make_mean",
    "fixed": "balancedrl.balancers.scalarization:make_fixed",
    "grad_scaling": "balancedrl.balancers.grad_scaling:make_grad_scaling",
    "upgrad": "balancedrl.balancers.upgrad:make_upgrad",
    "dualproj": "balancedrl.balancers.upgrad:make_dualproj",
    "aligned_mtl": "balancedrl.balancers.aligned_mtl:make_aligned_mtl",
    "nash_mtl": "balancedrl.balancers.nash_mtl:make_nash_mtl",
    "famo": "balancedrl.balancers.famo:make_famo",
    "db_mtl": "balancedrl.balancers.db_mtl:make_db_mtl",
    "gradnorm": "balancedrl.balancers.gradnorm:make_gradnorm",
    "uncertainty": "balancedrl.balancers.uncertainty:make_uncertainty",
    "pcgrad": "balancedrl.balancers.pcgrad:make_pcgrad",
    "mgda": "balancedrl.balancers.mgda:make_mgda",
    "cagrad": "balancedrl.balancers.cagrad:make_cagrad",
    "imtl_g": "balancedrl.balancers.imtl:make_imtl_g",
    "config": "balancedrl.balancers.config_method:make_config",
}


def register(name: str, factory: str | Callable) -> None:
    """Add a balancer factory (``"module:function"`` or a callable). A taken name is refused."""
    if name in _FACTORIES:
        raise ValueError(f"balancer {name!r} is already registered")
    _FACTORIES[name] = factory


def available() -> tuple[str, ...]:
    """Registered balancer names."""
    return tuple(_FACTORIES)


def _resolve(entry: str | Callable) -> Callable:
    if callable(entry):
        return entry
    module, fn = entry.split(":")
    return getattr(importlib.import_module(module), fn)


def hyperparameters(name: str) -> dict:
    """The factory's keyword arguments and their defaults (the reference implementation's own)."""
    sig = inspect.signature(factory(name))
    return {p.name: p.default for p in sig.parameters.values() if p.default is not inspect.Parameter.empty}


def _check(name: str) -> str:
    if name not in _FACTORIES:
        raise ValueError(f"unknown balancer {name!r}; allowed: {', '.join(sorted(_FACTORIES))}")
    return name


def factory(name: str) -> Callable:
    """The factory registered as ``name`` (imported on first use)."""
    return _resolve(_FACTORIES[_check(name)])


def unknown_hyperparameters(name: str, hyper) -> tuple[list[str], list[str]]:
    """``(unknown, allowed)``: the names in ``hyper`` that balancer ``name``'s factory does not take, and the
    ones it does (both sorted)."""
    allowed = set(inspect.signature(factory(name)).parameters)
    return sorted(set(hyper) - allowed), sorted(allowed)


def make(name: str, **hyper) -> Balancer:
    """Build the balancer ``name`` with its hyper-parameters (unknown ones are refused, naming them)."""
    build = factory(name)
    unknown, allowed = unknown_hyperparameters(name, hyper)
    if unknown:
        raise ValueError(
            f"balancer {name!r} has no hyper-parameter(s) {unknown}; allowed: {sorted(allowed) or 'none'}"
        )
    return build(**hyper)
