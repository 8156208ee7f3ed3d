"""Tests for balancedrl.meta_weighting (meta-gradient component weights, issue 16).

Toy problem: a contextual bandit with K one-hot contexts and A actions, a linear softmax policy and three
reward components: total (1 for the correct action), helpful (the same signal, plus a small bonus for the
correct action of every context) and harmful (1 for a trap action != the correct one). Advantages use the
exact per-context baseline sum_a pi(a|x) r_c(x, a).
"""

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancedrl.meta_weighting import (
    MetaGradientConfig,
    clipped_surrogate_loss_fn,
    combine_advantages,
    component_weights,
    inner_update,
    make_eta_optimizer,
    meta_gradient,
    meta_gradient_step,
    meta_outer_loss,
    meta_weights_init,
)

K, A, C = 4, 4, 3  # contexts, actions, components (total, helpful, harmful)
TOTAL, HELPFUL, HARMFUL = 0, 1, 2
CLIP = 0.2


def logp_fn(theta, batch):
    logits = batch["obs"] @ theta["w"] + theta["b"]
    return jnp.take_along_axis(jax.nn.log_softmax(logits), batch["action"][:, None], axis=1)[:, 0]


POLICY_LOSS = clipped_surrogate_loss_fn(logp_fn, CLIP)


def component_rewards(ctx):
    """r [K, A, C] as a function of the context index."""
    correct = jax.nn.one_hot(ctx % A, A)
    trap = jax.nn.one_hot((ctx + 1) % A, A)
    return jnp.stack([correct, 1.5 * correct, trap], axis=-1)


def sample_batch(key, theta, n, dtype=jnp.float32):
    """n (context, action) pairs from pi_theta with exact-baseline component advantages."""
    k1, k2 = jax.random.split(key)
    ctx = jax.random.randint(k1, (n,), 0, K)
    obs = jax.nn.one_hot(ctx, K, dtype=dtype)
    logits = obs @ theta["w"] + theta["b"]
    action = jax.random.categorical(k2, logits)
    probs = jax.nn.softmax(logits)
    r = component_rewards(ctx).astype(dtype)  # [n, A, C]
    baseline = jnp.einsum("na,nac->nc", probs, r)
    adv = r[jnp.arange(n), action] - baseline
    logp = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], axis=1)[:, 0]
    return {"obs": obs, "action": action, "logp_old": jax.lax.stop_gradient(logp), "adv_components": adv}


def init_theta(key, scale=0.3, dtype=jnp.float32):
    k1, k2 = jax.random.split(key)
    return {"w": scale * jax.random.normal(k1, (K, A), dtype), "b": scale * jax.random.normal(k2, (A,), dtype)}


@partial(jax.jit, static_argnames=("n", "dtype"))
def perturbed_policy_batches(key, n=64, dtype=jnp.float32):
    """theta, and inner/outer batches collected by an older policy (ratios != 1: the clip is active)."""
    k0, k1, k2, k3 = jax.random.split(key, 4)
    theta = init_theta(k0, dtype=dtype)
    old = jax.tree_util.tree_map(lambda x: x + 0.15 * jax.random.normal(k3, x.shape, dtype), theta)
    return theta, sample_batch(k1, old, n, dtype), sample_batch(k2, old, n, dtype)


def populated_adam_state(tx, theta, batch, steps=3):
    """An Adam state whose moments have seen a few gradients (as in a running trainer)."""
    state = tx.init(theta)
    g = jax.grad(lambda th: POLICY_LOSS(th, batch, batch["adv_components"][:, TOTAL])[0])(theta)
    for i in range(steps):
        _, state = tx.update(jax.tree_util.tree_map(lambda x, i=i: x * (1.0 + 0.3 * i), g), state, theta)
    return state


CFG = MetaGradientConfig(num_components=C)


def jit_meta_gradient(tx, config=CFG):
    """meta_gradient compiled once per (tx, config): eager dispatch of the many tiny ops is slow."""
    return jax.jit(partial(meta_gradient, policy_loss_fn=POLICY_LOSS, tx=tx, config=config))


SGD = optax.sgd(0.5)
MG_SOFTMAX_SGD = jit_meta_gradient(SGD)
MG_SIGNED_SGD = jit_meta_gradient(SGD, MetaGradientConfig(C, "signed"))


