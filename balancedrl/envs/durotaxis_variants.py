"""Durotaxis-Sparse-v0 and Durotaxis-Misscaled-v0: Durotaxis-v0 where component balance matters (issue 16).

Same dynamics, observation, action space, termination and truncation as Durotaxis-v0 (the step calls
``Durotaxis.step_env`` with the same key, so a trajectory is identical action for action); only the
reward vector differs. Order ``SHAPED_COMPONENTS = (total, front, centroid, noise, crowding)``:

  total     = success_bonus·[success] + failure_penalty·[failure] − time_cost     (the true objective)
  front     = s_front    · 100·Δ(max alive x)/W                       helpful   (front advance)
  centroid  = s_centroid · 100·Δ(centroid x)/W                        helpful   (centroid advance)
  noise     = s_noise    · noise_std·ε,  ε ~ N(0, 1) iid per step       uninformative (zero mean)
  crowding  = s_crowding · 100·ΔN/overcrowd_nodes                     misleading

``total`` holds only the task's own signal, so success and return are judged on it alone; the scalar
reward returned by ``step`` is ``total``; the vector is ``info["reward_components"]``. front, centroid
and crowding are potential differences (Φ = 100·x_max/W, 100·c_x/W, 100·N/overcrowd_nodes), so no
channel pays for staying alive (docs/design.md §4); on the step that empties the cluster they are 0, like
Durotaxis-v0's components. ``crowding`` pays for growing the node count, and the node count is exactly
what ends an episode in failure once it exceeds ``overcrowd_nodes``: a policy greedy on it (every node
spawns every step) overcrowds within a few steps. ε is drawn from ``fold_in(key, 1)``, a stream the
dynamics do not use.

Scales ``channel_scales = (s_front, s_centroid, s_noise, s_crowding)``:
  Durotaxis-Sparse-v0     (1, 1, 1, 1)          every channel at the scale of the helpful ones
  Durotaxis-Misscaled-v0  (1e-3, 10, 1e3, 1e2)  the same channels mis-scaled by 1e-3 ... 1e3: the
                          helpful front is 1e3 below its natural size, the noise and the misleading
                          channel dominate any plain sum

Oracle weights (``oracle_weights(params)``): the true objective and the helpful channels only, each
brought back to its natural scale: w = (1, 1/s_front, 1/s_centroid, 0, 0), i.e. (1, 1, 1, 0, 0) for
Sparse and (1, 1e3, 0.1, 0, 0) for Misscaled.

Measured on Durotaxis-Sparse-v0 (32 episodes each, 60 steps): the expert succeeds in all, in about 32
steps, with episode sums total +6.8, front +78, centroid +75, noise ≈ 0, crowding +15; "every node spawns
every step" (greedy on crowding) fails in all by overcrowding after 3 steps, collecting crowding +117
(front +7, centroid +3); a uniformly random policy never succeeds (81 % fail within 60 steps).

Sparse ``total`` alone is hard: a uniformly random policy never succeeds (docs/design.md §4: 99 % die, mostly by
emptying), so before the first success the only signal in ``total`` is −10 for failing and −0.1 per
step, which (over the 200-step budget) even prefers an early death to a long failed attempt.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from balancedrl.envs.durotaxis import Durotaxis, DurotaxisParams, pop_capacity, validate_params

__all__ = [
    "CHANNEL_ROLES",
    "MISSCALED_SCALES",
    "SHAPED_COMPONENTS",
    "DurotaxisShaped",
    "DurotaxisShapedParams",
    "VARIANTS",
    "oracle_weights",
    "validate_shaped_params",
]

SHAPED_COMPONENTS = ("total", "front", "centroid", "noise", "crowding")
CHANNEL_ROLES = {"total": "objective", "front": "helpful", "centroid": "helpful", "noise": "uninformative",
                 "crowding": "misleading"}
MISSCALED_SCALES = (1e-3, 1e1, 1e3, 1e2)  # front, centroid, noise, crowding
# name -> channel_scales
VARIANTS = {"Durotaxis-Sparse-v0": (1.0, 1.0, 1.0, 1.0), "Durotaxis-Misscaled-v0": MISSCALED_SCALES}
_COEFS = ("coef_graph", "coef_spawn", "coef_delete", "coef_edge", "coef_total_node")


@struct.dataclass
class DurotaxisShapedParams(DurotaxisParams):
    """Durotaxis-v0's params plus the shaping channels. The ``coef_*`` fields must stay 0 (``total`` is
    the task signal only). ``channel_scales``: (front, centroid, noise, crowding) multipliers."""

    coef_graph: float = 0.0
    noise_std: float = 1.0
    channel_scales: tuple = (1.0, 1.0, 1.0, 1.0)


def validate_shaped_params(params: DurotaxisShapedParams) -> DurotaxisShapedParams:
    """Durotaxis-v0's checks plus: coef_* are 0, noise_std >= 0, four finite channel scales."""
    validate_params(params)

    def concrete(v):
        try:
            return np.asarray(v, np.float64)
        except (TypeError, jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
            return None

    for name in _COEFS:
        v = concrete(getattr(params, name))
        if v is not None and np.any(v != 0):
            raise ValueError(f"{name}={float(v)}: must be 0 in the Durotaxis shaping variants (total holds the "
                             "task's own signal only; the shaping channels are reported separately)")
    v = concrete(params.noise_std)
    if v is not None and not np.all(v >= 0):
        raise ValueError(f"noise_std={float(v)}: must be >= 0")
    s = params.channel_scales
    if not isinstance(s, (tuple, list)) or len(s) != 4:
        raise ValueError(f"channel_scales={s!r}: must be a 4-tuple (front, centroid, noise, crowding)")
    sv = concrete(tuple(s))
    if sv is not None and not np.all(np.isfinite(sv)):
        raise ValueError(f"channel_scales={tuple(s)}: must be finite")
    return params


def oracle_weights(params: DurotaxisShapedParams) -> np.ndarray:
    """Oracle component weights [5] (order ``SHAPED_COMPONENTS``): (1, 1/s_front, 1/s_centroid, 0, 0)."""
    s = np.asarray(params.channel_scales, np.float64)
    return np.array([1.0, 1.0 / s[0], 1.0 / s[1], 0.0, 0.0])


class DurotaxisShaped(Durotaxis):
    """Durotaxis-v0 dynamics with the sparse true objective and separately reported shaping channels."""

    component_names = SHAPED_COMPONENTS

    def __init__(self, max_nodes: int = 64, variant: str = "Durotaxis-Sparse-v0"):
        super().__init__(max_nodes)
        if variant not in VARIANTS:
            raise ValueError(f"variant={variant!r}: allowed {sorted(VARIANTS)}")
        self.variant = variant

    def __eq__(self, other):
        return type(other) is type(self) and other.max_nodes == self.max_nodes and other.variant == self.variant

    def __hash__(self):
        return hash((type(self).__name__, self.max_nodes, self.variant))

    @property
    def default_params(self) -> DurotaxisShapedParams:
        return DurotaxisShapedParams(max_nodes=self.max_nodes, channel_scales=VARIANTS[self.variant])

    @property
    def name(self) -> str:
        return self.variant

    def step_env(self, key: jax.Array, state, action: Any, params: DurotaxisShapedParams):
        """Durotaxis-v0's transition (same key) with the reward vector above -> gymnax 5-tuple."""
        obs, new_state, _, terminated, info = super().step_env(key, state, action, params)
        n0 = jnp.sum(state.alive).astype(jnp.float32)
        n1 = jnp.sum(new_state.alive).astype(jnp.float32)
        # Durotaxis-v0 keeps every potential on the emptying step, so these differences are 0 there.
        d_phi = new_state.potentials - state.potentials
        front, centroid = d_phi[1], d_phi[0]
        crowding = jnp.where(n1 > 0, 100.0 * (n1 - n0) / params.overcrowd_nodes, 0.0)
        noise = params.noise_std * jax.random.normal(jax.random.fold_in(key, 1), (), jnp.float32)
        total = (jnp.where(info["success"], params.success_bonus, 0.0)
                 + jnp.where(info["failure"], params.failure_penalty, 0.0) - params.time_cost)
        scales = jnp.asarray(params.channel_scales, jnp.float32)
        channels = scales * jnp.stack([front, centroid, noise, crowding])
        components = jnp.concatenate([total[None], channels]).astype(jnp.float32)
        info = dict(info, reward_components=components)
        return obs, new_state, total.astype(jnp.float32), terminated, info


def make_durotaxis_shaped(name: str = "Durotaxis-Sparse-v0", **overrides):
    """``(env, params)`` for a shaping variant (the name picks it); ``max_nodes`` as for Durotaxis-v0."""
    from balancedrl.envs.registry import with_overrides

    env = DurotaxisShaped(max_nodes=pop_capacity(overrides), variant=name)
    return env, validate_shaped_params(with_overrides(env.default_params, overrides, name))
