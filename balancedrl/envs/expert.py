"""Scripted Durotaxis expert (docs/design.md §4).

Rule, per alive node, from the observation only (jit/vmap-safe, no Python per node):
with N alive nodes, integer x-rank r ∈ {0..N−1} (recovered from the x_rank feature as
round(x_rank·(N−1))) and q = max(1, ⌊N/4⌋):
  - front quarter (r ≥ N − q): spawn, with θ = 0, γ = max, α = min, noise = min;
  - back quarter (r < q, not front): delete while N > Nc/2, else stay;
  - the rest stay.
The front rule takes precedence for N ≤ 3, so a lone node spawns instead of stalling.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from balancedrl.envs.durotaxis import DELETE, SPAWN, STAY, continuous_bounds
from balancedrl.types import GLOBAL_FEATURES, NODE_FEATURES, HybridAction, Observation

_X_RANK = NODE_FEATURES.index("x_rank")
_N_ALIVE = GLOBAL_FEATURES.index("n_alive")


def expert_action(key: jax.Array, obs: Observation, params) -> HybridAction:
    """Expert hybrid action for one observation (``key`` is unused: the rule is deterministic)."""
    del key
    mask = obs.mask
    M = mask.shape[-1]
    n = jnp.sum(mask).astype(jnp.float32)
    rank = jnp.round(obs.nodes[:, _X_RANK] * jnp.maximum(n - 1.0, 0.0))
    q = jnp.maximum(1.0, jnp.floor(n / 4.0))
    front = mask & (rank >= n - q)
    back = mask & (rank < q) & ~front
    may_delete = n > params.critical_nodes / 2.0
    discrete = jnp.where(front, SPAWN, jnp.where(back & may_delete, DELETE, STAY)).astype(jnp.int32)
    low, high = continuous_bounds(params)
    one = jnp.stack([high[0], low[1], low[2], jnp.zeros((), jnp.float32)])  # gamma, alpha, noise, theta
    continuous = jnp.broadcast_to(one, (M, 4)).astype(jnp.float32)
    return HybridAction(discrete=discrete, continuous=continuous)
