"""Shared pytree types: the Durotaxis observation and the hybrid action.

Kept in one small module so the environment, the networks and the trainer agree on one format.
"""

from __future__ import annotations

from typing import NamedTuple

import jax

# Fixed order of the reward components (the names of the component-weighting source).
REWARD_COMPONENTS = ("total", "graph", "spawn", "delete", "edge", "total_node")
NUM_COMPONENTS = len(REWARD_COMPONENTS)

# Per-node discrete choices and continuous spawn parameters.
DISCRETE_ACTIONS = ("stay", "spawn", "delete")
NUM_DISCRETE = len(DISCRETE_ACTIONS)
CONTINUOUS_PARAMS = ("gamma", "alpha", "noise", "theta")
NUM_CONTINUOUS = len(CONTINUOUS_PARAMS)

# Observation layout (docs/design.md §4).
NODE_FEATURES = (
    "x", "y", "intensity", "children", "has_parent", "dist_centroid", "x_rank", "is_new", "age", "is_root",
)
NUM_NODE_FEATURES = len(NODE_FEATURES)
GLOBAL_FEATURES = (
    "n_alive", "centroid_x", "centroid_y", "bbox_xmin", "bbox_ymin", "bbox_xmax", "bbox_ymax",
    "intensity_mean", "intensity_min", "intensity_max", "time", "kind_linear", "kind_exponential",
    "kind_random",
)
NUM_GLOBAL_FEATURES = len(GLOBAL_FEATURES)


class Observation(NamedTuple):
    """Durotaxis observation for one environment (leading batch axes allowed).

    nodes:   float32 [M, NUM_NODE_FEATURES], zeros in dead slots
    mask:    bool    [M], True for alive nodes
    parent:  int32   [M], parent slot, -1 for the root and for dead slots
    globals: float32 [NUM_GLOBAL_FEATURES]
    """

    nodes: jax.Array
    mask: jax.Array
    parent: jax.Array
    globals: jax.Array


class HybridAction(NamedTuple):
    """Per-node hybrid action.

    discrete:   int32   [M] in {0 stay, 1 spawn, 2 delete}; ignored in dead slots
    continuous: float32 [M, 4] (gamma, alpha, noise, theta) in physical units, within the env bounds
    """

    discrete: jax.Array
    continuous: jax.Array
