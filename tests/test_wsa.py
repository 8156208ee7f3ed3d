"""Tests for balancedrl.networks.wsa (the WSA source WSA fusion)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from balancedrl.networks.testing import random_params
from balancedrl.networks.wsa import WSAFusion

B, D, CTX = 5, 8, 4


def _inputs(k, key=0):
    ks = jax.random.split(jax.random.PRNGKey(key), k + 1)
    embs = [jax.random.normal(ks[i], (B, 3 + i)) for i in range(k)]  # widths differ on purpose
    state = jax.random.normal(ks[-1], (B, 6))
    return embs, state


@pytest.fixture(scope="module")
def wsa3():
    mod = WSAFusion(embedding_dim=D, context_dim=CTX, temperature=0.7, mode="wsa")
    embs, state = _inputs(3)
    variables = random_params(mod, 1, embs, state)  # initialisers are slow to compile on CPU
    return mod, variables, jax.jit(mod.apply)


def test_weights_simplex_and_numpy_reference(wsa3):
    mod, variables, apply = wsa3
    embs, state = _inputs(3, key=2)
    fused, w = apply(variables, embs, state)
    assert fused.shape == (B, D) and w.shape == (B, 3)
    assert np.all(w > 0)
    np.testing.assert_allclose(np.sum(w, -1), 1.0, atol=1e-6)
    # NumPy reference of the formula
    p = jax.tree_util.tree_map(np.asarray, variables["params"])
    ctx = np.asarray(state) @ p["context"]["kernel"] + p["context"]["bias"]
    proj = [np.asarray(e) @ p[f"proj_{i}"]["kernel"] + p[f"proj_{i}"]["bias"] for i, e in enumerate(embs)]
    scores = []
    for e in proj:
        hid = np.tanh(np.concatenate([ctx, e], -1) @ p["score_hidden"]["kernel"] + p["score_hidden"]["bias"])
        scores.append((hid @ p["score_out"]["kernel"] + p["score_out"]["bias"])[:, 0])
    s = np.stack(scores, -1) / 0.7
    ref_w = np.exp(s - s.max(-1, keepdims=True))
    ref_w /= ref_w.sum(-1, keepdims=True)
    np.testing.assert_allclose(w, ref_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused, np.einsum("bk,kbd->bd", ref_w, np.stack(proj)), rtol=1e-4, atol=1e-5)
    # the weights depend on the sample (per-sample softmax)
    assert np.max(np.abs(np.asarray(w[0]) - np.asarray(w[1]))) > 1e-6


def test_gradient_reaches_shared_scoring_mlp(wsa3):
    mod, variables, _ = wsa3
    embs, state = _inputs(3, key=3)

    def loss(params):
        fused, _ = mod.apply({"params": params}, embs, state)
        return jnp.sum(fused**2)

    g = jax.device_get(jax.jit(jax.grad(loss))(variables["params"]))
    for name in ("score_hidden", "score_out", "context"):
        assert float(np.max(np.abs(g[name]["kernel"]))) > 0, name
    # one scoring MLP shared by every model: its kernel takes [context, embedding_dim] inputs
    assert variables["params"]["score_hidden"]["kernel"].shape[0] == CTX + D


def test_vmap_single_sample_agrees(wsa3):
    _, variables, apply = wsa3
    embs, state = _inputs(3, key=4)
    fused, w = apply(variables, embs, state)
    vf, vw = jax.vmap(lambda e, s: apply(variables, e, s))(embs, state)
    np.testing.assert_allclose(fused, vf, atol=1e-5)
    np.testing.assert_allclose(w, vw, atol=1e-6)


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("mode", ["wsa", "mean", "concat"])
def test_modes_any_k(mode, k):
    mod = WSAFusion(embedding_dim=D, context_dim=CTX, mode=mode)
    embs, state = _inputs(k, key=k)
    variables = random_params(mod, k, embs, state)  # initialisers are slow to compile on CPU
    fused, w = jax.device_get(jax.jit(mod.apply)(variables, embs, state))
    assert fused.shape == (B, D) and w.shape == (B, k)
    np.testing.assert_allclose(np.sum(w, -1), 1.0, atol=1e-6)
    if mode != "wsa" or k == 1:
        np.testing.assert_allclose(w, 1.0 / k, atol=1e-6)
    if mode == "mean":
        p = variables["params"]
        proj = [e @ p[f"proj_{i}"]["kernel"] + p[f"proj_{i}"]["bias"] for i, e in enumerate(embs)]
        np.testing.assert_allclose(fused, np.mean(np.stack(proj), 0), atol=1e-5)


def test_bad_arguments():
    embs, state = _inputs(2)
    with pytest.raises(ValueError, match="mode='sum'"):
        WSAFusion(mode="sum").init(jax.random.PRNGKey(0), embs, state)
    with pytest.raises(ValueError, match="temperature"):
        WSAFusion(temperature=0.0).init(jax.random.PRNGKey(0), embs, state)
    with pytest.raises(ValueError, match="K >= 1"):
        WSAFusion().init(jax.random.PRNGKey(0), [], state)
