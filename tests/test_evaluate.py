"""Evaluation (``balancedrl.training.evaluate``): per-episode bookkeeping of the early-stopping while_loop.

CartPole-v1 under the uniform random policy: return == length (reward 1 per step), lengths are whole numbers
in [1, 500], the mean length is the well-known ~22 steps, and no episode succeeds (success = truncated at
500 without falling). Durotaxis-v0 (small instance) under the scripted expert: every episode succeeds within
the step cap.
The random policy there never succeeds and its episodes stay within the cap."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from balancedrl.training.adapters import make_adapter
from balancedrl.training.config import load_config
from balancedrl.training.evaluate import make_evaluate, summarize

CONFIGS = Path(__file__).resolve().parent.parent / "experiments" / "configs"


def test_cartpole_random_policy_statistics():
    ad = make_adapter(load_config(CONFIGS / "cartpole.yaml").env)
    res = jax.device_get(make_evaluate(ad, None, 512, "random")(None, jax.random.PRNGKey(0)))
    length, ret = np.asarray(res["length"]), np.asarray(res["return"])
    np.testing.assert_array_equal(ret, length)
    np.testing.assert_array_equal(length, np.round(length))
    assert length.min() >= 1 and length.max() <= 500
    assert 17.0 < length.mean() < 28.0, length.mean()
    s = summarize(res)
    assert s["success_rate"] == 0.0 and s["mean_steps"] is None and s["episodes"] == 512


def test_durotaxis_expert_always_succeeds_and_caps_are_respected():
    small = "env.params={max_nodes: 32, init_nodes: 6, critical_nodes: 16, overcrowd_nodes: 24}"
    cfg = load_config(CONFIGS / "default.yaml", [small])
    ad = make_adapter(cfg.env)
    s = summarize(make_evaluate(ad, None, 16, "expert")(None, jax.random.PRNGKey(1)))
    assert s["success_rate"] == 1.0
    assert 1.0 <= s["mean_steps"] < ad.env_params.max_steps_in_episode
    # the random policy never reaches the goal here; its episodes end by failure or at the cap
    r = jax.device_get(make_evaluate(ad, None, 16, "random")(None, jax.random.PRNGKey(2)))
    assert np.all(np.asarray(r["length"]) <= ad.env_params.max_steps_in_episode)
    assert np.asarray(r["success"]).sum() == 0
