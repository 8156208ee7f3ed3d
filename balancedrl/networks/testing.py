"""Synthetic Durotaxis-like observations for tests and for pre-training without the environment.

`random_observation` builds one valid observation in the format of `balancedrl.types.Observation`
(docs/design.md §4): `n_alive` nodes in random slots, parent pointers forming one tree (the root has
parent -1), dead slots all zero with parent -1 and mask False. Children are placed 8–20 px from
their parent, so the clusters look like the environment's. NumPy only (host side, not jitted).
"""

from __future__ import annotations

import numpy as np

from balancedrl.types import NUM_GLOBAL_FEATURES, NUM_NODE_FEATURES, Observation

_W, _H, _T = 600.0, 400.0, 200.0


def _intensity(x_px: np.ndarray, m: float, b: float) -> np.ndarray:
    return m * x_px + b


def random_observation(
    rng: np.random.Generator,
    max_nodes: int = 64,
    n_alive: int | None = None,
    contiguous: bool = False,
) -> Observation:
    """One random valid observation (float32 / bool / int32 NumPy arrays).

    Args:
      rng: NumPy generator.
      max_nodes: capacity M.
      n_alive: number of alive nodes (1..M); random in [1, min(M, 40)] when None.
      contiguous: put the alive nodes in slots 0..n-1 (else random slots).
    """
    if max_nodes < 1:
        raise ValueError(f"max_nodes must be >= 1, got {max_nodes}")
    if n_alive is None:
        n_alive = int(rng.integers(1, min(max_nodes, 40) + 1))
    if not 1 <= n_alive <= max_nodes:
        raise ValueError(f"n_alive must be in [1, max_nodes={max_nodes}], got {n_alive}")
    m = max_nodes
    slots = np.arange(n_alive) if contiguous else rng.choice(m, size=n_alive, replace=False)
    # Build the tree in creation order: node k attaches to a random earlier node.
    pos = np.zeros((n_alive, 2))
    par_local = -np.ones(n_alive, dtype=np.int64)
    pos[0] = [rng.uniform(0.02, 0.8) * _W, rng.uniform(0.35, 0.65) * _H]
    for k in range(1, n_alive):
        p = int(rng.integers(0, k))
        r = rng.uniform(8.0, 20.0)
        th = rng.uniform(-np.pi, np.pi)
        pos[k] = np.clip(pos[p] + r * np.array([np.cos(th), np.sin(th)]), 6.0, [_W - 6.0, _H - 6.0])
        par_local[k] = p
    slope, icpt = rng.uniform(0.01, 0.1), rng.uniform(0.5, 2.0)
    inten = _intensity(pos[:, 0], slope, icpt) / _intensity(np.array(_W), slope, icpt)
    children = np.bincount(par_local[par_local >= 0], minlength=n_alive)
    centroid = pos.mean(axis=0)
    dist = np.linalg.norm(pos - centroid, axis=1) / _W
    order = np.argsort(np.argsort(pos[:, 0], kind="stable"), kind="stable")
    x_rank = order / max(n_alive - 1, 1) if n_alive > 1 else np.zeros(n_alive)
    is_new = (rng.uniform(size=n_alive) < 0.2).astype(np.float64)
    age = rng.integers(0, 50, size=n_alive) / _T
    feats = np.stack(
        [
            pos[:, 0] / _W,
            pos[:, 1] / _H,
            inten,
            np.minimum(children, 4) / 4.0,
            (par_local >= 0).astype(np.float64),
            dist,
            x_rank,
            is_new,
            age,
            (par_local < 0).astype(np.float64),
        ],
        axis=1,
    )
    nodes = np.zeros((m, NUM_NODE_FEATURES), np.float32)
    nodes[slots] = feats
    mask = np.zeros(m, bool)
    mask[slots] = True
    parent = -np.ones(m, np.int32)
    parent[slots] = np.where(par_local >= 0, slots[np.maximum(par_local, 0)], -1)
    kind = np.zeros(3)
    kind[rng.integers(0, 3)] = 1.0
    glob = np.concatenate(
        [
            [n_alive / m, centroid[0] / _W, centroid[1] / _H],
            [pos[:, 0].min() / _W, pos[:, 1].min() / _H, pos[:, 0].max() / _W, pos[:, 1].max() / _H],
            [inten.mean(), inten.min(), inten.max(), rng.integers(0, 200) / _T],
            kind,
        ]
    ).astype(np.float32)
    assert glob.shape == (NUM_GLOBAL_FEATURES,)
    return Observation(nodes=nodes, mask=mask, parent=parent, globals=glob)


def random_observation_batch(
    rng: np.random.Generator, batch: int, max_nodes: int = 64, n_alive: int | None = None
) -> Observation:
    """`batch` independent observations stacked on a leading axis."""
    obs = [random_observation(rng, max_nodes, n_alive) for _ in range(batch)]
    return Observation(*(np.stack(x) for x in zip(*obs, strict=False)))


def permute_observation(obs: Observation, perm: np.ndarray) -> Observation:
    """Move slot perm[j] to slot j, remapping parent indices (new = inverse[old])."""
    perm = np.asarray(perm)
    inv = np.empty_like(perm)
    inv[perm] = np.arange(perm.size)
    parent = np.asarray(obs.parent)[perm]
    parent = np.where(parent >= 0, inv[np.maximum(parent, 0)], -1).astype(np.int32)
    return Observation(
        nodes=np.asarray(obs.nodes)[perm],
        mask=np.asarray(obs.mask)[perm],
        parent=parent,
        globals=np.asarray(obs.globals),
    )


def random_params(module, seed: int, *args):
    """Random parameters with the shapes of `module.init(key, *args)`, without compiling `init`.

    Uses `jax.eval_shape` (tracing only) and NumPy draws — kernels N(0, 1/fan_in), biases
    N(0, 0.1²), LayerNorm scales 1 + N(0, 0.1²) — so tests skip the slow XLA compile of the
    initialisers. Not the module's own initialisation (use `module.init` where that matters).
    """
    import jax

    shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0), *args)
    rng = np.random.default_rng(seed)

    def draw(path, s):
        name = jax.tree_util.keystr(path)
        if name.endswith("['scale']"):
            x = 1.0 + 0.1 * rng.normal(size=s.shape)
        elif name.endswith("['kernel']"):
            x = rng.normal(size=s.shape) / np.sqrt(max(int(np.prod(s.shape[:-1])), 1))
        else:
            x = 0.1 * rng.normal(size=s.shape)
        return jax.numpy.asarray(x, s.dtype)

    return jax.tree_util.tree_map_with_path(draw, shapes)
