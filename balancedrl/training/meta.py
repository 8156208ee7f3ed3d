"""The trainer's reward-component weights in ``meta_gradient`` and ``fixed`` modes (issue 16).

``trainer.advantage_weighting.mode``:

* ``meta_gradient``: ``params["weighting"]`` holds ``eta`` (``balancedrl.meta_weighting``; softmax logits,
  signed weights or ComponentWeighting params). Per minibatch ``j`` of an epoch the learner
  (:func:`balancedrl.training.learner.minibatch_pass`) takes its ordinary step on ``mb_j``, except that the
  gradient of the ``"weighting"`` group is replaced by the meta-gradient::

      A_w(eta)       = zscore(sum_c w_c(eta) A_c)                         on mb_j (learner rows)
      theta'(eta)    = theta + tx.update(grad_theta L_clip(theta; A_w, mb_j), opt_state)
      L_outer(eta)   = L_clip(theta'(eta); zscore(A_total), mb_{j+1 mod n})
      grads["weighting"] = grad_eta L_outer

  ``tx`` is the trainer's own optimizer (the network group's clip + Adam with its schedule and state; built
  with ``eps_root=1e-16`` in this mode so that it can be differentiated), and ``eta`` then moves through
  the optimizer's own ``"weighting"`` group (clip + Adam at ``weight_learning_rate``): online
  cross-validation (Xu, van Hasselt & Silver 2018), the weights judged only by the true return on data the
  inner step did not use. ``L_clip`` is the H-PPO clipped surrogate of both heads with the fixed
  discrete/continuous coefficients (``trainer.gradient_scaling.base_*_weight``, normalised). The network's own
  update is unchanged (the balanced losses with the combined advantage ``A_w``, ``eta`` held constant).
* ``fixed``: constant weights ``fixed_weights`` (e.g. the oracle weights of a Durotaxis shaping variant).

The default ``softmax_attention`` mode never calls this module.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from balancedrl import policy as hp
from balancedrl.meta_weighting import MetaGradientConfig, combine_advantages, meta_gradient, meta_weights_init
from balancedrl.ppo import hybrid_policy_loss
from balancedrl.training.state import LEARNER, MiniBatch

__all__ = ["EPS_ROOT", "check_fixed_weights", "fixed_config", "meta_combine", "meta_config", "meta_init",
           "meta_weight_gradient", "uses_meta"]

# Adam's eps_root in meta_gradient mode (balancedrl.meta_weighting: differentiating through Adam).
EPS_ROOT = 1e-16


def uses_meta(cfg) -> bool:
    return cfg.trainer.advantage_weighting.mode == "meta_gradient"


def meta_config(cfg, num_components: int) -> MetaGradientConfig:
    """The static ``MetaGradientConfig``: column 0 is ``total``; batches are dicts with ``adv_components``
    and ``mask`` (the learner's rows)."""
    return MetaGradientConfig(num_components, cfg.trainer.advantage_weighting.meta_parameterization)


def fixed_config(num_components: int) -> MetaGradientConfig:
    """Constant weights are the ``signed`` parameterisation held fixed."""
    return MetaGradientConfig(num_components, "signed")


def check_fixed_weights(cfg, num_components: int, component_names=()) -> None:
    """``fixed_weights`` has one entry per component (only known once the environment is)."""
    from balancedrl.training.config import ConfigError

    aw = cfg.trainer.advantage_weighting
    if aw.mode == "fixed" and len(aw.fixed_weights) != num_components:
        raise ConfigError(
            f"config key 'trainer.advantage_weighting.fixed_weights' = {aw.fixed_weights!r} has "
            f"{len(aw.fixed_weights)} entries; allowed: {num_components}, one per reward component of "
            f"{cfg.env.name} {tuple(component_names)}")


def meta_init(cfg, num_components: int, key):
    """Initial ``eta`` (``params["weighting"]`` in meta_gradient mode)."""
    return meta_weights_init(meta_config(cfg, num_components), key)


def meta_combine(cfg, eta, adv_c, mask):
    """``(A [B], info)`` of the meta_gradient or fixed mode: ``zscore(sum_c w_c A_c)`` over ``mask``, ``eta``
    held constant (the network's step does not train it). ``info`` has the trainer's three weight keys: the
    weights in ``final_weights``; ``base_weights`` / ``attention_weights`` are NaN."""
    C = adv_c.shape[-1]
    aw = cfg.trainer.advantage_weighting
    if aw.mode == "fixed":
        mcfg, eta = fixed_config(C), {"weights": jnp.asarray(aw.fixed_weights, jnp.float32)}
    else:
        mcfg, eta = meta_config(cfg, C), jax.lax.stop_gradient(eta)
    adv, w = combine_advantages(eta, adv_c, mcfg, mask)
    nan = jnp.full((C,), jnp.nan, jnp.float32)
    return adv, {"base_weights": nan, "attention_weights": nan, "final_weights": jnp.asarray(w, jnp.float32)}


def _surrogate_fn(ctx):
    """``policy_loss_fn(params, batch, adv) -> (loss, metrics)``: the H-PPO clipped surrogate of both heads
    (fixed coefficients) on the batch's learner rows."""
    tc = ctx.cfg.trainer
    gs = tc.gradient_scaling
    z = gs.base_discrete_weight + gs.base_continuous_weight
    wd, wc = gs.base_discrete_weight / z, gs.base_continuous_weight / z

    def loss_fn(params, batch, adv):
        mb: MiniBatch = batch["mb"]
        out = ctx.policy_apply(params["network"], mb.obs)
        mask = ctx.adapter.slot_mask(mb.obs)
        lp_d, lp_c, used = hp.log_probs(
            out.discrete_logits, out.cont_mean, out.cont_log_std, mb.discrete, mb.raw, mask, ctx.owner)
        d, c, _ = hybrid_policy_loss(lp_d, mb.logp_d, lp_c, mb.logp_c, adv, mask, used, tc.clip_eps,
                                     joint=tc.joint_ratio, sample_mask=batch["mask"])
        return wd * d + wc * c, {}

    return loss_fn


def _meta_batch(mb: MiniBatch):
    return {"mb": mb, "adv_components": mb.adv_components, "mask": mb.actor_id == LEARNER}


def meta_weight_gradient(ctx, params, opt_state, mb: MiniBatch, mb_next: MiniBatch):
    """``(grad_eta L_outer, metrics)`` for the inner minibatch ``mb`` and the outer ``mb_next`` (module
    docstring). ``params`` / ``opt_state``: the trainer's, before this minibatch's step. metrics:
    ``meta_outer_loss``, ``meta_inner_loss``, ``meta_grad_norm``."""
    mcfg = meta_config(ctx.cfg, ctx.adapter.num_components)
    grads, (_, _, m) = meta_gradient(
        params["weighting"], params, opt_state, _meta_batch(mb), _meta_batch(mb_next),
        policy_loss_fn=_surrogate_fn(ctx), tx=ctx.tx, config=mcfg)
    sq = sum(jnp.sum(jnp.square(g)) for g in jax.tree_util.tree_leaves(grads))
    metrics = {"meta_outer_loss": m["outer_loss"], "meta_inner_loss": m["inner_loss"],
               "meta_grad_norm": jnp.sqrt(sq)}
    return grads, metrics
