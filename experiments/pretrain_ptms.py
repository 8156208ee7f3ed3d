"""Pre-train the CNN feature extractor ("PTM", the WSA source) on rasterised Durotaxis-v0 states.

Data: `--envs` parallel Durotaxis-v0 rollouts of `--steps` steps in one jitted `lax.scan`; each
environment follows a mixture policy — at every step the scripted expert (`expert_action`) with an
environment-specific probability p ~ U[0, 1], else a uniformly random hybrid action — so the data
covers expert migrations, random wandering and collapses. (`--synthetic` uses the random-tree
generator of `balancedrl.networks.testing` instead.) Inputs: `rasterize(obs, 24)`; targets: the
first 10 global features (node count, centroid, bounding box, intensity mean/min/max).

Model: `ResNetEncoder(channels=(8, 16, 16), embedding_dim=64)` + linear head, MSE, Adam, for
`--seconds` of wall time. Reports validation MSE and R² (vs. predicting the training mean) and
saves the ENCODER params with orbax to `--out` (default: the shipped balancedrl/assets/ptm/cnn_v1)
plus `<out>.json` metadata.

    python experiments/pretrain_ptms.py --seconds 90
"""

from __future__ import annotations

import argparse
import platform
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from balancedrl.networks.cnn import ResNetEncoder
from balancedrl.networks.pretrained import DEFAULT_PTM_PATH, PTM_CHANNELS, PTM_EMBEDDING_DIM, save_ptm
from balancedrl.networks.raster import rasterize_batch
from balancedrl.types import GLOBAL_FEATURES, Observation

NUM_TARGETS = 10  # GLOBAL_FEATURES[:10]


def collect_env(key: jax.Array, num_envs: int, num_steps: int) -> Observation:
    """Observations [num_envs·num_steps, ...] from mixture-policy Durotaxis-v0 rollouts."""
    from balancedrl.envs import continuous_bounds, expert_action, make
    from balancedrl.types import HybridAction

    env, params = make("Durotaxis-v0")
    low, high = continuous_bounds(params)
    k_reset, k_p, k_run = jax.random.split(key, 3)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, num_envs), params)
    p_expert = jax.random.uniform(k_p, (num_envs,))

    def policy(k, o, p):
        k1, k2, k3, k4 = jax.random.split(k, 4)
        m = o.mask.shape[-1]
        expert = expert_action(k1, o, params)
        rand = HybridAction(
            discrete=jax.random.randint(k2, (m,), 0, 3),
            continuous=jax.random.uniform(k3, (m, 4), minval=low, maxval=high),
        )
        use = jax.random.uniform(k4) < p
        return jax.tree_util.tree_map(lambda a, b: jnp.where(use, a, b), expert, rand)

    def step(carry, k):
        obs, state = carry
        ka, ks = jax.random.split(k)
        act = jax.vmap(policy)(jax.random.split(ka, num_envs), obs, p_expert)
        out = jax.vmap(env.step, in_axes=(0, 0, 0, None))(jax.random.split(ks, num_envs), state, act, params)
        return (out[0], out[1]), obs

    _, traj = jax.lax.scan(step, (obs, state), jax.random.split(k_run, num_steps))
    return jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), traj)


def collect_synthetic(seed: int, n: int) -> Observation:
    from balancedrl.networks.testing import random_observation_batch

    return jax.tree_util.tree_map(jnp.asarray, random_observation_batch(np.random.default_rng(seed), n))


class PretrainNet(nn.Module):
    @nn.compact
    def __call__(self, img):
        emb = ResNetEncoder(PTM_CHANNELS, PTM_EMBEDDING_DIM, name="encoder")(img)
        return nn.Dense(NUM_TARGETS, name="head")(nn.relu(emb))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=90.0, help="training wall-time budget")
    ap.add_argument("--envs", type=int, default=64)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--synthetic", action="store_true", help="use random synthetic trees, not the env")
    ap.add_argument("--out", default=str(DEFAULT_PTM_PATH))
    args = ap.parse_args(argv)
    for name in ("seconds", "envs", "steps", "batch", "lr"):
        if not getattr(args, name) > 0:
            raise SystemExit(f"--{name} must be > 0, got {getattr(args, name)}")

    key = jax.random.PRNGKey(args.seed)
    k_data, k_init, k_shuf = jax.random.split(key, 3)
    t0 = time.perf_counter()
    if args.synthetic:
        obs = collect_synthetic(args.seed, args.envs * args.steps)
        source = "synthetic random trees (balancedrl.networks.testing)"
    else:
        obs = jax.jit(collect_env, static_argnums=(1, 2))(k_data, args.envs, args.steps)
        source = f"Durotaxis-v0 rollouts, {args.envs} envs x {args.steps} steps, expert/random mixture"
    x = np.asarray(jax.jit(rasterize_batch)(obs))
    y = np.asarray(obs.globals[:, :NUM_TARGETS], np.float32)
    keep = np.asarray(obs.mask.any(-1))
    x, y = x[keep], y[keep]
    n = len(x)
    perm = np.asarray(jax.random.permutation(k_shuf, n))
    n_val = max(n // 10, 1)
    xv, yv, xt, yt = x[perm[:n_val]], y[perm[:n_val]], x[perm[n_val:]], y[perm[n_val:]]
    print(f"data: {n} samples ({source}) in {time.perf_counter() - t0:.1f}s")

    net = PretrainNet()
    params = net.init(k_init, xt[:1])["params"]
    tx = optax.adam(args.lr)
    opt = tx.init(params)

    def loss_fn(p, xb, yb):
        return jnp.mean((net.apply({"params": p}, xb) - yb) ** 2)

    @jax.jit
    def update(p, o, xb, yb):
        loss, g = jax.value_and_grad(loss_fn)(p, xb, yb)
        upd, o = tx.update(g, o, p)
        return optax.apply_updates(p, upd), o, loss

    eval_loss = jax.jit(loss_fn)
    rng = np.random.default_rng(args.seed)
    t1, it, loss = time.perf_counter(), 0, float("nan")
    while time.perf_counter() - t1 < args.seconds:
        idx = rng.integers(0, len(xt), args.batch)
        params, opt, loss = update(params, opt, xt[idx], yt[idx])
        it += 1
        if it % 200 == 0:
            print(f"iter {it}: train mse {float(loss):.5f}  val mse {float(eval_loss(params, xv, yv)):.5f}")
    val = float(eval_loss(params, xv, yv))
    base = float(np.mean((yv - yt.mean(0)) ** 2))
    r2 = 1.0 - val / base
    meta = {
        "architecture": {
            "class": "ResNetEncoder",
            "channels": list(PTM_CHANNELS),
            "embedding_dim": PTM_EMBEDDING_DIM,
            "input": "rasterize(obs, size=24) [24,24,4]",
        },
        "targets": list(GLOBAL_FEATURES[:NUM_TARGETS]),
        "data": source,
        "samples": int(n),
        "iterations": it,
        "batch": args.batch,
        "lr": args.lr,
        "train_seconds": args.seconds,
        "val_mse": val,
        "val_mse_predict_mean": base,
        "val_r2": r2,
        "seed": args.seed,
        "jax": jax.__version__,
        "machine": platform.platform(),
    }
    path = save_ptm(params["encoder"], args.out, metadata=meta)
    print(f"val mse {val:.5f} (predict-mean baseline {base:.5f}, R^2 {r2:.3f}); saved encoder to {path}")
    return meta


if __name__ == "__main__":
    main()
