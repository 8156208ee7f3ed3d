"""Meta-gradient reward-component weighting: weights that maximise the true return (issue 16).

The component-weighting source's weights (``weighting.py``) are trained through the same PPO surrogate that consumes them, which
gives them almost no signal (DESIGN section 3). Here the weights ``eta`` are learned bi-level instead:

* **inner step** (one policy update with the weighted advantages, on minibatch 1)::

      A_w      = sum_c w_c(eta) A_c                      (z-scored over the minibatch by default)
      g(eta)   = grad_theta L_clip(theta; A_w, minibatch 1)
      theta'   = optax.apply_updates(theta, tx.update(g, opt_state, theta))

* **outer objective** (the true return only, on minibatch 2, data the inner step did not use)::

      L_outer(eta) = L_clip(theta'(eta); A_total, minibatch 2)

* **update**: ``eta <- eta_tx(grad_eta L_outer)``, its own optax optimizer and learning rate.

``L_clip`` is the PPO clipped surrogate (``balancedrl.ppo``), or any ``policy_loss_fn`` you pass.
The gradient is exact: ``jax.grad`` through one differentiable optax update (online cross-validation of
Xu, van Hasselt & Silver 2018, "Meta-Gradient Reinforcement Learning"; intrinsic-reward parameters
trained through PPO updates in Zheng, Oh & Singh 2018, LIRPG; "learning to utilize shaping rewards",
Hu et al. 2020, BiPaRS).

**Cost**: one forward + backward of the inner loss, one forward + backward of the outer loss, and one
backward through the inner gradient (reverse over reverse, about two more backward passes): roughly 4
minibatch backward passes for two minibatches of data, i.e. about 2x the two plain PPO minibatch updates
it replaces when the trainer adopts ``theta'`` as its own update (``meta_gradient`` returns it);
``benchmarks/meta_gradient_cost.py`` measures it.

**Weight parameterisations** (``MetaGradientConfig.parameterization``):

* ``"softmax"``   -- ``eta = {"logits": [C]}``, ``w = softmax(logits)`` (init: zeros, w = 1/C);
* ``"signed"``    -- ``eta = {"weights": [C]}``, ``w = weights`` unconstrained, with a sign (init: 1/C);
* ``"attention"`` -- ``eta`` = the params of the component-weighting source's ``ComponentWeighting(C, use_attention=True)``
  (softmax base x softmax attention over the minibatch's mean ``|A_c|``), i.e. the state-conditioned
  rule of ``weighting.py`` trained by the meta-gradient instead of by the surrogate.

**Differentiating through Adam**: ``optax.adam`` evaluates ``sqrt(nu_hat + eps_root)``; with the default
``eps_root = 0`` the backward pass multiplies ``0 * inf`` (NaN) for every parameter whose gradient and
second moment are exactly 0 (a fresh optimizer state with an unused or frozen leaf). Build the inner
transform with ``optax.adam(lr, eps_root=1e-16)`` (does not change a float32 forward pass where
``nu_hat > 1e-9``). A fresh Adam state also makes the first update ``-lr * sign(g)``, whose derivative in
``g`` is ~0: the meta-gradient is informative once the inner optimizer's moments are populated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

import chex
import jax
import jax.numpy as jnp
import optax

from balancedrl.masked import masked_mean_std
from balancedrl.ppo import clipped_surrogate
from balancedrl.weighting import ComponentWeighting

__all__ = [
    "META_PARAMETERIZATIONS",
    "MetaGradientConfig",
    "clipped_surrogate_loss_fn",
    "combine_advantages",
    "component_weights",
    "inner_update",
    "make_eta_optimizer",
    "meta_gradient",
    "meta_gradient_step",
    "meta_outer_loss",
    "meta_weights_init",
]

META_PARAMETERIZATIONS = ("softmax", "signed", "attention")


@dataclass(frozen=True)
class MetaGradientConfig:
    """Static configuration (hashable: close over it or pass it as a static argument).

    num_components: C. parameterization: one of ``META_PARAMETERIZATIONS``. total_index: the column of
    ``adv_components`` holding the advantage of the true ``total`` reward (0 in ``REWARD_COMPONENTS``).
    normalize_advantages: z-score the combined (inner) and the total (outer) advantage over the masked-in
    rows of each minibatch (the trainer's convention; ``"attention"`` always does). eps: std guard.
    adv_key / mask_key: the batch fields holding the component advantages ``[B, C]`` and the optional row
    mask ``[B]`` (``mask_key=None``: no mask). A batch is a mapping or any object with those attributes
    (e.g. a NamedTuple minibatch); a missing mask field means all rows count.
    """

    num_components: int
    parameterization: str = "softmax"
    total_index: int = 0
    normalize_advantages: bool = True
    eps: float = 1e-8
    adv_key: str = "adv_components"
    mask_key: str | None = "mask"

    def __post_init__(self):
        c = self.num_components
        if not isinstance(c, int) or c < 1:
            raise ValueError(f"MetaGradientConfig.num_components={c!r}: must be an int >= 1")
        if self.parameterization not in META_PARAMETERIZATIONS:
            raise ValueError(f"MetaGradientConfig.parameterization={self.parameterization!r}: allowed "
                             f"{list(META_PARAMETERIZATIONS)}")
        if not isinstance(self.total_index, int) or not 0 <= self.total_index < c:
            raise ValueError(f"MetaGradientConfig.total_index={self.total_index!r}: must be an int in "
                             f"[0, num_components={c})")
        if self.parameterization == "attention" and not self.normalize_advantages:
            raise ValueError("MetaGradientConfig.normalize_advantages=False is not available with "
                             "parameterization='attention' (ComponentWeighting always z-scores); allowed: True")
        if not self.eps > 0:
            raise ValueError(f"MetaGradientConfig.eps={self.eps!r}: must be > 0")


def meta_weights_init(config: MetaGradientConfig, key=None):
    """Initial ``eta``: softmax logits 0 (w = 1/C), signed weights 1/C, or ComponentWeighting params.

    ``key`` is needed for ``"attention"`` only (the Dense layer's init).
    """
    c = config.num_components
    if config.parameterization == "softmax":
        return {"logits": jnp.zeros((c,), jnp.float32)}
    if config.parameterization == "signed":
        return {"weights": jnp.full((c,), 1.0 / c, jnp.float32)}
    if key is None:
        raise ValueError("meta_weights_init: parameterization='attention' needs a PRNG key (key=None given)")
    variables = ComponentWeighting(c, use_attention=True).init(key, jnp.zeros((2, c), jnp.float32))
    return variables["params"]


def _check_eta(eta, config):
    c = config.num_components
    need = {"softmax": "logits", "signed": "weights"}.get(config.parameterization)
    if need is None:
        if "base_logits" not in eta:
            raise ValueError(f"eta for parameterization='attention' must be ComponentWeighting params with "
                             f"'base_logits'; got keys {sorted(eta)}")
        return
    if need not in eta:
        raise ValueError(f"eta for parameterization={config.parameterization!r} needs key {need!r}; got keys "
                         f"{sorted(eta)}")
    if jnp.shape(eta[need]) != (c,):
        raise ValueError(f"eta[{need!r}] has shape {jnp.shape(eta[need])}; expected ({c},) for "
                         f"num_components={c}")


def _field(batch, key, required):
    if key is None:
        return None
    if isinstance(batch, Mapping):
        if key in batch:
            return batch[key]
    elif hasattr(batch, key):
        return getattr(batch, key)
    if required:
        raise ValueError(f"batch has no field {key!r}")
    return None


def _batch_adv_mask(batch, config, name):
    adv_components = _field(batch, config.adv_key, False)
    if adv_components is None:
        raise ValueError(f"{name} has no field {config.adv_key!r} (config.adv_key): the component advantages "
                         "[B, C]")
    chex.assert_rank(adv_components, 2)
    if adv_components.shape[-1] != config.num_components:
        raise ValueError(f"{name}[{config.adv_key!r}] has {adv_components.shape[-1]} components (shape "
                         f"{adv_components.shape}); config.num_components={config.num_components}")
    return adv_components, _field(batch, config.mask_key, False)


def _weight_of_rows(mask, adv):
    return jnp.ones(adv.shape[:1], jnp.float32) if mask is None else jnp.asarray(mask, jnp.float32)


def _zscore(x, w, eps):
    mean, std = masked_mean_std(x, w)
    return jnp.where(w > 0, (x - mean) / (std + eps), 0.0)


def component_weights(eta, config: MetaGradientConfig, adv_components=None, mask=None):
    """``w(eta) [C]``. ``"attention"`` needs the minibatch (``adv_components``, ``mask``) it conditions on."""
    _check_eta(eta, config)
    if config.parameterization == "softmax":
        return jax.nn.softmax(eta["logits"])
    if config.parameterization == "signed":
        return eta["weights"]
    if adv_components is None:
        raise ValueError("component_weights: parameterization='attention' needs adv_components")
    _, info = ComponentWeighting(config.num_components, use_attention=True, eps=config.eps).apply(
        {"params": eta}, adv_components, mask)
    return info["final_weights"]


def combine_advantages(eta, adv_components, config: MetaGradientConfig, mask=None):
    """``(A_w [B], w [C])``: ``A_w = sum_c w_c(eta) A_c``, z-scored over masked-in rows if configured.

    Masked-out rows of ``A_w`` are 0 when normalising. Differentiable in ``eta``.
    """
    _check_eta(eta, config)
    adv = jnp.asarray(adv_components)
    if config.parameterization == "attention":
        combined, info = ComponentWeighting(config.num_components, use_attention=True, eps=config.eps).apply(
            {"params": eta}, adv, mask)
        return combined, info["final_weights"]
    w = component_weights(eta, config)
    combined = adv @ w.astype(adv.dtype)
    if config.normalize_advantages:
        combined = _zscore(combined, _weight_of_rows(mask, adv).astype(adv.dtype), config.eps)
    return combined, w


def _total_advantage(adv_components, config, mask):
    a = jax.lax.stop_gradient(adv_components[:, config.total_index])
    if config.normalize_advantages:
        a = _zscore(a, _weight_of_rows(mask, adv_components).astype(a.dtype), config.eps)
    return a


def clipped_surrogate_loss_fn(logp_fn: Callable, clip_eps: float, logp_old_key: str = "logp_old",
                              mask_key: str | None = "mask") -> Callable:
    """A ``policy_loss_fn`` from a log-prob function: ``logp_fn(theta, batch) -> logp_new`` (shape of the
    batch's ``logp_old``); loss = ``ppo.clipped_surrogate(logp_new, logp_old, A, clip_eps, mask)``.
    For hybrid per-node actions write your own ``policy_loss_fn`` around ``ppo.hybrid_policy_loss`` with
    the same signature ``(theta, batch, advantages) -> (loss, metrics)``.
    """

    def policy_loss_fn(theta, batch, advantages):
        logp_new = logp_fn(theta, batch)
        if _field(batch, logp_old_key, False) is None:
            raise ValueError(f"batch has no field {logp_old_key!r} (the behaviour policy's log-probs)")
        return clipped_surrogate(logp_new, _field(batch, logp_old_key, True), advantages, clip_eps,
                                 _field(batch, mask_key, False))

    return policy_loss_fn


def _prefixed(prefix, metrics):
    return {f"{prefix}{k}": v for k, v in metrics.items()}


def inner_update(eta, theta, theta_opt_state, batch_inner, *, policy_loss_fn: Callable,
                 tx: optax.GradientTransformation, config: MetaGradientConfig):
    """The inner step ``theta' = theta + tx.update(grad_theta L(theta; A_w(eta)))``, differentiable in eta.

    ``batch_inner`` holds ``adv_components [B, C]`` (and optionally ``mask [B]``; field names in
    ``config``) plus whatever ``policy_loss_fn(theta, batch, advantages) -> (loss, metrics)`` reads (the
    loss applies the mask itself). Returns
    ``(theta', theta_opt_state', metrics)``; metrics: ``inner_loss``, ``weights [C]``, and the policy
    loss's metrics prefixed ``inner_``. Cost: one forward + backward pass of the policy loss.
    """
    adv_c, mask = _batch_adv_mask(batch_inner, config, "batch_inner")
    adv_w, w = combine_advantages(eta, adv_c, config, mask)
    (loss, pm), grads = jax.value_and_grad(policy_loss_fn, has_aux=True)(theta, batch_inner, adv_w)
    updates, new_opt_state = tx.update(grads, theta_opt_state, theta)
    new_theta = optax.apply_updates(theta, updates)
    metrics = {"inner_loss": loss, "weights": w, **_prefixed("inner_", pm)}
    return new_theta, new_opt_state, metrics


def meta_outer_loss(eta, theta, theta_opt_state, batch_inner, batch_outer, *, policy_loss_fn: Callable,
                    tx: optax.GradientTransformation, config: MetaGradientConfig):
    """``L_outer(eta) = L(theta'(eta); A_total, batch_outer)`` -> ``(loss, aux)``.

    ``aux = (theta', theta_opt_state', metrics)``; metrics add ``outer_loss`` and the outer policy loss's
    metrics prefixed ``outer_``. The outer advantage is the ``total_index`` column of
    ``batch_outer``'s component advantages (treated as data), z-scored if configured.
    """
    adv_c, mask = _batch_adv_mask(batch_outer, config, "batch_outer")
    new_theta, new_opt_state, metrics = inner_update(eta, theta, theta_opt_state, batch_inner,
                                                     policy_loss_fn=policy_loss_fn, tx=tx, config=config)
    a_total = _total_advantage(adv_c, config, mask)
    loss, pm = policy_loss_fn(new_theta, batch_outer, a_total)
    metrics = {**metrics, "outer_loss": loss, **_prefixed("outer_", pm)}
    return loss, (new_theta, new_opt_state, metrics)


def meta_gradient(eta, theta, theta_opt_state, batch_inner, batch_outer, *, policy_loss_fn: Callable,
                  tx: optax.GradientTransformation, config: MetaGradientConfig):
    """``(grad_eta L_outer, (theta', theta_opt_state', metrics))``; see ``meta_outer_loss``.

    The returned ``theta'`` / ``theta_opt_state'`` are the inner step's result with the current weights: a
    trainer may adopt them as its own update of minibatch 1 (no extra cost). ``theta`` is not
    differentiated (its gradient would be the policy update, not the weights').
    """
    _check_eta(eta, config)
    return jax.grad(meta_outer_loss, has_aux=True)(
        eta, theta, theta_opt_state, batch_inner, batch_outer, policy_loss_fn=policy_loss_fn, tx=tx,
        config=config)


def make_eta_optimizer(learning_rate, max_grad_norm: float = 0.5) -> optax.GradientTransformation:
    """The weights' own optimizer: ``clip_by_global_norm(max_grad_norm) -> adam(learning_rate)``, the same
    recipe as the ``"weighting"`` group of ``balancedrl.optim.make_optimizer`` (the component-weighting source: clip 0.5)."""
    if not max_grad_norm > 0:
        raise ValueError(f"make_eta_optimizer: max_grad_norm must be > 0, got {max_grad_norm}")
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(learning_rate))


def meta_gradient_step(eta, eta_opt_state, theta, theta_opt_state, batch_inner, batch_outer, *,
                       policy_loss_fn: Callable, tx: optax.GradientTransformation,
                       eta_tx: optax.GradientTransformation, config: MetaGradientConfig):
    """One meta-gradient update of the component weights -> ``(eta', eta_opt_state', metrics)``.

    ``eta' = eta + eta_tx.update(grad_eta L_outer(theta'(eta)))`` (``meta_gradient``). ``theta`` and its
    optimizer state are read, not changed. metrics (all prefixed ``meta_``): ``meta_outer_loss``,
    ``meta_inner_loss``, ``meta_grad_norm``, ``meta_weights [C]`` (before the update; for
    ``"attention"``, the final weights on the inner minibatch), and the inner/outer policy-loss metrics
    (``meta_inner_*``, ``meta_outer_*``). Cost: about 4 minibatch backward passes (module docstring).
    """
    grads, (_, _, m) = meta_gradient(eta, theta, theta_opt_state, batch_inner, batch_outer,
                                     policy_loss_fn=policy_loss_fn, tx=tx, config=config)
    updates, new_eta_opt_state = eta_tx.update(grads, eta_opt_state, eta)
    new_eta = optax.apply_updates(eta, updates)
    metrics: dict[str, Any] = {f"meta_{k}": v for k, v in m.items()}
    metrics["meta_grad_norm"] = optax.tree.norm(grads)
    return new_eta, new_eta_opt_state, metrics
