"""Bad input, as a new user would give it: one clear line and a non-zero exit (no traceback), refused
before anything is written; library functions that refuse or contain non-finite input; the run-directory
lock; non-finite numbers stop a run (docs/reliability.md)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancedrl import envs
from balancedrl.advantages import gae
from balancedrl.balancers.grad_scaling import adaptive_weights
from balancedrl.cli import main
from balancedrl.training import checkpoint as ckpt
from balancedrl.training.config import ConfigError, load_config, to_dict
from balancedrl.training.logging import MetricsLog, read_metrics, rows_from_metrics
from balancedrl.training.loop import NonFiniteError, first_nonfinite_metric, run_training
from balancedrl.training.runlock import RunLock, RunLockError
from balancedrl.weighting import ComponentWeighting

CARTPOLE = [
    "env.name=CartPole-v1",
    "env.num_envs=2",
    "actor_critic.hidden_dim=8",
    "trainer.num_steps=8",
    "trainer.update_epochs=1",
    "trainer.num_minibatches=1",
    "trainer.total_timesteps=48",
    "run.chunk_updates=1",
    "run.checkpoint_every=1",
    "run.render_gif=false",
]


def _one_line_error(capsys, code, argv, *fragments):
    assert main(argv) == code
    cap = capsys.readouterr()
    lines = [ln for ln in cap.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in cap.err, cap.err
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


# ------------------------------------------------------------------------------------------ config / CLI


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("trainer.learning_rate=.inf", "trainer.learning_rate"),
        ("trainer.learning_rate=.nan", "trainer.learning_rate"),
        ("actor_critic.log_std_init=-.inf", "actor_critic.log_std_init"),
        ("trainer.entropy_regularization.penalty_scale=.inf", "penalty_scale"),
        ("trainer.total_timesteps=10", "below one update"),
        ("trainer.gamma=[", "not valid YAML"),
    ],
)
def test_config_refuses_non_finite_and_degenerate_values(override, fragment, capsys):
    with pytest.raises(ConfigError, match=fragment):
        load_config(None, [override])
    _one_line_error(capsys, 2, ["train", "--set", override], fragment)


def test_config_files(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer:\n  gamma: 0.9\n  lambda: [1, 2\nrun:\n  seed: 1\n")
    _one_line_error(capsys, 2, ["train", "--config", str(bad)], str(bad), "line ")
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    _one_line_error(capsys, 2, ["train", "--config", str(empty)], str(empty), "empty", "built-in defaults")
    ext = tmp_path / "ext.yaml"
    ext.write_text("extends: [a.yaml, b.yaml]\n")
    _one_line_error(capsys, 2, ["train", "--config", str(ext)], "extends", "string")


@pytest.mark.parametrize(
    "params, fragment",
    [
        ("{width: .nan}", "width"),
        ("{gamma_range: [.nan, 1.0]}", "gamma_range"),
        ("{bogus: 1}", "bogus"),
        ("{height: tall}", "height"),
        ("5", "env.params"),
    ],
)
def test_bad_env_params_are_one_line(params, fragment, tmp_path, capsys):
    run_dir = tmp_path / "never"
    _one_line_error(capsys, 2, ["train", "--run-dir", str(run_dir), "--set", f"env.params={params}"], fragment)
    assert not run_dir.exists()  # refused before the run directory is touched


def test_eval_errors(tmp_path, capsys):
    for n in ("-3", "0"):
        _one_line_error(capsys, 2, ["eval", "--run", str(tmp_path), "--episodes", n], "--episodes", ">= 1")
    _one_line_error(capsys, 6, ["eval", "--run", str(tmp_path / "nope")], "no config.yaml")
    cfg = load_config(None, CARTPOLE)
    (tmp_path / "config.yaml").write_text(json.dumps(to_dict(cfg)))
    _one_line_error(capsys, 6, ["eval", "--run", str(tmp_path)], "no complete checkpoint")
    # A damaged checkpoint: refused, naming the file (before anything is compiled).
    fp = ckpt.config_fingerprint(to_dict(cfg))
    ckpt.save_checkpoint(tmp_path, 1, {"w": np.ones(3, np.float32)}, {"fingerprint": fp})
    arrays = ckpt.checkpoint_dir(tmp_path) / "update_0000001" / ckpt.ARRAYS
    arrays.write_bytes(arrays.read_bytes()[:-7] + b"garbage")
    _one_line_error(capsys, 4, ["eval", "--run", str(tmp_path)], str(arrays), "damaged")


def test_rejected_resume_keeps_config_yaml(tmp_path):
    cfg = load_config(None, CARTPOLE)
    fp = ckpt.config_fingerprint(to_dict(cfg))
    ckpt.save_checkpoint(tmp_path, 1, {"w": np.ones(3, np.float32)}, {"fingerprint": fp})
    (tmp_path / "config.yaml").write_text("the run's own config\n")
    other = load_config(None, CARTPOLE + ["trainer.learning_rate=0.001"])
    with pytest.raises(ckpt.ConfigMismatchError, match="different configuration"):
        run_training(other, run_dir=tmp_path, resume=True, progress=False, evaluate=False, plots=False)
    assert (tmp_path / "config.yaml").read_text() == "the run's own config\n"
    assert not (tmp_path / ".lock").read_text()  # released


# ------------------------------------------------------------------------------------------ checkpoints


def test_checkpoint_round_trip_zero_size_leaf_and_damage(tmp_path):
    state = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "empty": np.zeros((2, 0), np.float32),
             "k": jax.random.PRNGKey(3), "n": np.int32(7)}
    ckpt.save_checkpoint(tmp_path, 2, state, {"fingerprint": "f"})
    back = ckpt.restore_checkpoint(tmp_path, 2, state, "f")
    for k in state:
        np.testing.assert_array_equal(np.asarray(back[k]), np.asarray(state[k]))
    with pytest.raises(ckpt.CheckpointError, match="already exists"):
        ckpt.save_checkpoint(tmp_path, 2, state, {"fingerprint": "f"})
    with pytest.raises(ckpt.CheckpointError, match="does not match the expected state"):
        ckpt.restore_checkpoint(tmp_path, 2, dict(state, a=np.zeros((3, 2), np.float32)), "f")
    meta = ckpt.meta_path(tmp_path, 2)
    m = json.loads(meta.read_text())
    m["env_steps"] = 12345  # a valid JSON edit: caught by the metadata's own checksum
    meta.write_text(json.dumps(m))
    with pytest.raises(ckpt.DamagedCheckpointError, match=str(meta)):
        ckpt.restore_checkpoint(tmp_path, 2, state, "f")


def test_interrupted_save_is_skipped_and_replaced(tmp_path):
    state = {"w": np.ones(2, np.float32)}
    ckpt.save_checkpoint(tmp_path, 1, state, {"fingerprint": "f"})
    ckpt.save_checkpoint(tmp_path, 2, state, {"fingerprint": "f"})
    ckpt.meta_path(tmp_path, 2).unlink()  # as if killed before the marker
    assert ckpt.list_checkpoints(tmp_path) == [1]
    plan = ckpt.plan_resume(tmp_path, "f")
    assert plan.update == 1 and plan.incomplete == [2] and "incomplete" in plan.skipped[0][1]
    ckpt.save_checkpoint(tmp_path, 2, {"w": np.zeros(2, np.float32)}, {"fingerprint": "f"})  # replaces it
    np.testing.assert_array_equal(ckpt.restore_checkpoint(tmp_path, 2, state, "f")["w"], np.zeros(2))


# ------------------------------------------------------------------------------------------ lock

_HOLDER = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("runlock", sys.argv[1])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
m.RunLock(sys.argv[2]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def _holder(run_dir):
    import balancedrl.training.runlock as rl

    p = subprocess.Popen([sys.executable, "-c", _HOLDER, rl.__file__, str(run_dir)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    return p


def test_second_writer_is_refused_naming_the_holder_and_stale_locks_are_taken_over(tmp_path):
    p = _holder(tmp_path)
    try:
        with pytest.raises(RunLockError, match=f"process {p.pid}"):
            RunLock(tmp_path).acquire()
        with pytest.raises(RunLockError, match=f"process {p.pid}"):
            run_training(load_config(None, CARTPOLE), run_dir=tmp_path, progress=False, evaluate=False, plots=False)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    # The holder died without releasing: its pid is still in the file, the kernel dropped the flock.
    assert (tmp_path / ".lock").read_text().split()[0] == str(p.pid)
    lock = RunLock(tmp_path).acquire()
    assert lock.took_over == p.pid
    assert (tmp_path / ".lock").read_text().split()[0] == str(os.getpid())
    lock.release()


# ------------------------------------------------------------------------------------------ non-finite


def test_metrics_keep_not_measured_apart_from_non_finite(tmp_path):
    m = {
        "total_loss": np.array([[1.0, np.nan]]),
        "episode_return": np.array([[np.nan, np.nan]]),  # no episode ended: not measured
        "grad_norm": np.array([[np.inf, 2.0]]),
        "reward_components_mean": np.array([[[1.0, -np.inf], [0.0, 0.0]]]),
    }
    rows = rows_from_metrics(m, 0, ("total", "graph"))
    assert rows[0]["episode_return"] is None and rows[1]["total_loss"] == "nan"
    assert rows[0]["grad_norm"] == "inf" and rows[0]["reward_mean/graph"] == "-inf"
    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.write(rows)
    back = read_metrics(log.path)
    assert math.isnan(back[1]["total_loss"]) and back[0]["grad_norm"] == math.inf and back[0]["episode_return"] is None
    assert first_nonfinite_metric(m, 10) == (11, "grad_norm", 0, math.inf)
    # A torn last line (a kill mid-write) is dropped when the log is truncated back to a checkpoint.
    with log.path.open("a") as f:
        f.write('{"update": 3, "se')
    log.truncate_after(5)
    assert [r["update"] for r in read_metrics(log.path)] == [1, 2]


def test_non_finite_training_stops_naming_the_update_and_metric(tmp_path):
    """A finite but absurd learning rate: the run stops at the first non-finite update with an error naming
    it and the metric, writes that update's row with "nan"/"inf", and never checkpoints that state."""
    cfg = load_config(None, CARTPOLE + ["trainer.learning_rate=1e30"])
    with pytest.raises(NonFiniteError, match=r"non-finite values at update (\d+): metric '\w+'") as e:
        run_training(cfg, run_dir=tmp_path, progress=False, evaluate=False, plots=False)
    bad = int(str(e.value).split("update ")[1].split(":")[0])
    assert ckpt.list_checkpoints(tmp_path) == list(range(1, bad))
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert rows[-1]["update"] == bad and not np.isfinite(rows[-1]["total_loss"])
    assert '"inf"' in (tmp_path / "metrics.jsonl").read_text() or '"nan"' in (tmp_path / "metrics.jsonl").read_text()


