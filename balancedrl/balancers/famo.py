"""FAMO: Fast Adaptive Multitask Optimization (Liu, Liu, Jin, Stone, Liu; NeurIPS 2023).

Weights (loss values only)::

    z = softmax(xi),   D_k = L_k - m_k + 1e-8,   c = sum_k z_k / D_k,
    loss = sum_k z_k log(D_k) / c      =>      grads = sum_k w_k g_k,   w_k = z_k / (c D_k)

(``z`` and ``c`` are constants; the weights sum to 1.) The minimum losses ``m`` are 0, as in the authors' code.
The logits ``xi`` learn from how much each log-loss fell over the parameter step::

    delta_k = log D_k(before the step) - log D_k(after the step)
    xi <- Adam(lr=w_lr, weight_decay=gamma) step with gradient  J_softmax(xi)^T delta = z * (delta - <z, delta>)

``torch.optim.Adam``'s coupled L2 decay, betas (0.9, 0.999), eps 1e-8. Defaults are the authors' ``famo.py``:
``gamma = 0.01``, ``w_lr = 0.025``, ``max_norm = 1.0``.

Call sequence. The reference, per step ``t``, runs ``backward(L(theta_t))`` (weights from ``xi_t``), the
optimiser step to ``theta_{t+1}``, then ``update(L(theta_{t+1}))`` (``xi_t -> xi_{t+1}``). Here ``update`` is
called once per step with the current losses only, so the logit step is delayed by one call: the state keeps
the previous call's losses, and call ``t + 1`` (losses ``L(theta_{t+1})``) first performs the reference's
``update(L(theta_{t+1}))`` against the stored ``L(theta_t)``, then computes the weights from ``xi_{t+1}`` --
exactly the reference's ``backward(L(theta_{t+1}))``. Call 0 makes no logit step. So the sequence of weights is
the reference's whenever the loss the reference re-evaluates after the step equals the loss passed to the next
call (same batch); with a fresh minibatch per call, ``delta`` also carries the batch-to-batch change.

``max_norm``: the authors' ``backward`` clips the global norm of the resulting gradient to ``max_norm``
(``torch.nn.utils.clip_grad_norm_``: scale ``min(1, max_norm / (norm + 1e-6))``). That needs the gradient:
when ``per_loss_grads`` are given it is applied here (folded into ``info["weights"]``); in the loss-only path
(``grads`` is None, the trainer's default for FAMO) the trainer's own global-norm clip plays that part.
``max_norm = 0`` turns it off.

Losses below ``m`` (negative PPO losses, where the reference's ``log`` is NaN) are floored: ``D_k = max(L_k -
m_k, 0) + 1e-8``; this equals the reference wherever the reference is finite.

Cost: one backward pass (loss values only; ``requires_grads`` is False), plus O(K) work.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from balancedrl.balancers._weight_optim import adam_step, check_hyper, torch_adam
from balancedrl.balancers.base import Balancer, combine, gramian


class FAMOState(NamedTuple):
    logits: jax.Array  # [K] xi
    opt_state: Any  # Adam state of the logits
    prev_losses: jax.Array  # [K] losses of the previous call
    has_prev: jax.Array  # bool: is prev_losses set (False only before the first call)


def _log_gap(losses):
    return jnp.log(jnp.maximum(losses, 0.0) + 1e-8)


def make_famo(gamma: float = 0.01, w_lr: float = 0.025, max_norm: float = 1.0) -> Balancer:
    """FAMO with the authors' defaults; see the module docstring for the formula and the call sequence."""
    check_hyper("famo", "gamma", gamma, "a finite number >= 0", lambda v: v >= 0)
    check_hyper("famo", "w_lr", w_lr, "a finite number > 0", lambda v: v > 0)
    check_hyper("famo", "max_norm", max_norm, "a number >= 0 (0: no clip)", lambda v: v >= 0)
    opt = torch_adam(float(w_lr), float(gamma))

    def init(num_losses, params=None):
        logits = jnp.zeros((num_losses,), jnp.float32)
        return FAMOState(logits, opt.init(logits), jnp.zeros((num_losses,), jnp.float32), jnp.asarray(False))

    def update(per_loss_grads, losses, state, key):
        losses = jax.lax.stop_gradient(jnp.asarray(losses, jnp.float32))
        if losses.shape != state.logits.shape:
            raise ValueError(
                f"balancer 'famo' was initialised for {state.logits.shape[0]} losses, got {losses.shape}"
            )
        # The reference's update(curr_loss), delayed to this call (see the module docstring).
        delta = _log_gap(state.prev_losses) - _log_gap(losses)
        z = jax.nn.softmax(state.logits)
        dxi = z * (delta - jnp.sum(z * delta))
        logits, opt_state = adam_step(opt, dxi, state.opt_state, state.logits, state.has_prev)
        # The reference's backward(losses).
        z = jax.nn.softmax(logits)
        gap = jnp.maximum(losses, 0.0) + 1e-8
        c = jnp.sum(z / gap)
        w = z / (c * gap)
        info = {"logits": logits, "task_weights": z}
        if per_loss_grads is None:
            grads = None
        else:
            if max_norm > 0:
                sq = w @ gramian(per_loss_grads) @ w
                norm = jnp.sqrt(jnp.maximum(sq, 0.0))
                clip = jnp.minimum(1.0, max_norm / (norm + 1e-6))
                w = w * clip
                info["clip_scale"] = clip
            grads = combine(w, per_loss_grads)
        new_state = FAMOState(logits, opt_state, losses, jnp.asarray(True))
        return grads, new_state, {**info, "weights": w}

    return Balancer("famo", init, update, requires_grads=False)
