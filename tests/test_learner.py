"""The learner's parts, each alone: the balanced gradient step equals ``jax.grad`` of the weighted loss sum,
the per-epoch refresh equals a hand-rolled loop, and any registered balancer drives the trainer.

Platform-v0 with a tiny MLP: a hybrid task (discrete and continuous losses both live), cheap to compile."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from balancedrl.training.config import load_config
from balancedrl.training.learner import LearnCarry, learn, measured_step
from balancedrl.training.losses import loss_vector
from balancedrl.training.rollout import collect
from balancedrl.training.targets import compute_targets
from balancedrl.training.trainer import init_runner, make_context, make_run_chunk, make_train

BASE = [
    "env.num_envs=4",
    "actor_critic.hidden_dim=8",
    "trainer.num_steps=8",
    "trainer.update_epochs=2",
    "trainer.num_minibatches=2",
    "trainer.total_timesteps=64",
    "trainer.advantage_weighting.enable_learnable_weights=false",
    "trainer.advantage_weighting.enable_attention_weighting=false",
]


def _setup(overrides):
    cfg = load_config("experiments/configs/platform.yaml", BASE + overrides)
    ctx, _, net_init = make_context(cfg)
    runner = init_runner(ctx, net_init, jax.random.PRNGKey(0))
    runner, traj = collect(ctx, runner, 0.0)
    batch, _, _ = compute_targets(ctx, runner.params["network"], runner.reward_norm, traj)
    w0 = jnp.asarray([ctx.layout.fixed_coefs[i] for i in ctx.layout.balanced], jnp.float32)
    carry = LearnCarry(runner.params, runner.opt_state, runner.balancer, w0)
    return ctx, carry, batch


def _take(batch, idx):
    return jax.tree_util.tree_map(lambda x: x[idx], batch)


def _sgd(ctx, params, opt_state, grads):
    updates, opt_state = ctx.tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def _assert_trees_close(a, b, rtol=1e-5, atol=1e-7):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


@pytest.mark.parametrize(
    "balancer",
    [
        ["trainer.balancer.name=fixed", "trainer.balancer.hyper={weights: [0.7, 0.3]}"],
        ["trainer.balancer.name=mean", "trainer.balancer.losses=[discrete, continuous, value, entropy]"],
    ],
)
def test_measured_step_is_grad_of_weighted_loss_sum(balancer):
    """With a weighting balancer the step's gradient is ``jax.grad(sum_l c_l L_l)`` with the balancer's
    weights at the balanced losses and the fixed coefficients elsewhere."""
    ctx, carry, batch = _setup(balancer + ["trainer.balancer.log_gradients=true"])
    mb = _take(batch, jnp.arange(batch.actor_id.shape[0] // 2))
    new, m = jax.jit(lambda c, x: measured_step(ctx, c, x, 0.01, jax.random.PRNGKey(1)))(carry, mb)
    K = len(ctx.layout.balanced)
    w = np.array([0.7, 0.3]) if K == 2 else np.full(K, 1.0 / K)
    coefs = ctx.layout.full_coefs(jnp.asarray(w, jnp.float32))
    grads = jax.grad(lambda p: jnp.dot(coefs, loss_vector(ctx, p, mb, 0.01)[0]))(carry.params)
    params, _ = _sgd(ctx, carry.params, carry.opt_state, grads)
    _assert_trees_close(new.params, params)
    for i, n in enumerate(ctx.layout.balanced_names):
        np.testing.assert_allclose(m[f"balancer_weight/{n}"], w[i], rtol=1e-6)
        assert np.isfinite(m[f"grad_norm/{n}"])
    assert np.isfinite(m[f"grad_cosine/{ctx.layout.balanced_names[0]}|{ctx.layout.balanced_names[1]}"])


def test_epoch_refresh_equals_hand_rolled_loop():
    """``norm_refresh=epoch`` with two minibatches: the balancer sees per-loss gradients (taken one loss at
    a time with ``jax.grad``) on each epoch's first minibatch; the second reuses its weights."""
    ctx, carry, batch = _setup(
        [
            "trainer.balancer.name=grad_scaling",
            "trainer.balancer.norm_refresh=epoch",
            "trainer.gradient_scaling.enable_adaptive_scaling=true",
            "trainer.gradient_scaling.warmup_steps=0",
        ]
    )
    key = jax.random.PRNGKey(7)
    got, _ = jax.jit(lambda c, b: learn(ctx, c, b, 0.01, key))(carry, batch)

    lay, tc = ctx.layout, ctx.cfg.trainer
    bal = jnp.asarray(lay.balanced)

    @jax.jit
    def per_loss_rows(p, mb):  # one jax.grad per balanced loss, stacked on a leading K axis
        rows = [jax.grad(lambda q, i=i: loss_vector(ctx, q, mb, 0.01)[0][i])(p) for i in lay.balanced]
        return jax.tree_util.tree_map(lambda *g: jnp.stack(g), *rows), loss_vector(ctx, p, mb, 0.01)[0][bal]

    @jax.jit
    def weighted_grad(p, mb, coefs):
        return jax.grad(lambda q: jnp.dot(coefs, loss_vector(ctx, q, mb, 0.01)[0]))(p)

    N = batch.actor_id.shape[0]
    rest = jnp.asarray(lay.rest_coefs)
    params, opt_state, bstate = carry.params, carry.opt_state, carry.balancer
    for k in jax.random.split(key, tc.update_epochs):
        perm = np.asarray(jax.random.permutation(k, N)).reshape(tc.num_minibatches, -1)
        bkeys = jax.random.split(jax.random.fold_in(k, 0x62616C), tc.num_minibatches)
        for j in range(tc.num_minibatches):
            mb = _take(batch, perm[j])
            if j == 0:
                per_loss, losses = per_loss_rows(params, mb)
                bal_grads, bstate, info = ctx.balancer.update(per_loss, losses, bstate, bkeys[j])
                w = info["weights"]
                grads = jax.tree_util.tree_map(jnp.add, bal_grads, weighted_grad(params, mb, rest))
            else:
                grads = weighted_grad(params, mb, lay.full_coefs(w))
            params, opt_state = _sgd(ctx, params, opt_state, grads)
    _assert_trees_close(got.params, params, rtol=2e-5, atol=1e-6)
    _assert_trees_close(got.balancer, bstate, rtol=2e-5, atol=1e-6)


