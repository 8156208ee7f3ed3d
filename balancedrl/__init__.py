"""balancedrl: balanced policy optimisation for hybrid discrete-continuous actions and multi-component
rewards, in JAX.

The loss library is re-exported here (``import balancedrl as brl; brl.gae(...)``); environments live in
``balancedrl.envs``, networks in ``balancedrl.networks`` and the trainer in ``balancedrl.training``.
"""

from balancedrl import balancers, envs, meta_weighting
from balancedrl.advantages import awr_weights, gae, group_normalize, group_sizes
from balancedrl.balancers.grad_scaling import (
    GradScaleConfig,
    GradScaleState,
    adaptive_weights,
    balanced_grads,
    grad_scale_init,
    grad_scale_update,
    loss_grad_norms,
)
from balancedrl.distributions import (
    categorical_entropy,
    categorical_kl,
    categorical_log_prob,
    categorical_sample,
    gaussian_entropy,
    gaussian_kl,
    gaussian_log_prob,
    gaussian_sample,
    hybrid_log_prob,
    masked_logits,
    squash,
)
from balancedrl.entropy import hybrid_entropy_loss, linear_schedule
from balancedrl.normalization import (
    RewardNormState,
    RunningStats,
    normalize,
    reward_norm_apply,
    reward_norm_init,
    reward_norm_update,
    running_stats_init,
    running_stats_update,
)
from balancedrl.optim import make_optimizer
from balancedrl.ppo import clipped_surrogate, clipped_value_loss, hybrid_policy_loss
from balancedrl.types import REWARD_COMPONENTS, HybridAction, Observation
from balancedrl.weighting import ComponentWeighting, num_weighting_params, weight_regularizer

__version__ = "0.1.0"

__all__ = [
    "balancers",
    "envs",
    "meta_weighting",
    "REWARD_COMPONENTS",
    "ComponentWeighting",
    "GradScaleConfig",
    "GradScaleState",
    "HybridAction",
    "Observation",
    "RewardNormState",
    "RunningStats",
    "adaptive_weights",
    "awr_weights",
    "balanced_grads",
    "categorical_entropy",
    "categorical_kl",
    "categorical_log_prob",
    "categorical_sample",
    "clipped_surrogate",
    "clipped_value_loss",
    "gae",
    "gaussian_entropy",
    "gaussian_kl",
    "gaussian_log_prob",
    "gaussian_sample",
    "grad_scale_init",
    "grad_scale_update",
    "group_normalize",
    "group_sizes",
    "hybrid_entropy_loss",
    "hybrid_log_prob",
    "hybrid_policy_loss",
    "linear_schedule",
    "loss_grad_norms",
    "make_optimizer",
    "masked_logits",
    "normalize",
    "num_weighting_params",
    "reward_norm_apply",
    "reward_norm_init",
    "reward_norm_update",
    "running_stats_init",
    "running_stats_update",
    "squash",
    "weight_regularizer",
]