# ------------------------------------------------------------------------------------------ library


def test_gae_nan_after_episode_boundary_stays_in_its_episode():
    T, B = 6, 2
    rng = np.random.default_rng(0)
    r, v, boot = (rng.normal(size=(T, B, 1)).astype(np.float32) for _ in range(3))
    term = np.zeros((T, B), bool)
    trunc = np.zeros((T, B), bool)
    term[2, 0] = True  # episode boundary after step 2 (env 0)
    trunc[3, 1] = True  # truncation after step 3 (env 1)
    clean = gae(r, v, term, trunc, boot, 0.99, 0.95)[0]
    r2, boot2 = r.copy(), boot.copy()
    r2[4, 0, 0] = np.nan
    r2[5, 1, 0] = np.inf
    boot2[2, 0, 0] = np.nan  # the bootstrap of a terminated step is not used
    for fn in (gae, jax.jit(gae)):
        adv = np.asarray(fn(r2, v, term, trunc, boot2, 0.99, 0.95)[0])
        np.testing.assert_array_equal(adv[:3, 0], np.asarray(clean)[:3, 0])
        np.testing.assert_array_equal(adv[:4, 1], np.asarray(clean)[:4, 1])
        assert np.isnan(adv[4, 0, 0]) and np.isinf(adv[5, 1, 0])
    vm = jax.vmap(gae, in_axes=(1, 1, 1, 1, 1, None, None), out_axes=1)
    adv = np.asarray(vm(r2[:, :, None], v[:, :, None], term[:, :, None], trunc[:, :, None], boot2[:, :, None], 0.99, 0.95)[0])
    np.testing.assert_array_equal(adv[:3, 0, 0], np.asarray(clean)[:3, 0])


