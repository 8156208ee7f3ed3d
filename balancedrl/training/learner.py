"""The learning phase of one update: epochs of shuffled minibatches, each a balanced gradient step.

Per minibatch the trainer forms the named loss vector ``L`` (:mod:`.losses`); the balancer weighs the
losses named in ``trainer.balancer.losses`` and the others keep their fixed coefficients
(:class:`~balancedrl.training.context.LossLayout`). Three kinds of step, chosen statically:

* **measured**: one forward pass, the K balanced per-loss gradients plus the gradient of the fixed rest
  (:func:`~balancedrl.balancers.per_loss.vjp_rows`), ``balancer.update`` combines them, and the per-loss
  gradient norms and cosines are logged;
* **reuse**: one backward pass of ``sum_k w_k L_k + rest`` with the weights of the last measured step (for
  balancers that need gradients, between two measurements when ``norm_refresh`` is ``epoch``);
* **loss-only**: one backward pass for balancers that need only loss values (sum, mean, fixed, FAMO,
  uncertainty): ``balancer.update`` sees the losses and its weights multiply them.

``trainer.balancer.norm_refresh``: ``minibatch`` measures on every minibatch, ``epoch`` on the first of each
epoch. Loss-only balancers are measured only when ``trainer.balancer.log_gradients`` asks for the gradient
diagnostics. The split is static, so it stays cheap under ``vmap`` (no ``lax.cond``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from balancedrl.balancers import gramian
from balancedrl.balancers.per_loss import vjp_rows
from balancedrl.masked import safe_sqrt
from balancedrl.training.context import TrainContext
from balancedrl.training.losses import loss_vector
from balancedrl.training.meta import meta_weight_gradient, uses_meta
from balancedrl.training.state import MiniBatch

# Metric names kept from the two-loss trainer (plots and earlier runs read them).
_LEGACY_INFO = {"ema_norms": "grad_norm", "scales": "scale"}
# Folded into each epoch's key to give the balancer its own random stream.
_BALANCER_STREAM = 0x62616C


class LearnCarry(NamedTuple):
    params: Any
    opt_state: Any
    balancer: Any
    weights: jax.Array  # [K] the balancer's last weights (reused between measurements)


def _nan(shape=()):
    return jnp.full(shape, jnp.nan, jnp.float32)


def gradient_diagnostics(ctx: TrainContext, G):
    """``{grad_norm/<loss>, grad_cosine/<a>|<b>}`` from the Gramian ``G [K, K]`` of the balanced losses'
    gradients (``G`` None: NaN, not measured)."""
    names = ctx.layout.balanced_names
    K = len(names)
    norms = _nan((K,)) if G is None else safe_sqrt(jnp.diagonal(G))
    out = {f"grad_norm/{n}": norms[i] for i, n in enumerate(names)}
    for n in ("discrete", "continuous"):  # the two-loss trainer's names
        out[f"{n}_grad_norm_raw"] = norms[names.index(n)] if n in names else _nan()
    for i in range(K):
        for j in range(i + 1, K):
            out[f"grad_cosine/{names[i]}|{names[j]}"] = jnp.nan if G is None else _cosine(G, norms, i, j)
    return out


def _cosine(G, norms, i: int, j: int):
    """``G_ij / (|g_i| |g_j|)`` in ``[-1, 1]``; 0 where either gradient is zero (a collapsed policy head), and
    clipped because a float32 Gramian entry of a ~1e-19 gradient is round-off, not a cosine."""
    denom = norms[i] * norms[j]
    cos = jnp.where(denom > 0, G[i, j] / jnp.where(denom > 0, denom, 1.0), 0.0)
    return jnp.clip(cos, -1.0, 1.0).astype(jnp.float32)


def balancer_metrics(ctx: TrainContext, coefs, info: dict, measured: bool):
    """Per-step metrics of the balancing: coefficients used, the balancer's own diagnostics (``[K]``
    vectors per loss, scalars as they are) and the names the two-loss trainer logged."""
    lay = ctx.layout
    names = lay.balanced_names
    m = {f"{n}_weight_used": coefs[lay.names.index(n)] for n in ("discrete", "continuous")}
    m.update({f"balancer_weight/{n}": coefs[i] for n, i in zip(names, lay.balanced)})
    K = len(names)
    for key, v in info.items():
        if key == "weights":
            continue
        v = jnp.asarray(v, jnp.float32)
        if v.shape == ():
            m[f"balancer/{key}"] = v
        elif v.shape == (K,):
            m.update({f"balancer/{key}/{n}": v[i] for i, n in enumerate(names)})
    for n in ("discrete", "continuous"):
        k = names.index(n) if n in names else None
        for key, suffix in _LEGACY_INFO.items():
            m[f"{n}_{suffix}"] = info[key][k] if (k is not None and key in info) else _nan()
    active = info.get("gradient_scaling_active", jnp.nan if not measured else 0.0)
    m["gradient_scaling_active"] = jnp.asarray(active, jnp.float32)
    return m


def _info_template(ctx: TrainContext, carry: LearnCarry):
    """NaN-filled ``info`` shaped like ``balancer.update``'s, for steps that do not call it."""
    K = len(ctx.layout.balanced)
    per_loss = (
        jax.tree_util.tree_map(lambda p: jax.ShapeDtypeStruct((K,) + p.shape, p.dtype), carry.params)
        if ctx.balancer.requires_grads
        else None
    )
    shapes = jax.eval_shape(
        ctx.balancer.update, per_loss, jax.ShapeDtypeStruct((K,), jnp.float32), carry.balancer,
        jax.ShapeDtypeStruct((2,), jnp.uint32),
    )[2]
    return jax.tree_util.tree_map(lambda s: jnp.full(s.shape, jnp.nan, jnp.float32), shapes)