# ----------------------------------------------------------------------------------- weighting basics
def test_combine_advantages_matches_numpy():
    rng = np.random.default_rng(0)
    adv = rng.normal(size=(16, C)).astype(np.float32)
    mask = (rng.uniform(size=16) > 0.3).astype(np.float32)
    eta = {"logits": jnp.array([0.3, -1.0, 2.0])}
    comb, w = combine_advantages(eta, adv, CFG, mask)
    w_ref = np.exp([0.3, -1.0, 2.0]) / np.exp([0.3, -1.0, 2.0]).sum()
    x = adv @ w_ref
    m = mask > 0
    ref = np.where(m, (x - x[m].mean()) / (x[m].std() + 1e-8), 0.0)
    np.testing.assert_allclose(w, w_ref, rtol=1e-6)
    np.testing.assert_allclose(comb, ref, rtol=1e-4, atol=1e-5)
    signed = MetaGradientConfig(C, "signed", normalize_advantages=False)
    comb_s, w_s = combine_advantages({"weights": jnp.array([1.0, -2.0, 0.5])}, adv, signed)
    np.testing.assert_allclose(comb_s, adv @ np.array([1.0, -2.0, 0.5]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w_s, [1.0, -2.0, 0.5])


def test_attention_parameterization_is_seed_000_module():
    from balancedrl.weighting import ComponentWeighting

    cfg = MetaGradientConfig(C, "attention")

    @jax.jit
    def both(k1, k2):
        eta = meta_weights_init(cfg, k1)
        adv = jax.random.normal(k2, (32, C))
        comb, w = combine_advantages(eta, adv, cfg)
        ref, info = ComponentWeighting(C).apply({"params": eta}, adv)
        return comb, w, ref, info["final_weights"], component_weights(eta, cfg, adv)

    comb, w, ref, ref_w, w2 = both(jax.random.PRNGKey(1), jax.random.PRNGKey(2))
    np.testing.assert_allclose(comb, ref, rtol=1e-6)
    np.testing.assert_allclose(w, ref_w, rtol=1e-6)
    np.testing.assert_allclose(w2, w, rtol=1e-6)
    assert not np.allclose(w, w[0])  # the attention makes the weights unequal


def test_init_weights():
    np.testing.assert_allclose(component_weights(meta_weights_init(CFG), CFG), np.full(C, 1 / C), rtol=1e-6)
    signed = MetaGradientConfig(C, "signed")
    np.testing.assert_allclose(component_weights(meta_weights_init(signed), signed), np.full(C, 1 / C))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_components": 0}, "num_components"),
        ({"num_components": 3, "parameterization": "uniform"}, "parameterization"),
        ({"num_components": 3, "total_index": 3}, "total_index"),
        ({"num_components": 3, "parameterization": "attention", "normalize_advantages": False},
         "normalize_advantages"),
    ],
)
def test_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MetaGradientConfig(**kwargs)


def test_bad_inputs_name_the_problem():
    theta, bi, bo = perturbed_policy_batches(jax.random.PRNGKey(0))
    st0 = SGD.init(theta)
    with pytest.raises(ValueError, match="logits"):
        MG_SOFTMAX_SGD({"weights": jnp.zeros(C)}, theta, st0, bi, bo)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        MG_SOFTMAX_SGD({"logits": jnp.zeros(4)}, theta, st0, bi, bo)
    bad = dict(bo, adv_components=bo["adv_components"][:, :2])
    with pytest.raises(ValueError, match="batch_outer.*2 components"):
        MG_SOFTMAX_SGD(meta_weights_init(CFG), theta, st0, bi, bad)
    with pytest.raises(ValueError, match="key"):
        meta_weights_init(MetaGradientConfig(C, "attention"))
    with pytest.raises(ValueError, match="max_grad_norm"):
        make_eta_optimizer(1e-2, max_grad_norm=0.0)


