"""GradNorm (Chen, Badrinarayanan, Lee, Rabinovich; ICML 2018), in LibMTL's ``GradNorm`` form.

Weights ``w = K softmax(s)`` (LibMTL renormalises them to sum to K through a softmax of learnable scales ``s``,
initialised to 1). With the per-loss gradient norms ``n_k = ||g_k||`` (constants) and the loss ratios to the
initial losses ``L_k(0)``::

    G_k = w_k n_k,   Gbar = mean_k G_k,   r_k = (L_k / L_k(0)) / mean_j (L_j / L_j(0)),
    L_grad = sum_k | G_k - stop_gradient(Gbar r_k^alpha) |,      grads = sum_k w_k g_k

``s`` takes one ``torch.optim.Adam(lr, weight_decay)`` step (coupled L2 decay, betas (0.9, 0.999), eps 1e-8) with
``d L_grad / d s`` (``jax.grad`` over ``s``, the norms being inputs); the weights of a call come from ``s``
before that step, as in LibMTL. In LibMTL ``s`` is stepped by the model's optimiser, so ``lr`` and
``weight_decay`` are explicit hyper-parameters standing for it; defaults are LibMTL's (lr 1e-4, weight decay
1e-5) and its ``alpha = 1.5``.

Warm-up. LibMTL runs plain summation (weights 1, no step of ``s``) for the whole first epoch and uses that
epoch's mean training losses as ``L_k(0)``. Here the first ``warmup_steps`` calls do the same: weights 1, no
step, and ``L_k(0)`` is the mean of their losses. The default 1 is the paper's ``L_k(0)``, the first losses.

Guards where the reference is NaN: losses are floored at 0 and ``L_k(0)`` at 1e-8; if every ratio is 0 the
targets are 0. Wherever the reference is finite these change nothing.

Cost: K backward passes (the per-loss gradients, for their norms) plus a K x K Gramian.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from balancedrl.balancers._weight_optim import adam_step, check_hyper, torch_adam
from balancedrl.balancers.base import Balancer, combine, per_loss_norms


class GradNormState(NamedTuple):
    scales: jax.Array  # [K] s, weights K softmax(s)
    opt_state: Any
    initial_losses: jax.Array  # [K] L(0), accumulated over the warm-up
    count: jax.Array  # int32, calls so far


def make_gradnorm(
    alpha: float = 1.5, lr: float = 1e-4, weight_decay: float = 1e-5, warmup_steps: int = 1
) -> Balancer:
    """GradNorm with LibMTL's defaults; see the module docstring."""
    check_hyper("gradnorm", "alpha", alpha, "a finite number >= 0", lambda v: v >= 0)
    check_hyper("gradnorm", "lr", lr, "a finite number > 0", lambda v: v > 0)
    check_hyper("gradnorm", "weight_decay", weight_decay, "a finite number >= 0", lambda v: v >= 0)
    check_hyper(
        "gradnorm",
        "warmup_steps",
        warmup_steps,
        "an integer >= 1",
        lambda v: isinstance(warmup_steps, int) and v >= 1,
    )
    opt = torch_adam(float(lr), float(weight_decay))

    def init(num_losses, params=None):
        s = jnp.ones((num_losses,), jnp.float32)
        return GradNormState(s, opt.init(s), jnp.zeros((num_losses,), jnp.float32), jnp.zeros((), jnp.int32))

    def update(per_loss_grads, losses, state, key):
        if per_loss_grads is None:
            raise ValueError("balancer 'gradnorm' needs per_loss_grads (requires_grads is True), got None")
        losses = jax.lax.stop_gradient(jnp.asarray(losses, jnp.float32))
        k = state.scales.shape[0]
        if losses.shape != (k,):
            raise ValueError(f"balancer 'gradnorm' was initialised for {k} losses, got {losses.shape}")
        warm = state.count < warmup_steps
        initial = jnp.where(warm, state.initial_losses + losses / warmup_steps, state.initial_losses)

        norms = per_loss_norms(per_loss_grads)
        ratio = jnp.maximum(losses, 0.0) / jnp.maximum(initial, 1e-8)
        mean_ratio = jnp.mean(ratio)
        r = jnp.where(mean_ratio > 0, ratio / jnp.where(mean_ratio > 0, mean_ratio, 1.0), 0.0)

        def gradnorm_loss(s):
            g = k * jax.nn.softmax(s) * norms
            target = jax.lax.stop_gradient(jnp.mean(g) * r**alpha)
            return jnp.sum(jnp.abs(g - target))

        loss_grad, ds = jax.value_and_grad(gradnorm_loss)(state.scales)
        scales, opt_state = adam_step(opt, ds, state.opt_state, state.scales, ~warm)
        w = jnp.where(warm, jnp.ones((k,), jnp.float32), k * jax.nn.softmax(state.scales))
        new_state = GradNormState(scales, opt_state, initial, state.count + 1)
        info = {"weights": w, "grad_norms": norms, "gradnorm_loss": jnp.where(warm, 0.0, loss_grad)}
        return combine(w, per_loss_grads), new_state, info

    return Balancer("gradnorm", init, update, requires_grads=True)
