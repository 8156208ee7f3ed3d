"""Tests for balancedrl.optim (network / weighting / frozen partition)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from balancedrl.optim import make_optimizer

NET_LR, W_LR = 1e-3, 1e-2


def _params():
    return {
        "actor": {"kernel": jnp.ones((3, 2)), "bias": jnp.zeros(2)},
        "weighting": {"base_logits": jnp.ones(6), "attention": {"kernel": jnp.ones((6, 6))}},
        "wsa": {"pretrained_cnn": {"kernel": jnp.full((5, 7), 0.3)}},
    }


@pytest.fixture(scope="module")
def opt():
    tx, label_fn = make_optimizer(NET_LR, W_LR, frozen=("pretrained_cnn",))
    return tx, label_fn, jax.jit(tx.update)


def _step(update, state, params, grads):
    updates, state = update(grads, state, params)
    return optax.apply_updates(params, updates), state


def test_labels(opt):
    _, label_fn, _ = opt
    labels = label_fn(_params())
    assert labels["actor"]["kernel"] == "network"
    assert labels["weighting"]["attention"]["kernel"] == "weighting"
    assert labels["wsa"]["pretrained_cnn"]["kernel"] == "frozen"
    # flax-style {"params": ...} wrapping: weights_key matches any path component
    assert label_fn({"params": _params()})["params"]["weighting"]["base_logits"] == "weighting"


def test_each_group_moves_with_its_own_lr(opt):
    tx, _, update = opt
    p = _params()
    state = tx.init(p)
    grads = jax.tree_util.tree_map(jnp.ones_like, p)
    new, _ = _step(update, state, p, grads)
    delta = jax.tree_util.tree_map(lambda a, b: np.asarray(a - b), new, p)
    # Adam's first step is -lr * g / (|g| + eps) = -lr for unit gradients (clipping does not change it)
    np.testing.assert_allclose(delta["actor"]["kernel"], -NET_LR, rtol=1e-4)
    np.testing.assert_allclose(delta["actor"]["bias"], -NET_LR, rtol=1e-4)
    np.testing.assert_allclose(delta["weighting"]["base_logits"], -W_LR, rtol=1e-4)
    np.testing.assert_allclose(delta["weighting"]["attention"]["kernel"], -W_LR, rtol=1e-4)
    np.testing.assert_array_equal(delta["wsa"]["pretrained_cnn"]["kernel"], 0.0)


def test_frozen_bit_identical_and_no_moments(opt):
    tx, _, update = opt
    p = _params()
    state = tx.init(p)
    rng = np.random.default_rng(0)
    for _ in range(3):
        grads = jax.tree_util.tree_map(lambda x: jnp.asarray(rng.normal(size=x.shape), jnp.float32), p)
        p, state = _step(update, state, p, grads)
    np.testing.assert_array_equal(p["wsa"]["pretrained_cnn"]["kernel"], np.full((5, 7), 0.3, np.float32))
    assert not np.allclose(p["actor"]["kernel"], 1.0)
    shapes = [x.shape for x in jax.tree_util.tree_leaves(state)]
    assert (5, 7) not in shapes  # no Adam moments for the frozen leaf
    assert shapes.count((3, 2)) == 2 and shapes.count((6, 6)) == 2  # mu and nu for trainable leaves
    assert jax.tree_util.tree_leaves(state.inner_states["frozen"]) == []


def test_weighting_clip_is_separate():
    tx, _ = make_optimizer(NET_LR, W_LR, weights_max_grad_norm=0.5)
    p = {"net": jnp.zeros(1), "weighting": {"b": jnp.zeros(1)}}
    # each group's clip sees only its own leaves: a huge network gradient does not shrink the weighting one
    state = tx.init(p)
    g = {"net": jnp.array([1e6]), "weighting": {"b": jnp.array([1e-3])}}
    upd, _ = jax.jit(tx.update)(g, state, p)
    assert float(upd["weighting"]["b"][0]) == pytest.approx(-W_LR, rel=1e-3)
    assert float(upd["net"][0]) == pytest.approx(-NET_LR, rel=1e-3)


def test_anneal_schedule_and_vmap():
    tx, _ = make_optimizer(NET_LR, W_LR, anneal_steps=4)
    p = {"net": jnp.zeros(2), "weighting": {"b": jnp.zeros(2)}}
    state = tx.init(p)
    g = jax.tree_util.tree_map(jnp.ones_like, p)
    update = jax.jit(tx.update)
    sizes = []
    for _ in range(5):
        u, state = update(g, state, p)
        sizes.append(-float(u["net"][0]))
    # lr_t = 1e-3 * (1 - t / 4); Adam with constant gradients steps lr_t (bias-corrected)
    np.testing.assert_allclose(sizes, [1e-3, 7.5e-4, 5e-4, 2.5e-4, 0.0], rtol=1e-3, atol=1e-9)
    # vmap over a batch of parameter sets (seed sweep)
    ps = jax.tree_util.tree_map(lambda x: jnp.stack([x, x + 1]), p)
    states = jax.vmap(tx.init)(ps)
    gs = jax.tree_util.tree_map(jnp.ones_like, ps)
    u, _ = jax.jit(jax.vmap(tx.update))(gs, states, ps)
    np.testing.assert_allclose(u["weighting"]["b"], -W_LR, rtol=1e-4)
    with pytest.raises(ValueError, match="anneal_steps"):
        make_optimizer(optax.constant_schedule(1e-3), W_LR, anneal_steps=10)
    with pytest.raises(ValueError, match="max_grad_norm"):
        make_optimizer(NET_LR, W_LR, max_grad_norm=0.0)
