"""Unitary scalarisation and fixed weights: the baselines every balancer must beat.

``sum``: ``g = sum_k g_k`` (weights 1). ``mean``: ``g = (1/K) sum_k g_k``. ``fixed``: ``g = sum_k w_k g_k``
with given weights. Kurin et al. 2022 ("In Defense of the Unitary Scalarization for Deep Multi-Task
Learning") and Xin et al. 2022 ("Do Current Multi-Task Optimization Methods in Deep Learning Even Help?")
found tuned unitary scalarisation matches the specialised methods. Cost: one backward pass (loss values only).
"""

from __future__ import annotations

import jax.numpy as jnp

from balancedrl.balancers.base import Balancer, loss_balancer


def make_sum() -> Balancer:
    return loss_balancer("sum", lambda losses, state, key: (jnp.ones_like(losses, jnp.float32), state, {}))


def make_mean() -> Balancer:
    return loss_balancer(
        "mean",
        lambda losses, state, key: (jnp.full(losses.shape, 1.0 / losses.shape[0], jnp.float32), state, {}),
    )


def make_fixed(weights=(1.0,)) -> Balancer:
    """Given weights ``w`` (one per balanced loss; the count is checked when the losses arrive)."""
    w = jnp.asarray(weights, jnp.float32)
    if w.ndim != 1 or not bool(jnp.all(jnp.isfinite(w))):
        raise ValueError(f"balancer 'fixed': weights = {weights!r} must be a 1-D list of finite numbers")

    def check(num_losses):
        if num_losses != w.shape[0]:
            raise ValueError(f"balancer 'fixed' has {w.shape[0]} weights but receives {num_losses} losses")

    def init(num_losses, params):
        check(num_losses)
        return ()

    def weighting(losses, state, key):
        check(losses.shape[0])
        return w, state, {}

    return loss_balancer("fixed", weighting, init)
