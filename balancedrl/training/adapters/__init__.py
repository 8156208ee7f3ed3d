"""Trainer adapters: what the trainer needs to know about each environment (:class:`EnvAdapter`).

Each registered environment names its adapter factory in :mod:`balancedrl.envs.registry`;
:func:`make_adapter` builds the one ``env.name`` asks for.
"""

from __future__ import annotations

from balancedrl.training.adapters.base import EnvAdapter


def make_adapter(env_cfg) -> EnvAdapter:
    """The adapter of ``env_cfg.name`` built from ``env_cfg`` (its ``params`` override the env's defaults)."""
    from balancedrl.envs.registry import resolve, spec, trainable_envs

    s = spec(env_cfg.name) if env_cfg.name in trainable_envs() else None
    if s is None:
        raise ValueError(
            f"config key 'env.name' = {env_cfg.name!r} has no trainer adapter; allowed: {', '.join(trainable_envs())}"
        )
    return resolve(s.adapter_factory)(env_cfg)


__all__ = ["EnvAdapter", "make_adapter"]