_gae_jit = jax.jit(gae)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 6), st.integers(1, 7), st.booleans())
def test_gae_boundary_property(boundary, offset, truncation):
    """Any non-finite reward after any boundary leaves the earlier episode's advantages unchanged."""
    T = 8
    r = np.linspace(-1, 1, T, dtype=np.float32).reshape(T, 1, 1)
    v = np.cos(np.arange(T, dtype=np.float32)).reshape(T, 1, 1)
    cut = np.zeros((T, 1), bool)
    cut[boundary] = True
    term, trunc = (np.zeros_like(cut), cut) if truncation else (cut, np.zeros_like(cut))
    ref = np.asarray(_gae_jit(r, v, term, trunc, v, 0.9, 0.8)[0])
    bad_t = min(T - 1, boundary + offset)
    r2 = r.copy()
    r2[bad_t] = np.nan
    adv = np.asarray(_gae_jit(r2, v, term, trunc, v, 0.9, 0.8)[0])
    np.testing.assert_array_equal(adv[: boundary + 1], ref[: boundary + 1])


def test_adaptive_weights_refuses_non_positive_base_weights():
    for base in ([0.7, 0.0], [0.7, -0.3], [np.nan, 1.0]):
        with pytest.raises(ValueError, match="base_weights"):
            adaptive_weights(jnp.array([1.0, 2.0]), jnp.array(base))
    w, _ = adaptive_weights(jnp.array([1.0, 2.0]), jnp.array([0.7, 0.3]))
    wj, _ = jax.jit(adaptive_weights)(jnp.array([1.0, 2.0]), jnp.array([0.7, 0.3]))
    np.testing.assert_allclose(wj, w, rtol=1e-6)
    # Traced (cannot be checked at trace time): the weights become NaN, for the run's non-finite check.
    wn, _ = jax.jit(adaptive_weights)(jnp.array([1.0, 2.0]), jnp.array([0.7, -0.3]))
    assert np.isnan(np.asarray(wn)).all()
    wv, _ = jax.vmap(adaptive_weights)(jnp.ones((2, 2)), jnp.array([[0.5, 0.5], [0.5, 0.0]]))
    assert np.isfinite(np.asarray(wv[0])).all() and np.isnan(np.asarray(wv[1])).all()


