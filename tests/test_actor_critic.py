"""Tests for balancedrl.networks.actor_critic (HybridActorCritic, configs, frozen partition)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancedrl.networks import (
    HybridActorCritic,
    NetworkConfig,
    WSAConfig,
    count_params,
    extractor_names,
    frozen_mask,
    frozen_param_names,
)
from balancedrl.networks.testing import (
    permute_observation,
    random_observation,
    random_observation_batch,
    random_params,
)
from balancedrl.types import Observation

M = 10
TINY_WSA = WSAConfig(
    embedding_dim=8,
    context_dim=4,
    raster_size=8,
    cnn_channels=(4,),
    cnn_embedding_dim=8,
    # the trainable extractor is gnn_token: a trainable CNN's backward pass is slow to compile on CPU
    ptms=(("pretrained_cnn", True), ("gnn_token", False), ("token_image", True), ("random_cnn", True)),
)
CONFIGS = {
    "gnn": NetworkConfig(hidden_dim=16, num_gnn_layers=2, num_heads=2, log_std_init=-1.3),
    "wsa": NetworkConfig(hidden_dim=16, num_gnn_layers=1, num_heads=2, use_wsa=True, wsa=TINY_WSA),
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def net(request):
    cfg = CONFIGS[request.param]
    model = HybridActorCritic(cfg)
    obs = random_observation(np.random.default_rng(0), M)
    # compiling the initialisers is slow on CPU: random params (the real init: test_log_std_init)
    variables = random_params(model, 0, obs)
    return cfg, model, variables, jax.jit(model.apply)


def _row(obs, b):
    return jax.tree_util.tree_map(lambda x: x[b], obs)


def test_shapes_finite_and_batch_agreement(net):
    cfg, _, variables, apply = net
    obs = random_observation_batch(np.random.default_rng(1), 3, M)
    out = apply(variables, obs)
    k = len(cfg.wsa.ptms) if cfg.use_wsa else 0
    assert out.discrete_logits.shape == (3, M, 3)
    assert out.cont_mean.shape == (3, M, 4) and out.cont_log_std.shape == (3, M, 4)
    assert out.values.shape == (3, cfg.num_components) and out.wsa_weights.shape == (3, k)
    for x in out:
        assert np.all(np.isfinite(x))
    for b in range(3):
        single = apply(variables, _row(obs, b))
        assert single.discrete_logits.shape == (M, 3) and single.wsa_weights.shape == (k,)
        for xb, xs in zip(out, single, strict=False):
            np.testing.assert_allclose(xb[b], xs, atol=1e-5)
    if not cfg.use_wsa:  # vmap of the single-observation call (one config: compiles are slow)
        vm = jax.vmap(lambda o: apply(variables, o))(obs)
        for xb, xv in zip(out, vm, strict=False):
            np.testing.assert_allclose(xb, xv, atol=1e-5)
    if cfg.use_wsa:
        return
    # extra leading axes
    two = jax.tree_util.tree_map(lambda x: np.stack([x, x]), obs)
    out2 = apply(variables, two)
    assert out2.values.shape == (2, 3, cfg.num_components)
    np.testing.assert_allclose(out2.values[1], out.values, atol=1e-5)


def test_wsa_weights_simplex(net):
    cfg, _, variables, apply = net
    if not cfg.use_wsa:
        pytest.skip("WSA off")
    w = np.asarray(apply(variables, random_observation_batch(np.random.default_rng(2), 3, M)).wsa_weights)
    assert np.all(w > 0)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-6)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_permutation_equivariance(net, seed):
    _, _, variables, apply = net
    rng = np.random.default_rng(seed)
    obs = random_observation(rng, M)
    perm = rng.permutation(M)
    a = apply(variables, obs)
    b = apply(variables, permute_observation(obs, perm))
    for name in ("discrete_logits", "cont_mean", "cont_log_std"):
        np.testing.assert_allclose(np.asarray(getattr(a, name))[perm], getattr(b, name), atol=1e-4)
    np.testing.assert_allclose(a.values, b.values, atol=1e-4)
    np.testing.assert_allclose(a.wsa_weights, b.wsa_weights, atol=1e-5)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_dead_slot_features_change_nothing(net, seed):
    _, _, variables, apply = net
    rng = np.random.default_rng(seed)
    obs = random_observation(rng, M, int(rng.integers(1, M)))
    dead = ~obs.mask
    nodes = obs.nodes.copy()
    nodes[dead] = rng.normal(size=(dead.sum(), nodes.shape[1]))
    a = apply(variables, obs)
    b = apply(variables, Observation(nodes, obs.mask, obs.parent, obs.globals))
    for name in ("discrete_logits", "cont_mean", "cont_log_std"):
        np.testing.assert_allclose(
            np.asarray(getattr(a, name))[obs.mask], np.asarray(getattr(b, name))[obs.mask], atol=1e-5
        )
    np.testing.assert_allclose(a.values, b.values, atol=1e-5)
    np.testing.assert_allclose(a.wsa_weights, b.wsa_weights, atol=1e-6)


def test_log_std_init_honoured():
    """The PyTorch original silently overwrote the log-std bias init (seed README)."""
    cfg = NetworkConfig(hidden_dim=8, num_gnn_layers=0, num_heads=2, log_std_init=-1.3)
    model = HybridActorCritic(cfg)
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), random_observation(np.random.default_rng(0), M))
    apply = jax.jit(model.apply)
    p = variables["params"]["log_std_head"]
    np.testing.assert_array_equal(p["bias"], np.full(4, cfg.log_std_init, np.float32))
    obs = random_observation_batch(np.random.default_rng(3), 3, M)
    ls = np.asarray(apply(variables, obs).cont_log_std)[obs.mask]
    np.testing.assert_allclose(ls, cfg.log_std_init, atol=0.05)


def test_frozen_extractors_unchanged_by_optimizer(net):
    cfg, model, variables, _ = net
    if not cfg.use_wsa:
        assert frozen_param_names(cfg) == ()
        pytest.skip("WSA off")
    names = extractor_names(cfg)
    assert names == (
        "extractor_0_pretrained_cnn",
        "extractor_1_gnn_token",
        "extractor_2_token_image",
        "extractor_3_random_cnn",
    )
    assert frozen_param_names(cfg) == (names[0], names[2], names[3])
    params = variables["params"]
    labels = jax.tree_util.tree_map(lambda f: "frozen" if f else "train", frozen_mask(params, cfg))
    tx = optax.multi_transform({"train": optax.adam(1e-2), "frozen": optax.set_to_zero()}, labels)
    opt = jax.jit(tx.init)(params)
    obs = random_observation_batch(np.random.default_rng(4), 2, M)

    def loss(p):
        out = model.apply({"params": p}, obs)
        return jnp.sum(out.values**2) + jnp.sum(out.cont_mean**2) + jnp.sum(out.discrete_logits**2)

    @jax.jit
    def step(p, o):
        g = jax.grad(loss)(p)
        upd, o = tx.update(g, o, p)
        return optax.apply_updates(p, upd), o, g

    p = params
    g = None
    for _ in range(3):
        p, opt, g = step(p, opt)
    params, p, g = jax.device_get((params, p, g))  # compare in NumPy (no per-leaf compiles)
    for n in names:
        same = all(
            np.array_equal(a, b)
            for a, b in zip(
                jax.tree_util.tree_leaves(params[n]), jax.tree_util.tree_leaves(p[n]), strict=True
            )
        )
        assert same == (n in frozen_param_names(cfg)), n
        gnorm = sum(float(np.sum(x**2)) for x in jax.tree_util.tree_leaves(g[n]))
        if n in frozen_param_names(cfg):
            assert gnorm == 0.0  # stop_gradient: frozen extractors get exactly zero gradient
    # the shared scoring MLP gets gradient and moves
    assert float(np.max(np.abs(g["wsa"]["score_hidden"]["kernel"]))) > 0
    assert not np.allclose(params["wsa"]["score_hidden"]["kernel"], p["wsa"]["score_hidden"]["kernel"])


def test_count_params(net):
    _, _, variables, _ = net
    manual = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(variables))
    assert count_params(variables) == manual > 0


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"hidden_dim": 0}, "hidden_dim"),
        ({"hidden_dim": 10, "num_heads": 4}, "num_heads"),
        ({"log_std_init": float("nan")}, "log_std_init"),
        ({"gnn_layer": "gcn"}, "gnn_layer"),
        ({"wsa": {"fusion": "sum"}}, "wsa.fusion"),
        ({"wsa": {"ptms": (("resnet18", True),)}}, r"wsa.ptms\[0\]\[0\]"),
        ({"wsa": {"ptms": (("random_cnn", "yes"),)}}, r"wsa.ptms\[0\]"),
        ({"wsa": {"ptms": ()}}, "wsa.ptms"),
        ({"wsa": {"attention_temperature": 0.0}}, "attention_temperature"),
        ({"batch_norm": True}, "batch_norm"),
        ({"wsa": {"heads": 2}}, "heads"),
    ],
)
def test_config_validation(kwargs, key):
    with pytest.raises(ValueError, match=key):
        NetworkConfig.from_dict(kwargs)


def test_config_token_image_flag_and_frozen():
    cfg = NetworkConfig(use_wsa=True, wsa=WSAConfig(ptms=(("gnn_token", False),), token_image=True))
    assert cfg.wsa.ptms == (("gnn_token", False), ("token_image", False))
    assert dataclasses.replace(cfg, use_wsa=False).wsa.ptms == cfg.wsa.ptms
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.hidden_dim = 3
