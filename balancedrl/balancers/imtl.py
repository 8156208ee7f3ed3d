"""IMTL-G: impartial multi-task learning, gradient part (Liu et al., ICLR 2021, "Towards Impartial
Multi-task Learning"), in the form of Quinton & Rey 2024 ("Jacobian Descent for Multi-Objective
Optimization") that TorchJD's ``IMTLG`` implements and whose numbers these are::

    d_k = ||g_k||,   v = pinv(G) d,   w = v / sum(v)   (w = 0 when sum(v) = 0),   g = sum_k w_k g_k.

For linearly independent rows ``g`` has the same projection ``1 / sum(v)`` onto every unit gradient
``g_k / ||g_k||`` (the paper's impartiality); ``pinv`` extends it to dependent rows and zero rows.

Numerics (no LAPACK): write ``G = D C D`` with ``D = diag(d)`` and ``C`` the cosine matrix. When the
non-zero rows are independent (smallest eigenvalue of ``C`` above ``rank_rtol``), ``pinv(G) d = D^-1 C^-1 1``
on those rows and 0 on zero rows: this form is exact and does not lose the small rows when the norms span
1e-3 to 1e3 (``G`` itself then has a condition number ~1e12, beyond float32). Otherwise (dependent rows)
``pinv(G)`` comes from a Jacobi eigen-decomposition of ``G / tr(G)`` keeping its ``r`` largest eigenvalues,
``r`` the rank read off ``C`` (eigenvalues ``> rank_rtol * max``) less the zero rows. ``sum(v)`` counts as
zero below 1e-12 (TorchJD's test) or below ``1e-5 sum |v|`` (float32 round-off of an exactly cancelling sum,
e.g. ``g`` and ``-g``).

Cost: K backward passes plus a ``K x K`` Gramian; two ``K x K`` Jacobi decompositions.
"""

from __future__ import annotations

import jax.numpy as jnp

from balancedrl.balancers.base import Balancer, gramian_balancer
from balancedrl.balancers.small_linalg import jacobi_eigh

__all__ = ["make_imtl_g", "imtl_g_weights"]

# Eigenvalues of the cosine matrix (or of G / tr G) below this are round-off: float32 cosines are good to
# a few 1e-7, so K * 1e-7 errors stay well below it.
RANK_RTOL = 1e-5
# sum(v) relative to sum |v| below this is a cancelling sum.
SUM_RTOL = 1e-5


def imtl_g_weights(G: jnp.ndarray, rank_rtol: float = RANK_RTOL) -> jnp.ndarray:
    """``pinv(G) d / sum(pinv(G) d)`` with ``d = sqrt(diag G)``, or zeros when the sum vanishes."""
    k = G.shape[0]
    diag = jnp.maximum(jnp.diagonal(G), 0.0)
    nz = diag > 0
    d = jnp.where(nz, jnp.sqrt(jnp.where(nz, diag, 1.0)), 0.0)
    d_inv = jnp.where(nz, 1.0 / jnp.where(nz, d, 1.0), 0.0)

    # Independent rows: D^-1 C^-1 1 on the non-zero rows (zero rows get an identity block, then v = 0).
    cos = d_inv[:, None] * G * d_inv[None, :]
    cos = jnp.where(nz[:, None] & nz[None, :], cos, jnp.eye(k, dtype=G.dtype))
    lam, vec = jacobi_eigh(cos)
    independent = jnp.min(lam) > rank_rtol * jnp.max(lam)
    lam_safe = jnp.where(lam > 0, lam, 1.0)
    v_indep = d_inv * ((vec / lam_safe) @ (vec.T @ nz.astype(G.dtype)))

    # Dependent rows: the pseudo-inverse of G itself (scaled to unit trace; pinv scales back by 1/tr). Its
    # rank r is read off the scale-free cosine matrix (zero rows add unit eigenvalues there, not in G), and
    # the r largest eigenvalues of G are kept: a threshold on G's own spectrum cannot tell float32 round-off
    # from the genuinely small eigenvalues of rows whose norms differ by orders of magnitude.
    rank = jnp.sum(lam > rank_rtol * jnp.max(lam)) - jnp.sum(~nz)
    tr = jnp.sum(diag)
    tr_safe = jnp.where(tr > 0, tr, 1.0)
    lam_g, vec_g = jacobi_eigh(G / tr_safe)
    position = jnp.argsort(jnp.argsort(-lam_g))  # 0 for the largest eigenvalue
    keep = (position < rank) & (lam_g > 0)
    inv = jnp.where(keep, 1.0 / jnp.where(keep, lam_g, 1.0), 0.0)
    v_dep = ((vec_g * inv) @ vec_g.T) @ (d / tr_safe)

    v = jnp.where(independent, v_indep, v_dep)
    s = jnp.sum(v)
    cancelled = (jnp.abs(s) < 1e-12) | (jnp.abs(s) <= SUM_RTOL * jnp.sum(jnp.abs(v)))
    return jnp.where(cancelled, jnp.zeros_like(v), v / jnp.where(cancelled, 1.0, s))


def make_imtl_g() -> Balancer:
    """IMTL-G (TorchJD ``IMTLG``; no hyper-parameters)."""

    def weighting(G, losses, state, key):
        return imtl_g_weights(G), state, {}

    return gramian_balancer("imtl_g", weighting)
