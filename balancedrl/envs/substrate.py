"""Durotaxis substrates: stiffness (intensity) fields that grow with x (docs/design.md §4).

Three kinds, drawn per episode:

- ``LINEAR`` (0):      I(x, y) = m·x + b,                 m ∈ [0.01, 0.1],   b ∈ [0.5, 2]
- ``EXPONENTIAL`` (1): I(x, y) = b·exp(m·x),              m ∈ [0.002, 0.008], b ∈ [0.5, 1.5]
- ``RANDOM`` (2):      I(x, y) = (m·x + b)·(1 + a·g(x, y)), linear ranges for (m, b),
  a = ``RANDOM_AMPLITUDE``,
  g = mean of ``NUM_MODES`` random plane waves w(kx·x/W + ky·y/H + φ), kx, ky ∈ {1..4}, φ ∈ [0, 1),
  w = ``periodic_wave`` (a parabolic sine): a bumpy, still x-increasing on average, field.
  (DESIGN names a "random" kind without a formula; this is our choice.)

The reference intensity ``I_ref`` used for normalisation (DESIGN: "I/I(W)") is the largest value the
field can take on [0, W]: m·W + b, b·exp(m·W), and (m·W + b)(1 + a) for the random kind, so
normalised intensities lie in (0, 1]. Every intensity is strictly positive (needed by the Hill law).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

LINEAR, EXPONENTIAL, RANDOM = 0, 1, 2
KIND_NAMES = ("linear", "exponential", "random")
NUM_KINDS = len(KIND_NAMES)
NUM_MODES = 4
RANDOM_AMPLITUDE = 0.25


@struct.dataclass
class Substrate:
    """One episode's substrate. kind int32 [], m, b float32 [], freq float32 [K, 2], phase float32 [K]."""

    kind: jax.Array
    m: jax.Array
    b: jax.Array
    freq: jax.Array
    phase: jax.Array


def make_substrate(kind, m, b, freq=None, phase=None) -> Substrate:
    """Build a substrate from explicit values (freq/phase default to a single zero-phase mode set)."""
    if freq is None:
        freq = jnp.ones((NUM_MODES, 2), jnp.float32)
    if phase is None:
        phase = jnp.zeros((NUM_MODES,), jnp.float32)
    return Substrate(
        kind=jnp.asarray(kind, jnp.int32),
        m=jnp.asarray(m, jnp.float32),
        b=jnp.asarray(b, jnp.float32),
        freq=jnp.asarray(freq, jnp.float32),
        phase=jnp.asarray(phase, jnp.float32),
    )


def sample_substrate(key: jax.Array, params) -> Substrate:
    """Draw a substrate: kind uniform over the three kinds (``params.substrate_kind`` = -1) or fixed.

    Linear and random kinds take (m, b) uniform in ``params.linear_m`` × ``params.linear_b``;
    the exponential kind in ``params.exp_m`` × ``params.exp_b``; the random kind's frequencies are
    uniform in {1..4} and phases in [0, 1). One ``random.bits`` call (16 words) feeds everything.
    """
    words = jax.random.bits(key, (3 + 3 * NUM_MODES,), jnp.uint32)
    u = (words >> 8).astype(jnp.float32) * (1.0 / (1 << 24))  # uniform [0, 1), 24-bit
    drawn = jnp.minimum(jnp.floor(u[0] * NUM_KINDS), NUM_KINDS - 1).astype(jnp.int32)
    fixed = jnp.asarray(params.substrate_kind, jnp.int32)
    kind = jnp.where(fixed < 0, drawn, fixed)
    is_exp = kind == EXPONENTIAL
    m_lo = jnp.where(is_exp, params.exp_m[0], params.linear_m[0])
    m_hi = jnp.where(is_exp, params.exp_m[1], params.linear_m[1])
    b_lo = jnp.where(is_exp, params.exp_b[0], params.linear_b[0])
    b_hi = jnp.where(is_exp, params.exp_b[1], params.linear_b[1])
    freq = 1.0 + jnp.floor(u[3 : 3 + 2 * NUM_MODES] * 4.0).reshape(NUM_MODES, 2)
    phase = u[3 + 2 * NUM_MODES :]
    return Substrate(
        kind=kind,
        m=(m_lo + u[1] * (m_hi - m_lo)).astype(jnp.float32),
        b=(b_lo + u[2] * (b_hi - b_lo)).astype(jnp.float32),
        freq=freq.astype(jnp.float32),
        phase=phase.astype(jnp.float32),
    )


def intensity(sub: Substrate, pos: jax.Array, width, height) -> jax.Array:
    """Intensity I at positions ``pos [..., 2]`` (pixels) -> ``[...]`` float32, strictly positive."""
    x = pos[..., 0]
    y = pos[..., 1]
    lin = sub.m * x + sub.b
    # Clamp the exponent so extreme parameters outside the ranges cannot overflow float32.
    expo = sub.b * jnp.exp(jnp.minimum(sub.m * x, 80.0))
    t = x[..., None] * (sub.freq[:, 0] / width) + y[..., None] * (sub.freq[:, 1] / height) + sub.phase
    g = jnp.mean(periodic_wave(t), axis=-1)
    rnd = lin * (1.0 + RANDOM_AMPLITUDE * g)
    return jnp.where(sub.kind == EXPONENTIAL, expo, jnp.where(sub.kind == RANDOM, rnd, lin))


def periodic_wave(t: jax.Array) -> jax.Array:
    """Parabolic sine of period 1: w(t) = ±16·v·(1/2 − v), v = t mod 1/2, sign + on [0, 1/2).

    Smooth (C¹), zero-mean, in [−1, 1], peak at t = 1/4; within 6% of sin(2πt) and, unlike sin, a
    handful of multiply-adds on XLA:CPU (``sin`` was the most expensive op of a step).
    """
    u = t - jnp.floor(t)
    v = jnp.where(u < 0.5, u, u - 0.5)
    return jnp.where(u < 0.5, 16.0, -16.0) * v * (0.5 - v)


def reference_intensity(sub: Substrate, width) -> jax.Array:
    """Largest intensity on [0, W] (normaliser I_ref): m·W+b, b·exp(m·W) or (m·W+b)(1+a)."""
    lin = sub.m * width + sub.b
    expo = sub.b * jnp.exp(jnp.minimum(sub.m * width, 80.0))
    return jnp.where(
        sub.kind == EXPONENTIAL, expo, jnp.where(sub.kind == RANDOM, lin * (1.0 + RANDOM_AMPLITUDE), lin)
    )


def hill_length(gamma, alpha, intensity_parent) -> jax.Array:
    """Protrusion length of the Hill law L = γ / (1 + (α / I)²) (docs/design.md §4)."""
    return gamma / (1.0 + jnp.square(alpha / intensity_parent))
