"""Helpers shared by the balancers that learn their own loss weights (FAMO, GradNorm, uncertainty weighting)."""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import optax


def torch_adam(lr: float, weight_decay: float = 0.0) -> optax.GradientTransformation:
    """``torch.optim.Adam(lr, weight_decay)`` as optax: coupled L2 decay (``g + wd * w`` before the moments),
    betas (0.9, 0.999), eps 1e-8 outside the square root, bias correction -- the references' weight optimiser."""
    return optax.chain(
        optax.add_decayed_weights(weight_decay),
        optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8),
        optax.scale(-lr),
    )


def adam_step(opt: optax.GradientTransformation, grad, opt_state, params, active):
    """One optimiser step on ``params`` where ``active`` (a traced bool) holds; otherwise params and optimiser
    state are left exactly as they were (as torch's Adam skips a parameter whose ``.grad`` is None)."""
    updates, new_state = opt.update(grad, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    pick = lambda new, old: jnp.where(active, new, old)  # noqa: E731
    return jax.tree_util.tree_map(pick, new_params, params), jax.tree_util.tree_map(
        pick, new_state, opt_state
    )


def check_hyper(name: str, key: str, value, allowed: str, ok: Callable[[float], bool]) -> None:
    """Raise a ValueError naming the balancer, the hyper-parameter, its value and what is allowed unless
    ``value`` is a real number (not a bool) for which ``ok(value)`` holds."""
    try:
        good = not isinstance(value, bool) and math.isfinite(float(value)) and bool(ok(float(value)))
    except (TypeError, ValueError):
        good = False
    if not good:
        raise ValueError(f"balancer {name!r}: {key} = {value!r} is not allowed; {key} must be {allowed}")
