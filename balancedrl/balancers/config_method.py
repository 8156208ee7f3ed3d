"""ConFIG: conflict-free update (Liu, Chu & Thuerey, ICLR 2025, "ConFIG: Towards Conflict-free Training of
Physics Informed Neural Networks", Eq. 2), as TorchJD's ``ConFIG`` (default preference vector: ones), whose
numbers these are. With unit rows ``u_k = g_k / ||g_k||`` (zero rows stay zero) stacked in ``U``::

    b = pinv(U) 1,   e = b / ||b||,   g = (sum_k <g_k, e>) e.

``e`` has equal cosine with every (independent) gradient; the length is the sum of the projections. Through
the Gramian: ``pinv(U) = U^T pinv(C)`` with ``C = U U^T`` the cosine matrix, so ``b = J^T a`` with
``a = D^+ pinv(C) 1`` and ``g = (1^T G a / a^T G a) J^T a``: a weighting ``w = a (1^T G a) / (a^T G a)``.
``pinv(C)`` comes from a Jacobi eigen-decomposition (no LAPACK) with eigenvalues ``<= rank_rtol * max``
dropped (``C`` is scale-free, so mis-scaled gradients cost no precision).

Cost: K backward passes plus a ``K x K`` Gramian and one ``K x K`` Jacobi decomposition.
"""

from __future__ import annotations

import jax.numpy as jnp

from balancedrl.balancers.base import Balancer, gramian_balancer
from balancedrl.balancers.small_linalg import psd_pinv

__all__ = ["make_config", "config_weights"]

# Eigenvalues of the cosine matrix below this (relative) are round-off of dependent unit rows.
RANK_RTOL = 1e-5


def config_weights(G: jnp.ndarray, rank_rtol: float = RANK_RTOL) -> jnp.ndarray:
    """Weights ``[K]`` with ``sum_k w_k g_k`` equal to the ConFIG update."""
    diag = jnp.maximum(jnp.diagonal(G), 0.0)
    nz = diag > 0
    d_inv = jnp.where(nz, 1.0 / jnp.sqrt(jnp.where(nz, diag, 1.0)), 0.0)
    cos = d_inv[:, None] * G * d_inv[None, :]
    a = d_inv * (psd_pinv(cos, rank_rtol) @ jnp.ones_like(d_inv))
    ga = G @ a
    sq = a @ ga  # ||b||^2
    # TorchJD normalises b by max(||b||, 1e-12): g = (1^T G a) / max(||b||, 1e-12)^2 J^T a.
    return a * jnp.sum(ga) / jnp.maximum(sq, 1e-24)


def make_config() -> Balancer:
    """ConFIG (TorchJD ``ConFIG`` with its default preference vector of ones)."""

    def weighting(G, losses, state, key):
        return config_weights(G), state, {}

    return gramian_balancer("config", weighting)
