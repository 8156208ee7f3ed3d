"""Gramian balancers (pcgrad, mgda, cagrad, imtl_g, config) against TorchJD 0.18.0.

Reference vectors: tests/data/torchjd_reference_a.json, written by tests/data/make_torchjd_reference_a.py
(float64 TorchJD). Here everything runs in float32. Tolerance on the output vector ``g``:
``||g - g_ref|| <= rtol ||g_ref|| + 1e-6 max_k ||g_k||`` (the second term is float32 round-off of a cancelling
sum such as ``g_1 - g_1``), with ``rtol = 1e-4`` for the closed-form / fixed-iteration methods and 1e-3 for
CAGrad, whose reference comes from CLARABEL: it is itself off the exact optimum by up to ~5e-5 relative
(the same JAX solver in float64 agrees with it to 5e-5), and the optimum is flat, so float32 adds ~3e-4.
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from balancedrl import balancers
from balancedrl.balancers.base import gramian
from balancedrl.balancers.pcgrad import pcgrad_permutations, pcgrad_weights
from balancedrl.balancers.small_linalg import jacobi_eigh, project_simplex, psd_pinv

METHODS = ("pcgrad", "mgda", "cagrad", "imtl_g", "config")
RTOL = {"pcgrad": 1e-4, "mgda": 1e-4, "cagrad": 1e-3, "imtl_g": 1e-4, "config": 1e-4}

with open(os.path.join(os.path.dirname(__file__), "data", "torchjd_reference_a.json")) as f:
    REF = json.load(f)
CASES = REF["cases"]

_UPDATE = {name: jax.jit(balancers.make(name).update) for name in METHODS}
_PCGRAD_FIXED = jax.jit(lambda J, perms: pcgrad_weights(gramian(J), perms) @ J)


def _update(name, grads, key=None):
    key = jax.random.PRNGKey(0) if key is None else key
    k = jax.tree_util.tree_leaves(grads)[0].shape[0]
    return _UPDATE[name](grads, jnp.zeros((k,), jnp.float32), (), key)


def _check_close(name, out, case):
    ref = np.asarray(case[name]["output"])
    J = np.asarray(case["J"])
    err = np.linalg.norm(np.asarray(out, np.float64) - ref)
    bound = RTOL[name] * np.linalg.norm(ref) + 1e-6 * np.linalg.norm(J, axis=1).max()
    assert err <= bound, f"{name} on {case['name']}: |g - g_ref| = {err:.3g} > {bound:.3g}"


def test_reference_covers_the_required_cases():
    names = [c["name"] for c in CASES]
    assert REF["source"].startswith("torchjd 0.18.0")
    for k in (2, 3, 4):
        for kind in ("aligned", "opposed", "zero_row", "misscaled", "random"):
            assert f"{kind}_k{k}" in names
    assert "low_rank0_k4" in names and "all_zero_k2" in names
    norms = [np.linalg.norm(c["J"], axis=1) for c in CASES if c["name"].startswith("misscaled")]
    assert min(n.min() for n in norms) <= 1.001e-3 and max(n.max() for n in norms) >= 0.999e3


@pytest.mark.parametrize("name", [m for m in METHODS if m != "pcgrad"])
def test_matches_torchjd(name):
    """Through ``jax.jit(balancer.update)`` on float32 Jacobians, every reference case."""
    for case in CASES:
        J = jnp.asarray(case["J"], jnp.float32)
        grads, _, info = _update(name, J)
        assert grads.dtype == jnp.float32
        _check_close(name, grads, case)


def test_pcgrad_matches_torchjd_with_its_permutations():
    for case in CASES:
        J = jnp.asarray(case["J"], jnp.float32)
        perms = jnp.asarray(case["pcgrad"]["permutations"], jnp.int32)
        _check_close("pcgrad", _PCGRAD_FIXED(J, perms), case)


def test_pcgrad_takes_its_permutations_from_the_key():
    J = jnp.asarray(CASES[[c["name"] for c in CASES].index("conflict_k4")]["J"], jnp.float32)
    outs = []
    direct = jax.jit(lambda key: pcgrad_weights(gramian(J), pcgrad_permutations(key, 4)))
    for seed in range(6):
        key = jax.random.PRNGKey(seed)
        grads, _, info = _update("pcgrad", J, key)
        want = direct(key)
        perms = np.asarray(pcgrad_permutations(key, 4))
        assert all(sorted(row) == [0, 1, 2, 3] for row in perms.tolist())
        np.testing.assert_allclose(info["weights"], want, rtol=1e-6)
        outs.append(np.asarray(grads))
    # The order matters when three or more gradients conflict: different keys, different updates.
    assert max(np.abs(o - outs[0]).max() for o in outs) > 1e-3
    np.testing.assert_array_equal(_update("pcgrad", J, jax.random.PRNGKey(3))[0], _update("pcgrad", J, jax.random.PRNGKey(3))[0])


@pytest.mark.parametrize("name", METHODS)
def test_two_leaf_pytree_equals_flat(name):
    case = CASES[[c["name"] for c in CASES].index("random_k3")]
    J = jnp.asarray(case["J"], jnp.float32)
    tree = {"w": J[:, :4].reshape(3, 2, 2), "b": J[:, 4:]}
    g_tree, _, info_t = _update(name, tree)
    g_flat, _, info_f = _update(name, J)
    assert g_tree["w"].shape == (2, 2) and g_tree["b"].shape == (2,)
    np.testing.assert_allclose(jnp.concatenate([g_tree["w"].reshape(-1), g_tree["b"]]), g_flat, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(info_t["weights"], info_f["weights"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", METHODS)
def test_vmap_over_jacobians_and_keys(name):
    Js = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 6)) * jnp.asarray([1e-2, 1.0, 1e2])[None, :, None]
    keys = jax.random.split(jax.random.PRNGKey(2), 3)
    bal = balancers.make(name)
    batched, _, info = jax.jit(jax.vmap(lambda J, k: bal.update(J, jnp.zeros(3), (), k)))(Js, keys)
    for i in range(3):
        one, _, info1 = _update(name, Js[i], keys[i])
        np.testing.assert_allclose(batched[i], one, rtol=1e-4, atol=1e-6 * 1e2)
        np.testing.assert_allclose(info["weights"][i], info1["weights"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", METHODS)
def test_registry_defaults_and_errors(name):
    assert name in balancers.available()
    bal = balancers.make(name)
    assert bal.name == name and bal.requires_grads
    with pytest.raises(ValueError, match="no hyper-parameter"):
        balancers.make(name, not_a_hyper=1)


def test_hyperparameter_defaults_are_torchjds():
    from balancedrl.balancers.registry import hyperparameters

    assert hyperparameters("mgda") == {"epsilon": 0.001, "max_iters": 100}
    assert hyperparameters("cagrad")["c"] == 0.5 and hyperparameters("cagrad")["norm_eps"] == 1e-4
    with pytest.raises(ValueError, match="epsilon"):
        balancers.make("mgda", epsilon=-1.0)
    with pytest.raises(ValueError, match="max_iters"):
        balancers.make("mgda", max_iters=0)
    with pytest.raises(ValueError, match="'cagrad': c"):
        balancers.make("cagrad", c=-0.1)


# ---- properties -------------------------------------------------------------------------------------------


@st.composite
def jacobians(draw):
    """K = 3 rows in dimension 6 with row norms 10^[-6, 6], optionally a zero row and an opposed pair."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    J = rng.normal(size=(3, 6))
    J /= np.linalg.norm(J, axis=1, keepdims=True)
    logn = draw(st.lists(st.floats(-6.0, 6.0), min_size=3, max_size=3))
    J *= 10.0 ** np.asarray(logn)[:, None]
    if draw(st.booleans()):
        J[1] = -draw(st.sampled_from([1.0, 0.5, 1e3])) * J[0]
    if draw(st.booleans()):
        J[draw(st.integers(0, 2))] = 0.0
    return J.astype(np.float32)


