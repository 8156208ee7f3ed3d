"""Tests for balancedrl.networks.raster against a loop-based NumPy reference."""

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancedrl.networks.raster import rasterize, rasterize_batch
from balancedrl.networks.testing import random_observation, random_observation_batch
from balancedrl.types import Observation

M, S = 16, 8


def np_rasterize(obs, size, samples=8):
    img = np.zeros((size, size, 4))
    count = np.zeros((size, size))

    def cell(x, y):
        return min(max(int(np.floor(y * size)), 0), size - 1), min(max(int(np.floor(x * size)), 0), size - 1)

    for i in range(len(obs.mask)):
        if not obs.mask[i]:
            continue
        r, c = cell(obs.nodes[i, 0], obs.nodes[i, 1])
        count[r, c] += 1
        img[r, c, 1] += obs.nodes[i, 2]
        img[r, c, 2] += obs.nodes[i, 7]
        p = obs.parent[i]
        if p >= 0 and obs.mask[p]:
            for k in range(samples):
                t = (k + 0.5) / samples
                x = obs.nodes[i, 0] + t * (obs.nodes[p, 0] - obs.nodes[i, 0])
                y = obs.nodes[i, 1] + t * (obs.nodes[p, 1] - obs.nodes[i, 1])
                img[cell(x, y) + (3,)] = 1.0
    img[..., 0] = np.minimum(count, 4) / 4
    img[..., 1] /= np.maximum(count, 1)
    img[..., 2] /= np.maximum(count, 1)
    return img


@pytest.fixture(scope="module")
def jit_raster():
    return jax.jit(lambda o: rasterize(o, S))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_matches_numpy_reference(jit_raster, seed):
    rng = np.random.default_rng(seed)
    obs = random_observation(rng, M)
    # squeeze positions into a small box so cells hold several nodes
    obs.nodes[obs.mask, 0] = 0.3 + 0.2 * obs.nodes[obs.mask, 0]
    img = np.asarray(jit_raster(obs))
    assert img.shape == (S, S, 4) and img.dtype == np.float32
    np.testing.assert_allclose(img, np_rasterize(obs, S), atol=1e-5)


def test_dead_slots_ignored_and_batch(jit_raster):
    rng = np.random.default_rng(1)
    obs = random_observation_batch(rng, 3, M, n_alive=5)
    o = jax.tree_util.tree_map(lambda x: x[0], obs)
    nodes = o.nodes.copy()
    nodes[~o.mask] = rng.uniform(size=((~o.mask).sum(), nodes.shape[1]))
    np.testing.assert_array_equal(jit_raster(o), jit_raster(Observation(nodes, o.mask, o.parent, o.globals)))
    batch = jax.jit(lambda b: rasterize_batch(b, S))(obs)
    assert batch.shape == (3, S, S, 4)
    for b in range(3):
        np.testing.assert_array_equal(batch[b], jit_raster(jax.tree_util.tree_map(lambda x, b=b: x[b], obs)))
    img = np.asarray(batch[0])
    assert img[..., 0].sum() > 0 and img[..., 3].sum() > 0  # occupancy and edges drawn
    assert np.all((img >= 0) & (img <= 1))


def test_rank_error():
    obs = random_observation_batch(np.random.default_rng(0), 2, M)
    with pytest.raises(ValueError, match="rank 2"):
        rasterize(obs)