# ------------------------------------------------------------------ exactness of the meta-gradient
def test_meta_gradient_matches_central_finite_differences(parameterization="softmax"):
    """dL_outer/deta by autodiff through clip + Adam (populated moments) vs central differences, float64.
    (The signed parameterisation differs only in w(eta); it is covered by the property test below.)"""
    with jax.enable_x64(True):
        cfg = MetaGradientConfig(C, parameterization)
        tx = optax.chain(optax.clip_by_global_norm(10.0), optax.adam(0.05, eps_root=1e-16))
        key = "logits" if parameterization == "softmax" else "weights"
        kw = dict(policy_loss_fn=POLICY_LOSS, tx=tx, config=cfg)
        h = 1e-6

        @jax.jit
        def grad_and_fd(k, e):
            theta, bi, bo = perturbed_policy_batches(k, dtype=jnp.float64)
            opt_state = populated_adam_state(tx, theta, bi)
            eta = {key: e}
            grad, (_, _, m) = meta_gradient(eta, theta, opt_state, bi, bo, **kw)
            shifts = jnp.concatenate([jnp.eye(C), -jnp.eye(C)]) * h
            f = jax.vmap(lambda d: meta_outer_loss({key: e + d}, theta, opt_state, bi, bo, **kw)[0])(shifts)
            return grad[key], (f[:C] - f[C:]) / (2 * h), m["outer_clip_fraction"]

        grad, fd, clip_fraction = grad_and_fd(jax.random.PRNGKey(3), jnp.array([0.2, 0.5, -0.3], jnp.float64))
        assert grad.dtype == jnp.float64
        assert float(clip_fraction) > 0  # the clipped branch is exercised
        assert np.max(np.abs(fd)) > 1e-4  # a real signal, not a zero vs zero comparison
        np.testing.assert_allclose(np.asarray(grad), np.asarray(fd), rtol=1e-5, atol=1e-9)


def test_gradient_through_optax_matches_hand_written_sgd():
    """optax.sgd inside meta_outer_loss == theta - lr * grad written by hand, values and meta-gradient."""
    lr = 0.5  # SGD's learning rate
    theta, bi, bo = perturbed_policy_batches(jax.random.PRNGKey(4))
    eta = {"logits": jnp.array([0.1, -0.4, 0.6])}

    def hand_outer(e):
        adv_w, _ = combine_advantages(e, bi["adv_components"], CFG)
        g = jax.grad(lambda th: POLICY_LOSS(th, bi, adv_w)[0])(theta)
        theta_new = jax.tree_util.tree_map(lambda p, gi: p - lr * gi, theta, g)
        a = bo["adv_components"][:, TOTAL]
        a = (a - a.mean()) / (a.std() + 1e-8)
        return POLICY_LOSS(theta_new, bo, a)[0], theta_new

    (ref_loss, ref_theta), ref_grad = jax.jit(jax.value_and_grad(hand_outer, has_aux=True))(eta)
    grad, (new_theta, _, m) = MG_SOFTMAX_SGD(eta, theta, SGD.init(theta), bi, bo)
    np.testing.assert_allclose(m["outer_loss"], ref_loss, rtol=1e-5)
    for k in theta:
        np.testing.assert_allclose(new_theta[k], ref_theta[k], rtol=1e-6, atol=1e-7)
    assert np.max(np.abs(ref_grad["logits"])) > 1e-4
    np.testing.assert_allclose(grad["logits"], ref_grad["logits"], rtol=1e-5, atol=1e-8)


def test_adam_with_eps_root_gives_finite_meta_gradient_with_an_unused_leaf():
    """A leaf the loss never touches (zero gradient, fresh Adam state) must not poison the meta-gradient."""
    theta, bi, bo = perturbed_policy_batches(jax.random.PRNGKey(5))
    theta = dict(theta, unused=jnp.ones((3,)))
    eta = {"logits": jnp.array([0.1, -0.4, 0.6])}
    tx = optax.adam(0.05, eps_root=1e-16)
    grad, _ = jit_meta_gradient(tx)(eta, theta, tx.init(theta), bi, bo)
    assert np.all(np.isfinite(grad["logits"]))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), scale=st.floats(0.1, 10.0))
