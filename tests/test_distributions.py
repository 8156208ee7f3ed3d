"""Tests for balancedrl.distributions (masked categorical, bounded Gaussian, hybrid log-prob)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancedrl import distributions as D

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(4, 3)).astype(np.float32) * 3
MASK = np.array([[1, 1, 1], [1, 0, 1], [0, 0, 1], [0, 0, 0]], bool)  # last row all-masked
ACTIONS = np.array([1, 2, 2, 0])

cat_all = jax.jit(lambda l, a, m: (D.categorical_log_prob(l, a, m), D.categorical_entropy(l, m),
                                   D.categorical_kl(l, 0.5 * l, m), D.masked_logits(l, m)))


def np_masked_logp(logits, mask):
    anyv = mask.any(-1, keepdims=True)
    eff = np.where(anyv, mask, True)
    x = np.where(eff, np.where(anyv, logits.astype(np.float64), 0.0), -np.inf)  # all-masked: uniform
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True)), eff


def test_categorical_matches_numpy_jit():
    lp, ent, kl, ml = cat_all(LOGITS, ACTIONS, MASK)
    ref, eff = np_masked_logp(LOGITS, MASK)
    np.testing.assert_allclose(lp, ref[np.arange(4), ACTIONS], rtol=1e-5)
    p = np.exp(ref)
    np.testing.assert_allclose(ent, -np.where(eff, p * np.where(eff, ref, 0), 0).sum(-1),
                               rtol=1e-5, atol=1e-6)
    refq, _ = np_masked_logp(0.5 * LOGITS, MASK)
    np.testing.assert_allclose(kl, np.where(eff, p * (np.where(eff, ref, 0) - np.where(eff, refq, 0)), 0)
                               .sum(-1), rtol=1e-4, atol=1e-6)
    assert np.all(np.isfinite(np.asarray(ml))) and float(jnp.max(ml)) == 0.0
    # all-masked row is uniform
    assert float(lp[3]) == pytest.approx(-math.log(3), rel=1e-6)
    assert float(ent[3]) == pytest.approx(math.log(3), rel=1e-6)
    assert float(kl[3]) == pytest.approx(0.0, abs=1e-6)
    # row with one valid action: log-prob 0, entropy 0
    assert float(lp[2]) == pytest.approx(0.0, abs=1e-6) and float(ent[2]) == pytest.approx(0.0, abs=1e-6)


def test_categorical_no_mask_and_vmap():
    lp = jax.jit(jax.vmap(D.categorical_log_prob))(LOGITS[None].repeat(2, 0),
                                                   np.stack([ACTIONS, ACTIONS[::-1]]))
    ref, _ = np_masked_logp(LOGITS, np.ones_like(MASK))
    np.testing.assert_allclose(lp[1], ref[np.arange(4), ACTIONS[::-1]], rtol=1e-5)
    ent = jax.jit(jax.vmap(D.categorical_entropy))(LOGITS)
    np.testing.assert_allclose(ent, -(np.exp(ref) * ref).sum(-1), rtol=1e-5)
    kl = jax.jit(jax.vmap(D.categorical_kl))(LOGITS, LOGITS)
    np.testing.assert_allclose(kl, 0.0, atol=1e-6)
    ml = jax.jit(jax.vmap(D.masked_logits))(LOGITS, MASK)
    np.testing.assert_allclose(ml[0], LOGITS[0] - LOGITS[0].max(), rtol=1e-6)


def test_categorical_gradients_finite_for_masked_and_huge_logits():
    logits = jnp.array([[1e30, -1e30, 0.0], [5.0, 5.0, 5.0]], jnp.float32)
    mask = jnp.array([[0, 0, 0], [1, 0, 1]], bool)

    def loss(l):
        return jnp.sum(D.categorical_log_prob(l, jnp.array([0, 1]), mask) + D.categorical_entropy(l, mask)
                       + D.categorical_kl(l, 2 * l, mask))

    g = jax.jit(jax.grad(loss))(logits)
    assert np.all(np.isfinite(np.asarray(g)))


def test_categorical_sample_respects_mask_jit_vmap():
    keys = jax.random.split(jax.random.PRNGKey(0), 200)
    samples = jax.jit(jax.vmap(D.categorical_sample, in_axes=(0, None, None)))(keys, LOGITS, MASK)
    s = np.asarray(samples)
    assert s.shape == (200, 4)
    assert np.all(s[:, 1] != 1) and np.all(s[:, 2] == 2)
    assert set(np.unique(s[:, 3])) == {0, 1, 2}  # all-masked row: uniform over all actions


MEAN = RNG.normal(size=(3, 4)).astype(np.float32)
LOG_STD = (0.3 * RNG.normal(size=(3, 4))).astype(np.float32)
RAW = RNG.normal(size=(3, 4)).astype(np.float32)


def test_gaussian_matches_numpy_jit_vmap():
    f = jax.jit(lambda r, m, s: (D.gaussian_log_prob(r, m, s), D.gaussian_entropy(s),
                                 D.gaussian_kl(m, s, 0.5 * m, 2 * s)))
    lp, ent, kl = f(RAW, MEAN, LOG_STD)
    std = np.exp(LOG_STD.astype(np.float64))
    ref = (-0.5 * ((RAW - MEAN) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)).sum(-1)
    np.testing.assert_allclose(lp, ref, rtol=1e-5)
    np.testing.assert_allclose(ent, (np.log(std) + 0.5 + 0.5 * np.log(2 * np.pi)).sum(-1), rtol=1e-5)
    sq = np.exp(2 * LOG_STD.astype(np.float64))
    ref_kl = (np.log(sq) - np.log(std) + (std**2 + (0.5 * MEAN) ** 2) / (2 * sq**2) - 0.5).sum(-1)
    np.testing.assert_allclose(kl, ref_kl, rtol=1e-4)
    lp_v = jax.jit(jax.vmap(D.gaussian_log_prob))(RAW, MEAN, LOG_STD)
    np.testing.assert_allclose(lp_v, ref, rtol=1e-5)
    np.testing.assert_allclose(jax.jit(jax.vmap(D.gaussian_entropy))(LOG_STD), ent, rtol=1e-6)
    np.testing.assert_allclose(jax.jit(jax.vmap(D.gaussian_kl))(MEAN, LOG_STD, MEAN, LOG_STD), 0.0, atol=1e-6)


def test_gaussian_sample_and_squash():
    keys = jax.random.split(jax.random.PRNGKey(1), 4000)
    m = jnp.array([0.5, -1.0])
    s = jnp.log(jnp.array([0.2, 2.0]))
    u = np.asarray(jax.jit(jax.vmap(D.gaussian_sample, in_axes=(0, None, None)))(keys, m, s))
    np.testing.assert_allclose(u.mean(0), [0.5, -1.0], atol=0.1)
    np.testing.assert_allclose(u.std(0), [0.2, 2.0], rtol=0.1)
    low, high = jnp.array([0.5, -np.pi]), jnp.array([15.0, np.pi])
    a = np.asarray(jax.jit(D.squash)(u, low, high))
    assert np.all(a >= np.asarray(low)) and np.all(a <= np.asarray(high))
    np.testing.assert_allclose(a, 0.5 * (np.tanh(u) + 1) * (np.asarray(high) - np.asarray(low))
                               + np.asarray(low), rtol=1e-5)
    v = jax.jit(jax.vmap(D.squash, in_axes=(0, None, None)))(jnp.zeros((3, 2)), low, high)
    np.testing.assert_allclose(v[0], (np.asarray(low) + np.asarray(high)) / 2, rtol=1e-6)


def test_same_raw_value_gives_ratio_one():
    # the PPO ratio for an unchanged policy is exactly 1 when both sides use the stored raw value
    u = D.gaussian_sample(jax.random.PRNGKey(2), MEAN, LOG_STD)
    lp_old = D.gaussian_log_prob(u, MEAN, LOG_STD)
    lp_new = D.gaussian_log_prob(u, MEAN, LOG_STD)
    np.testing.assert_array_equal(lp_old, lp_new)
    # the original's defect: new log-prob on the squashed value -> ratio far from 1
    squashed = D.squash(u, 0.5, 15.0)
    assert float(jnp.max(jnp.abs(D.gaussian_log_prob(squashed, MEAN, LOG_STD) - lp_old))) > 1.0


hyb_jit = jax.jit(D.hybrid_log_prob, static_argnames=("spawn_action", "chosen_only"))


def test_hybrid_log_prob_numpy_jit_vmap():
    M = 5
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(M, 3)).astype(np.float32)
    acts = np.array([1, 0, 1, 2, 1])
    mean = rng.normal(size=(M, 4)).astype(np.float32)
    log_std = (0.2 * rng.normal(size=(M, 4))).astype(np.float32)
    raw = rng.normal(size=(M, 4)).astype(np.float32)
    alive = np.array([1, 1, 1, 1, 0], bool)
    ld, lc = hyb_jit(logits, acts, mean, log_std, raw, alive)
    ref_d = np_masked_logp(logits, np.ones((M, 3), bool))[0][np.arange(M), acts]
    std = np.exp(log_std.astype(np.float64))
    ref_c = (-0.5 * ((raw - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)).sum(-1)
    np.testing.assert_allclose(ld, np.where(alive, ref_d, 0), rtol=1e-5)
    np.testing.assert_allclose(lc, np.where(alive & (acts == 1), ref_c, 0), rtol=1e-5)
    _, lc_all = hyb_jit(logits, acts, mean, log_std, raw, alive, chosen_only=False)
    np.testing.assert_allclose(lc_all, np.where(alive, ref_c, 0), rtol=1e-5)
    b = lambda x: np.stack([x, x])
    ldv, lcv = jax.jit(jax.vmap(D.hybrid_log_prob))(b(logits), b(acts), b(mean), b(log_std), b(raw),
                                           np.stack([alive, ~alive]))
    np.testing.assert_allclose(ldv[0], ld, rtol=1e-6)
    assert float(lcv[1, :4].sum()) == 0.0


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**12 - 1), st.floats(-1e4, 1e4))
def test_property_masked_rows_finite(bits, scale):
    mask = np.array([(bits >> i) & 1 for i in range(12)], bool).reshape(4, 3)
    logits = (LOGITS * scale).astype(np.float32)
    g = _grad_all(logits, mask)
    lp, ent, kl, _ = cat_all(logits, ACTIONS, mask)
    for x in (lp, ent, kl, g):
        assert np.all(np.isfinite(np.asarray(x)))
    assert np.all(np.asarray(ent) >= -1e-5) and np.all(np.asarray(kl) >= -1e-5)


@jax.jit
def _grad_all(logits, mask):
    f = lambda l: jnp.sum(D.categorical_log_prob(l, ACTIONS, mask) + D.categorical_entropy(l, mask)
                          + D.categorical_kl(l, -l, mask))
    return jax.grad(f)(logits)
