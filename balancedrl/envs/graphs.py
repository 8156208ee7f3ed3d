"""Observation -> padded ``jraph.GraphsTuple`` (docs/design.md §4, §5).

Layout for B graphs of capacity M (a single Observation is B = 1):

- nodes: the ``[B·M, F]`` node features, graph b in rows b·M … b·M+M−1 (dead slots kept, zero features),
  followed by ONE padding node (index B·M, zero features) that belongs to a final padding graph
  (jraph's convention: the last graph is padding; ``jraph.get_graph_padding_mask`` works).
- edges: 2·M fixed edge slots per graph. Slot i (0 ≤ i < M) of graph b is parent→child
  (sender b·M + parent[i], receiver b·M + i); slot M + i is child→parent (the reverse). A slot is
  valid iff node i is alive and has a parent. Invalid slots (dead nodes, the root) have sender =
  receiver = the padding node, so unmasked message passing never touches a real node, AND they get a
  zero edge mask (``edges[:, 0]``) so edge → global aggregations can ignore them.
- edges features ``[2·B·M, 2]`` float32: column 0 = valid (1/0), column 1 = direction (1 for
  parent→child, 0 for child→parent). ``edge_mask(graph)`` returns column 0 as bool.
- n_node = [M]*B + [1]; n_edge = [2M]*B + [0]; globals = ``[B+1, G]`` (padding graph zeros).
Invalid edges are counted in n_edge of their own graph (fixed shapes); always use the edge mask
for per-graph edge reductions.
"""

from __future__ import annotations

import jax.numpy as jnp
import jraph

from balancedrl.types import Observation


def to_graphs_tuple(obs: Observation) -> jraph.GraphsTuple:
    """Padded GraphsTuple of one ``Observation`` ([M, F]) or a batch ([B, M, F]); see module doc."""
    nodes = jnp.asarray(obs.nodes)
    if nodes.ndim == 2:
        obs = Observation(*(jnp.asarray(a)[None] for a in obs))
        nodes = obs.nodes
    if nodes.ndim != 3:
        raise ValueError(f"obs.nodes has shape {nodes.shape}: expected [M, F] or [B, M, F]")
    B, M, F = nodes.shape
    mask = jnp.asarray(obs.mask, bool)
    parent = jnp.asarray(obs.parent, jnp.int32)
    glob = jnp.asarray(obs.globals, jnp.float32)
    pad = B * M
    valid = mask & (parent >= 0)  # [B, M]
    offset = (jnp.arange(B) * M)[:, None]
    child = offset + jnp.arange(M)[None, :]
    par = offset + jnp.maximum(parent, 0)
    down_s = jnp.where(valid, par, pad)
    down_r = jnp.where(valid, child, pad)
    senders = jnp.concatenate([down_s, down_r], axis=1).reshape(-1).astype(jnp.int32)
    receivers = jnp.concatenate([down_r, down_s], axis=1).reshape(-1).astype(jnp.int32)
    valid2 = jnp.concatenate([valid, valid], axis=1).astype(jnp.float32)
    direction = jnp.concatenate([jnp.ones((B, M)), jnp.zeros((B, M))], axis=1)
    edges = jnp.stack([valid2, direction], axis=-1).reshape(-1, 2).astype(jnp.float32)
    all_nodes = jnp.concatenate([nodes.reshape(B * M, F), jnp.zeros((1, F), nodes.dtype)], axis=0)
    all_glob = jnp.concatenate([glob.reshape(B, -1), jnp.zeros((1, glob.shape[-1]), glob.dtype)], axis=0)
    n_node = jnp.concatenate([jnp.full((B,), M, jnp.int32), jnp.ones((1,), jnp.int32)])
    n_edge = jnp.concatenate([jnp.full((B,), 2 * M, jnp.int32), jnp.zeros((1,), jnp.int32)])
    return jraph.GraphsTuple(
        nodes=all_nodes, edges=edges, senders=senders, receivers=receivers, globals=all_glob,
        n_node=n_node, n_edge=n_edge,
    )


def edge_mask(graph: jraph.GraphsTuple) -> jnp.ndarray:
    """Bool ``[E]``: True for real tree edges, False for padding edge slots."""
    return graph.edges[:, 0] > 0.5


def node_mask(graph: jraph.GraphsTuple, obs: Observation) -> jnp.ndarray:
    """Bool ``[B·M + 1]``: alive nodes of the (batched) observation, False for dead slots and padding."""
    m = jnp.asarray(obs.mask, bool).reshape(-1)
    return jnp.concatenate([m, jnp.zeros((1,), bool)])
