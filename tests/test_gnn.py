"""Tests for balancedrl.networks.gnn (jraph tree encoder)."""

import jax
import jraph
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancedrl.networks.gnn import GraphEncoder, batched_tree_edges, observation_to_graph, tree_edges
from balancedrl.networks.testing import (
    permute_observation,
    random_observation,
    random_observation_batch,
    random_params,
)
from balancedrl.types import Observation

M = 12


def _np_edges(obs):
    """Reference: the set of directed edges (sender, receiver) of one observation."""
    out = set()
    for i in range(len(obs.mask)):
        p = int(obs.parent[i])
        if obs.mask[i] and p >= 0 and obs.mask[p]:
            out.add((i, p))
            out.add((p, i))
    return out


@pytest.fixture(scope="module", params=["mpnn", "attention"])
def encoder(request):
    enc = GraphEncoder(hidden_dim=16, num_layers=2, num_heads=2, layer=request.param)
    obs = random_observation(np.random.default_rng(0), M)
    variables = random_params(enc, 0, obs)  # (the real init is exercised in test_actor_critic)
    return jax.jit(enc.apply), variables


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, M))
def test_tree_edges_match_reference(seed, n):
    obs = random_observation(np.random.default_rng(seed), M, n)
    e = jax.jit(tree_edges)(obs.parent, obs.mask)
    assert e.senders.shape == (2 * M,)
    s, r, mk, seg = map(np.asarray, (e.senders, e.receivers, e.mask, e.segment))
    got = {(int(a), int(b)) for a, b, k in zip(s, r, mk, strict=False) if k}
    assert got == _np_edges(obs)
    assert mk.sum() == 2 * (n - 1)  # a tree: E = N - 1 undirected edges
    assert np.all(seg[~mk] == M) and np.all(seg[mk] == r[mk])


def test_tree_edges_vmap_and_graphs_tuple_offsets():
    obs = random_observation_batch(np.random.default_rng(1), 3, M)
    e = jax.vmap(tree_edges)(obs.parent, obs.mask)
    assert e.senders.shape == (3, 2 * M)
    g = jax.jit(observation_to_graph)(obs)
    assert isinstance(g, jraph.GraphsTuple)
    assert g.nodes.shape == (3 * M, obs.nodes.shape[-1]) and g.edges.shape == (3 * 2 * M, 3)
    np.testing.assert_array_equal(g.n_node, [M] * 3)
    np.testing.assert_array_equal(g.n_edge, [2 * M] * 3)
    be = batched_tree_edges(obs)
    for b in range(3):
        sl = slice(b * 2 * M, (b + 1) * 2 * M)
        mk = np.asarray(be.mask[sl])
        got = {
            (int(a) - b * M, int(c) - b * M)
            for a, c, k in zip(g.senders[sl], g.receivers[sl], mk, strict=False)
            if k
        }
        assert got == _np_edges(jax.tree_util.tree_map(lambda x, b=b: x[b], obs))
        # features: child→parent edges (+1) then parent→child (−1), zero when invalid
        feats = np.asarray(g.edges[sl])
        assert np.all(feats[~mk] == 0)
        assert np.all(feats[:M][mk[:M], 2] == 1) and np.all(feats[M:][mk[M:], 2] == -1)
    # dead edges are routed to the dummy segment 3*M
    assert np.all(np.asarray(be.segment)[~np.asarray(be.mask)] == 3 * M)


def test_encoder_shapes_finite_and_vmap(encoder):
    apply, variables = encoder
    obs = random_observation_batch(np.random.default_rng(2), 4, M)
    tokens, g = apply(variables, obs)
    assert tokens.shape == (4, M, 16) and g.shape == (4, 16)
    assert np.all(np.isfinite(tokens)) and np.all(np.isfinite(g))
    # dead tokens are zero
    assert np.all(np.asarray(tokens)[~obs.mask] == 0)
    # batched (one jraph batch) == vmap of single == loop of single
    vt, vg = jax.vmap(lambda o: apply(variables, o))(obs)
    np.testing.assert_allclose(tokens, vt, atol=1e-5)
    np.testing.assert_allclose(g, vg, atol=1e-5)
    for b in range(4):
        tb, gb = apply(variables, jax.tree_util.tree_map(lambda x, b=b: x[b], obs))
        np.testing.assert_allclose(tokens[b], tb, atol=1e-5)
        np.testing.assert_allclose(g[b], gb, atol=1e-5)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_encoder_permutation_equivariant(encoder, seed):
    apply, variables = encoder
    rng = np.random.default_rng(seed)
    obs = random_observation(rng, M)
    perm = rng.permutation(M)
    t1, g1 = apply(variables, obs)
    t2, g2 = apply(variables, permute_observation(obs, perm))
    np.testing.assert_allclose(np.asarray(t1)[perm], t2, atol=1e-4)
    np.testing.assert_allclose(g1, g2, atol=1e-4)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_dead_slots_have_no_influence(encoder, seed):
    apply, variables = encoder
    rng = np.random.default_rng(seed)
    obs = random_observation(rng, M, int(rng.integers(1, M)))
    dead = ~obs.mask
    nodes = obs.nodes.copy()
    nodes[dead] = rng.normal(size=(dead.sum(), nodes.shape[1])) * 5
    parent = obs.parent.copy()
    alive_idx = np.flatnonzero(obs.mask)
    parent[dead] = rng.choice(alive_idx, size=dead.sum())  # even bogus pointers to alive nodes
    t1, g1 = apply(variables, obs)
    t2, g2 = apply(variables, Observation(nodes, obs.mask, parent, obs.globals))
    np.testing.assert_allclose(np.asarray(t1)[obs.mask], np.asarray(t2)[obs.mask], atol=1e-5)
    np.testing.assert_allclose(g1, g2, atol=1e-5)


def test_messages_follow_edges(encoder):
    """Changing one leaf changes its parent's token, but not a node of another graph in the batch."""
    apply, variables = encoder
    obs = random_observation_batch(np.random.default_rng(3), 4, M, n_alive=6)
    leaf = next(i for i in range(M) if obs.mask[0, i] and obs.parent[0, i] >= 0)
    p = int(obs.parent[0, leaf])
    nodes = obs.nodes.copy()
    nodes[0, leaf, 2] += 1.0
    t1, g1 = apply(variables, obs)
    t2, g2 = apply(variables, Observation(nodes, obs.mask, obs.parent, obs.globals))
    assert np.max(np.abs(np.asarray(t1[0, p]) - np.asarray(t2[0, p]))) > 1e-4
    np.testing.assert_allclose(t1[1], t2[1], atol=1e-6)
    np.testing.assert_allclose(g1[1], g2[1], atol=1e-6)


def test_single_node_and_empty_graph_finite(encoder):
    apply, variables = encoder
    one = random_observation(np.random.default_rng(4), M, 1)
    empty = Observation(np.zeros_like(one.nodes), np.zeros(M, bool), -np.ones(M, np.int32), one.globals)
    for o in (one, empty):
        t, g = apply(variables, o)
        assert np.all(np.isfinite(t)) and np.all(np.isfinite(g))


def test_bad_heads_raise():
    enc = GraphEncoder(hidden_dim=10, num_heads=3, layer="attention")
    with pytest.raises(ValueError, match="num_heads"):
        enc.init(jax.random.PRNGKey(0), random_observation(np.random.default_rng(0), 4))
    with pytest.raises(ValueError, match="layer"):
        GraphEncoder(layer="gcn").init(jax.random.PRNGKey(0), random_observation(np.random.default_rng(0), 4))
