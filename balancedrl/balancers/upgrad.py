"""UPGrad and DualProj: projections onto the dual cone of the per-loss gradients (Jacobian descent).

Quinton & Rey 2024, "Jacobian Descent for Multi-Objective Optimization" (arXiv:2406.16232); DualProj is the
projection of GEM (Lopez-Paz & Ranzato 2017, eq. 11). With ``J`` the ``[K, n]`` matrix of per-loss gradients
and ``G = J J^T``, the projection of ``J^T u`` onto the dual cone ``{x : J x >= 0}`` is ``J^T v`` where ``v``
solves the quadratic program (Prop. 1 of the paper)::

    v(u) = argmin_v  v^T G v   subject to  v >= u   (elementwise)

* ``upgrad``: project every row separately and combine: ``w = sum_i v(p_i e_i)``, ``grads = J^T w``.
* ``dualproj``: project the combination: ``w = v(p)``, ``grads = J^T w``.

``p`` is the preference vector (default ``1/K`` each). As in TorchJD 0.18.0 (``QuadprogProjector``) the QP is
solved on ``G' = G / tr(G) + reg_eps I`` (``G' = reg_eps I`` when ``tr(G) < norm_eps``): normalising makes
the weights scale-free, the ridge makes ``G'`` positive definite. Defaults are TorchJD's: ``norm_eps =
reg_eps = 1e-4``.

Solver: TorchJD calls quadprog. Here the KKT conditions are solved exactly by enumerating the ``2^K``
active sets: for each set ``F`` of indices held at the bound (``v_F = u_F``) the free part solves
``G'_SS v_S = -G'_SF u_F``; the answer is the set whose solution is primal feasible (``v_S >= u_S``) and dual
feasible (``(G' v)_F >= 0``), chosen as the smallest violation so rounding cannot leave it empty. The strictly
convex QP has one KKT point, so this is the quadprog answer up to rounding, at a fixed cost of ``2^K``
Cholesky solves of size ``K`` (``K <= 10`` allowed; the balanced loss count here is 2 or 4). Measured
against TorchJD (``tests/test_balancers_projection.py``), float32 here and float64 there: the output vector
agrees to ``4e-7 * max_k ||g_k||`` absolute (tested at ``2e-6``) on the reference set (random, aligned,
opposed, near-opposed, zero, all-zero and 1e-3..1e3 mis-scaled rows, K = 2, 3, 4, default and non-default
preference vectors).

Cost: K backward passes (the per-loss gradients), one ``K x K`` Gramian, ``O(2^K K^3)`` scalar work.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from balancedrl.balancers.base import Balancer, gramian_balancer
from balancedrl.balancers.small_linalg import spd_solve

__all__ = ["make_upgrad", "make_dualproj", "project_weights", "regularized_gramian"]

MAX_LOSSES = 10  # 2^K active sets are enumerated


def regularized_gramian(G: jax.Array, norm_eps: float, reg_eps: float) -> jax.Array:
    """TorchJD's ``G / tr(G) + reg_eps I`` (``reg_eps I`` when ``tr(G) < norm_eps``)."""
    tr = jnp.trace(G)
    small = tr < norm_eps
    Gn = jnp.where(small, jnp.zeros_like(G), G / jnp.where(small, 1.0, tr))
    return Gn + reg_eps * jnp.eye(G.shape[-1], dtype=G.dtype)


