"""experiments/component_weights.py: every row is a valid config that sets what it claims; the natural-scale
shares of the weights used in its report."""

from __future__ import annotations

import numpy as np

from balancedrl.training.config import load_config
from experiments.component_weights import (
    BASE,
    DEFAULT_ROWS,
    ENVS,
    channel_scales,
    fixed_weights_of,
    natural_share,
    row_overrides,
)


def test_rows_are_valid_configs_in_importance_order():
    assert DEFAULT_ROWS[:4] == ["sparse:meta_gradient", "sparse:equal_sum", "sparse:oracle", "sparse:total_only"]
    assert len(DEFAULT_ROWS) == 17 and "default:oracle" not in DEFAULT_ROWS
    for row in DEFAULT_ROWS:
        cfg = load_config(str(BASE), row_overrides(row))
        aw = cfg.trainer.advantage_weighting
        env_key, method = row.split(":")
        assert cfg.env.name == ENVS[env_key] and not cfg.trainer.expert_guidance.enable
        assert aw.mode == {"meta_gradient": "meta_gradient", "oracle": "fixed"}.get(method, "softmax_attention")
        assert cfg.trainer.reward_normalization.enable == (method == "two_tier_equal_sum")
        assert aw.enable_learnable_weights == (method == "seed000") or aw.mode != "softmax_attention"
    mis = load_config(str(BASE), row_overrides("misscaled:oracle")).trainer.advantage_weighting.fixed_weights
    np.testing.assert_allclose(mis, [1, 1e3, 0.1, 0, 0])


def test_natural_scale_shares():
    s = channel_scales("Durotaxis-Misscaled-v0")
    np.testing.assert_allclose(s, [1, 1e-3, 10, 1e3, 1e2])
    np.testing.assert_allclose(natural_share(fixed_weights_of("misscaled:oracle"), s), [1 / 3, 1 / 3, 1 / 3, 0, 0])
    np.testing.assert_allclose(natural_share(fixed_weights_of("sparse:equal_sum"), np.ones(5)), np.full(5, 0.2))
    np.testing.assert_allclose(natural_share(fixed_weights_of("default:total_only"), np.ones(6)), np.eye(6)[0])
    assert fixed_weights_of("sparse:meta_gradient") is None
