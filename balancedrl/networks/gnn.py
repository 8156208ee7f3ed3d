"""jraph graph encoder for Durotaxis observations (docs/design.md §5).

The tree edges are built directly from `Observation.parent`, independent of the environment's
helpers: every alive node i with an alive parent p gives two directed edges, i→p (edge slot i) and
p→i (edge slot M+i), so a graph has a fixed 2·M edge slots plus an edge mask. A batch of B
observations becomes ONE jraph.GraphsTuple of B graphs with node indices offset by b·M (the jraph
batching convention — the PyTorch original prepended a token without shifting indices, seed README).

Invalid edges (dead endpoint or root) are routed to a dummy segment `B·M`, which is dropped, so a
dead slot never sends a message to, or receives a softmax share from, a real node.

Layers (`num_layers` of them, kind `layer`), for receiver r and incoming edges s→r:
  "sage" (default; GraphSAGE-style over the tree, using that every node has at most one parent, so a
  layer is one gather h[parent] and one jraph.segment_sum over children; no LayerNorm. About 4x cheaper
  in forward+backward than "mpnn" on the 2-core CPU, which decides the trainer's speed):
    h_i = (h_i + tanh(W [h_i, h_parent(i), Σ_{c: parent(c)=i} h_c, 10·(pos_i − pos_parent(i))])) · mask_i
  "mpnn" (GraphNetwork-style; per layer about 2-3x cheaper than "attention" in a
  micro-benchmark on the 2-core CPU — no segment_max / softmax pass):
    msg_sr = relu(W_dir h_s + U e_sr + b),  dir = up (child→parent) | down (parent→child)
    h      = LN(h + W_u [h, Σ_s msg_sr]);  h = h · mask                   (jraph.segment_sum)
  "attention":
    a_sr = softmax_s( <W_q h_r, W_k h_s + U_k e_sr> / sqrt(d_head) )  (jraph.segment_softmax)
    m_r  = W_o Σ_s a_sr · (W_v h_s + U_v e_sr)                        (jraph.segment_sum)
    h    = LN(h + m);  h = LN(h + MLP(h));  h = h · mask
Edge features e_sr = (10·(x_s − x_r), 10·(y_s − y_r), +1 child→parent / −1 parent→child).
Graph token: g = LN(Dense([masked mean(h), masked max(h), relu(Dense(globals))])).
"""

from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import jraph

from balancedrl.types import Observation


class TreeEdges(NamedTuple):
    """Directed tree edges of one (or a batch of) graph(s), flattened: [E] each, E = 2·M·B."""

    senders: jax.Array  # gather index, always in range
    receivers: jax.Array  # gather index, always in range
    segment: jax.Array  # receiver index, or the dummy segment (num_nodes) for invalid edges
    mask: jax.Array  # bool, valid edge


def tree_edges(parent: jax.Array, mask: jax.Array) -> TreeEdges:
    """Both-direction edges from parent pointers of one graph: parent [M] int32, mask [M] bool.

    Edge slot i is i→parent[i] (child→parent), slot M+i is parent[i]→i; valid iff node i and its
    parent are alive. Invalid edges have `segment == M` (dummy).
    """
    m = parent.shape[-1]
    idx = jnp.arange(m, dtype=jnp.int32)
    has_par = parent >= 0
    par = jnp.where(has_par, parent, 0).astype(jnp.int32)
    valid = mask & has_par & mask[par]
    senders = jnp.concatenate([idx, par])
    receivers = jnp.concatenate([par, idx])
    emask = jnp.concatenate([valid, valid])
    segment = jnp.where(emask, receivers, m)
    return TreeEdges(senders, receivers, segment, emask)


def observation_to_graph(obs: Observation) -> jraph.GraphsTuple:
    """Observation (single [M,F] or batched [B,M,F]) → padded jraph.GraphsTuple.

    nodes: [B·M, F] node features; edges: [B·2M, 3] edge features (zeros on invalid edges);
    senders/receivers offset by b·M; n_node = [M]*B, n_edge = [2M]*B; globals [B, G].
    Invalid edges keep in-range indices and get zero features; `batched_tree_edges` gives the
    dummy-segment routing used by the encoder.
    """
    nodes = obs.nodes if obs.nodes.ndim == 3 else obs.nodes[None]
    glob = obs.globals if obs.globals.ndim == 2 else obs.globals[None]
    b, m, _ = nodes.shape
    e = batched_tree_edges(obs)
    flat = nodes.reshape(b * m, -1)
    feats = _edge_feats(flat, e, m)
    return jraph.GraphsTuple(
        nodes=flat,
        edges=feats,
        senders=e.senders,
        receivers=e.receivers,
        globals=glob,
        n_node=jnp.full((b,), m, jnp.int32),
        n_edge=jnp.full((b,), 2 * m, jnp.int32),
    )


