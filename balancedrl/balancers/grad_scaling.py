"""Adaptive gradient scaling between K losses: the source project's EMA gradient-norm rule, as a balancer.

For losses L_1..L_K with per-loss gradient norms n_k (EMA-smoothed)::

    s_k = clip(target / n_k, min_scale, max_scale)
    w_k = base_k * s_k / sum_j base_j * s_j            (weights sum to 1)

and the update uses ``sum_k w_k grad L_k``. With no clamp active the effective norms are
``w_k n_k = base_k target / Z`` (``Z = sum_j base_j s_j``): the rule equalises the gradient norms up to the
base weights, whose ratio then sets the ratio of the effective norms (``docs/techniques.md`` checks the
source's worked numbers). Cost: K backward passes from one forward pass (:mod:`.per_loss`).

State is an optax-style ``init`` / ``update`` pair with a ``NamedTuple`` state, so it jits, vmaps and
checkpoints. :func:`make_grad_scaling` wraps it in the :class:`~balancedrl.balancers.base.Balancer`
protocol; its base weights are normalised to sum 1 (the one base-weight rule, used in warm-up and after).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from balancedrl.balancers.base import Balancer, combine, per_loss_norms
from balancedrl.balancers.per_loss import per_loss_grads

__all__ = [
    "adaptive_weights", "GradScaleConfig", "GradScaleState", "grad_scale_init", "grad_scale_update",
    "loss_grad_norms", "balanced_grads", "make_grad_scaling",
]


def adaptive_weights(grad_norms, base_weights, target=1.0, min_scale=0.1, max_scale=10.0, eps=1e-8):
    """``scale_i = clip(target / (norm_i + eps), min_scale, max_scale)``;
    ``w_i = base_i * scale_i / sum_j base_j * scale_j``. Returns ``(weights [N], scales [N])``.

    A zero gradient norm gives ``scale = max_scale`` (no NaN). Base weights must be positive and finite:
    concrete ones are checked here (``ValueError``); traced ones (under ``jit``/``vmap``) cannot be, so a
    non-positive or non-finite traced base weight makes every returned weight NaN, which the training
    loop's non-finite check reports, instead of a silently wrong weighting.
    """
    chex.assert_rank([grad_norms, base_weights], 1)
    chex.assert_equal_shape([grad_norms, base_weights])
    if not isinstance(base_weights, jax.core.Tracer):
        b = np.asarray(base_weights, np.float64)
        if not np.all(np.isfinite(b) & (b > 0)):
            raise ValueError(f"adaptive_weights: base_weights = {b.tolist()} must all be positive and finite")
    norms = jnp.asarray(grad_norms, jnp.float32)
    base = jnp.asarray(base_weights, jnp.float32)
    scales = jnp.clip(target / (norms + eps), min_scale, max_scale)
    scaled = base * scales
    weights = scaled / jnp.maximum(jnp.sum(scaled), 1e-30)
    ok = jnp.all(jnp.isfinite(base) & (base > 0))
    return jnp.where(ok, weights, jnp.nan), scales


class GradScaleConfig(NamedTuple):
    """Adaptive gradient scaling settings (all may be pytree leaves, so a sweep can vmap over them).

    base_weights: ``[N]`` relative importance of the losses (source project: 0.7 discrete / 0.3 continuous).
    target: target gradient norm. momentum: EMA momentum. min_scale / max_scale: clamp on the scales.
    warmup_steps: number of updates that use the base weights unchanged.
    """

    base_weights: Any
    target: float = 1.0
    momentum: float = 0.9
    min_scale: float = 0.1
    max_scale: float = 10.0
    warmup_steps: int = 100


class GradScaleState(NamedTuple):
    """EMA of the per-loss gradient norms ``[N]`` and the number of updates seen (int32)."""

    ema_norms: jax.Array
    count: jax.Array


def grad_scale_init(num_losses):
    """Fresh state for ``num_losses`` losses (EMA zeros, count 0)."""
    if not isinstance(num_losses, int) or num_losses < 1:
        raise ValueError(f"grad_scale_init: num_losses must be an int >= 1, got {num_losses!r}")
    return GradScaleState(jnp.zeros((num_losses,), jnp.float32), jnp.zeros((), jnp.int32))


def grad_scale_update(state, grad_norms, cfg):
    """Update the EMA with this step's norms and return ``(weights, new_state, metrics)``.

    ``ema <- norms`` on the first observation (count == 0; avoids the bias of starting the EMA at 0),
    ``ema <- momentum * ema + (1 - momentum) * norms`` afterwards; ``count += 1``.
    While the count *before* this update is ``< warmup_steps`` the weights are the base weights unchanged
    (identity; give base weights summing to 1 to avoid a jump in loss scale when warm-up ends);
    afterwards ``adaptive_weights(ema, base, ...)`` (sum 1).
    metrics: ``gradient_scaling_active`` (float 0/1), ``scales`` (the adaptive scales, reported during
    warm-up too), ``ema_norms``, ``weights``.
    """
    chex.assert_rank(grad_norms, 1)
    chex.assert_equal_shape([grad_norms, state.ema_norms])
    norms = jnp.asarray(grad_norms, jnp.float32)
    base = jnp.asarray(cfg.base_weights, jnp.float32)
    chex.assert_equal_shape([norms, base])
    m = jnp.asarray(cfg.momentum, jnp.float32)
    ema = jnp.where(state.count == 0, norms, m * state.ema_norms + (1.0 - m) * norms)
    adaptive, scales = adaptive_weights(ema, base, cfg.target, cfg.min_scale, cfg.max_scale)
    active = state.count >= cfg.warmup_steps
    weights = jnp.where(active, adaptive, base)
    new_state = GradScaleState(ema, state.count + 1)
    metrics = {
        "gradient_scaling_active": active.astype(jnp.float32),
        "scales": scales,
        "ema_norms": ema,
        "weights": weights,
    }
    return weights, new_state, metrics


def loss_grad_norms(loss_fns, params):
    """Global L2 norm of ``jax.grad(fn)(params)`` for each scalar loss ``fn(params)``: ``[N]``.

    Convenience (one backward pass per loss); :func:`balanced_grads` does it with one forward pass.
    """
    if len(loss_fns) == 0:
        raise ValueError("loss_grad_norms: loss_fns is empty; pass at least one callable fn(params)")
    return jnp.stack([optax.tree.norm(jax.grad(fn)(params)) for fn in loss_fns])


def balanced_grads(vector_loss_fn, params, state, cfg, *args, has_aux=False):
    """Per-loss gradients once, adaptive weights, and the combined gradient ``sum_i w_i g_i``.

    ``vector_loss_fn(params, *args)`` returns the vector of the N losses ``[N]`` (and ``aux`` if
    ``has_aux``). One forward pass through ``jax.vjp``; the N per-loss gradients come from
    :func:`~balancedrl.balancers.per_loss.per_loss_grads` (one cotangent basis vector per loss); their global
    norms update the
    :class:`GradScaleState`; the final gradient reuses them (no extra backward pass). The weights are
    constants for the gradient (``stop_gradient``), so the result equals ``jax.grad`` of
    ``sum_i w_i L_i`` with ``w`` held fixed.

    Returns ``(grads, new_state, metrics)`` or ``(grads, new_state, metrics, aux)``; metrics:
    ``losses``, ``loss_grad_norms`` ``[N]``, ``weights`` ``[N]``, ``scales``, ``ema_norms``,
    ``gradient_scaling_active``. Memory: N copies of the gradient tree.
    """
    fn = lambda p: vector_loss_fn(p, *args)
    losses, per_loss, aux = per_loss_grads(fn, params, has_aux)
    chex.assert_rank(losses, 1)
    n = losses.shape[0]
    if state.ema_norms.shape != (n,):
        raise ValueError(f"balanced_grads: vector_loss_fn returned {n} losses but the GradScaleState tracks "
                         f"{state.ema_norms.shape[0]} (use grad_scale_init({n}))")
    norms = per_loss_norms(per_loss)
    weights, new_state, metrics = grad_scale_update(state, jax.lax.stop_gradient(norms), cfg)
    grads = combine(weights, per_loss)
    metrics = dict(metrics, losses=losses, loss_grad_norms=norms)
    if has_aux:
        return grads, new_state, metrics, aux
    return grads, new_state, metrics


def make_grad_scaling(
    base_weights=(0.7, 0.3),
    target: float = 1.0,
    momentum: float = 0.9,
    min_scale: float = 0.1,
    max_scale: float = 10.0,
    warmup_steps: int = 100,
) -> Balancer:
    """The adaptive gradient-scaling :class:`Balancer`. ``base_weights`` (one per balanced loss, positive)
    are normalised to sum 1. ``info``: ``weights``, ``scales``, ``ema_norms``, ``gradient_scaling_active``."""
    base = jnp.asarray(base_weights, jnp.float32)
    if base.ndim != 1 or not bool(jnp.all(jnp.isfinite(base) & (base > 0))):
        raise ValueError(
            f"balancer 'grad_scaling': base_weights = {base_weights!r} must be a 1-D list of positive numbers"
        )
    cfg = GradScaleConfig(base / jnp.sum(base), target, momentum, min_scale, max_scale, warmup_steps)

    def init(num_losses, params=None):
        if num_losses != base.shape[0]:
            raise ValueError(
                f"balancer 'grad_scaling' has {base.shape[0]} base weights but balances {num_losses} losses"
            )
        return grad_scale_init(num_losses)

    def update(per_loss, losses, state, key):
        weights, state, info = grad_scale_update(state, per_loss_norms(per_loss), cfg)
        return combine(weights, per_loss), state, info

    return Balancer("grad_scaling", init, update, requires_grads=True)