def test_any_registered_balancer_trains_with_four_losses():
    """``mean`` over [discrete, continuous, value, entropy] in the whole jitted trainer: weights 1/4 logged,
    gradient norms and cosines measured (``log_gradients``), every metric finite or NaN-as-not-measured."""
    cfg = load_config(
        "experiments/configs/platform.yaml",
        BASE
        + [
            "trainer.balancer.name=mean",
            "trainer.balancer.losses=[discrete, continuous, value, entropy]",
            "trainer.balancer.log_gradients=true",
        ],
    )
    trainer = make_train(cfg)
    runner = jax.jit(trainer.init)(jax.random.PRNGKey(0))  # jitted: no shared buffers to donate twice
    _, m = make_run_chunk(trainer, 1)(runner)
    m = jax.device_get(m)
    for n in ("discrete", "continuous", "value", "entropy"):
        np.testing.assert_allclose(m[f"balancer_weight/{n}"], 0.25, rtol=1e-6)
        assert np.all(np.isfinite(m[f"grad_norm/{n}"])), n
    assert np.all(np.abs(m["grad_cosine/discrete|continuous"]) <= 1.0 + 1e-5)
    assert np.all(np.isfinite(m["total_loss"]))


def test_gradient_cosine_is_bounded_and_zero_for_a_zero_gradient():
    """A collapsed head's gradient is exactly 0 (or ~1e-19): the logged cosine stays in [-1, 1] (it was
    1e9 when divided by a 1e-30 floor), 0 for a zero row, and equals the NumPy cosine otherwise."""
    from types import SimpleNamespace

    from balancedrl.training.learner import gradient_diagnostics

    ctx = SimpleNamespace(layout=SimpleNamespace(balanced_names=("discrete", "continuous", "value")))
    # |g_0|^2 = 1e-50 underflows to 0 in float32 while g_0 . g_1 = 2e-25 does not.
    rows = np.array([[1e-25, 0.0, 0.0, 0.0], [2.0, -1.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]], np.float32)
    G = jnp.asarray(rows) @ jnp.asarray(rows).T
    out = jax.jit(lambda G: gradient_diagnostics(ctx, G))(G)
    cos = np.array([float(out[k]) for k in out if k.startswith("grad_cosine/")])
    assert np.all(np.abs(cos) <= 1.0)
    assert float(out["grad_cosine/discrete|continuous"]) == 0.0
    assert float(out["grad_cosine/continuous|value"]) == 0.0
    a = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    out = gradient_diagnostics(ctx, jnp.asarray(a) @ jnp.asarray(a).T)
    want = a[0] @ a[1] / np.linalg.norm(a[0]) / np.linalg.norm(a[1])
    np.testing.assert_allclose(float(out["grad_cosine/discrete|continuous"]), want, rtol=1e-5)