def test_softmax_meta_gradient_is_shift_invariant_and_signed_is_scale_free(seed, scale):
    """Property: softmax logits' gradient sums to 0; with z-scoring the signed weights' gradient is
    orthogonal to the weights (the overall scale cancels) and scales as 1/scale."""
    theta, bi, bo = perturbed_policy_batches(jax.random.PRNGKey(seed))
    st0 = SGD.init(theta)
    g, _ = MG_SOFTMAX_SGD({"logits": jnp.array([0.3, -0.2, 0.1])}, theta, st0, bi, bo)
    assert abs(float(jnp.sum(g["logits"]))) < 1e-6 + 1e-4 * float(jnp.max(jnp.abs(g["logits"])))
    w = jnp.array([0.5, 0.8, -0.3])
    g1, _ = MG_SIGNED_SGD({"weights": w}, theta, st0, bi, bo)
    g2, _ = MG_SIGNED_SGD({"weights": scale * w}, theta, st0, bi, bo)
    tol = 1e-4 * float(jnp.max(jnp.abs(g1["weights"]))) + 1e-7
    assert abs(float(jnp.dot(g1["weights"], w))) < tol
    np.testing.assert_allclose(g2["weights"] * scale, g1["weights"], rtol=2e-3, atol=tol)


# --------------------------------------------------------------------------- learning on the toy
def _train_toy(key, steps=40, n=128, parameterization="softmax"):
    """Meta-gradient weights on the bandit; the inner step is the policy's real update (theta <- theta')."""
    cfg = MetaGradientConfig(C, parameterization)
    tx = optax.adam(0.1, eps_root=1e-16)
    eta_tx = make_eta_optimizer(0.1, max_grad_norm=1.0)
    k0, key = jax.random.split(key)
    theta = init_theta(k0, scale=0.1)
    eta = meta_weights_init(cfg)
    carry = (eta, eta_tx.init(eta), theta, tx.init(theta))

    def body(carry, k):
        eta, eta_state, theta, th_state = carry
        ki, ko = jax.random.split(k)
        bi, bo = sample_batch(ki, theta, n), sample_batch(ko, theta, n)
        grads, (theta_new, th_state_new, m) = meta_gradient(eta, theta, th_state, bi, bo,
                                                           policy_loss_fn=POLICY_LOSS, tx=tx, config=cfg)
        upd, eta_state = eta_tx.update(grads, eta_state, eta)
        eta = optax.apply_updates(eta, upd)
        return (eta, eta_state, theta_new, th_state_new), m["weights"]

    carry, weights = jax.lax.scan(body, carry, jax.random.split(key, steps))
    return carry, weights


@pytest.fixture(scope="module")
def toy_runs():
    return jax.jit(jax.vmap(_train_toy))(jax.random.split(jax.random.PRNGKey(7), 3))


def test_meta_gradient_moves_weight_from_harmful_to_helpful(toy_runs):
    (eta, _, theta, _), weights = toy_runs
    w0 = np.asarray(weights[:, 0])
    w_end = np.asarray(jax.vmap(component_weights, in_axes=(0, None))(eta, CFG))
    np.testing.assert_allclose(w0, 1 / C, rtol=1e-6)
    # measured: harmful 1/3 -> 0.06-0.09 after 40 steps, helpful and total -> ~0.46 each (z-scoring makes
    # them interchangeable: helpful is total's signal, rescaled)
    for s in range(w_end.shape[0]):
        assert w_end[s, HARMFUL] < 0.15, w_end[s]
        assert w_end[s, HELPFUL] > 1 / C + 0.08, w_end[s]
        assert weights[s, -1, HARMFUL] < weights[s, 10, HARMFUL] < w0[s, HARMFUL]
    # and the policy trained with those weights picks the correct action more often than the trap
    probs = jax.nn.softmax(jnp.eye(K) @ theta["w"] + theta["b"][:, None, :], axis=-1)  # [S, K, A]
    p_correct = probs[:, jnp.arange(K), jnp.arange(K) % A]
    p_trap = probs[:, jnp.arange(K), (jnp.arange(K) + 1) % A]
    assert np.all(np.asarray(p_correct.mean(-1)) > np.asarray(p_trap.mean(-1)))