def _apply(ctx: TrainContext, carry: LearnCarry, grads, losses, coefs, metrics, bstate, weights,
           weighting_grads=None):
    if weighting_grads is not None:  # meta_gradient mode: the weights follow the meta-gradient (training/meta.py)
        grads = {**grads, "weighting": weighting_grads}
    updates, opt_state = ctx.tx.update(grads, carry.opt_state, carry.params)
    params = optax.apply_updates(carry.params, updates)
    metrics = {**metrics, "grad_norm": optax.tree.norm(grads), "total_loss": jnp.dot(coefs, losses)}
    return LearnCarry(params, opt_state, bstate, weights), metrics


def measured_step(ctx: TrainContext, carry: LearnCarry, mb: MiniBatch, ent_coeff, key, weighting_grads=None):
    """Per-loss gradients from one forward pass, ``balancer.update``, diagnostics, optimizer step."""
    lay = ctx.layout
    K = len(lay.balanced)
    rest = lay.rest_coefs
    has_rest = bool(np.any(rest != 0))
    rows = np.eye(len(lay.names), dtype=np.float32)[list(lay.balanced)]
    cot = np.concatenate([rows, rest[None]]) if has_rest else rows
    losses, g, metrics = vjp_rows(lambda p: loss_vector(ctx, p, mb, ent_coeff), carry.params, cot, has_aux=True)
    per_loss = jax.tree_util.tree_map(lambda x: x[:K], g)
    bal = jnp.asarray(lay.balanced)
    grads, bstate, info = ctx.balancer.update(per_loss, losses[bal], carry.balancer, key)
    if has_rest:
        grads = jax.tree_util.tree_map(lambda a, b: a + b[K], grads, g)
    w = jnp.asarray(info["weights"], jnp.float32)
    coefs = lay.full_coefs(w)
    metrics = {
        **metrics,
        **balancer_metrics(ctx, coefs, info, measured=True),
        **gradient_diagnostics(ctx, gramian(per_loss)),
    }
    return _apply(ctx, carry, grads, losses, coefs, metrics, bstate, w, weighting_grads)


def reuse_step(ctx: TrainContext, carry: LearnCarry, mb: MiniBatch, ent_coeff, key, weighting_grads=None):
    """One backward pass of ``sum_k w_k L_k + rest`` with the last measured weights."""
    del key
    coefs = ctx.layout.full_coefs(carry.weights)

    def total(p):
        losses, m = loss_vector(ctx, p, mb, ent_coeff)
        return jnp.dot(coefs, losses), (losses, m)

    grads, (losses, metrics) = jax.grad(total, has_aux=True)(carry.params)
    info = _info_template(ctx, carry)
    metrics = {
        **metrics,
        **balancer_metrics(ctx, coefs, info, measured=False),
        **gradient_diagnostics(ctx, None),
    }
    return _apply(ctx, carry, grads, losses, coefs, metrics, carry.balancer, carry.weights, weighting_grads)


