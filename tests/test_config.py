"""One source of config truth: dataclass defaults are default.yaml's, allowed values live in the fields'
metadata and choices come from the modules that own them, and one base-weight rule holds everywhere."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from balancedrl.networks.actor_critic import EXTRACTOR_TYPES
from balancedrl.networks.gnn import GNN_LAYERS
from balancedrl.networks.wsa import FUSION_MODES
from balancedrl.training.config import RANGES, Config, ConfigError, load_config, to_dict, validate
from balancedrl.training.trainer import build_balancer, loss_layout


def test_dataclass_defaults_are_default_yaml():
    assert to_dict(Config()) == to_dict(load_config("experiments/configs/default.yaml"))


def test_defaults_are_allowed_and_ranges_come_from_field_metadata():
    validate(Config())
    meta = {}
    for section in dataclasses.fields(Config):
        for f in dataclasses.fields(getattr(Config(), section.name)):
            if "allowed" in f.metadata:
                meta[f"{section.name}.{f.name}"] = f.metadata["allowed"]
    assert set(meta) <= set(RANGES) and len(RANGES) >= 50
    assert RANGES["actor_critic.gnn_layer"] is GNN_LAYERS
    assert RANGES["actor_critic.wsa_config.fusion"] is FUSION_MODES
    with pytest.raises(ConfigError, match="'actor_critic.gnn_layer' = 'gat' is not allowed; allowed: one of 'sage'"):
        load_config(None, ["actor_critic.gnn_layer=gat"])
    with pytest.raises(ConfigError, match=r"'trainer.clip_eps' = -1.0 is out of range; allowed: \(0.0, inf\]"):
        load_config(None, ["trainer.clip_eps=-1.0"])
    assert set(EXTRACTOR_TYPES) >= {"pretrained_cnn", "random_cnn"}


def test_renamed_key_is_an_alias_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match="trainer.balancer.norm_refresh"):
        cfg = load_config(None, ["trainer.gradient_scaling.norm_refresh=minibatch"])
    assert cfg.trainer.balancer.norm_refresh == "minibatch"


def test_balancer_keys_are_checked():
    with pytest.raises(ConfigError, match="'trainer.balancer.name' = 'nope' is not allowed"):
        load_config(None, ["trainer.balancer.name=nope"])
    with pytest.raises(ConfigError, match="'trainer.balancer.losses'.*allowed names"):
        load_config(None, ["trainer.balancer.losses=[discrete, policy]"])
    with pytest.raises(ConfigError, match=r"'trainer.balancer.hyper' names \['lr'\].*'famo'"):
        load_config(None, ["trainer.balancer.name=famo", "trainer.balancer.hyper={lr: 1.0}"])


@pytest.mark.parametrize("scaling", [True, False])
def test_one_base_weight_rule(scaling):
    """Base weights are normalised to sum 1 whether scaling is off or still warming up."""
    cfg = load_config(
        None,
        [
            "trainer.gradient_scaling.base_discrete_weight=1.4",
            "trainer.gradient_scaling.base_continuous_weight=0.6",
            f"trainer.gradient_scaling.enable_adaptive_scaling={str(scaling).lower()}",
            "trainer.gradient_scaling.warmup_steps=5",
        ],
    )
    layout = loss_layout(cfg)
    np.testing.assert_allclose([layout.fixed_coefs[i] for i in layout.balanced], [0.7, 0.3], rtol=1e-6)
    b = build_balancer(cfg, layout)
    g = {"w": jnp.asarray([[1.0, 0.0], [0.0, 3.0]])}
    _, _, info = b.update(g if b.requires_grads else None, jnp.ones(2), b.init(2, g), jax.random.PRNGKey(0))
    np.testing.assert_allclose(info["weights"], [0.7, 0.3], rtol=1e-6)