def project_weights(A: jax.Array, U: jax.Array) -> jax.Array:
    """``argmin_v v^T A v`` s.t. ``v >= u`` for each row ``u`` of ``U`` (``[R, K]``), ``A`` ``[K, K]`` SPD.

    Exact active-set enumeration (see the module docstring). Returns ``[R, K]``.
    """
    k = A.shape[-1]
    if k > MAX_LOSSES:
        raise ValueError(
            f"upgrad/dualproj enumerate 2^K active sets: K = {k} losses, at most {MAX_LOSSES} allowed"
        )
    free = jnp.asarray(np.array(list(itertools.product([0.0, 1.0], repeat=k)), np.float32), A.dtype)  # [S, K]
    both = free[:, :, None] * free[:, None, :]
    eye = jnp.eye(k, dtype=A.dtype)
    # Free block of A, identity on the bound indices: one K x K SPD system per active set.
    M = both * A + (1.0 - both) * eye  # [S, K, K]
    bound = 1.0 - free
    # rhs: free rows get -A_{S,F} u_F, bound rows get u_F.
    rhs = (
        free[:, None, :] * -jnp.einsum("ij,sj,rj->sri", A, bound, U) + bound[:, None, :] * U[None]
    )  # [S, R, K]
    V = spd_solve(M[:, None], rhs)  # [S, R, K]
    lam = jnp.einsum("ij,srj->sri", A, V)
    scale = jnp.max(jnp.abs(U), axis=-1)[None, :, None] + jnp.finfo(A.dtype).tiny
    primal = jnp.maximum(U[None] - V, 0.0) * free[:, None, :]
    dual = jnp.maximum(-lam, 0.0) * bound[:, None, :]
    violation = jnp.max((primal + dual) / scale, axis=-1)  # [S, R]
    best = jnp.argmin(violation, axis=0)  # [R]
    return jnp.take_along_axis(V, best[None, :, None], axis=0)[0]


def _preference(pref_vector, k: int, name: str) -> jax.Array:
    if pref_vector is None:
        return jnp.full((k,), 1.0 / k, jnp.float32)
    p = jnp.asarray(pref_vector, jnp.float32)
    if p.shape != (k,):
        raise ValueError(
            f"balancer {name!r}: pref_vector has shape {p.shape}, expected ({k},) for {k} losses"
        )
    return p


def _check_eps(name: str, norm_eps: float, reg_eps: float) -> None:
    for key, value in (("norm_eps", norm_eps), ("reg_eps", reg_eps)):
        if not value >= 0.0:
            raise ValueError(f"balancer {name!r}: {key} = {value!r} must be >= 0")


def _check_pref(name: str, pref_vector) -> None:
    if pref_vector is not None:
        p = np.asarray(pref_vector, np.float64)
        if p.ndim != 1 or not np.all(np.isfinite(p)):
            raise ValueError(
                f"balancer {name!r}: pref_vector = {pref_vector!r} must be a 1-D list of finite numbers"
            )


def make_upgrad(pref_vector=None, norm_eps: float = 1e-4, reg_eps: float = 1e-4) -> Balancer:
    """UPGrad (Quinton & Rey 2024): ``w = sum_i v(p_i e_i)`` with ``v(u) = argmin v^T G' v, v >= u``;
    ``grads = sum_k w_k g_k``. Defaults are TorchJD 0.18.0's (``pref_vector = 1/K``). Cost: K backward
    passes plus ``2^K`` tiny Cholesky solves. ``info``: ``weights``."""
    _check_eps("upgrad", norm_eps, reg_eps)
    _check_pref("upgrad", pref_vector)

    def weighting(G, losses, state, key):
        k = G.shape[-1]
        p = _preference(pref_vector, k, "upgrad")
        V = project_weights(regularized_gramian(G, norm_eps, reg_eps), jnp.diag(p))
        return jnp.sum(V, axis=0), state, {}

    return gramian_balancer("upgrad", weighting)


def make_dualproj(pref_vector=None, norm_eps: float = 1e-4, reg_eps: float = 1e-4) -> Balancer:
    """DualProj (Quinton & Rey 2024; GEM's projection): ``w = argmin v^T G' v, v >= p``; ``grads = sum_k w_k
    g_k``. Defaults are TorchJD 0.18.0's (``pref_vector = 1/K``). Cost: K backward passes plus ``2^K`` tiny
    Cholesky solves. ``info``: ``weights``."""
    _check_eps("dualproj", norm_eps, reg_eps)
    _check_pref("dualproj", pref_vector)

    def weighting(G, losses, state, key):
        k = G.shape[-1]
        p = _preference(pref_vector, k, "dualproj")
        return project_weights(regularized_gramian(G, norm_eps, reg_eps), p[None])[0], state, {}

    return gramian_balancer("dualproj", weighting)
