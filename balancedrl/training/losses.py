"""The trainer's vector of named losses for one minibatch.

``loss_vector(ctx, params, mb, ent_coeff) -> (losses [6], metrics)`` in the order of :data:`LOSS_NAMES`:

* ``discrete``, ``continuous``: the H-PPO clipped surrogates of the two heads (Fan et al. 2019), on the
  advantage that :func:`combine_advantages` makes of the component advantages;
* ``value``: the clipped value loss, averaged over reward components;
* ``entropy``: minus the scheduled entropy bonus plus the collapse penalty (``balancedrl.entropy``);
* ``imitation``: advantage-weighted log-likelihood of the expert frames (expert guidance);
* ``regularizer``: the L2 regulariser of the learnable component weights (0 when they are off).

Which of them the balancer weighs, and the fixed coefficients of the others, are in
:class:`~balancedrl.training.context.LossLayout`.
"""

from __future__ import annotations

import jax.numpy as jnp

from balancedrl import policy as hp
from balancedrl.entropy import hybrid_entropy_loss
from balancedrl.masked import masked_mean, safe_sqrt
from balancedrl.ppo import clipped_value_loss, hybrid_policy_loss
from balancedrl.training.context import TrainContext
from balancedrl.training.meta import meta_combine
from balancedrl.training.state import LEARNER, MiniBatch
from balancedrl.weighting import weight_regularizer

LOSS_NAMES = ("discrete", "continuous", "value", "entropy", "imitation", "regularizer")


def fixed_coefficients(cfg) -> dict[str, float]:
    """Each loss's fixed coefficient: the surrogates' base weights normalised to sum 1, ``vf_coef``, 1 for
    the entropy term (its coefficients are inside it), ``imitation_coeff``, 1 for the regulariser."""
    tc = cfg.trainer
    gs = tc.gradient_scaling
    z = gs.base_discrete_weight + gs.base_continuous_weight
    return {
        "discrete": gs.base_discrete_weight / z,
        "continuous": gs.base_continuous_weight / z,
        "value": tc.vf_coef,
        "entropy": 1.0,
        "imitation": tc.expert_guidance.imitation_coeff,
        "regularizer": 1.0,
    }


def combine_advantages(ctx: TrainContext, w_vars, adv_c, mask):
    """One advantage ``[B]`` from component advantages ``[B, C]``: the learnable softmax + attention
    weighting when enabled, else the ``total`` component (or the component mean), normalised over the rows
    in ``mask`` (mean 0, std 1); in ``meta_gradient`` / ``fixed`` mode the weights of
    :func:`balancedrl.training.meta.meta_combine`."""
    aw = ctx.cfg.trainer.advantage_weighting
    C = adv_c.shape[-1]
    if aw.mode != "softmax_attention":  # meta_gradient / fixed weights (training/meta.py)
        return meta_combine(ctx.cfg, w_vars, adv_c, mask)
    if aw.enable_learnable_weights:
        return ctx.weighting.apply(w_vars, adv_c, mask)
    a = adv_c[:, 0] if aw.fallback == "total" else jnp.mean(adv_c, axis=-1)
    mean = masked_mean(a, mask)
    std = safe_sqrt(masked_mean(jnp.square(a - mean), mask))
    info = {k: jnp.full((C,), jnp.nan) for k in ("base_weights", "attention_weights", "final_weights")}
    return jnp.where(mask, (a - mean) / (std + 1e-8), 0.0), info


def loss_vector(ctx: TrainContext, params, mb: MiniBatch, ent_coeff):
    """``(losses [len(LOSS_NAMES)], metrics)`` for one minibatch (see the module docstring)."""
    tc = ctx.cfg.trainer
    er, aw = tc.entropy_regularization, tc.advantage_weighting
    cached = () if mb.frozen_emb is None else (mb.frozen_emb,)  # frozen CNN embeddings from the rollout
    out = ctx.policy_apply(params["network"], mb.obs, *cached)
    mask = ctx.adapter.slot_mask(mb.obs)
    lp_d, lp_c, used = hp.log_probs(
        out.discrete_logits, out.cont_mean, out.cont_log_std, mb.discrete, mb.raw, mask, ctx.owner
    )
    learner = mb.actor_id == LEARNER
    adv, w_info = combine_advantages(ctx, params["weighting"], mb.adv_components, learner)
    d_loss, c_loss, pm = hybrid_policy_loss(
        lp_d, mb.logp_d, lp_c, mb.logp_c, adv, mask, used, tc.clip_eps, joint=tc.joint_ratio, sample_mask=learner
    )
    v_loss, v_per = clipped_value_loss(out.values, mb.values, mb.returns, tc.vf_clip)
    h_d, h_c = hp.entropies(out.discrete_logits, out.cont_log_std, mask)
    ent_loss, em = hybrid_entropy_loss(
        masked_mean(h_d, learner),
        masked_mean(h_c, learner),
        ent_coeff,
        er.discrete_entropy_weight,
        er.continuous_entropy_weight,
        er.min_entropy_threshold,
        er.penalty_scale,
    )
    expert = ~learner
    imitation = -masked_mean(mb.awr_weight * (lp_d.sum(-1) + lp_c.sum(-1)), expert)
    reg = (
        weight_regularizer(params["weighting"], aw.weight_regularization)
        if aw.enable_learnable_weights and aw.mode == "softmax_attention"
        else jnp.zeros((), jnp.float32)
    )
    metrics = {
        "discrete_loss": d_loss,
        "continuous_loss": c_loss,
        "value_loss": v_loss,
        "imitation_loss": imitation,
        "weight_reg_loss": jnp.asarray(reg, jnp.float32),
        "discrete_entropy": em["discrete_entropy"],
        "continuous_entropy": em["continuous_entropy"],
        "discrete_penalty": em["discrete_penalty"],
        "continuous_penalty": em["continuous_penalty"],
        "entropy_loss": em["total"],
        "value_loss_per_component": v_per,
        "component_base_weights": w_info["base_weights"],
        "component_attention_weights": w_info["attention_weights"],
        "component_final_weights": w_info["final_weights"],
        "wsa_weights": jnp.mean(out.wsa_weights, axis=0) if out.wsa_weights.shape[-1] else out.wsa_weights[0],
        **pm,
    }
    losses = jnp.stack([d_loss, c_loss, v_loss, ent_loss, imitation, jnp.asarray(reg, jnp.float32)])
    return losses, metrics
