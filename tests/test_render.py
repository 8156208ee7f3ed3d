"""render_frame / write_gif / experiments/render_episode.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import imageio.v2 as imageio
import jax
import numpy as np
import pytest

from balancedrl.envs import make, render_frame, write_gif

_SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "render_episode.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("render_episode", _SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def reset_state():
    env, params = make("Durotaxis-v0")
    _, s = env.reset_env(jax.random.PRNGKey(0), params)
    return env, params, s


def test_render_frame_shape_and_content(reset_state):
    _, params, s = reset_state
    img = render_frame(s, params, size=(150, 100))
    assert img.dtype == np.uint8 and img.shape == (100, 150, 3)
    # the heat map grows with x (brighter red channel on the stiff side), nodes drawn near the left
    assert img[:, -5:, 0].mean() > img[:, :5, 0].mean()
    node_px = np.all(img == np.array([230, 40, 40], np.uint8), axis=-1)
    assert node_px.any() and np.nonzero(node_px)[1].max() < 0.15 * 150
    with pytest.raises(ValueError, match="size"):
        render_frame(s, params, size=(1, 100))


def test_write_gif(tmp_path, reset_state):
    _, params, s = reset_state
    img = render_frame(s, params, size=(60, 40))
    frames = [img, 255 - img, img // 2]  # distinct frames (identical ones may be merged by the writer)
    path = write_gif(frames, tmp_path / "x.gif")
    back = imageio.mimread(path)
    assert len(back) == 3 and back[0].shape[:2] == (40, 60)
    with pytest.raises(ValueError, match="empty"):
        write_gif([], tmp_path / "y.gif")


def test_render_episode_script(tmp_path, script):
    out = tmp_path / "ep.gif"
    script.main(["--policy", "expert", "--out", str(out), "--seed", "1", "--max-steps", "6",
                 "--size", "60", "40"])
    assert out.exists() and out.stat().st_size > 0
    assert len(imageio.mimread(out)) == 7


def test_rollout_states_hook(script):
    """Another env instance and other params reuse the compiled transition (env hashes by value)."""
    env, params = make("Durotaxis-v0", max_steps_in_episode=4)
    states = script.rollout_states(env, params, script.expert_action, jax.random.PRNGKey(0))
    assert len(states) == 5 and int(states[0].time) == 0 and int(states[-1].time) == 4
