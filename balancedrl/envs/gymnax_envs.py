"""Environments from gymnax (Lange 2022), used as they are: ``gymnax.make(name)`` with overrides."""

from __future__ import annotations


def make_gymnax_env(name: str, **overrides):
    """``(env, params)`` from ``gymnax.make(name)``, ``overrides`` replacing fields of its default params."""
    import gymnax

    from balancedrl.envs.registry import with_overrides

    env, params = gymnax.make(name)
    return env, with_overrides(params, overrides, name)
