"""Render Durotaxis states as RGB frames (pure NumPy) and write GIFs (imageio).

Frame: substrate heat map (normalised intensity I/I_ref through a dark-blue -> yellow ramp), the
success line (x = success_fraction·W, white), tree edges (light grey) and nodes (red; new nodes
orange; the root cyan).
"""

from __future__ import annotations

import jax
import numpy as np

from balancedrl.envs import substrate as sub_lib

_LOW = np.array([20, 30, 80], np.float32)
_HIGH = np.array([250, 220, 60], np.float32)


def _disc(img, cx, cy, radius, color):
    H, W, _ = img.shape
    x0, x1 = max(int(cx - radius), 0), min(int(cx + radius) + 1, W)
    y0, y1 = max(int(cy - radius), 0), min(int(cy + radius) + 1, H)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1]
    inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2
    img[y0:y1, x0:x1][inside] = color


def _line(img, p0, p1, color):
    H, W, _ = img.shape
    n = int(max(abs(p1[0] - p0[0]), abs(p1[1] - p0[1]))) + 2
    xs = np.clip(np.round(np.linspace(p0[0], p1[0], n)).astype(int), 0, W - 1)
    ys = np.clip(np.round(np.linspace(p0[1], p1[1], n)).astype(int), 0, H - 1)
    img[ys, xs] = color


def render_frame(state, params, size=(300, 200)) -> np.ndarray:
    """uint8 ``[H_px, W_px, 3]`` frame of one (unbatched) ``DurotaxisState``; ``size = (W_px, H_px)``."""
    w_px, h_px = int(size[0]), int(size[1])
    if w_px < 2 or h_px < 2:
        raise ValueError(f"size={size}: width and height must be >= 2 pixels")
    pos = np.asarray(state.pos, np.float32)
    if pos.ndim != 2:
        raise ValueError(f"state.pos has shape {pos.shape}: render_frame takes one unbatched state")
    W, H = float(params.width), float(params.height)
    sx, sy = w_px / W, h_px / H
    gx = (np.arange(w_px) + 0.5) / sx
    gy = (np.arange(h_px) + 0.5) / sy
    grid = np.stack(np.meshgrid(gx, gy), axis=-1).astype(np.float32)  # [h, w, 2]
    sub = state.substrate
    inten = np.asarray(sub_lib.intensity(sub, grid, W, H)) / float(sub_lib.reference_intensity(sub, W))
    t = np.clip(inten, 0.0, 1.0)[..., None]
    img = (_LOW + t * (_HIGH - _LOW)).astype(np.uint8)
    xs = int(float(params.success_fraction) * W * sx)
    if 0 <= xs < w_px:
        img[:, xs] = 255
    alive = np.asarray(state.alive, bool)
    parent = np.asarray(state.parent)
    is_new = np.asarray(state.is_new, bool)
    px = pos * np.array([sx, sy], np.float32)
    for i in np.nonzero(alive & (parent >= 0))[0]:
        _line(img, px[parent[i]], px[i], np.array([200, 200, 200], np.uint8))
    radius = max(1.5, 2.5 * min(sx, sy) * 2)
    for i in np.nonzero(alive)[0]:
        color = (0, 220, 255) if parent[i] < 0 else ((255, 150, 0) if is_new[i] else (230, 40, 40))
        _disc(img, px[i, 0], px[i, 1], radius, np.array(color, np.uint8))
    return img


def write_gif(frames, path, fps: int = 10) -> str:
    """Write uint8 frames ``[H, W, 3]`` to a GIF at ``path`` (imageio); returns the path."""
    import imageio.v2 as imageio

    frames = [np.asarray(f, np.uint8) for f in frames]
    if not frames:
        raise ValueError("frames is empty: need at least one frame to write a GIF")
    imageio.mimsave(str(path), frames, duration=1.0 / fps, loop=0)
    return str(path)


def _transition(env, policy_fn, params, key, obs, state):
    k_act, k_step = jax.random.split(key)
    action = policy_fn(k_act, obs, params)
    obs, state, _, terminated, info = env.step_env(k_step, state, action, params)
    return obs, state, terminated | info["truncated"]


# env and policy_fn are static (hashable); params are traced, so one compile serves every params value.
_transition_jit = jax.jit(_transition, static_argnums=(0, 1))


def rollout_states(env, params, policy_fn, key, max_steps=None):
    """Run one episode with ``step_env`` (no auto-reset); return the list of states, reset included.

    ``policy_fn(key, obs, params) -> HybridAction`` must be hashable (a module-level function or a
    cached closure). Stops after termination, truncation or ``max_steps`` (default
    ``params.max_steps_in_episode``).
    """
    max_steps = int(params.max_steps_in_episode if max_steps is None else max_steps)
    key, k_reset = jax.random.split(key)
    obs, state = env.reset(k_reset, params)
    states = [state]
    for _ in range(max_steps):
        key, k = jax.random.split(key)
        obs, state, done = _transition_jit(env, policy_fn, params, k, obs, state)
        states.append(state)
        if bool(done):
            break
    return states
