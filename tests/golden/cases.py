"""Golden-metric cases: short runs whose metrics pin the trainer's behaviour across refactors.

Each case is a YAML config plus overrides that set every technique explicitly (so a change of dataclass
defaults cannot move a golden value). ``run_case`` trains ``UPDATES`` updates under ``jax_enable_x64`` and
returns every metric per update plus a digest of the final parameters (float32: the
trainer casts to float32 throughout, and XLA on CPU is deterministic). ``make_golden.py`` records them in
``golden_metrics.json``; ``tests/test_golden.py`` checks them to 1e-5 relative.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

UPDATES = 3

TECHNIQUES_ON = [
    "trainer.advantage_weighting.enable_learnable_weights=true",
    "trainer.advantage_weighting.enable_attention_weighting=true",
    "trainer.gradient_scaling.enable_adaptive_scaling=true",
    "trainer.gradient_scaling.warmup_steps=2",
    "trainer.entropy_regularization.enable_adaptive_entropy=true",
    "trainer.entropy_regularization.entropy_decay_episodes=4",
    "trainer.reward_normalization.enable=true",
    "trainer.vf_clip=0.2",
]
TECHNIQUES_OFF = [
    "trainer.advantage_weighting.enable_learnable_weights=false",
    "trainer.advantage_weighting.enable_attention_weighting=false",
    "trainer.gradient_scaling.enable_adaptive_scaling=false",
    "trainer.entropy_regularization.enable_adaptive_entropy=false",
    "trainer.reward_normalization.enable=false",
    "trainer.expert_guidance.enable=false",
    "trainer.balancer.log_gradients=false",
    "trainer.vf_clip=0.2",
]
TINY_ROLLOUT = ["trainer.num_steps=8", "trainer.update_epochs=2", "trainer.num_minibatches=2"]
DUROTAXIS_TINY = [
    "env.num_envs=4",
    "env.params={max_nodes: 16, init_nodes: 4, critical_nodes: 8, overcrowd_nodes: 12, max_steps_in_episode: 16}",
    "actor_critic.hidden_dim=8",
    "actor_critic.num_gnn_layers=1",
] + TINY_ROLLOUT
MLP_TINY = ["env.num_envs=4", "actor_critic.hidden_dim=8"] + TINY_ROLLOUT

CASES = {
    "durotaxis_on": (
        "experiments/configs/default.yaml",
        DUROTAXIS_TINY
        + TECHNIQUES_ON
        + [
            "trainer.balancer.norm_refresh=minibatch",
            "trainer.expert_guidance.enable=true",
            "trainer.expert_guidance.decay_updates=4",
        ],
    ),
    "durotaxis_off": ("experiments/configs/default.yaml", DUROTAXIS_TINY + TECHNIQUES_OFF),
    "cartpole_on": (
        "experiments/configs/cartpole.yaml",
        MLP_TINY + TECHNIQUES_ON + ["trainer.balancer.norm_refresh=epoch"],
    ),
    "cartpole_off": ("experiments/configs/cartpole.yaml", MLP_TINY + TECHNIQUES_OFF),
    "platform_on": (
        "experiments/configs/platform.yaml",
        MLP_TINY + TECHNIQUES_ON + ["trainer.balancer.norm_refresh=epoch"],
    ),
    "platform_off": ("experiments/configs/platform.yaml", MLP_TINY + TECHNIQUES_OFF),
}


def run_case(name: str, root=".") -> dict:
    """Metrics ``{name: [UPDATES, ...] list}`` and ``param_digest`` (sum and sum of squares per leaf)."""
    from pathlib import Path

    from balancedrl.training.config import load_config
    from balancedrl.training.trainer import make_train

    path, overrides = CASES[name]
    cfg = load_config(Path(root) / path, overrides + [f"trainer.total_timesteps={10**6}"])
    trainer = make_train(cfg)
    runner = trainer.init(jax.random.PRNGKey(7))
    runner, metrics = jax.jit(trainer.run, static_argnums=1)(runner, UPDATES)
    leaves = jax.tree_util.tree_leaves(runner.params)
    digest = [[float(jnp.sum(x)), float(jnp.sum(jnp.square(x)))] for x in leaves]
    out = {k: np.asarray(v, np.float64).tolist() for k, v in jax.device_get(metrics).items()}
    out["param_digest"] = digest
    return out
