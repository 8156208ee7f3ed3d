"""Learnable reward-component weighting (the component-weighting source).

``ComponentWeighting`` combines per-component advantages ``[batch, C]`` into one advantage ``[batch]``::

    base      = softmax(base_logits)                                   # base_logits init ones [C]
    attention = softmax(Dense_C(mean_batch |A_c|))                     # C*C + C params
    final     = base * attention                                       # NOT renormalised (the component-weighting source)
    combined  = sum_c final_c * A_c ;  combined = (combined - mean) / (std + eps)

``final`` is the element-wise product of two softmaxes, exactly as in the component-weighting source; it is not renormalised
to sum 1 (the final z-scoring makes the overall scale irrelevant anyway). Six components give
6 + 36 + 6 = 48 parameters (the component-weighting source's "48 extra parameters").

No ``stop_gradient`` anywhere: ``combined`` is differentiable in ``base_logits`` and in the Dense layer,
so a loss built on it (e.g. the PPO surrogate) trains the weights. Expect that gradient to be tiny
(DESIGN section 3): because ``combined`` is normalised to mean 0, ``-mean(ratio * combined)`` has exactly
zero gradient when every ratio is 1 (the first minibatch of each PPO update), and only the deviation of
the ratios from 1 carries signal afterwards. ``weight_regularizer`` is the component-weighting source's ``coeff * ||w||_2``.
"""

from __future__ import annotations

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from balancedrl.masked import masked_mean_std

__all__ = ["ComponentWeighting", "weight_regularizer", "num_weighting_params"]


class ComponentWeighting(nn.Module):
    """Softmax base weights (x attention over advantage magnitudes) combining C advantage components.

    ``__call__(adv_components [batch, C], mask=None [batch]) -> (combined [batch], info)``.
    ``info`` holds ``base_weights``, ``attention_weights`` (all ones when ``use_attention=False``) and
    ``final_weights`` (each ``[C]``). The mean/std of the output, and the mean |A_c| fed to the
    attention layer, are taken over masked-in rows only; masked-out rows of ``combined`` are 0.
    Output std is the population std (ddof=0).
    """

    num_components: int
    use_attention: bool = True
    eps: float = 1e-8

    def __post_init__(self):
        c = self.num_components
        if not isinstance(c, int) or isinstance(c, bool) or c < 1:
            raise ValueError(f"ComponentWeighting: num_components = {c!r} must be an int >= 1")
        super().__post_init__()

    @nn.compact
    def __call__(self, adv_components, mask=None):
        c = self.num_components
        chex.assert_rank(adv_components, 2)
        if adv_components.shape[-1] != c:
            raise ValueError(
                f"adv_components has {adv_components.shape[-1]} components (shape "
                f"{adv_components.shape}); ComponentWeighting(num_components={c}) expects {c}")
        adv = jnp.asarray(adv_components, jnp.float32)
        if mask is None:
            w = jnp.ones(adv.shape[:1], jnp.float32)
        else:
            chex.assert_shape(mask, adv.shape[:1])
            w = jnp.asarray(mask, jnp.float32)
        base_logits = self.param("base_logits", nn.initializers.ones, (c,), jnp.float32)
        base = jax.nn.softmax(base_logits)
        if self.use_attention:
            magnitudes = jnp.sum(w[:, None] * jnp.abs(adv), axis=0) / jnp.maximum(jnp.sum(w), 1.0)
            attention = jax.nn.softmax(nn.Dense(c, name="attention")(magnitudes))
            final = base * attention
        else:
            attention = jnp.ones((c,), jnp.float32)
            final = base
        combined = adv @ final
        mean, std = masked_mean_std(combined, w)
        combined = jnp.where(w > 0, (combined - mean) / (std + self.eps), 0.0)
        info = {"base_weights": base, "attention_weights": attention, "final_weights": final}
        return combined, info


def _find_base_logits(params):
    p = params
    for _ in range(3):
        if isinstance(p, dict) or hasattr(p, "keys"):
            if "base_logits" in p:
                return p["base_logits"]
            if "params" in p:
                p = p["params"]
                continue
        break
    raise KeyError("weight_regularizer: no 'base_logits' in params (pass the ComponentWeighting variables "
                   f"or their 'params' dict); top-level keys: {list(params.keys())}")


def weight_regularizer(params, coeff):
    """The component-weighting source's regulariser ``coeff * ||base_logits||_2`` (the L2 norm, not its square).

    Accepts the module's variables (``{"params": {...}}``) or the inner params dict. The norm uses a safe
    square root, so the gradient at ``base_logits = 0`` is 0 rather than NaN.
    """
    x = _find_base_logits(params)
    sq = jnp.sum(jnp.square(x))
    pos = sq > 0
    return coeff * jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)


def num_weighting_params(num_components, use_attention=True):
    """Parameter count: C base logits (+ C*C + C for the attention Dense). 6 components -> 48."""
    c = int(num_components)
    return c + (c * c + c if use_attention else 0)