@pytest.mark.parametrize("name", METHODS)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(J=jacobians())
def test_properties(name, J):
    J = jnp.asarray(J)
    grads, _, info = _update(name, J, jax.random.PRNGKey(5))
    w = np.asarray(info["weights"], np.float64)
    assert np.all(np.isfinite(w)) and np.all(np.isfinite(np.asarray(grads)))
    # info["weights"] reproduces the update.
    Jd = np.asarray(J, np.float64)
    scale = np.abs(w)[:, None] * np.abs(Jd)
    np.testing.assert_allclose(w @ Jd, np.asarray(grads, np.float64), rtol=1e-5, atol=1e-5 * scale.sum(0).max() + 1e-30)
    if name == "mgda":
        assert np.all(w >= 0) and abs(w.sum() - 1.0) < 1e-5
    if name == "cagrad":
        assert np.all(w == 0) or np.all(w >= 1.0 / 3 - 1e-6)
    if name == "imtl_g":
        assert np.all(w == 0) or abs(w.sum() - 1.0) < 1e-4
    G = Jd @ Jd.T
    if name == "pcgrad":
        # Each g_i^PC starts at g_i and only adds positive multiples of the others, so w >= 1; with no
        # conflict at all PCGrad is the plain sum.
        assert np.all(w >= 1.0 - 1e-6)
        if np.all(G[~np.eye(3, dtype=bool)] >= 0):
            np.testing.assert_allclose(w, np.ones(3), rtol=1e-6)
    norms = np.sqrt(np.diag(G))
    if name in ("imtl_g", "config") and norms.min() > 0:
        cos = G / np.outer(norms, norms)
        if np.linalg.eigvalsh(cos).min() > 1e-2:
            # Independent rows: the update has the same projection on every unit gradient (impartiality /
            # ConFIG's equal cosines).
            proj = (Jd / norms[:, None]) @ np.asarray(grads, np.float64)
            np.testing.assert_allclose(proj, proj.mean(), rtol=1e-3, atol=1e-6 * np.abs(proj).max())