def loss_only_step(ctx: TrainContext, carry: LearnCarry, mb: MiniBatch, ent_coeff, key, weighting_grads=None):
    """One backward pass for a balancer that needs only the loss values."""
    lay = ctx.layout
    bal = jnp.asarray(lay.balanced)

    def total(p):
        losses, m = loss_vector(ctx, p, mb, ent_coeff)
        _, bstate, info = ctx.balancer.update(None, jax.lax.stop_gradient(losses[bal]), carry.balancer, key)
        coefs = lay.full_coefs(jax.lax.stop_gradient(jnp.asarray(info["weights"], jnp.float32)))
        return jnp.dot(coefs, losses), (losses, m, bstate, info, coefs)

    grads, (losses, metrics, bstate, info, coefs) = jax.grad(total, has_aux=True)(carry.params)
    metrics = {
        **metrics,
        **balancer_metrics(ctx, coefs, info, measured=True),
        **gradient_diagnostics(ctx, None),
    }
    return _apply(ctx, carry, grads, losses, coefs, metrics, bstate, coefs[bal], weighting_grads)


def step_kinds(ctx: TrainContext):
    """``(first, others)``: the step function of an epoch's first minibatch and of the others."""
    bc = ctx.cfg.trainer.balancer
    measure = ctx.balancer.requires_grads or bc.log_gradients
    between = reuse_step if ctx.balancer.requires_grads else loss_only_step
    first = measured_step if measure else loss_only_step
    others = measured_step if (measure and bc.norm_refresh == "minibatch") else between
    return first, others


def with_meta_gradient(step):
    """``step`` on ``(mb_j, mb_next)`` pairs with the weights' gradient replaced by the meta-gradient of the
    true return on ``mb_next`` (``trainer.advantage_weighting.mode: meta_gradient``; training/meta.py)."""

    def meta_step(ctx: TrainContext, carry: LearnCarry, pair, ent_coeff, key):
        mb, mb_next = pair
        g, mm = meta_weight_gradient(ctx, carry.params, carry.opt_state, mb, mb_next)
        carry, metrics = step(ctx, carry, mb, ent_coeff, key, weighting_grads=g)
        return carry, {**metrics, **mm}

    return meta_step


def minibatch_pass(ctx: TrainContext, carry: LearnCarry, shuffled: MiniBatch, ent_coeff, keys):
    """All minibatches of one epoch (leading axis ``num_minibatches``). In meta_gradient mode each step
    also reads the next minibatch (cyclically) as the meta-gradient's held-out data."""
    first, others = step_kinds(ctx)
    if uses_meta(ctx.cfg):
        same = first is others
        first = with_meta_gradient(first)
        others = first if same else with_meta_gradient(others)
        shuffled = (shuffled, jax.tree_util.tree_map(lambda x: jnp.roll(x, -1, axis=0), shuffled))

    def scan(step, c, xs, ks):
        return jax.lax.scan(lambda cc, x: step(ctx, cc, x[0], ent_coeff, x[1]), c, (xs, ks))

    if first is others:
        return scan(first, carry, shuffled, keys)
    head = jax.tree_util.tree_map(lambda x: x[0], shuffled)
    carry, m0 = first(ctx, carry, head, ent_coeff, keys[0])
    if keys.shape[0] == 1:
        return carry, jax.tree_util.tree_map(lambda x: x[None], m0)
    tail = jax.tree_util.tree_map(lambda x: x[1:], shuffled)
    carry, m = scan(others, carry, tail, keys[1:])
    return carry, {k: jnp.concatenate([m0[k][None], m[k]]) for k in m}


def learn(ctx: TrainContext, carry: LearnCarry, batch: MiniBatch, ent_coeff, key):
    """``update_epochs`` epochs over ``batch``; returns the carry and metrics averaged over epochs and
    minibatches (ignoring NaN: a metric measured on some minibatches only is the mean where measured)."""
    tc = ctx.cfg.trainer
    nmb = tc.num_minibatches
    N = batch.actor_id.shape[0]

    def epoch(c, k):
        perm = jax.random.permutation(k, N)
        shuffled = jax.tree_util.tree_map(lambda x: x[perm].reshape((nmb, N // nmb) + x.shape[1:]), batch)
        keys = jax.random.split(jax.random.fold_in(k, _BALANCER_STREAM), nmb)
        return minibatch_pass(ctx, c, shuffled, ent_coeff, keys)

    carry, m = jax.lax.scan(epoch, carry, jax.random.split(key, tc.update_epochs))
    return carry, jax.tree_util.tree_map(lambda x: jnp.nanmean(x, axis=(0, 1)), m)
