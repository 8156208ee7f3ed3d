"""to_graphs_tuple: offsets, padding, edge mask, batched == per-graph message passing."""

from __future__ import annotations

import jax
import jraph
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancedrl.envs import edge_mask, node_mask, to_graphs_tuple
from balancedrl.types import NUM_GLOBAL_FEATURES, Observation

M, F = 12, 5


def random_obs(rng, M=M, F=F):
    """A random tree observation: n alive nodes on random slots, dead slots zero / parent -1."""
    n = int(rng.integers(0, M + 1))
    slots = rng.permutation(M)[:n]
    mask = np.zeros(M, bool)
    mask[slots] = True
    parent = -np.ones(M, np.int32)
    for k in range(1, n):
        parent[slots[k]] = slots[rng.integers(0, k)]
    nodes = np.where(mask[:, None], rng.normal(size=(M, F)), 0).astype(np.float32)
    glob = rng.normal(size=NUM_GLOBAL_FEATURES).astype(np.float32)
    return Observation(nodes, mask, parent, glob)


def message_pass(g):
    """Masked sum of sender features into receivers (one GNN aggregation)."""
    msg = g.nodes[g.senders] * edge_mask(g)[:, None]
    return jax.ops.segment_sum(msg, g.receivers, num_segments=g.nodes.shape[0])


_mp = jax.jit(lambda o: message_pass(to_graphs_tuple(o)))
_mp_unmasked = jax.jit(lambda o: (lambda g: jax.ops.segment_sum(g.nodes[g.senders], g.receivers,
                                                                   num_segments=g.nodes.shape[0]))(to_graphs_tuple(o)))


def ref_message_pass(o):
    """NumPy reference: each alive node receives its parent's and its children's features."""
    out = np.zeros((M, F), np.float32)
    for i in range(M):
        p = o.parent[i]
        if o.mask[i] and p >= 0:
            out[i] += o.nodes[p]
            out[p] += o.nodes[i]
    return out


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), B=st.integers(1, 5))
def test_batched_equals_single(seed, B):
    rng = np.random.default_rng(seed)
    obs = [random_obs(rng) for _ in range(B)]
    batch = Observation(*(np.stack(x) for x in zip(*obs, strict=False)))
    out = np.asarray(_mp(batch))
    assert out.shape == (B * M + 1, F)
    for b, o in enumerate(obs):
        single = np.asarray(_mp(o))
        np.testing.assert_allclose(out[b * M:(b + 1) * M], single[:M], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(single[:M], ref_message_pass(o), rtol=1e-5, atol=1e-5)
    # invalid edges only ever touch the padding node, even without the mask
    unmasked = np.asarray(_mp_unmasked(batch))
    np.testing.assert_allclose(unmasked[:B * M], out[:B * M], rtol=1e-6, atol=1e-6)


def test_layout_offsets_and_padding():
    rng = np.random.default_rng(0)
    obs = [random_obs(rng) for _ in range(3)]
    batch = Observation(*(np.stack(x) for x in zip(*obs, strict=False)))
    g = jax.jit(to_graphs_tuple)(batch)
    assert isinstance(g, jraph.GraphsTuple)
    np.testing.assert_array_equal(np.asarray(g.n_node), [M, M, M, 1])
    np.testing.assert_array_equal(np.asarray(g.n_edge), [2 * M, 2 * M, 2 * M, 0])
    assert g.nodes.shape == (3 * M + 1, F) and g.senders.shape == (6 * M,) and g.edges.shape == (6 * M, 2)
    assert g.globals.shape == (4, NUM_GLOBAL_FEATURES)
    em = np.asarray(edge_mask(g))
    s, r = np.asarray(g.senders), np.asarray(g.receivers)
    assert np.all((s[~em] == 3 * M) & (r[~em] == 3 * M))
    for b, o in enumerate(obs):
        sl = slice(2 * M * b, 2 * M * (b + 1))
        assert em[sl].sum() == 2 * max(o.mask.sum() - 1, 0)
        assert np.all((s[sl][em[sl]] // M == b) & (r[sl][em[sl]] // M == b))
        child = np.nonzero(o.mask & (o.parent >= 0))[0]
        np.testing.assert_array_equal(r[sl][:M][child], b * M + child)
        np.testing.assert_array_equal(s[sl][:M][child], b * M + o.parent[child])
    np.testing.assert_array_equal(np.asarray(jraph.get_graph_padding_mask(g)), [1, 1, 1, 0])
    nm = np.asarray(node_mask(g, batch))
    assert nm.shape == (3 * M + 1,) and not nm[-1] and nm[:-1].sum() == batch.mask.sum()


def test_single_obs_and_bad_shape():
    o = random_obs(np.random.default_rng(1))
    g = to_graphs_tuple(o)
    assert g.nodes.shape == (M + 1, F) and int(g.n_node.shape[0]) == 2
    with pytest.raises(ValueError, match="obs.nodes"):
        to_graphs_tuple(Observation(np.zeros((2, 2, M, F)), np.zeros((2, 2, M), bool),
                                    np.zeros((2, 2, M), np.int32), np.zeros((2, 2, 3))))


def test_vmap_over_batches():
    """vmap over a leading axis of batches: per-batch results equal the direct calls."""
    rng = np.random.default_rng(2)
    obs = [random_obs(rng) for _ in range(4)]
    stacked = [np.stack(x) for x in zip(*obs, strict=True)]
    batch = Observation(*(x.reshape((2, 2) + x.shape[1:]) for x in stacked))
    out = jax.jit(jax.vmap(lambda o: message_pass(to_graphs_tuple(o))))(batch)
    for i in range(2):
        direct = _mp(jax.tree.map(lambda a, i=i: a[i], batch))
        np.testing.assert_allclose(np.asarray(out[i]), np.asarray(direct), atol=1e-6)
