"""Entropy regularisation for hybrid action spaces (the entropy-schedule source).

* :func:`linear_schedule` -- the entropy-schedule source's coefficient schedule
  ``coeff(t) = start * (1 - p) + end * p``, ``p = min(t / decay_steps, 1)``
  (0.1 -> 0.0802 at 100 -> 0.0505 at 250 -> 0.001 from 500 with start 0.1, end 0.001, 500 steps).
* :func:`hybrid_entropy_loss` -- separate discrete / continuous entropy bonuses plus a collapse penalty.

The entropy-schedule source's "policy collapse" example is self-consistent with ``coeff = 0.0802`` (the schedule's value at
step 100), not 0.1: normal case H_d = 0.8, H_c = 1.1 gives -0.064160 / -0.044110 / total -0.108270;
low case H_d = 0.1 - 0.14 / 3 = 0.05333, H_c = 1.0 gives discrete -0.004277, penalty 0.140000,
continuous -0.040100, total 0.095623. (With coeff 0.1 the normal case would need H_d = 0.6416,
H_c = 0.8822, and the low case is then inconsistent: discrete -0.004277 means H_d = 0.04277, whose
penalty would be 0.1717, not 0.14.)
"""

from __future__ import annotations

import chex
import jax.numpy as jnp

__all__ = ["linear_schedule", "hybrid_entropy_loss"]


def linear_schedule(start, end, decay_steps):
    """Return ``f(step) = start * (1 - p) + end * p`` with ``p = clip(step / decay_steps, 0, 1)`` (the entropy-schedule source).

    Jittable in ``step``; usable as an optax schedule.
    """
    if decay_steps <= 0:
        raise ValueError(f"linear_schedule: decay_steps must be > 0, got {decay_steps}")

    def schedule(step):
        p = jnp.clip(jnp.asarray(step, jnp.float32) / decay_steps, 0.0, 1.0)
        return start * (1.0 - p) + end * p

    return schedule


def hybrid_entropy_loss(discrete_entropy, continuous_entropy, coeff, discrete_weight=1.0,
                        continuous_weight=0.5, min_entropy=0.1, penalty_scale=3.0,
                        continuous_min_entropy=None):
    """Hybrid entropy loss (to be ADDED to the total loss; minimising it raises entropy). The entropy-schedule source::

        discrete           = -coeff * discrete_weight * H_d
        continuous         = -coeff * continuous_weight * H_c
        discrete_penalty   = max(0, min_entropy - H_d) * penalty_scale
        continuous_penalty = max(0, continuous_min_entropy - H_c) * penalty_scale   (0 if None)
        total              = discrete + continuous + discrete_penalty + continuous_penalty

    ``discrete_entropy`` / ``continuous_entropy`` are scalars (mean entropies of the batch; vmap for
    more). Returns ``(total, metrics)`` with metrics ``discrete``, ``continuous``, ``discrete_penalty``,
    ``continuous_penalty``, ``total``, ``current_entropy_coeff``, ``discrete_entropy``,
    ``continuous_entropy``.
    """
    chex.assert_rank([discrete_entropy, continuous_entropy], 0)
    h_d = jnp.asarray(discrete_entropy, jnp.float32)
    h_c = jnp.asarray(continuous_entropy, jnp.float32)
    coeff = jnp.asarray(coeff, jnp.float32)
    discrete = -coeff * discrete_weight * h_d
    continuous = -coeff * continuous_weight * h_c
    d_pen = jnp.maximum(0.0, min_entropy - h_d) * penalty_scale
    if continuous_min_entropy is None:
        c_pen = jnp.zeros((), jnp.float32)
    else:
        c_pen = jnp.maximum(0.0, continuous_min_entropy - h_c) * penalty_scale
    total = discrete + continuous + d_pen + c_pen
    metrics = {
        "discrete": discrete, "continuous": continuous, "discrete_penalty": d_pen,
        "continuous_penalty": c_pen, "total": total, "current_entropy_coeff": coeff,
        "discrete_entropy": h_d, "continuous_entropy": h_c,
    }
    return total, metrics
