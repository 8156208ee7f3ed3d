"""Tests for balancedrl.weighting (learnable component weights, the component-weighting source)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancedrl.weighting import ComponentWeighting, num_weighting_params, weight_regularizer

C = 6
MODULE = ComponentWeighting(C)
MODULE_NOATT = ComponentWeighting(C, use_attention=False)
# the component-weighting source's "Original advantages" per-component means/stds
SEED_MEANS = np.array([0.420, 0.100, -2.000, 0.220, 1.220, 0.270], np.float32)
SEED_STDS = np.array([1.424, 0.158, 0.381, 0.444, 0.192, 0.120], np.float32)


def seed_advantages(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return (SEED_MEANS + SEED_STDS * rng.normal(size=(n, C))).astype(np.float32)


@pytest.fixture(scope="module")
def params():
    return MODULE.init(jax.random.PRNGKey(0), jnp.zeros((4, C)))


@pytest.fixture(scope="module")
def apply_jit():
    return jax.jit(MODULE.apply)


def reference(params, adv, mask=None):
    p = jax.tree_util.tree_map(np.asarray, params["params"])
    bl = p["base_logits"].astype(np.float64)
    base = np.exp(bl) / np.exp(bl).sum()
    w = np.ones(adv.shape[0]) if mask is None else mask.astype(np.float64)
    mags = (w[:, None] * np.abs(adv)).sum(0) / w.sum()
    logits = mags @ p["attention"]["kernel"] + p["attention"]["bias"]
    att = np.exp(logits - logits.max())
    att /= att.sum()
    comb = adv @ (base * att)
    m = (w * comb).sum() / w.sum()
    s = np.sqrt((w * (comb - m) ** 2).sum() / w.sum())
    return np.where(w > 0, (comb - m) / (s + 1e-8), 0.0), base, att


def test_parameter_count(params):
    n = sum(x.size for x in jax.tree_util.tree_leaves(params))
    assert n == 48 == num_weighting_params(6, True)
    p2 = MODULE_NOATT.init(jax.random.PRNGKey(0), jnp.zeros((2, C)))
    assert sum(x.size for x in jax.tree_util.tree_leaves(p2)) == 6 == num_weighting_params(6, False)
    np.testing.assert_array_equal(params["params"]["base_logits"], np.ones(C))


def test_seed_example_normalised_and_matches_numpy(params, apply_jit):
    adv = seed_advantages()
    out, info = apply_jit(params, adv)
    assert float(jnp.mean(out)) == pytest.approx(0.0, abs=1e-5)
    assert float(jnp.std(out)) == pytest.approx(1.0, abs=1e-4)
    ref, base, att = reference(params, adv)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(info["base_weights"], base, rtol=1e-5)
    np.testing.assert_allclose(info["attention_weights"], att, rtol=1e-5)
    np.testing.assert_allclose(info["final_weights"], base * att, rtol=1e-5)


def test_mask_and_no_attention(params, apply_jit):
    adv = seed_advantages(10, 1)
    mask = np.arange(10) < 7
    out, _ = apply_jit(params, adv, mask)
    ref, _, _ = reference(params, adv, mask)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    assert np.all(np.asarray(out)[7:] == 0)
    p2 = MODULE_NOATT.init(jax.random.PRNGKey(0), jnp.zeros((2, C)))
    out2, info2 = jax.jit(MODULE_NOATT.apply)(p2, adv)
    np.testing.assert_allclose(info2["final_weights"], info2["base_weights"])
    comb = adv.mean(1)  # equal base weights -> z-scored component mean
    np.testing.assert_allclose(out2, (comb - comb.mean()) / comb.std(), rtol=1e-4, atol=1e-4)


def test_wrong_num_components_raises(params):
    with pytest.raises(ValueError, match="num_components=6"):
        MODULE.apply(params, jnp.zeros((3, 5)))


def test_vmap(params):
    advs = np.stack([seed_advantages(16, s) for s in range(3)])
    out, info = jax.jit(jax.vmap(MODULE.apply, in_axes=(None, 0)))(params, advs)
    for k in range(3):
        np.testing.assert_allclose(out[k], reference(params, advs[k])[0], rtol=1e-4, atol=1e-4)
    assert info["final_weights"].shape == (3, C)


def _surrogate(params, adv, ratio):
    combined, _ = MODULE.apply(params, adv)
    return -jnp.mean(ratio * combined)


surrogate_grad = jax.jit(jax.grad(_surrogate))


def test_gradient_reaches_base_and_attention(params):
    adv = seed_advantages(32, 3)
    ratio = 1.0 + 0.2 * np.random.default_rng(0).normal(size=32).astype(np.float32)
    g = surrogate_grad(params, adv, ratio)
    assert float(jnp.abs(g["params"]["base_logits"]).max()) > 1e-4
    assert float(jnp.abs(g["params"]["attention"]["kernel"]).max()) > 1e-4
    # DESIGN section 3: with every ratio 1 the surrogate is -mean(combined) = 0 -> zero gradient
    g1 = surrogate_grad(params, adv, np.ones(32, np.float32))
    for leaf in jax.tree_util.tree_leaves(g1):
        assert float(jnp.abs(leaf).max()) < 1e-5


def test_weight_regularizer(params):
    val = weight_regularizer(params, 0.001)
    assert float(val) == pytest.approx(0.001 * np.sqrt(6.0), rel=1e-6)
    assert float(weight_regularizer(params["params"], 2.0)) == pytest.approx(2 * np.sqrt(6.0), rel=1e-6)
    zero = {"base_logits": jnp.zeros(C)}
    g = jax.grad(lambda p: weight_regularizer(p, 1.0))(zero)
    assert np.all(np.isfinite(g["base_logits"])) and float(jnp.abs(g["base_logits"]).max()) == 0.0
    g = jax.jit(jax.grad(lambda p: weight_regularizer(p, 1.0)))({"base_logits": jnp.array([3.0, 4.0])})
    np.testing.assert_allclose(g["base_logits"], [0.6, 0.8], rtol=1e-6)
    vals = jax.vmap(lambda b: weight_regularizer({"base_logits": b}, 1.0))(jnp.array([[3.0, 4.0], [0, 0]]))
    np.testing.assert_allclose(vals, [5.0, 0.0])
    with pytest.raises(KeyError, match="base_logits"):
        weight_regularizer({"other": jnp.ones(2)}, 1.0)


@settings(max_examples=10, deadline=None)
@given(st.floats(-100, 100, allow_nan=False, width=32), st.integers(0, 15))
def test_property_constant_advantages_and_masks(c, bits):
    p = MODULE.init(jax.random.PRNGKey(0), jnp.zeros((2, C)))
    adv = jnp.full((4, C), c, jnp.float32)
    mask = np.array([(bits >> i) & 1 for i in range(4)], bool)
    out, info = _apply_and_grad(p, adv, mask)
    assert np.all(np.asarray(out[0]) == 0.0)
    for leaf in jax.tree_util.tree_leaves(out[1]):
        assert np.all(np.isfinite(np.asarray(leaf)))


@jax.jit
def _apply_and_grad(p, adv, mask):
    def loss(p):
        comb, info = MODULE.apply(p, adv, mask)
        return jnp.sum(comb**2), (comb, info)

    g, (comb, info) = jax.grad(loss, has_aux=True)(p)
    return (comb, g), info