@pytest.mark.parametrize("name", METHODS)
def test_zero_and_opposed_inputs(name):
    v = jnp.asarray([1.0, -2.0, 0.5, 0.0, 3.0, 1.0])
    for J in (jnp.zeros((2, 6)), jnp.stack([v, -v]), jnp.stack([v, -v, jnp.zeros(6)]), jnp.stack([1e-6 * v, -1e6 * v])):
        grads, _, info = _update(name, J)
        assert np.all(np.isfinite(np.asarray(grads))) and np.all(np.isfinite(np.asarray(info["weights"])))
    # Exactly opposed, equal norms: every method here returns the zero vector.
    grads, _, _ = _update(name, jnp.stack([v, -v]))
    np.testing.assert_allclose(grads, 0.0, atol=1e-5)


# ---- small_linalg ------------------------------------------------------------------------------------------


def test_jacobi_eigh_keeps_small_eigenvalues_of_misscaled_gramians():
    rng = np.random.default_rng(0)
    J = rng.normal(size=(4, 6)) * np.logspace(-3, 3, 4)[:, None]
    G64 = J @ J.T
    w, V = jax.jit(jacobi_eigh)(jnp.asarray(G64, jnp.float32))
    np.testing.assert_allclose(np.sort(np.asarray(w)), np.linalg.eigvalsh(G64), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(V).T @ np.asarray(V), np.eye(4), atol=1e-5)


def test_psd_pinv_and_simplex_projection():
    pinv = jax.jit(psd_pinv)
    A = jnp.asarray([[1.0, 2.0], [2.0, 4.0]])  # rank 1: pinv = A / 25
    np.testing.assert_allclose(pinv(A), np.asarray(A) / 25.0, rtol=1e-5)
    np.testing.assert_allclose(pinv(jnp.zeros((2, 2))), np.zeros((2, 2)))
    B = jnp.asarray([[2.0, 1.0], [1.0, 3.0]])
    np.testing.assert_allclose(pinv(B) @ B, np.eye(2), atol=1e-5)
    np.testing.assert_allclose(project_simplex(jnp.asarray([0.5, 0.9, -1.0])), [0.3, 0.7, 0.0], atol=1e-6)
    np.testing.assert_allclose(project_simplex(jnp.asarray([0.2, 0.3, 0.5])), [0.2, 0.3, 0.5], atol=1e-6)
