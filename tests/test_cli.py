"""Command line and seed sharding."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from balancedrl.cli import main
from balancedrl.training.config import ConfigError, load_config


def test_config_errors_name_key_value_and_range(capsys):
    assert main(["train", "--set", "trainer.gamma=1.5"]) == 2
    err = capsys.readouterr().err
    assert "trainer.gamma" in err and "1.5" in err and "[0.0, 1.0]" in err
    assert main(["train", "--set", "trainer.nonsense=1"]) == 2
    assert "unknown config key 'trainer.nonsense'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("env.num_envs=0", "env.num_envs"),
        ("trainer.num_minibatches=3", "must divide"),
        ("trainer.gradient_scaling.min_scaling_factor=20", "min_scaling_factor"),
        ("actor_critic.wsa_config.fusion=sum", "'wsa', 'concat', 'mean'"),
        ("actor_critic.wsa_config.ptms=[{model_type: resnet50}]", "model_type"),
        ("trainer.update_epochs=1.5", "integer"),
        ("trainer.joint_ratio=maybe", "boolean"),
    ],
)
def test_bad_values_rejected_before_compilation(override, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[").replace("(", r"\(")):
        load_config(None, [override])


def test_presets_load():
    root = os.path.join(os.path.dirname(__file__), "..", "experiments", "configs")
    for name in sorted(os.listdir(root)):
        if name.endswith(".yaml"):
            load_config(os.path.join(root, name))


SHARD_SCRIPT = textwrap.dedent(
    """
    import json, jax, numpy as np
    from balancedrl.training.config import load_config
    from balancedrl.training.loop import seed_keys
    from balancedrl.training.trainer import make_train, make_run_chunk
    cfg = load_config(None, [
        "env.num_envs=2", "env.params={max_nodes: 8, init_nodes: 3, critical_nodes: 4, overcrowd_nodes: 6}",
        "actor_critic.hidden_dim=4", "actor_critic.num_gnn_layers=1", "trainer.num_steps=4",
        "trainer.update_epochs=1", "trainer.num_minibatches=1", "trainer.total_timesteps=8",
        "run.num_seeds=8"])
    t = make_train(cfg)
    keys = seed_keys(cfg)
    runner = jax.jit(jax.vmap(t.init))(keys)
    runner, m = make_run_chunk(t, 1, 8)(runner)
    leaf = runner.params["network"]["params"]["value_head"]["kernel"]
    print(json.dumps({"devices": jax.device_count(), "key_devices": len(keys.sharding.device_set),
                      "param_devices": len(leaf.sharding.device_set),
                      "finite": bool(np.isfinite(np.asarray(m["total_loss"])).all())}))
    """
)


def test_seed_axis_is_sharded_over_devices():
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    env = dict(os.environ, XLA_FLAGS=flags.strip(), JAX_PLATFORMS="cpu")
    out = subprocess.run(
        [sys.executable, "-c", SHARD_SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res == {"devices": 8, "key_devices": 8, "param_devices": 8, "finite": True}
