"""The Balancer protocol's building blocks and the registry, against NumPy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancedrl import balancers
from balancedrl.balancers import combine, gramian, per_loss_norms
from balancedrl.balancers.registry import hyperparameters


def _tree(rng, K):
    return {"a": rng.normal(size=(K, 3, 2)).astype(np.float32), "b": rng.normal(size=(K, 5)).astype(np.float32)}


def _flat(tree):
    K = tree["a"].shape[0]
    return np.concatenate([np.asarray(tree["a"]).reshape(K, -1), np.asarray(tree["b"]).reshape(K, -1)], axis=1)


def _vec(tree):
    return np.concatenate([np.asarray(tree["a"]).ravel(), np.asarray(tree["b"]).ravel()])


def test_gramian_norms_and_combine_match_numpy():
    rng = np.random.default_rng(0)
    g = _tree(rng, 3)
    J = _flat(g)
    np.testing.assert_allclose(gramian(g), J @ J.T, rtol=1e-5)
    np.testing.assert_allclose(per_loss_norms(g), np.linalg.norm(J, axis=1), rtol=1e-5)
    w = np.array([0.2, -1.0, 3.0], np.float32)
    np.testing.assert_allclose(_vec(combine(w, g)), w @ J, rtol=1e-5, atol=1e-6)


def test_zero_gradient_has_zero_norm_not_nan():
    g = {"a": jnp.zeros((2, 4))}
    assert np.all(np.asarray(per_loss_norms(g)) == 0.0)
    assert np.all(np.isfinite(jax.grad(lambda x: per_loss_norms({"a": x}).sum())(g["a"])))


@pytest.mark.parametrize("name,expected", [("sum", [1.0, 1.0, 1.0]), ("mean", [1 / 3] * 3)])
def test_scalarisation_weights_and_output(name, expected):
    rng = np.random.default_rng(1)
    g = _tree(rng, 3)
    b = balancers.make(name)
    state = b.init(3, None)
    out, _, info = b.update(g, jnp.ones(3), state, jax.random.PRNGKey(0))
    np.testing.assert_allclose(info["weights"], expected, rtol=1e-6)
    np.testing.assert_allclose(_vec(out), np.asarray(expected, np.float32) @ _flat(g), rtol=1e-5, atol=1e-6)
    assert not b.requires_grads
    none_out, _, info2 = b.update(None, jnp.ones(3), state, jax.random.PRNGKey(0))
    assert none_out is None
    np.testing.assert_allclose(info2["weights"], expected, rtol=1e-6)


def test_fixed_uses_given_weights_and_checks_length():
    b = balancers.make("fixed", weights=[0.25, 0.75])
    _, _, info = b.update(None, jnp.ones(2), b.init(2, None), jax.random.PRNGKey(0))
    np.testing.assert_allclose(info["weights"], [0.25, 0.75])
    with pytest.raises(ValueError, match="weights"):
        b.init(3, None)


def test_registry_refuses_unknown_names_hyper_and_duplicates():
    with pytest.raises(ValueError, match="unknown balancer 'nope'.*allowed"):
        balancers.make("nope")
    with pytest.raises(ValueError, match="no hyper-parameter"):
        balancers.make("sum", lr=1.0)
    with pytest.raises(ValueError, match="already registered"):
        balancers.register("sum", "balancedrl.balancers.scalarization:make_sum")
    assert {"sum", "mean", "fixed", "grad_scaling"} <= set(balancers.available())
    assert "weights" in hyperparameters("fixed")


def test_gramian_balancer_jit_vmap_and_weights_reproduce_output():
    def weighting(G, losses, state, key):
        w = 1.0 / jnp.maximum(jnp.sqrt(jnp.diagonal(G)), 1e-12)  # normalise each gradient
        return w, state, {}

    b = balancers.gramian_balancer("unit", weighting)
    rng = np.random.default_rng(2)
    batch = {"a": rng.normal(size=(4, 2, 3, 2)).astype(np.float32), "b": rng.normal(size=(4, 2, 5)).astype(np.float32)}
    upd = jax.jit(jax.vmap(lambda g: b.update(g, jnp.ones(2), (), jax.random.PRNGKey(0))))
    out, _, info = upd(batch)
    for i in range(4):
        gi = jax.tree_util.tree_map(lambda x, i=i: x[i], batch)
        J = _flat(gi)
        np.testing.assert_allclose(info["weights"][i], 1 / np.linalg.norm(J, axis=1), rtol=1e-5)
        np.testing.assert_allclose(_vec(jax.tree_util.tree_map(lambda x, i=i: x[i], out)), info["weights"][i] @ J, rtol=1e-4)


@settings(max_examples=25, deadline=None)
@given(st.floats(-6, 6), st.integers(2, 4))
def test_mean_is_finite_for_any_scale(log_scale, K):
    g = {"a": jnp.full((K, 3), 10.0**log_scale, jnp.float32).at[0].set(0.0)}
    out, _, info = balancers.make("mean").update(g, jnp.ones(K), (), jax.random.PRNGKey(0))
    assert np.all(np.isfinite(np.asarray(out["a"])))
    np.testing.assert_allclose(np.asarray(info["weights"]).sum(), 1.0, rtol=1e-6)
