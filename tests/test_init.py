"""Orthogonal init without LAPACK (balancedrl/networks/init.py): same matrices as jax's, no custom call."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from balancedrl.networks.init import gram_schmidt, orthogonal


@pytest.mark.parametrize("shape", [(5, 5), (7, 3), (3, 7), (2, 3, 4), (1, 6), (64, 64)])
@pytest.mark.parametrize("scale", [1.0, np.sqrt(2.0), 0.01])
def test_matches_jax_orthogonal(shape, scale):
    key = jax.random.PRNGKey(3)
    ours = orthogonal(scale)(key, shape, jnp.float32)
    ref = jax.nn.initializers.orthogonal(scale)(key, shape, jnp.float32)
    assert ours.shape == shape and ours.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), atol=2e-5 * scale)


@pytest.mark.parametrize("column_axis", [0, 1, -1])
def test_column_axis_matches_jax(column_axis):
    key = jax.random.PRNGKey(0)
    shape = (4, 6, 3)
    ours = orthogonal(1.0, column_axis)(key, shape)
    ref = jax.nn.initializers.orthogonal(1.0, column_axis)(key, shape)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), atol=2e-5)


def test_gram_schmidt_is_qr_with_positive_diagonal():
    # NumPy reference: Q from np.linalg.qr with the signs of diag(R) made positive.
    z = np.random.default_rng(0).normal(size=(9, 4))
    q_ref, r = np.linalg.qr(z)
    q_ref = q_ref * np.sign(np.diag(r))
    q = np.asarray(gram_schmidt(jnp.asarray(z, jnp.float32)))
    np.testing.assert_allclose(q, q_ref, atol=1e-5)
    np.testing.assert_allclose(q.T @ q, np.eye(4), atol=1e-5)
    np.testing.assert_allclose(np.triu(q.T @ z), q.T @ z, atol=1e-4)  # R = Q^T Z is upper triangular


def test_orthonormal_rows_or_columns_and_scale():
    wide = np.asarray(orthogonal(2.0)(jax.random.PRNGKey(1), (3, 8)))
    tall = np.asarray(orthogonal(2.0)(jax.random.PRNGKey(1), (8, 3)))
    np.testing.assert_allclose(wide @ wide.T, 4.0 * np.eye(3), atol=1e-4)
    np.testing.assert_allclose(tall.T @ tall, 4.0 * np.eye(3), atol=1e-4)


def test_bad_shapes():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        orthogonal()(jax.random.PRNGKey(0), (4,))
    with pytest.raises(ValueError, match="tall matrix"):
        gram_schmidt(jnp.zeros((2, 3)))
    assert orthogonal()(jax.random.PRNGKey(0), (0, 3)).shape == (0, 3)


def test_vmapped_init_lowers_without_custom_calls():
    # The reason this module exists: a batched LAPACK QR can deadlock XLA's CPU pool (module docstring).
    def f(key):
        ks = jax.random.split(key, 4)
        return [orthogonal(1.0)(k, (16, 16)) for k in ks]

    hlo = jax.jit(jax.vmap(f)).lower(jax.random.split(jax.random.PRNGKey(0), 5)).as_text()
    assert "custom_call" not in hlo
    ref = jax.jit(jax.vmap(lambda k: jax.nn.initializers.orthogonal()(k, (16, 16))))
    assert "custom_call" in ref.lower(jax.random.split(jax.random.PRNGKey(0), 5)).as_text()


def test_vmapped_init_equals_per_key_init():
    keys = jax.random.split(jax.random.PRNGKey(2), 3)
    batched = jax.jit(jax.vmap(lambda k: orthogonal(1.0)(k, (6, 4))))(keys)
    for i in range(3):
        np.testing.assert_allclose(batched[i], orthogonal(1.0)(keys[i], (6, 4)), atol=1e-6)
