"""Rasterise a Durotaxis observation into a small image for the CNN extractors (docs/design.md §5, the WSA source).

Grid: `size × size` cells over the whole substrate; cell of a point (x, y) in normalised units
[0, 1]² is (row, col) = (clip(⌊y·size⌋), clip(⌊x·size⌋)). Channels (float32 [size, size, 4]):
  0 occupancy   min(#alive nodes in the cell, 4) / 4
  1 intensity   mean normalised intensity I/I(W) of the alive nodes in the cell (0 if empty)
  2 is_new      mean is_new flag of the alive nodes in the cell
  3 edges       1 where any of `edge_samples` evenly spaced points on a parent–child segment falls
Dead slots and invalid edges go to a dummy cell that is dropped. Single observation; `jax.vmap`
for a batch (or use `rasterize_batch`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from balancedrl.types import NODE_FEATURES, Observation

_X, _Y = NODE_FEATURES.index("x"), NODE_FEATURES.index("y")
_I, _NEW = NODE_FEATURES.index("intensity"), NODE_FEATURES.index("is_new")
NUM_RASTER_CHANNELS = 4


def _cell(x: jax.Array, y: jax.Array, size: int) -> jax.Array:
    col = jnp.clip(jnp.floor(x * size), 0, size - 1).astype(jnp.int32)
    row = jnp.clip(jnp.floor(y * size), 0, size - 1).astype(jnp.int32)
    return row * size + col


def rasterize(obs: Observation, size: int = 24, edge_samples: int = 8) -> jax.Array:
    """One observation (nodes [M,F], mask [M], parent [M]) → image [size, size, 4] (see module doc)."""
    if obs.nodes.ndim != 2:
        raise ValueError(
            f"rasterize expects one observation with nodes of rank 2 [M, F], got shape "
            f"{obs.nodes.shape}; use rasterize_batch or jax.vmap for batches"
        )
    if size < 1 or edge_samples < 1:
        raise ValueError(f"size and edge_samples must be >= 1, got size={size}, edge_samples={edge_samples}")
    n_cells = size * size
    nodes, mask = obs.nodes, obs.mask
    x, y = nodes[:, _X], nodes[:, _Y]
    seg = jnp.where(mask, _cell(x, y, size), n_cells)
    ones = mask.astype(jnp.float32)
    count = jax.ops.segment_sum(ones, seg, num_segments=n_cells + 1)[:n_cells]
    inten = jax.ops.segment_sum(nodes[:, _I] * ones, seg, num_segments=n_cells + 1)[:n_cells]
    new = jax.ops.segment_sum(nodes[:, _NEW] * ones, seg, num_segments=n_cells + 1)[:n_cells]
    denom = jnp.maximum(count, 1.0)
    # Edge channel: sample points on each valid child→parent segment.
    has_par = obs.parent >= 0
    par = jnp.where(has_par, obs.parent, 0)
    valid = mask & has_par & mask[par]
    t = (jnp.arange(edge_samples, dtype=jnp.float32) + 0.5) / edge_samples  # [S]
    px = x[:, None] + t[None] * (x[par] - x)[:, None]
    py = y[:, None] + t[None] * (y[par] - y)[:, None]
    eseg = jnp.where(valid[:, None], _cell(px, py, size), n_cells).reshape(-1)
    hits = jax.ops.segment_sum(jnp.ones_like(eseg, jnp.float32), eseg, num_segments=n_cells + 1)
    edges = (hits[:n_cells] > 0).astype(jnp.float32)
    img = jnp.stack([jnp.minimum(count, 4.0) / 4.0, inten / denom, new / denom, edges], axis=-1)
    return img.reshape(size, size, NUM_RASTER_CHANNELS)


def rasterize_batch(obs: Observation, size: int = 24, edge_samples: int = 8) -> jax.Array:
    """`rasterize` over a leading batch axis: [B, M, F] → [B, size, size, 4]."""
    return jax.vmap(lambda o: rasterize(o, size, edge_samples))(obs)
