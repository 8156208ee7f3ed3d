"""Uncertainty weighting (Kendall, Gal, Cipolla; CVPR 2018), in LibMTL's ``UW`` form.

Learnable log-variances ``s`` (one per loss, initialised to -0.5 as in LibMTL)::

    total = sum_k  L_k / (2 exp(s_k)) + s_k / 2       =>   weights w_k = 1 / (2 exp(s_k)),   grads = sum_k w_k g_k

``s`` is a parameter of LibMTL's model, stepped by the model's optimiser; here the balancer state holds it
and its own optimiser, ``torch.optim.Adam(lr, weight_decay)`` (coupled L2 decay, betas (0.9, 0.999), eps 1e-8),
with the gradient ``d total / d s_k = 1/2 - L_k / (2 exp(s_k))``. ``lr`` and ``weight_decay`` are therefore
explicit hyper-parameters, standing for the outer model's optimiser; their defaults are LibMTL's (lr 1e-4,
weight decay 1e-5). The weights of a call come from ``s`` before that call's step, as in LibMTL (backward, then
``optimizer.step()``).

Cost: one backward pass (loss values only; ``requires_grads`` is False), plus O(K) work.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from balancedrl.balancers._weight_optim import adam_step, check_hyper, torch_adam
from balancedrl.balancers.base import Balancer, loss_balancer


class UncertaintyState(NamedTuple):
    log_var: jax.Array  # [K] s
    opt_state: Any


def make_uncertainty(lr: float = 1e-4, weight_decay: float = 1e-5, init_log_var: float = -0.5) -> Balancer:
    """Uncertainty weighting with LibMTL's defaults; see the module docstring."""
    check_hyper("uncertainty", "lr", lr, "a finite number > 0", lambda v: v > 0)
    check_hyper(
        "uncertainty",
        "weight_decay",
        weight_decay,
        "a finite number >= 0",
        lambda v: v >= 0,
    )
    check_hyper("uncertainty", "init_log_var", init_log_var, "a finite number", lambda v: True)
    opt = torch_adam(float(lr), float(weight_decay))

    def init(num_losses, params=None):
        s = jnp.full((num_losses,), init_log_var, jnp.float32)
        return UncertaintyState(s, opt.init(s))

    def weighting(losses, state, key):
        losses = jnp.asarray(losses, jnp.float32)
        if losses.shape != state.log_var.shape:
            raise ValueError(
                f"balancer 'uncertainty' was initialised for {state.log_var.shape[0]} losses, got {losses.shape}"
            )
        w = 0.5 * jnp.exp(-state.log_var)
        ds = 0.5 - losses * w
        s, opt_state = adam_step(opt, ds, state.opt_state, state.log_var, jnp.asarray(True))
        return w, UncertaintyState(s, opt_state), {"log_var": state.log_var}

    return loss_balancer("uncertainty", weighting, init)