def batched_tree_edges(obs: Observation) -> TreeEdges:
    """`tree_edges` for a single or batched observation, flattened with offsets b·M; dummy = B·M."""
    parent = obs.parent if obs.parent.ndim == 2 else obs.parent[None]
    mask = obs.mask if obs.mask.ndim == 2 else obs.mask[None]
    b, m = parent.shape
    e = jax.vmap(tree_edges)(parent, mask)  # [B, 2M] each
    off = (jnp.arange(b, dtype=jnp.int32) * m)[:, None]
    senders = (e.senders + off).reshape(-1)
    receivers = (e.receivers + off).reshape(-1)
    emask = e.mask.reshape(-1)
    segment = jnp.where(emask, receivers, b * m)
    return TreeEdges(senders, receivers, segment, emask)


class GraphAttentionLayer(nn.Module):
    """One attention message-passing layer over the tree edges (formula in the module docstring)."""

    hidden_dim: int
    num_heads: int = 4

    @nn.compact
    def __call__(self, h, edge_feats, e: TreeEdges, node_mask):
        n, d = h.shape
        nh = self.num_heads
        dh = d // nh
        qkv = nn.Dense(3 * d, name="qkv")(h)  # node-level projection, then gather per edge
        ekv = nn.Dense(2 * d, use_bias=False, name="edge_kv")(edge_feats)
        q = qkv[:, :d][e.receivers].reshape(-1, nh, dh)
        kv = qkv[:, d:][e.senders] + ekv
        k = kv[:, :d].reshape(-1, nh, dh)
        v = kv[:, d:].reshape(-1, nh, dh)
        logits = jnp.sum(q * k, axis=-1) / jnp.sqrt(jnp.float32(dh))  # [E, H]
        att = jraph.segment_softmax(logits, e.segment, num_segments=n + 1)
        msg = jraph.segment_sum(att[..., None] * v, e.segment, num_segments=n + 1)[:n]
        h = nn.LayerNorm(name="ln_msg")(h + nn.Dense(d, name="out")(msg.reshape(n, d)))
        ff = nn.Dense(d, name="ff_out")(nn.relu(nn.Dense(d, name="ff_in")(h)))
        h = nn.LayerNorm(name="ln_ff")(h + ff)
        return h * node_mask[:, None]


class TreeMessageLayer(nn.Module):
    """GraphNetwork-style layer with direction-specific message weights (module docstring)."""

    hidden_dim: int

    @nn.compact
    def __call__(self, h, edge_feats, e: TreeEdges, node_mask, up):
        n, d = h.shape
        hh = nn.Dense(2 * d, name="message")(h)  # [N, 2d]: up | down projections, node level
        src = hh[e.senders]
        msg = jnp.where(up[:, None], src[:, :d], src[:, d:])
        msg = nn.relu(msg + nn.Dense(d, use_bias=False, name="edge")(edge_feats))
        agg = jraph.segment_sum(msg, e.segment, num_segments=n + 1)[:n]
        h = nn.LayerNorm(name="ln")(h + nn.Dense(d, name="update")(jnp.concatenate([h, agg], -1)))
        return h * node_mask[:, None]


class TreeSageLayer(nn.Module):
    """GraphSAGE-style tree layer (module docstring, "sage"). Inputs are flat over B·M nodes:
    `parent_flat [N]` (offset, in range; own index where there is no edge), `valid [N]` (node and its
    parent alive), `rel [N, 2]` child−parent offset (0 where invalid)."""

    hidden_dim: int

    @nn.compact
    def __call__(self, h, rel, parent_flat, valid, node_mask):
        n = h.shape[0]
        v = valid[:, None].astype(h.dtype)
        h_parent = h[parent_flat] * v
        h_children = jraph.segment_sum(h * v, parent_flat, num_segments=n)
        z = nn.Dense(self.hidden_dim, name="combine")(jnp.concatenate([h, h_parent, h_children, rel], -1))
        return (h + nn.tanh(z)) * node_mask[:, None]


def parent_links(obs: Observation) -> tuple[jax.Array, jax.Array]:
    """For batched obs [B, M]: flat parent index `[B·M]` offset by b·M (own index where there is no edge)
    and the validity mask (node alive, has a parent, parent alive)."""
    b, m = obs.parent.shape
    own = jnp.arange(m, dtype=jnp.int32)[None]
    has = obs.parent >= 0
    par = jnp.where(has, obs.parent, own).astype(jnp.int32)
    valid = has & obs.mask & jnp.take_along_axis(obs.mask, par, axis=1)
    flat = par + (jnp.arange(b, dtype=jnp.int32) * m)[:, None]
    return flat.reshape(-1), valid.reshape(-1)


