"""Multi-loss balancers behind one optax-shaped protocol (:mod:`balancedrl.balancers.base`) and one
registry: ``balancers.make(name, **hyper)``."""

from balancedrl.balancers.base import (
    Balancer,
    combine,
    gramian,
    gramian_balancer,
    loss_balancer,
    per_loss_norms,
)
from balancedrl.balancers.registry import available, make, register

__all__ = [
    "Balancer",
    "available",
    "combine",
    "gramian",
    "gramian_balancer",
    "loss_balancer",
    "make",
    "per_loss_norms",
    "register",
]
