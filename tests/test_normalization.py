"""Tests for balancedrl.normalization (running statistics, two-tier reward normalisation)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancedrl.normalization import (
    normalize,
    reward_norm_apply,
    reward_norm_init,
    reward_norm_update,
    running_stats_init,
    running_stats_update,
)

update_jit = jax.jit(running_stats_update)
rn_update_jit = jax.jit(reward_norm_update)
rn_apply_jit = jax.jit(reward_norm_apply)


def test_running_stats_matches_numpy_over_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(2.0, 3.0, size=(n, 3)).astype(np.float32) for n in (5, 1, 17, 8)]
    masks = [None, None, rng.random(17) < 0.6, np.zeros(8, bool)]  # last batch fully masked
    stats = running_stats_init((3,))
    seen = []
    for b, m in zip(batches, masks, strict=True):
        stats = update_jit(stats, b, m) if m is not None else update_jit(stats, b)
        seen.append(b if m is None else b[m])
    allx = np.concatenate(seen).astype(np.float64)
    np.testing.assert_allclose(stats.mean, allx.mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats.var, allx.var(0), rtol=1e-4)
    assert float(stats.count) == len(allx)
    x = rng.normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_allclose(jax.jit(normalize)(stats, x), (x - allx.mean(0)) / np.sqrt(allx.var(0) + 1e-8),
                               rtol=1e-4)


def test_running_stats_init_identity_vmap_and_errors():
    s = running_stats_init(2)
    x = jnp.array([[1.0, -2.0]])
    np.testing.assert_allclose(normalize(s, x), x, rtol=1e-6)
    states = jax.vmap(lambda _: running_stats_init((2,)))(jnp.arange(3))
    data = np.arange(3 * 4 * 2, dtype=np.float32).reshape(3, 4, 2)
    new = jax.jit(jax.vmap(running_stats_update))(states, data)
    for k in range(3):
        np.testing.assert_allclose(new.mean[k], data[k].mean(0), rtol=1e-6)
    np.testing.assert_allclose(jax.jit(jax.vmap(normalize))(new, data)[0], (data[0] - data[0].mean(0))
                               / np.sqrt(data[0].var(0) + 1e-8), rtol=1e-5)
    with pytest.raises(ValueError, match="batch shape"):
        running_stats_update(s, jnp.zeros((4, 3)))


def _np_two_tier(raw_seen, r, clip=10.0, eps=1e-8):
    std = np.sqrt(raw_seen.astype(np.float64).var(0) + eps)
    med = np.median(std)
    return np.clip(r * np.clip(med / std, 0.1, 10.0) / med, -clip, clip)


def test_reward_norm_two_tier_numpy():
    rng = np.random.default_rng(1)
    scales = np.array([5.0, 1.0, 0.5, 2.0, 0.001], np.float32)  # last: tiny component
    seen = (rng.normal(size=(64, 5)) * scales + 3.0).astype(np.float32)
    state = reward_norm_init(5)
    state = rn_update_jit(state, seen[:40])
    state = rn_update_jit(state, seen[40:])
    r = (rng.normal(size=(7, 5)) * scales).astype(np.float32)
    out = rn_apply_jit(state, r)
    np.testing.assert_allclose(out, _np_two_tier(seen, r), rtol=1e-4, atol=1e-6)
    std = seen.std(0)
    # components within 10x of the median end with unit scale; the tiny one is amplified only 10x
    big = np.asarray(rn_apply_jit(state, seen, 1e9))
    np.testing.assert_allclose(big.std(0)[:4], 1.0, rtol=1e-3)
    assert big.std(0)[4] == pytest.approx(10 * std[4] / np.median(std), rel=1e-3)
    # no centring: signs are kept, zeros stay zero
    np.testing.assert_array_equal(np.sign(out), np.sign(r))
    np.testing.assert_array_equal(rn_apply_jit(state, np.zeros((2, 5), np.float32)), 0.0)
    # clipping
    assert float(jnp.max(jnp.abs(rn_apply_jit(state, 1e6 * np.ones((1, 5), np.float32), 5.0)))) == 5.0


def test_reward_norm_vmap_and_errors():
    data = np.random.default_rng(2).normal(size=(2, 16, 3)).astype(np.float32)
    states = jax.vmap(lambda _: reward_norm_init(3))(jnp.arange(2))
    states = jax.jit(jax.vmap(reward_norm_update))(states, data)
    out = jax.jit(jax.vmap(reward_norm_apply))(states, data)
    np.testing.assert_allclose(out[1], _np_two_tier(data[1], data[1]), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="components"):
        reward_norm_apply(reward_norm_init(3), jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match="num_components"):
        reward_norm_init(0)


@settings(max_examples=15, deadline=None)
@given(st.floats(-1e3, 1e3), st.integers(0, 255))
def test_property_constant_rewards_finite(c, bits):
    mask = np.array([(bits >> i) & 1 for i in range(8)], bool)
    state = rn_update_jit(reward_norm_init(2), jnp.full((8, 2), c, jnp.float32), mask)
    out = rn_apply_jit(state, jnp.full((3, 2), c, jnp.float32))
    assert np.all(np.isfinite(np.asarray(out))) and np.all(np.abs(np.asarray(out)) <= 10.0)
    assert np.all(np.isfinite(np.asarray(state.stats.var))) and np.all(np.asarray(state.stats.var) >= 0)