# ------------------------------------------------------------------------------------- jit / vmap
def test_meta_gradient_step_jit_and_vmap_over_seeds():
    eta_tx = make_eta_optimizer(0.1)
    step = partial(meta_gradient_step, policy_loss_fn=POLICY_LOSS, tx=SGD, eta_tx=eta_tx, config=CFG)

    def setup(key):
        theta, bi, bo = perturbed_policy_batches(key)
        eta = {"logits": 0.1 * jax.random.normal(key, (C,))}
        return eta, eta_tx.init(eta), theta, SGD.init(theta), bi, bo

    keys = jax.random.split(jax.random.PRNGKey(11), 3)
    args = jax.tree.map(lambda *x: jnp.stack(x), *[setup(k) for k in keys])
    eta_v, _, m_v = jax.jit(jax.vmap(step))(*args)
    step_jit = jax.jit(step)
    for i in range(len(keys)):
        one = jax.tree_util.tree_map(lambda x, i=i: x[i], args)
        eta_e, state_e, m_e = step_jit(*one)  # one seed
        np.testing.assert_allclose(eta_v["logits"][i], eta_e["logits"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(m_v["meta_outer_loss"][i], m_e["meta_outer_loss"], rtol=1e-5, atol=1e-6)
        assert not np.allclose(eta_e["logits"], one[0]["logits"])  # eta moved
        assert float(m_e["meta_grad_norm"]) > 0
    assert {"meta_outer_loss", "meta_inner_loss", "meta_weights", "meta_grad_norm",
            "meta_outer_approx_kl", "meta_inner_clip_fraction"} <= set(m_v)


def test_inner_update_leaves_inputs_and_is_the_policy_update():
    """inner_update is one plain optimizer step on the weighted surrogate (what the trainer does)."""
    theta, bi, _ = perturbed_policy_batches(jax.random.PRNGKey(12))
    tx = optax.adam(0.05, eps_root=1e-16)
    eta = {"logits": jnp.array([0.5, 0.0, -0.5])}

    @jax.jit
    def both(eta, theta, bi):
        new_theta, _, m = inner_update(eta, theta, tx.init(theta), bi, policy_loss_fn=POLICY_LOSS, tx=tx,
                                       config=CFG)
        adv_w, _ = combine_advantages(eta, bi["adv_components"], CFG)
        g = jax.grad(lambda th: POLICY_LOSS(th, bi, adv_w)[0])(theta)
        upd, _ = tx.update(g, tx.init(theta), theta)
        return new_theta, m, upd

    new_theta, m, upd = both(eta, theta, bi)
    for k in theta:
        np.testing.assert_allclose(new_theta[k], theta[k] + upd[k], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(m["weights"], jax.nn.softmax(eta["logits"]), rtol=1e-6)


class Minibatch(NamedTuple):
    obs: jax.Array
    action: jax.Array
    behaviour_logp: jax.Array
    adv: jax.Array
    learner: jax.Array


def test_namedtuple_batch_with_a_row_mask():
    """Field names from the config; masked-out rows (garbage advantages) change nothing."""
    theta, bi, bo = perturbed_policy_batches(jax.random.PRNGKey(13))
    keep = np.arange(64) < 40
    cfg = MetaGradientConfig(C, adv_key="adv", mask_key="learner")
    loss_fn = clipped_surrogate_loss_fn(lambda th, b: logp_fn(th, {"obs": b.obs, "action": b.action}), CLIP,
                                        logp_old_key="behaviour_logp", mask_key="learner")

    def as_nt(b, garbage):
        adv = jnp.where(keep[:, None], b["adv_components"], garbage)
        return Minibatch(b["obs"], b["action"], b["logp_old"], adv, jnp.asarray(keep, jnp.float32))

    mg = jax.jit(partial(meta_gradient, policy_loss_fn=loss_fn, tx=SGD, config=cfg))
    eta = {"logits": jnp.array([0.1, -0.4, 0.6])}
    g1, (_, _, m1) = mg(eta, theta, SGD.init(theta), as_nt(bi, 0.0), as_nt(bo, 0.0))
    g2, (_, _, m2) = mg(eta, theta, SGD.init(theta), as_nt(bi, 1e3), as_nt(bo, -1e3))
    np.testing.assert_allclose(g1["logits"], g2["logits"], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(m1["outer_loss"], m2["outer_loss"], rtol=1e-6)
    assert np.max(np.abs(g1["logits"])) > 0
    with pytest.raises(ValueError, match="'adv'"):
        mg(eta, theta, SGD.init(theta), bi, bo)
