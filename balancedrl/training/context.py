"""What the trainer's pure functions need to know that is not an array: one static record per run.

:class:`TrainContext` is built once by :func:`balancedrl.training.trainer.make_train` and passed explicitly
to the module-level steps (``rollout.rollout_step``, ``targets.compute_targets``, ``losses.loss_vector``,
``learner.learn``), so each of them can be called and tested alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax.numpy as jnp
import numpy as np

from balancedrl.balancers import Balancer
from balancedrl.training.adapters import EnvAdapter
from balancedrl.training.config import Config
from balancedrl.weighting import ComponentWeighting


@dataclass(frozen=True, eq=False)
class LossLayout:
    """Which named losses the balancer sees and the fixed coefficients of all of them.

    ``names``: every loss in the trainer's loss vector (``losses.LOSS_NAMES``); ``balanced``: indices the
    balancer weighs (``trainer.balancer.losses``); ``fixed_coefs [L]``: each loss's fixed coefficient (used
    for every loss not balanced, and by the ``fixed`` balancer).
    """

    names: tuple[str, ...]
    balanced: tuple[int, ...]
    fixed_coefs: np.ndarray

    @property
    def balanced_names(self) -> tuple[str, ...]:
        return tuple(self.names[i] for i in self.balanced)

    @property
    def rest_coefs(self) -> np.ndarray:
        """``[L]`` fixed coefficients with the balanced losses zeroed: the part no balancer touches."""
        c = np.array(self.fixed_coefs, np.float32)
        c[list(self.balanced)] = 0.0
        return c

    def full_coefs(self, weights):
        """``[L]`` coefficients of one update: the balancer's ``weights [K]`` at the balanced losses, the
        fixed coefficients elsewhere."""
        return jnp.asarray(self.rest_coefs).at[jnp.asarray(self.balanced)].set(weights)


@dataclass(frozen=True, eq=False)
class TrainContext:
    cfg: Config
    adapter: EnvAdapter
    policy_apply: Callable  # (network variables, obs) -> network output
    weighting: ComponentWeighting
    tx: Any  # optax GradientTransformation
    balancer: Balancer
    layout: LossLayout
    # (network variables, obs) -> [..., D] embeddings of the frozen feature extractors (WSA's frozen CNNs),
    # computed once per rollout step and passed back to ``policy_apply(vars, obs, cache)`` by every epoch;
    # None when the network has none
    cache_apply: Callable | None = None

    @property
    def low(self):
        return jnp.asarray(self.adapter.cont_low, jnp.float32)

    @property
    def high(self):
        return jnp.asarray(self.adapter.cont_high, jnp.float32)

    @property
    def owner(self) -> tuple:
        return tuple(self.adapter.param_owner)
