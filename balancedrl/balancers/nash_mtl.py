"""Nash-MTL: the Nash bargaining solution between the per-loss gradients (Navon et al. 2022).

Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik & Fetaya, "Multi-Task Learning as a Bargaining Game",
ICML 2022. The update ``J^T alpha`` maximises ``sum_k log(g_k . d)`` in a ball; its weights solve the
bargaining condition (Theorem 5.1)::

    G alpha = 1 / alpha,   alpha > 0        (G = J J^T, elementwise reciprocal)

then, as in TorchJD 0.18.0 (``NashMTL``, defaults ``max_norm=1``, ``update_weights_every=1``,
``optim_niter=20``), ``alpha`` is scaled down so that ``||J^T alpha|| <= max_norm`` (``max_norm = 0`` turns
this off). Since ``alpha^T G alpha = K`` at the solution, the default clip always binds for K >= 2.

Solver. TorchJD (after the authors) runs up to ``optim_niter`` convex sub-problems with cvxpy/ECOS. Here the
condition is the stationarity of the strictly convex, self-concordant ``f(b) = b^T C b / 2 - sum log b`` on
the *correlation* matrix ``C = D^{-1} G D^{-1}`` (``D = diag ||g_k||``; ``alpha = D^{-1} b``), which makes the
problem independent of the gradient scales. ``optim_niter`` damped Newton steps ``b <- b - H^{-1} grad / (1 +
lambda)`` (``lambda`` the Newton decrement) from ``b = 1`` keep ``b > 0`` without a line search and reach a
relative residual ``||C b - 1/b|| / ||1/b||`` below 1e-5 (float32) on the reference cases where a solution
exists, 1e-4 where ``C`` is within 1e-3 of singular (cosine -0.999: a float32 floor; more steps do not help). A zero gradient takes no part in the bargaining (its weight is 1 before the clip; it contributes
nothing). Where no solution exists (``C`` singular, e.g. exactly opposed gradients) ``f`` is unbounded and
``b`` grows along the null direction (capped at ``B_MAX = 1e4``), where ``J^T alpha`` does not move: the
output stays finite and near zero (for exactly opposed rows, no step improves every loss).

Versus TorchJD: equal to ``1e-5`` absolute on the unit-norm output (tested at ``5e-5``; float32 here, float64
there) wherever TorchJD's iterations reach the bargaining solution, on the first call and along sequences of
calls (with ``update_weights_every`` 1 and 2). TorchJD does not reach it when ECOS reports the first sub-problem
unbounded (it then returns ``alpha = 1``, i.e. the clipped sum), on zero or opposed rows, and on gradients
whose scale is far from 1 (row norms all 1e-3, or spread over 1e-3..1e3: ECOS "optimal_inaccurate" /
iteration limit); the reference data records
which cases converged, and the tests check the bargaining condition itself on the others. TorchJD warm-starts
later calls from its previous ``alpha``; this solver starts from ``b = 1`` every time (the solution is
unique, so only the unconverged cases can differ).

State (a pytree): the call count and the last solved ``alpha`` (reused between refreshes when
``update_weights_every > 1``). Cost: K backward passes, one ``K x K`` Gramian, ``optim_niter`` ``K x K``
Cholesky solves.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from balancedrl.balancers.base import Balancer, combine, gramian
from balancedrl.balancers.small_linalg import spd_solve

__all__ = ["NashMTLState", "make_nash_mtl", "nash_bargaining_weights"]

B_MAX = 1e4  # bound on the scale-free weights b_k = alpha_k ||g_k||


class NashMTLState(NamedTuple):
    step: jax.Array  # int32 calls so far
    alpha: jax.Array  # [K] last solved weights, before the max_norm clip


def nash_bargaining_weights(G: jax.Array, iters: int = 20) -> tuple[jax.Array, jax.Array]:
    """``alpha > 0`` with ``G alpha = 1 / alpha`` by ``iters`` damped Newton steps on the correlation matrix.

    Returns ``(alpha [K], relative residual ||C b - 1/b|| / ||1/b||)``; zero rows get ``alpha = 1``.
    """
    k = G.shape[-1]
    d = jnp.diagonal(G)
    live = d > jnp.finfo(G.dtype).tiny
    n = jnp.where(live, jnp.sqrt(jnp.where(live, d, 1.0)), 1.0)
    both = live[:, None] & live[None, :]
    eye = jnp.eye(k, dtype=G.dtype)
    C = jnp.where(both, G / (n[:, None] * n[None, :]), eye)

    def newton(_, b):
        grad = C @ b - 1.0 / b
        H = C + jnp.diag(1.0 / (b * b))
        step = spd_solve(H, grad)
        decrement = jnp.sqrt(jnp.maximum(jnp.dot(step, grad), 0.0))
        # The cap only binds where no solution exists (C singular): there f is unbounded and b would grow
        # without end; genuine solutions have b <= 1/sqrt(1 + min eig C) ~ 3e3 in float32.
        return jnp.minimum(b - step / (1.0 + decrement), B_MAX)

    b = jax.lax.fori_loop(0, iters, newton, jnp.ones((k,), G.dtype))
    # Plain sums rather than jnp.linalg (LAPACK-free module).
    residual = jnp.sqrt(jnp.sum(jnp.square(C @ b - 1.0 / b)) / jnp.sum(jnp.square(1.0 / b)))
    return b / n, residual


def make_nash_mtl(max_norm: float = 1.0, update_weights_every: int = 1, optim_niter: int = 20) -> Balancer:
    """Nash-MTL (Navon et al. 2022): ``alpha`` solving ``G alpha = 1/alpha``, clipped so ``||sum_k alpha_k
    g_k|| <= max_norm``; ``grads = sum_k alpha_k g_k``. Defaults are TorchJD 0.18.0's; ``optim_niter`` is
    the number of damped Newton steps; weights are recomputed every ``update_weights_every`` calls. Cost: K
    backward passes. ``info``: ``weights``, ``nash_residual`` (relative, of the last solve)."""
    if not max_norm >= 0.0:
        raise ValueError(f"balancer 'nash_mtl': max_norm = {max_norm!r} must be >= 0 (0 disables the clip)")
    for key, value in (("update_weights_every", update_weights_every), ("optim_niter", optim_niter)):
        if not (isinstance(value, int) and value >= 1):
            raise ValueError(f"balancer 'nash_mtl': {key} = {value!r} must be an integer >= 1")

    def init(num_losses, params=None):
        return NashMTLState(step=jnp.zeros((), jnp.int32), alpha=jnp.ones((num_losses,), jnp.float32))

    def update(per_loss_grads, losses, state, key):
        G = gramian(per_loss_grads)
        refresh = (state.step % update_weights_every) == 0
        alpha, residual = jax.lax.cond(
            refresh,
            lambda: nash_bargaining_weights(G, optim_niter),
            lambda: (state.alpha.astype(G.dtype), jnp.zeros((), G.dtype)),
        )
        grads = combine(alpha, per_loss_grads)
        w = alpha
        if max_norm > 0:
            # The norm of the combined vector itself (as TorchJD), not sqrt(alpha^T G alpha): the latter
            # cancels catastrophically when alpha is large along a null direction of G (opposed gradients).
            norm = jnp.sqrt(
                sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in jax.tree_util.tree_leaves(grads))
            )
            factor = jnp.where(norm > max_norm, max_norm / jnp.where(norm > 0, norm, 1.0), 1.0)
            w = alpha * factor
            grads = jax.tree_util.tree_map(lambda x: x * factor.astype(x.dtype), grads)
        new_state = NashMTLState(step=state.step + 1, alpha=alpha.astype(state.alpha.dtype))
        return grads, new_state, {"weights": w, "nash_residual": residual}

    return Balancer("nash_mtl", init, update, requires_grads=True)
