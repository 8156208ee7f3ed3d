"""Pieces the two parameterised-action ports (Platform-v0, Goal-v0) share: the dtype check and the
hybrid action space ``Dict(discrete=Discrete(A), continuous=Box(low, high))`` in physical units."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces


def checked_dtype(dtype: Any) -> jnp.dtype:
    """``jnp.dtype(dtype)`` if it is float32, or float64 with jax's x64 mode on; else ``ValueError``."""
    dt = jnp.dtype(dtype)
    if dt not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    if dt == jnp.dtype(jnp.float64) and not jax.config.read("jax_enable_x64"):
        raise ValueError("dtype=float64 requires jax x64 mode (jax.config.update('jax_enable_x64', True))")
    return dt


def hybrid_action_space(num_actions: int, low: np.ndarray, high: np.ndarray) -> spaces.Dict:
    """``Dict(discrete=Discrete(num_actions), continuous=Box(low, high, (P,)))``, float32, physical units."""
    return spaces.Dict(
        {
            "discrete": spaces.Discrete(num_actions),
            "continuous": spaces.Box(
                jnp.asarray(low, jnp.float32), jnp.asarray(high, jnp.float32), (len(low),), jnp.float32
            ),
        }
    )
