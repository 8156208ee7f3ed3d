"""Factorised Bernoulli head over 2^n joint actions: checked against explicit enumeration (n = 4)."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancedrl.envs.hard_move import actuator_bits
from balancedrl.factorised import (
    action_from_bits,
    bits_from_action,
    factorised_entropy,
    factorised_joint_log_probs,
    factorised_kl,
    factorised_log_prob,
    factorised_mode,
    factorised_sample,
)

LOGITS4 = np.array([0.3, -1.2, 2.0, 0.0])


def _enumerated(logits: np.ndarray) -> np.ndarray:
    """p(a) for all 2^n joint actions by explicit enumeration in float64: a = sum_k b_k 2^(n-1-k)."""
    n = len(logits)
    on = 1.0 / (1.0 + np.exp(-logits))
    probs = np.zeros(2**n)
    for bits in itertools.product((0, 1), repeat=n):  # bits[0] = actuator 0 = most significant
        a = int("".join(map(str, bits)), 2)
        probs[a] = math.prod(on[k] if b else 1.0 - on[k] for k, b in enumerate(bits))
    return probs


@jax.jit
def _stats(logits, logits_q, action):
    """Everything the head computes, in one compiled program (compiles dominate on a loaded CPU)."""
    return {
        "log_prob": factorised_log_prob(logits, action),
        "all_log_probs": factorised_joint_log_probs(logits),
        "entropy": factorised_entropy(logits),
        "kl": factorised_kl(logits, logits_q),
        "mode": factorised_mode(logits),
        "grad": jax.grad(lambda x: jnp.sum(factorised_log_prob(x, action)))(logits),
    }


def test_reference_numbers_n4():
    """a = 10 = 0b1010: actuators 0 and 2 on, 1 and 3 off."""
    s = 1.0 / (1.0 + np.exp(-LOGITS4))
    out = _stats(LOGITS4, LOGITS4, 10)
    expected = math.log(s[0]) + math.log(1 - s[1]) + math.log(s[2]) + math.log(1 - s[3])
    np.testing.assert_allclose(float(out["log_prob"]), expected, rtol=1e-6)
    h = -np.sum(s * np.log(s) + (1 - s) * np.log(1 - s))
    np.testing.assert_allclose(float(out["entropy"]), h, rtol=1e-6)
    assert int(out["mode"]) == 0b1010  # l > 0 on: actuators 0, 2 (l = 0 is off)
    # d log pi(a) / d l_k = b_k - sigma(l_k)
    np.testing.assert_allclose(np.asarray(out["grad"]), np.array([1, 0, 1, 0]) - s, atol=1e-6)


def test_enumeration_n4_log_probs_entropy_kl_mode():
    """All 2^4 joint actions: probabilities sum to 1, log-probs equal the enumerated categorical's, and
    entropy, KL and mode equal the categorical's over the 16 enumerated actions."""
    q_logits = np.array([-0.7, 0.4, 1.5, -2.2])
    p, q = _enumerated(LOGITS4), _enumerated(q_logits)
    np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-12)
    out = jax.vmap(_stats, in_axes=(None, None, 0))(LOGITS4, q_logits, jnp.arange(16))
    lp = np.asarray(out["log_prob"])
    np.testing.assert_allclose(lp, np.log(p), rtol=0, atol=2e-6)
    np.testing.assert_allclose(np.exp(lp).sum(), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out["all_log_probs"][0]), np.log(p), atol=2e-6)
    np.testing.assert_allclose(float(out["entropy"][0]), -(p * np.log(p)).sum(), atol=2e-6)
    np.testing.assert_allclose(float(out["kl"][0]), (p * np.log(p / q)).sum(), atol=2e-6)
    assert int(out["mode"][0]) == int(np.argmax(p))


def test_bit_order_matches_hard_move():
    """Joint index <-> actuator bits is Hard Move's encoding (LSB = actuator n - 1), for n = 4..10."""
    ns = (4, 6, 8, 10)
    bits = jax.jit(lambda: {n: bits_from_action(jnp.arange(2**n), n) for n in ns})()
    back = jax.jit(lambda b: {n: action_from_bits(b[n]) for n in ns})(bits)
    for n in ns:
        np.testing.assert_array_equal(np.asarray(bits[n]), actuator_bits(n))
        np.testing.assert_array_equal(np.asarray(back[n]), np.arange(2**n))


def test_sample_frequencies_n4():
    """20,000 vmapped samples: joint-action frequencies match the enumerated probabilities (5 s.e.)."""
    keys = jax.random.split(jax.random.key(0), 20_000)
    a = np.asarray(jax.jit(jax.vmap(factorised_sample, in_axes=(0, None)))(keys, LOGITS4))
    assert a.dtype == np.int32 and a.min() >= 0 and a.max() < 16
    p = _enumerated(LOGITS4)
    freq = np.bincount(a, minlength=16) / len(a)
    assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / len(a)) + 1e-4), (freq, p)


def test_batch_shapes():
    """Leading batch axes: logits [5, 3, n] with actions [5, 3]; KL(p || p) = 0."""
    logits = jax.random.normal(jax.random.key(1), (5, 3, 6))
    acts = jax.jit(factorised_sample)(jax.random.key(2), logits)
    assert acts.shape == (5, 3)
    out = _stats(logits, logits, acts)
    assert out["log_prob"].shape == (5, 3) and out["entropy"].shape == (5, 3) and out["kl"].shape == (5, 3)
    assert out["all_log_probs"].shape == (5, 3, 64)
    np.testing.assert_allclose(np.asarray(out["kl"]), 0.0, atol=1e-6)
    lp_all = np.take_along_axis(np.asarray(out["all_log_probs"]), np.asarray(acts)[..., None], -1)[..., 0]
    np.testing.assert_allclose(np.asarray(out["log_prob"]), lp_all, atol=1e-5)


@settings(max_examples=15, deadline=None)
@given(st.sampled_from([1, 4, 6]), st.floats(0.01, 30.0), st.integers(0, 2**31 - 1))
def test_properties_normalised_and_entropy_bounds(n, scale, seed):
    """sum over all 2^n joint actions of pi = 1; 0 <= H <= n log 2; finite for large logits."""
    logits = scale * np.random.default_rng(seed).standard_normal(n).astype(np.float32)
    out = _stats(logits, logits, 0)
    np.testing.assert_allclose(float(jax.nn.logsumexp(out["all_log_probs"])), 0.0, atol=1e-5)
    h = float(out["entropy"])
    assert -1e-6 <= h <= n * math.log(2) + 1e-5
    assert np.isfinite(np.asarray(out["all_log_probs"])).all()


def test_bad_inputs():
    with pytest.raises(ValueError, match="actuators"):
        factorised_log_prob(jnp.zeros((3, 0)), 0)
    with pytest.raises(ValueError, match="n \\(number of actuators\\)"):
        bits_from_action(3, 31)
    with pytest.raises(ValueError, match="same shape"):
        factorised_kl(jnp.zeros(3), jnp.zeros(4))