@pytest.mark.parametrize("c", [0, -1, 2.5, True])
def test_component_weighting_needs_a_positive_int(c):
    with pytest.raises(ValueError, match="num_components"):
        ComponentWeighting(c)


def test_durotaxis_non_finite_parameters_use_the_default_and_are_counted():
    env, params = envs.make("Durotaxis-v0", max_nodes=8, init_nodes=3, critical_nodes=4, overcrowd_nodes=6)
    key = jax.random.PRNGKey(0)
    _, state = env.reset_env(key, params)
    low, high = envs.continuous_bounds(params)
    cont = jnp.broadcast_to((low + high) / 2, (8, 4))
    disc = jnp.full((8,), 1, jnp.int32)  # every node spawns: the parameters matter
    bad = cont.at[0, 0].set(jnp.nan).at[1, 3].set(jnp.inf).at[2, 1].set(-jnp.inf)
    # One jitted, vmapped step over (finite action, the same action with three non-finite entries).
    step = jax.jit(jax.vmap(env.step_env, in_axes=(None, None, 0, None)))
    _, s, r, _, info = step(key, state, {"discrete": jnp.stack([disc, disc]), "continuous": jnp.stack([cont, bad])}, params)
    assert np.asarray(info["nonfinite_params"]).tolist() == [0, 3]
    np.testing.assert_array_equal(np.asarray(s.pos[0]), np.asarray(s.pos[1]))
    assert float(r[0]) == float(r[1]) and np.isfinite(np.asarray(r)).all()


def test_make_refuses_non_finite_env_params():
    for kw in ({"width": float("nan")}, {"height": float("inf")}, {"theta_range": (-1.0, float("nan"))}):
        with pytest.raises(ValueError, match=f"{next(iter(kw))}=.*finite"):
            envs.make("Durotaxis-v0", **kw)


def test_lock_released_after_a_run_that_failed(tmp_path):
    """A refused run leaves no held lock: the next writer gets it at once."""
    cfg = load_config(None, CARTPOLE)
    ckpt.save_checkpoint(tmp_path, 1, {"w": np.ones(1, np.float32)}, {"fingerprint": "other"})
    with pytest.raises(Exception, match="already has checkpoints"):
        run_training(cfg, run_dir=tmp_path, progress=False, evaluate=False, plots=False)
    t = time.time()
    RunLock(tmp_path).acquire().release()
    assert time.time() - t < 5
    assert Path(tmp_path / ".lock").exists()
