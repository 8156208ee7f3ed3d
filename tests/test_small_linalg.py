"""LAPACK-free K x K linear algebra: Cholesky solve and cyclic Jacobi eigendecomposition, against numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancedrl.balancers.small_linalg import jacobi_eigh, spd_solve

_eigh = jax.jit(jacobi_eigh)
_solve = jax.jit(spd_solve)


def _graded_gramian(rng, k, dim=6, log_lo=-3.0, log_hi=3.0):
    """``J J^T`` with row norms spread over 10^log_lo .. 10^log_hi (eigenvalues over 12 decades)."""
    J = rng.normal(size=(k, dim)) * 10.0 ** rng.uniform(log_lo, log_hi, size=(k, 1))
    return (J @ J.T).astype(np.float32)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_jacobi_eigh_matches_numpy_eigh(k):
    rng = np.random.default_rng(k)
    for _ in range(3):
        G = _graded_gramian(rng, k)
        w, V = _eigh(jnp.asarray(G))
        w_ref, V_ref = np.linalg.eigh(G.astype(np.float64))
        # Jacobi keeps relative accuracy on every eigenvalue of a graded PSD matrix, even the 1e-6 ones.
        np.testing.assert_allclose(np.asarray(w), w_ref, rtol=2e-5, atol=0)
        # Eigenvectors up to sign (eigenvalues are well separated here).
        signs = np.sign(np.sum(np.asarray(V) * V_ref, axis=0))
        np.testing.assert_allclose(np.asarray(V) * signs, V_ref, atol=5e-5)


def test_jacobi_eigh_indefinite_and_repeated():
    A = np.array([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, -1.0]], np.float32)
    w, V = _eigh(jnp.asarray(A))
    np.testing.assert_allclose(np.asarray(w), [-1.0, 1.0, 3.0], atol=1e-6)
    I = np.eye(3, dtype=np.float32) * 5.0  # repeated eigenvalue: any orthonormal basis
    w, V = _eigh(jnp.asarray(I))
    np.testing.assert_allclose(np.asarray(w), [5.0, 5.0, 5.0])
    np.testing.assert_allclose(np.asarray(V).T @ np.asarray(V), np.eye(3), atol=1e-7)


def test_jacobi_eigh_vmaps_over_a_batch():
    rng = np.random.default_rng(0)
    Gs = np.stack([_graded_gramian(rng, 3) for _ in range(5)])
    w, V = jax.jit(jax.vmap(jacobi_eigh))(jnp.asarray(Gs))
    for i in range(5):
        np.testing.assert_allclose(np.asarray(w[i]), np.linalg.eigh(Gs[i].astype(np.float64))[0], rtol=2e-5)
    assert w.dtype == jnp.float32 and V.dtype == jnp.float32


@settings(max_examples=30, deadline=None)
@given(
    k=st.sampled_from([3, 5]),
    seed=st.integers(0, 2**31 - 1),
    log_scale=st.floats(-6.0, 6.0),
)
def test_jacobi_reconstructs_symmetric_matrices(k, seed, log_scale):
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(k, k))
    A = ((M + M.T) * 10.0**log_scale).astype(np.float32)
    w, V = _eigh(jnp.asarray(A))
    w, V = np.asarray(w, np.float64), np.asarray(V, np.float64)
    scale = np.abs(A).max()
    assert np.all(np.isfinite(w)) and np.all(np.isfinite(V))
    assert np.all(np.diff(w) >= 0)
    np.testing.assert_allclose(V.T @ V, np.eye(k), atol=1e-5)
    np.testing.assert_allclose(V @ np.diag(w) @ V.T, A, atol=1e-5 * scale)


@pytest.mark.parametrize("k", [1, 4])
def test_spd_solve_matches_numpy(k):
    rng = np.random.default_rng(10 + k)
    M = rng.normal(size=(k, k))
    A = (M @ M.T + 0.5 * np.eye(k)).astype(np.float32)
    b = rng.normal(size=(3, k)).astype(np.float32)
    x = _solve(jnp.asarray(A), jnp.asarray(b))  # b batched against one A
    ref = np.linalg.solve(A.astype(np.float64), b.astype(np.float64).T).T
    np.testing.assert_allclose(np.asarray(x), ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="K, K"):
        spd_solve(jnp.ones((2, 3)), jnp.ones(2))
    with pytest.raises(ValueError, match="shape"):
        jacobi_eigh(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="sweeps"):
        jacobi_eigh(jnp.eye(2), sweeps=0)