GNN_LAYERS = ("sage", "mpnn", "attention")


class GraphEncoder(nn.Module):
    """Observation → (node tokens [..., M, d], graph token [..., d]); single or batched [B] input.

    Dead slots never influence alive ones: their edges go to a dummy segment and the pooled graph
    token uses masked mean and masked max (0 for an empty graph). Dead node tokens are 0.
    """

    hidden_dim: int = 64
    num_layers: int = 2
    num_heads: int = 4
    layer: str = "sage"

    @nn.compact
    def __call__(self, obs: Observation):
        if self.layer not in GNN_LAYERS:
            raise ValueError(f"GraphEncoder layer={self.layer!r} is not one of {GNN_LAYERS}")
        if self.hidden_dim % self.num_heads != 0:
            raise ValueError(f"hidden_dim={self.hidden_dim} must be divisible by num_heads={self.num_heads}")
        single = obs.nodes.ndim == 2
        nodes = obs.nodes[None] if single else obs.nodes
        mask = obs.mask[None] if single else obs.mask
        glob = obs.globals[None] if single else obs.globals
        b, m, _ = nodes.shape
        parent = obs.parent[None] if single else obs.parent
        flat_mask = mask.reshape(-1)
        flat_nodes = jnp.where(flat_mask[:, None], nodes.reshape(b * m, -1), 0.0)
        d = self.hidden_dim
        h = nn.Dense(d, name="embed")(flat_nodes) * flat_mask[:, None]
        if self.layer == "sage":
            # One child→parent edge slot per node (M per graph), offset by b·M: a jraph batch of B graphs.
            par_flat, valid = parent_links(Observation(nodes, mask, parent, glob))
            rel = jnp.where(valid[:, None], 10.0 * (flat_nodes[:, :2] - flat_nodes[par_flat, :2]), 0.0)
            graph = jraph.GraphsTuple(
                nodes=flat_nodes, edges=rel, senders=jnp.arange(b * m, dtype=jnp.int32), receivers=par_flat,
                globals=glob, n_node=jnp.full((b,), m, jnp.int32), n_edge=jnp.full((b,), m, jnp.int32),
            )
            h = nn.tanh(h)
            for i in range(self.num_layers):
                h = TreeSageLayer(d, name=f"layer_{i}")(h, graph.edges, graph.receivers, valid, flat_mask)
        else:
            e = batched_tree_edges(Observation(nodes, mask, parent, glob))
            graph = jraph.GraphsTuple(
                nodes=flat_nodes,
                edges=_edge_feats(flat_nodes, e, m),
                senders=e.senders,
                receivers=e.receivers,
                globals=glob,
                n_node=jnp.full((b,), m, jnp.int32),
                n_edge=jnp.full((b,), 2 * m, jnp.int32),
            )
            up = (jnp.arange(e.senders.shape[0]) % (2 * m)) < m  # child→parent edge slots
            for i in range(self.num_layers):
                if self.layer == "mpnn":
                    h = TreeMessageLayer(d, name=f"layer_{i}")(h, graph.edges, e, flat_mask, up)
                else:
                    h = GraphAttentionLayer(d, self.num_heads, name=f"layer_{i}")(h, graph.edges, e, flat_mask)
        tokens = h.reshape(b, m, d)
        mk = mask[..., None]
        count = jnp.sum(mask, axis=-1, keepdims=True).astype(jnp.float32)  # [B,1]
        mean = jnp.sum(tokens * mk, axis=1) / jnp.maximum(count, 1.0)
        mx = jnp.max(jnp.where(mk, tokens, -jnp.inf), axis=1)
        mx = jnp.where(count > 0, mx, 0.0)
        gl = nn.relu(nn.Dense(d, name="globals_proj")(graph.globals))
        g = nn.LayerNorm(name="graph_ln")(nn.Dense(d, name="graph_proj")(jnp.concatenate([mean, mx, gl], -1)))
        if single:
            return tokens[0], g[0]
        return tokens, g


def _edge_feats(flat_nodes: jax.Array, e: TreeEdges, m: int) -> jax.Array:
    """Edge features [E, 3]: 10·(pos_s − pos_r) and +1 (child→parent) / −1 (parent→child); 0 if invalid."""
    d = flat_nodes[e.senders, :2] - flat_nodes[e.receivers, :2]
    slot = jnp.arange(e.senders.shape[0]) % (2 * m)
    direction = jnp.where(slot < m, 1.0, -1.0)[:, None]
    return jnp.where(e.mask[:, None], jnp.concatenate([10.0 * d, direction], axis=-1), 0.0)
