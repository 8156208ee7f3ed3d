"""Tests for balancedrl.networks.pretrained (orbax checkpoint I/O of the pre-trained CNN)."""

import json

import jax
import numpy as np
import pytest

from balancedrl.networks import (
    DEFAULT_PTM_PATH,
    HybridActorCritic,
    NetworkConfig,
    ResNetEncoder,
    WSAConfig,
    init_network,
    insert_pretrained,
    load_ptm,
    save_ptm,
)
from balancedrl.networks.pretrained import PTM_CHANNELS, PTM_EMBEDDING_DIM
from balancedrl.networks.raster import rasterize_batch
from balancedrl.networks.testing import random_observation, random_observation_batch, random_params

M = 10
CFG = NetworkConfig(
    hidden_dim=8,
    num_gnn_layers=1,
    num_heads=2,
    use_wsa=True,
    wsa=WSAConfig(
        embedding_dim=8,
        context_dim=4,
        raster_size=8,
        cnn_channels=(4, 4),
        cnn_embedding_dim=8,
        ptms=(("pretrained_cnn", True), ("gnn_token", False)),
    ),
)
NAME = "extractor_0_pretrained_cnn"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A random 'pre-trained' extractor saved with orbax, and a net initialised from it."""
    model = HybridActorCritic(CFG)
    obs = random_observation(np.random.default_rng(0), M)
    v_a = random_params(model, 0, obs)
    path = save_ptm(v_a["params"][NAME], tmp_path_factory.mktemp("ptm") / "ckpt", metadata={"note": "test"})
    fresh = random_params(model, 1, obs)  # stands in for model.init (slow to compile on CPU)
    v = init_network(CFG, jax.random.PRNGKey(1), obs, ptm_path=path, variables=fresh)  # orbax load
    return model, jax.jit(model.apply), v_a, v, path


def test_round_trip_restores_identical_outputs(setup):
    model, apply, v_a, v, path = setup
    assert json.loads(path.with_suffix(".json").read_text())["note"] == "test"
    obs = random_observation_batch(np.random.default_rng(1), 3, M)
    ref = apply({"params": {**v["params"], NAME: v_a["params"][NAME]}}, obs)
    for x, y in zip(apply(v, obs), ref, strict=False):
        np.testing.assert_array_equal(x, y)
    loaded = load_ptm(path, like=v["params"][NAME])
    for x, y in zip(
        jax.tree_util.tree_leaves(loaded), jax.tree_util.tree_leaves(v_a["params"][NAME]), strict=False
    ):
        np.testing.assert_array_equal(x, y)
    # insert_pretrained replaces only the named extractor
    other = random_params(model, 5, random_observation(np.random.default_rng(0), M))
    v2 = insert_pretrained(other, loaded, NAME)
    np.testing.assert_array_equal(
        v2["params"]["gnn"]["embed"]["kernel"], other["params"]["gnn"]["embed"]["kernel"]
    )
    for x, y in zip(
        apply(v2, obs), apply({"params": {**other["params"], NAME: v_a["params"][NAME]}}, obs), strict=False
    ):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(apply(other, obs).wsa_weights, apply(v2, obs).wsa_weights)


def test_missing_checkpoint_error(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        load_ptm(missing)


def test_mismatched_checkpoint_error(setup, tmp_path):
    _, _, v_a, _, _ = setup
    other = ResNetEncoder(channels=(4, 6), embedding_dim=8)
    p_other = random_params(other, 0, np.zeros((1, 8, 8, 4), np.float32))["params"]
    path = save_ptm(p_other, tmp_path / "other")
    with pytest.raises(ValueError, match=str(path)) as err:
        load_ptm(path, like=v_a["params"][NAME])
    msg = str(err.value)
    assert "block_1" in msg and "checkpoint has (3, 3, 4, 6)" in msg, msg
    with pytest.raises(ValueError, match=NAME):
        insert_pretrained(v_a, p_other, NAME)
    with pytest.raises(KeyError, match="extractor_9"):
        insert_pretrained(v_a, p_other, "extractor_9")


def test_shipped_checkpoint_loads_and_is_used():
    assert DEFAULT_PTM_PATH.exists(), f"shipped checkpoint missing at {DEFAULT_PTM_PATH}"
    ptm = load_ptm()
    enc = ResNetEncoder(PTM_CHANNELS, PTM_EMBEDDING_DIM)
    obs = random_observation_batch(np.random.default_rng(2), 2, 16)
    img = rasterize_batch(obs, 24)
    like = jax.eval_shape(enc.init, jax.random.PRNGKey(0), img)["params"]
    load_ptm(like=like)  # shapes match the default architecture
    emb = jax.jit(enc.apply)({"params": ptm}, img)
    assert emb.shape == (2, PTM_EMBEDDING_DIM) and np.all(np.isfinite(emb))
    size = sum(f.stat().st_size for f in DEFAULT_PTM_PATH.rglob("*") if f.is_file())
    assert size < 1_000_000
