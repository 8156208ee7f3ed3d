"""Durotaxis-v0: a pure-JAX gymnax environment with a fixed node capacity (docs/design.md §4).

A cluster of nodes (a tree) sits on a 2-D substrate whose stiffness grows with x. Nodes never move;
the cluster migrates by spawning children at its front and deleting nodes at its back. Success: the
centroid reaches ``success_fraction``·W. Everything is vectorised over the M node slots: no Python
loop over nodes, no per-step Python work; ``step``/``step_env``/``reset_env`` jit and vmap (also over
the params, whose hyper-parameters are pytree leaves; only ``max_nodes`` is static).

gymnax 1.0.1 conventions (checked against ``gymnax/environments/environment.py``): ``step_env`` returns
FIVE values ``obs, state, reward, terminated, info`` and the base ``step`` adds ``truncated`` (from
``is_truncated``: time ≥ ``max_steps_in_episode``), auto-resets on ``terminated | truncated`` and puts
the pre-reset observation in ``info["final_observation"]``. ``step_env`` also reports ``truncated``
in its info so it can be used alone.

Input rule: continuous parameters are clipped to their bounds; a non-finite one (NaN, ±inf) is replaced by
the middle of its range (the action's default) and counted in ``info["nonfinite_params"]``, so one bad
number cannot make node positions, and every later reward of the episode, NaN. ``make``/``validate_params``
refuse non-finite environment parameters.

Reward components, fixed order ``balancedrl.types.REWARD_COMPONENTS`` =
(total, graph, spawn, delete, edge, total_node). Each shaping component is a potential difference
r_c = Φ_c(s') − Φ_c(s) (docs/design.md §4, "never pay the agent for staying alive"):
  graph      Φ = 100·centroid_x/W, minus a per-step size penalty max(0, N − Nc)/Nc
  spawn      Φ = 100·max alive x/W       (the front)
  delete     Φ = 100·min alive x/W       (the rear)
  edge       Φ = mean over edges of cos(parent→child, +x)   (0 without edges)
  total_node Φ = 10·mean over alive nodes of I(x)/I_ref
  total      = coef_graph·graph + terminal (+success_bonus / +failure_penalty) − time_cost
               + coef_spawn·spawn + coef_delete·delete + coef_edge·edge + coef_total_node·total_node
On the step that empties the cluster every Φ keeps its previous value (r_c = 0).
Bounds (per step): graph ∈ [−100 − (M − Nc)/Nc, 100]; spawn, delete ∈ [−100, 100]; edge ∈ [−2, 2];
total_node ∈ [−10, 10].
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from balancedrl.envs import substrate as sub_lib
from balancedrl.types import (
    NUM_CONTINUOUS,
    NUM_DISCRETE,
    NUM_GLOBAL_FEATURES,
    NUM_NODE_FEATURES,
    HybridAction,
    Observation,
)

STAY, SPAWN, DELETE = 0, 1, 2
MARGIN = 6.0  # children are clamped inside a 6-px margin
NUM_POTENTIALS = 5  # graph, spawn, delete, edge, total_node


@struct.dataclass
class DurotaxisParams:
    """Environment parameters (docs/design.md §4 defaults). All but ``max_nodes`` are pytree leaves (sweepable)."""

    max_nodes: int = struct.field(pytree_node=False, default=64)
    width: float = 600.0
    height: float = 400.0
    init_nodes: int = 8
    critical_nodes: int = 24
    overcrowd_nodes: int = 48
    max_steps_in_episode: int = 200
    success_fraction: float = 0.8
    # Substrate: kind -1 draws linear/exponential/random uniformly per episode; 0/1/2 fixes it.
    substrate_kind: int = -1
    linear_m: tuple = (0.01, 0.1)
    linear_b: tuple = (0.5, 2.0)
    exp_m: tuple = (0.002, 0.008)
    exp_b: tuple = (0.5, 1.5)
    # Spawn bounds (physical units): gamma [px], alpha [intensity], noise [px], theta [rad].
    gamma_range: tuple = (0.5, 15.0)
    alpha_range: tuple = (0.5, 4.0)
    noise_range: tuple = (0.05, 0.5)
    theta_range: tuple = (-math.pi, math.pi)
    # Initial cluster: x ∈ [0.02W, 0.1W], y ∈ [0.4H, 0.6H].
    init_x_fraction: tuple = (0.02, 0.1)
    init_y_fraction: tuple = (0.4, 0.6)
    # Reward.
    coef_graph: float = 1.0
    coef_spawn: float = 0.0
    coef_delete: float = 0.0
    coef_edge: float = 0.0
    coef_total_node: float = 0.0
    success_bonus: float = 10.0
    failure_penalty: float = -10.0
    time_cost: float = 0.1


@struct.dataclass
class DurotaxisState:
    """Environment state. Dead slots: pos 0, parent −1, age 0, is_new False."""

    pos: jax.Array  # float32 [M, 2] pixels
    alive: jax.Array  # bool [M]
    parent: jax.Array  # int32 [M], −1 = root or dead
    age: jax.Array  # int32 [M]
    is_new: jax.Array  # bool [M]
    inten: jax.Array  # float32 [M] substrate intensity I at each node (nodes never move), 0 when dead
    substrate: sub_lib.Substrate
    time: jax.Array  # int32 []
    potentials: jax.Array  # float32 [5] Φ of (graph, spawn, delete, edge, total_node) at this state


def continuous_bounds(params: DurotaxisParams) -> tuple[jax.Array, jax.Array]:
    """(low [4], high [4]) of the continuous spawn parameters, order (gamma, alpha, noise, theta)."""
    low = jnp.stack([jnp.asarray(r[0], jnp.float32) for r in _ranges(params)])
    high = jnp.stack([jnp.asarray(r[1], jnp.float32) for r in _ranges(params)])
    return low, high


def _ranges(params):
    return (params.gamma_range, params.alpha_range, params.noise_range, params.theta_range)


def validate_params(params: DurotaxisParams) -> DurotaxisParams:
    """Check concrete (non-traced) params; raise ValueError naming the field, value and what is allowed."""
    M = params.max_nodes
    if not isinstance(M, int) or M < 2:
        raise ValueError(f"max_nodes={M!r}: must be a Python int >= 2 (it is static)")

    def concrete(name):
        v = getattr(params, name)
        try:
            return float(v) if not isinstance(v, (tuple, list)) else tuple(float(a) for a in v)
        except (TypeError, jax.errors.ConcretizationTypeError):
            return None
        except ValueError as e:  # a string where a number belongs, e.g. from YAML
            raise ValueError(f"{name}={v!r}: must be a number (or a pair of numbers for a range)") from e

    for name in params.__dataclass_fields__:
        v = concrete(name) if name != "max_nodes" else None
        if v is not None and not all(math.isfinite(a) for a in (v if isinstance(v, tuple) else (v,))):
            raise ValueError(f"{name}={v}: must be finite")
    n0 = concrete("init_nodes")
    if n0 is not None and not 1 <= n0 <= M:
        raise ValueError(f"init_nodes={n0}: must be in [1, max_nodes={M}]")
    oc = concrete("overcrowd_nodes")
    if oc is not None and not 1 <= oc <= M:
        raise ValueError(f"overcrowd_nodes={oc}: must be in [1, max_nodes={M}]")
    nc = concrete("critical_nodes")
    if nc is not None and nc <= 0:
        raise ValueError(f"critical_nodes={nc}: must be > 0")
    for name in ("width", "height", "max_steps_in_episode"):
        v = concrete(name)
        if v is not None and v <= 0:
            raise ValueError(f"{name}={v}: must be > 0")
    w = concrete("width")
    if w is not None and w <= 2 * MARGIN:
        raise ValueError(f"width={w}: must exceed twice the {MARGIN}-px margin")
    sk = concrete("substrate_kind")
    if sk is not None and sk not in (-1, 0, 1, 2):
        raise ValueError(f"substrate_kind={sk}: allowed -1 (random draw), 0 linear, 1 exponential, 2 random")
    for name in ("linear_m", "linear_b", "exp_m", "exp_b", "gamma_range", "alpha_range", "noise_range",
                 "theta_range", "init_x_fraction", "init_y_fraction"):
        r = concrete(name)
        if r is not None and (len(r) != 2 or r[0] > r[1]):
            raise ValueError(f"{name}={r}: must be a (low, high) pair with low <= high")
    for name in ("linear_b", "exp_b", "alpha_range"):
        r = concrete(name)
        if r is not None and r[0] <= 0:
            raise ValueError(f"{name}={r}: lower bound must be > 0")
    return params


class MultiDiscrete(spaces.Space):
    """``shape`` independent integers uniform in {0, …, n−1} (all n values occur, unlike an int Box)."""

    def __init__(self, n: int, shape: tuple):
        self.n = n
        self.shape = tuple(shape)
        self.dtype = jnp.int32

    def __repr__(self) -> str:
        return f"MultiDiscrete(n={self.n}, shape={self.shape})"

    def sample(self, key):
        return jax.random.randint(key, self.shape, 0, self.n, dtype=jnp.int32)

    def contains(self, x):
        x = jnp.asarray(x)
        return jnp.logical_and(jnp.all(x >= 0), jnp.all(x < self.n))


class HybridActionSpace(spaces.Dict):
    """Dict space {discrete: MultiDiscrete(3, [M]), continuous: Box(low, high, [M, 4])}.

    ``sample`` returns a ``HybridAction`` (uniform discrete choices, uniform continuous values);
    ``contains`` accepts a HybridAction or a dict.
    """

    def contains(self, x):
        x = as_hybrid_action(x)
        return self.spaces["discrete"].contains(x.discrete) & self.spaces["continuous"].contains(x.continuous)

    def sample(self, key):
        """Uniform hybrid action from 3 random words per node (threefry dominated the random policy).

        Word 2 -> discrete = ⌊3·u24⌋ (u24 a 24-bit uniform; all three values occur, bias < 2⁻²³); words
        0, 1 -> four 16-bit uniforms -> continuous = low + u·(high − low) (a 2¹⁶-level uniform grid).
        """
        disc, cont = self.spaces["discrete"], self.spaces["continuous"]
        (M,) = disc.shape
        words = jax.random.bits(key, (M, 3), jnp.uint32)
        u24 = (words[:, 2] >> 8).astype(jnp.float32) * (1.0 / (1 << 24))
        discrete = jnp.minimum(jnp.floor(u24 * disc.n), disc.n - 1).astype(jnp.int32)
        w0, w1 = words[:, 0], words[:, 1]
        halves = jnp.stack([w0 >> 16, w0 & 0xFFFF, w1 >> 16, w1 & 0xFFFF], 1)
        u = halves.astype(jnp.float32) * (1.0 / 65536.0)
        continuous = (cont.low + u * (cont.high - cont.low)).astype(jnp.float32)
        return HybridAction(discrete=discrete, continuous=continuous)


def as_hybrid_action(action: Any) -> HybridAction:
    """Accept a HybridAction, a dict with keys "discrete"/"continuous", or a 2-tuple."""
    if isinstance(action, HybridAction):
        return action
    if isinstance(action, dict):
        missing = {"discrete", "continuous"} - set(action)
        if missing:
            raise ValueError(f"action dict lacks keys {sorted(missing)}; needs 'discrete' and 'continuous'")
        return HybridAction(discrete=action["discrete"], continuous=action["continuous"])
    if isinstance(action, (tuple, list)) and len(action) == 2:
        return HybridAction(discrete=action[0], continuous=action[1])
    raise ValueError(
        f"action of type {type(action).__name__}: expected HybridAction, dict with 'discrete'/'continuous', "
        "or a (discrete, continuous) pair"
    )


# --------------------------------------------------------------------------------------------------
# Pure helpers on arrays (one environment; vmap for more).
# --------------------------------------------------------------------------------------------------


def _masked_mean(values, mask, axis=0):
    n = jnp.sum(mask, axis=axis)
    s = jnp.sum(jnp.where(mask, values, 0.0), axis=axis)
    return jnp.where(n > 0, s / jnp.maximum(n, 1), 0.0)


def sincos(theta: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(sin θ, cos θ) for θ ∈ [−π, π] by Taylor polynomials after reduction to [−π/2, π/2].

    |error| < 1e-6 on [−π, π] (tested against jnp.sin/cos); ~40× cheaper than jnp.sin + jnp.cos on
    XLA:CPU, where they dominated the step.
    """
    half = jnp.pi / 2
    r = jnp.where(theta > half, jnp.pi - theta, jnp.where(theta < -half, -jnp.pi - theta, theta))
    r2 = r * r
    s = r * (1 + r2 * (-1 / 6 + r2 * (1 / 120 + r2 * (-1 / 5040 + r2 * (1 / 362880 + r2 * (-1 / 39916800))))))
    c = 1 + r2 * (-0.5 + r2 * (1 / 24 + r2 * (-1 / 720 + r2 * (1 / 40320 + r2 * (-1 / 3628800
                                                                              + r2 / 479001600)))))
    return s, jnp.where(jnp.abs(theta) > half, -c, c)


def _num_jumps(M: int) -> int:
    return max(1, math.ceil(math.log2(M))) + 1


def nearest_alive_ancestor(parent: jax.Array, alive: jax.Array) -> jax.Array:
    """For every slot, the nearest ancestor (via ``parent``) that is ``alive``, or −1 if none.

    Pointer jumping on f over M+1 entries (entry M is a sentinel standing for "none"): f[j] = j for an
    alive j or the sentinel, f[j] = parent[j] (or M) for a dead j. Repeating f ← f[f] ⌈log2 M⌉+1 times
    makes f[j] the nearest alive node at or above j (each round doubles the skipped dead run, and
    chains are shorter than M), so the answer is f[parent[i]]. One gather per round.
    """
    M = parent.shape[0]
    idx = jnp.arange(M + 1)
    par = jnp.where(parent >= 0, parent, M)
    f = jnp.concatenate([jnp.where(alive, idx[:M], par), jnp.array([M], idx.dtype)])

    def body(_, f):
        return f[f]

    f = jax.lax.fori_loop(0, _num_jumps(M), body, f)
    anc = f[par]
    return jnp.where(anc == M, -1, anc).astype(jnp.int32)


def delete_nodes(pos, alive, parent, delete):
    """Step (1): remove ``delete & alive``; re-attach orphans (docs/design.md §4).

    A survivor whose parent was deleted re-attaches to its nearest alive ancestor. Survivors without an
    alive ancestor (the root was deleted) are orphans; the orphan with the smallest x (ties: lowest slot)
    becomes the root and the other orphans attach to it. Orphans are never ancestors of one another, so
    the result is one tree. Returns (alive', parent').
    """
    M = alive.shape[0]
    new_alive = alive & ~delete
    anc = nearest_alive_ancestor(parent, new_alive)
    orphan = new_alive & (anc < 0)
    x_key = jnp.where(orphan, pos[:, 0], jnp.inf)
    new_root = jnp.argmin(x_key)  # first minimum -> lowest slot on ties
    idx = jnp.arange(M)
    new_parent = jnp.where(orphan, jnp.where(idx == new_root, -1, new_root), anc)
    new_parent = jnp.where(new_alive, new_parent, -1).astype(jnp.int32)
    return new_alive, new_parent


def spawn_nodes(pos, alive, parent, spawn, child_pos, inten=None, child_inten=None):
    """Step (2): place the children of ``spawn & alive`` (positions ``child_pos [M,2]`` per parent slot).

    Children take the free slots in slot order (k-th spawner in slot order -> k-th free slot, by
    cumsum ranks); spawns beyond the free capacity are dropped. ``inten``/``child_inten`` (optional)
    carry the per-node intensity along. Returns (pos', alive', parent', is_new, n_placed, n_dropped,
    inten').
    """
    M = alive.shape[0]
    spawn = spawn & alive
    free = ~alive
    spawn_rank = jnp.cumsum(spawn) - 1
    free_rank = jnp.cumsum(free) - 1
    n_spawn = jnp.sum(spawn)
    n_free = jnp.sum(free)
    idx = jnp.arange(M)
    # spawner_of_rank[k] = slot of the k-th spawner (non-spawners scatter to a dropped index M).
    spawner_of_rank = jnp.zeros((M,), jnp.int32).at[jnp.where(spawn, spawn_rank, M)].set(idx, mode="drop")
    k = jnp.clip(free_rank, 0, M - 1)
    gets_child = free & (free_rank < n_spawn)
    src = spawner_of_rank[k]
    new_pos = jnp.where(gets_child[:, None], child_pos[src], pos)
    new_alive = alive | gets_child
    new_parent = jnp.where(gets_child, src, parent).astype(jnp.int32)
    n_placed = jnp.minimum(n_spawn, n_free)
    new_inten = None if inten is None else jnp.where(gets_child, child_inten[src], inten)
    return new_pos, new_alive, new_parent, gets_child, n_placed, n_spawn - n_placed, new_inten


def potentials(pos, alive, parent, inten, sub, params) -> jax.Array:
    """Φ [5] = (100·cx/W, 100·max x/W, 100·min x/W, mean edge cos to +x, 10·mean I/I_ref)."""
    W = params.width
    x = pos[:, 0]
    cx = _masked_mean(x, alive)
    n = jnp.sum(alive)
    xmax = jnp.where(n > 0, jnp.max(jnp.where(alive, x, -jnp.inf)), 0.0)
    xmin = jnp.where(n > 0, jnp.min(jnp.where(alive, x, jnp.inf)), 0.0)
    has_edge = alive & (parent >= 0)
    d = pos - pos[jnp.maximum(parent, 0)]
    dist = jnp.sqrt(jnp.sum(d * d, axis=1))
    cos = jnp.where(dist > 0, d[:, 0] / jnp.where(dist > 0, dist, 1.0), 0.0)
    edge = _masked_mean(cos, has_edge)
    node = _masked_mean(inten / sub_lib.reference_intensity(sub, W), alive)
    return jnp.stack([100.0 * cx / W, 100.0 * xmax / W, 100.0 * xmin / W, edge, 10.0 * node]).astype(
        jnp.float32
    )


def observation(state: DurotaxisState, params: DurotaxisParams, rank: jax.Array | None = None) -> Observation:
    """Build the normalised observation (feature order of ``balancedrl.types``); dead slots are zero.

    ``rank`` (optional, int [M]): the alive nodes' x-rank when already known (reset_env places the
    initial chain in x order in slots 0..n0−1), which skips the O(M²) rank comparison.
    """
    M = params.max_nodes
    W, H = params.width, params.height
    T = jnp.asarray(params.max_steps_in_episode, jnp.float32)
    # Barrier: materialise the state first. Without it XLA:CPU fuses the producers of pos (e.g. reset's
    # log/cumsum) into the [M, M] rank comparison and recomputes them per pair (5× slower reset).
    state = jax.lax.optimization_barrier(state)
    alive = state.alive
    pos = state.pos
    x, y = pos[:, 0], pos[:, 1]
    n = jnp.sum(alive)
    nf = n.astype(jnp.float32)
    cx = _masked_mean(x, alive)
    cy = _masked_mean(y, alive)
    inten = state.inten / sub_lib.reference_intensity(state.substrate, W)
    idx = jnp.arange(M)
    # children[i] = #alive j with parent[j] == i (scatter-add; roots/dead go to a dropped index M)
    has_par = alive & (state.parent >= 0)
    children = jnp.zeros((M,), jnp.float32).at[jnp.where(has_par, state.parent, M)].add(1.0, mode="drop")
    # x-rank: #alive nodes before i in (x, slot) order, / (N − 1); 0 when N = 1. Dead keys are +inf.
    if rank is None:
        xk = jnp.where(alive, x, jnp.inf)
        before = jnp.where(idx[None, :] < idx[:, None], xk[None, :] <= xk[:, None], xk[None, :] < xk[:, None])
        rank = jnp.sum(before, axis=1)
    rank = jnp.asarray(rank).astype(jnp.float32)
    x_rank = jnp.where(n > 1, rank / jnp.maximum(nf - 1.0, 1.0), 0.0)
    dist_c = jnp.sqrt((x - cx) ** 2 + (y - cy) ** 2) / W
    has_parent = (state.parent >= 0).astype(jnp.float32)
    feats = jnp.stack(
        [
            x / W,
            y / H,
            inten,
            jnp.minimum(children, 4.0) / 4.0,
            has_parent,
            dist_c,
            x_rank,
            state.is_new.astype(jnp.float32),
            state.age.astype(jnp.float32) / T,
            (alive & (state.parent < 0)).astype(jnp.float32),
        ],
        axis=1,
    )
    feats = jnp.where(alive[:, None], feats, 0.0).astype(jnp.float32)

    def masked_ext(v, fn, fill):
        return jnp.where(n > 0, fn(jnp.where(alive, v, fill)), 0.0)

    kind = state.substrate.kind
    glob = jnp.stack(
        [
            nf / M,
            cx / W,
            cy / H,
            masked_ext(x, jnp.min, jnp.inf) / W,
            masked_ext(y, jnp.min, jnp.inf) / H,
            masked_ext(x, jnp.max, -jnp.inf) / W,
            masked_ext(y, jnp.max, -jnp.inf) / H,
            _masked_mean(inten, alive),
            masked_ext(inten, jnp.min, jnp.inf),
            masked_ext(inten, jnp.max, -jnp.inf),
            state.time.astype(jnp.float32) / T,
            (kind == sub_lib.LINEAR).astype(jnp.float32),
            (kind == sub_lib.EXPONENTIAL).astype(jnp.float32),
            (kind == sub_lib.RANDOM).astype(jnp.float32),
        ]
    ).astype(jnp.float32)
    parent = jnp.where(alive, state.parent, -1).astype(jnp.int32)
    return Observation(nodes=feats, mask=alive, parent=parent, globals=glob)


def state_from_tree(pos, parent, alive, substrate: sub_lib.Substrate, params: DurotaxisParams,
                    time=0, age=None) -> DurotaxisState:
    """Build a consistent state from a given tree (for tests, demos and curricula).

    Dead slots are cleaned (pos 0, parent −1); intensities and potentials are computed.
    """
    M = params.max_nodes
    alive = jnp.asarray(alive, bool)
    pos = jnp.where(alive[:, None], jnp.asarray(pos, jnp.float32), 0.0)
    parent = jnp.where(alive, jnp.asarray(parent, jnp.int32), -1)
    if pos.shape != (M, 2) or parent.shape != (M,) or alive.shape != (M,):
        raise ValueError(f"pos {pos.shape}, parent {parent.shape}, alive {alive.shape}: expected "
                         f"({M}, 2), ({M},), ({M},) for max_nodes={M}")
    inten = jnp.where(alive, sub_lib.intensity(substrate, pos, params.width, params.height), 0.0)
    age = jnp.zeros((M,), jnp.int32) if age is None else jnp.where(alive, jnp.asarray(age, jnp.int32), 0)
    return DurotaxisState(
        pos=pos, alive=alive, parent=parent, age=age, is_new=jnp.zeros((M,), bool), inten=inten,
        substrate=substrate, time=jnp.asarray(time, jnp.int32),
        potentials=potentials(pos, alive, parent, inten, substrate, params),
    )


class Durotaxis(environment.Environment):
    """Durotaxis-v0 (docs/design.md §4). Actions: ``HybridAction`` (or dict); observation: ``Observation``."""

    def __init__(self, max_nodes: int = 64):
        super().__init__()
        if not isinstance(max_nodes, int) or max_nodes < 2:
            raise ValueError(f"max_nodes={max_nodes!r}: must be a Python int >= 2")
        self.max_nodes = max_nodes

    # Value semantics: envs with the same capacity are interchangeable, so jitted functions that take
    # the env as a static argument (gymnax's ``step``/``reset``) compile once for all such instances.
    def __eq__(self, other):
        return type(other) is type(self) and other.max_nodes == self.max_nodes

    def __hash__(self):
        return hash((type(self).__name__, self.max_nodes))

    @property
    def default_params(self) -> DurotaxisParams:
        return DurotaxisParams(max_nodes=self.max_nodes)

    @property
    def name(self) -> str:
        return "Durotaxis-v0"

    @property
    def num_actions(self) -> int:
        """Number of discrete choices per node (stay, spawn, delete)."""
        return NUM_DISCRETE

    def _check(self, params):
        if params.max_nodes != self.max_nodes:
            raise ValueError(
                f"params.max_nodes={params.max_nodes} differs from the env's max_nodes={self.max_nodes}"
            )

    # ---------------------------------------------------------------------------------------- reset
    def reset_env(self, key: jax.Array, params: DurotaxisParams):
        self._check(params)
        M = params.max_nodes
        k_sub, k_pos = jax.random.split(key)
        sub = sub_lib.sample_substrate(k_sub, params)
        idx = jnp.arange(M)
        n0 = jnp.asarray(params.init_nodes, jnp.int32)
        alive = idx < n0
        # One 32-bit word per slot (+1): high 16 bits -> x, low 16 bits -> y (2^16-level grids).
        # Chain in x order with slot 0 the root needs the n0 x values sorted; instead of a sort (slow on
        # XLA:CPU) draw the order statistics directly: with S_k the cumsum of k iid Exp(1),
        # (S_1, …, S_n0) / S_(n0+1) are the sorted values of n0 iid U(0, 1).
        words = jax.random.bits(k_pos, (M + 1,), jnp.uint32)
        ux = ((words >> 16).astype(jnp.float32) + 0.5) * (1.0 / 65536.0)
        uy = (words[:M] & 0xFFFF).astype(jnp.float32) * (1.0 / 65536.0)
        spacing = jnp.cumsum(-jnp.log(ux))
        ux_sorted = spacing[:M] / spacing[jnp.clip(n0, 1, M)]
        fx, fy = params.init_x_fraction, params.init_y_fraction
        xs = params.width * (fx[0] + ux_sorted * (fx[1] - fx[0]))
        ys = params.height * (fy[0] + uy * (fy[1] - fy[0]))
        pos = jnp.where(alive[:, None], jnp.stack([xs, ys], axis=1), 0.0).astype(jnp.float32)
        parent = jnp.where(alive, idx - 1, -1).astype(jnp.int32)
        state = DurotaxisState(
            pos=pos,
            alive=alive,
            parent=parent,
            age=jnp.zeros((M,), jnp.int32),
            is_new=jnp.zeros((M,), bool),
            inten=jnp.where(alive, sub_lib.intensity(sub, pos, params.width, params.height), 0.0),
            substrate=sub,
            time=jnp.zeros((), jnp.int32),
            potentials=jnp.zeros((NUM_POTENTIALS,), jnp.float32),
        )
        state = state.replace(potentials=potentials(pos, alive, parent, state.inten, sub, params))
        # Slots 0..n0-1 hold the chain in strictly increasing x, so the x-rank is the slot index.
        return observation(state, params, rank=idx), state

    # ----------------------------------------------------------------------------------------- step
    def step_env(self, key: jax.Array, state: DurotaxisState, action: Any, params: DurotaxisParams):
        """One transition without auto-reset -> (obs, state, reward, terminated, info) (gymnax 1.0)."""
        self._check(params)
        action = as_hybrid_action(action)
        M = params.max_nodes
        discrete = jnp.asarray(action.discrete, jnp.int32)
        cont = jnp.asarray(action.continuous, jnp.float32)
        if discrete.shape != (M,) or cont.shape != (M, NUM_CONTINUOUS):
            raise ValueError(
                f"action shapes discrete={discrete.shape}, continuous={cont.shape}: expected ({M},) and "
                f"({M}, {NUM_CONTINUOUS})"
            )
        low, high = continuous_bounds(params)
        # Input rule (docs/reliability.md): a non-finite parameter (NaN, ±inf) is replaced by the middle of
        # its range, the action's default, and counted in info["nonfinite_params"]; finite values are clipped.
        finite = jnp.isfinite(cont)
        cont = jnp.clip(jnp.where(finite, cont, 0.5 * (low + high)), low, high)
        gamma, alpha, noise, theta = cont[:, 0], cont[:, 1], cont[:, 2], cont[:, 3]

        alive0 = state.alive
        # (1) deletions
        delete = alive0 & (discrete == DELETE)
        alive1, parent1 = delete_nodes(state.pos, alive0, state.parent, delete)
        # (2) spawns from survivors
        spawn = alive1 & (discrete == SPAWN)
        i_par = jnp.where(alive0, state.inten, 1.0)
        length = sub_lib.hill_length(gamma, alpha, i_par)
        eps = jax.random.normal(key, (M,), jnp.float32)
        r = jnp.maximum(0.0, length + noise * eps)
        sin_t, cos_t = sincos(theta)
        child = state.pos + r[:, None] * jnp.stack([cos_t, sin_t], axis=1)
        child = jnp.stack(
            [
                jnp.clip(child[:, 0], MARGIN, params.width - MARGIN),
                jnp.clip(child[:, 1], MARGIN, params.height - MARGIN),
            ],
            axis=1,
        )
        child_inten = sub_lib.intensity(state.substrate, child, params.width, params.height)
        pos1 = jnp.where(alive1[:, None], state.pos, 0.0)
        inten1 = jnp.where(alive1, state.inten, 0.0)
        pos2, alive2, parent2, is_new, n_placed, n_dropped, inten2 = spawn_nodes(
            pos1, alive1, parent1, spawn, child, inten1, child_inten
        )
        # (3) ages
        age = jnp.where(alive2 & ~is_new, state.age + 1, 0).astype(jnp.int32)
        time = state.time + 1

        # (4) rewards
        n = jnp.sum(alive2)
        empty = n == 0
        phi_new = potentials(pos2, alive2, parent2, inten2, state.substrate, params)
        phi_new = jnp.where(empty, state.potentials, phi_new)
        diff = phi_new - state.potentials
        size_pen = jnp.maximum(0.0, n - params.critical_nodes) / params.critical_nodes
        r_graph = diff[0] - size_pen
        r_spawn, r_delete, r_edge, r_node = diff[1], diff[2], diff[3], diff[4]

        new_state = DurotaxisState(
            pos=pos2,
            alive=alive2,
            parent=parent2,
            age=age,
            is_new=is_new,
            inten=inten2,
            substrate=state.substrate,
            time=time,
            potentials=phi_new,
        )
        success, failure = self._outcome(new_state, params)
        terminal = (jnp.where(success, params.success_bonus, 0.0)
                    + jnp.where(failure, params.failure_penalty, 0.0))
        total = (
            params.coef_graph * r_graph
            + terminal
            - params.time_cost
            + params.coef_spawn * r_spawn
            + params.coef_delete * r_delete
            + params.coef_edge * r_edge
            + params.coef_total_node * r_node
        )
        components = jnp.stack([total, r_graph, r_spawn, r_delete, r_edge, r_node]).astype(jnp.float32)
        terminated = success | failure
        truncated = self.is_truncated(new_state, params)
        info = {
            "reward_components": components,
            "spawns": n_placed.astype(jnp.int32),
            "deletions": jnp.sum(delete).astype(jnp.int32),
            "dropped_spawns": n_dropped.astype(jnp.int32),
            "success": success,
            "failure": failure,
            "discount": 1.0 - terminated.astype(jnp.float32),
            "truncated": truncated,
            "nonfinite_params": jnp.sum(~finite).astype(jnp.int32),
        }
        obs = self.get_obs(new_state, params)
        return obs, new_state, total.astype(jnp.float32), terminated, info

    # -------------------------------------------------------------------------------------- helpers
    def _outcome(self, state: DurotaxisState, params: DurotaxisParams):
        n = jnp.sum(state.alive)
        failure = (n == 0) | (n > params.overcrowd_nodes)
        cx = _masked_mean(state.pos[:, 0], state.alive)
        success = (n > 0) & (cx >= params.success_fraction * params.width) & ~failure
        return success, failure

    def is_terminated(self, state: DurotaxisState, params: DurotaxisParams) -> jax.Array:
        """Success (centroid x ≥ success_fraction·W) or failure (empty or > overcrowd_nodes)."""
        success, failure = self._outcome(state, params)
        return success | failure

    def get_obs(self, state: DurotaxisState, params: DurotaxisParams | None = None, key=None) -> Observation:
        if params is None:
            params = self.default_params
        return observation(state, params)

    def action_space(self, params: DurotaxisParams | None = None) -> HybridActionSpace:
        if params is None:
            params = self.default_params
        M = params.max_nodes
        low, high = continuous_bounds(params)
        return HybridActionSpace(
            {
                "discrete": MultiDiscrete(NUM_DISCRETE, (M,)),
                "continuous": spaces.Box(
                    jnp.broadcast_to(low, (M, NUM_CONTINUOUS)),
                    jnp.broadcast_to(high, (M, NUM_CONTINUOUS)),
                    (M, NUM_CONTINUOUS),
                    jnp.float32,
                ),
            }
        )

    def observation_space(self, params: DurotaxisParams | None = None) -> spaces.Dict:
        if params is None:
            params = self.default_params
        M = params.max_nodes
        diag = jnp.sqrt(params.width**2 + params.height**2) / params.width
        node_high = jnp.ones((M, NUM_NODE_FEATURES), jnp.float32).at[:, 5].set(diag)
        return spaces.Dict(
            {
                # all node features lie in [0, 1] except dist_centroid ≤ sqrt(W² + H²)/W
                "nodes": spaces.Box(0.0, node_high, (M, NUM_NODE_FEATURES), jnp.float32),
                "mask": spaces.Box(0, 1, (M,), jnp.bool_),
                "parent": spaces.Box(-1, M - 1, (M,), jnp.int32),
                "globals": spaces.Box(0.0, 1.0, (NUM_GLOBAL_FEATURES,), jnp.float32),
            }
        )


def pop_capacity(overrides: dict) -> int:
    """Remove and return ``max_nodes`` (static: it goes to the constructor) from ``overrides``; with
    ``max_nodes`` != 64 and no ``overcrowd_nodes`` given, set ``overcrowd_nodes = min(48, floor(3M/4))`` (keeps
    48/64's room for one step's spawns)."""
    M = overrides.pop("max_nodes", 64)
    if M != 64 and "overcrowd_nodes" not in overrides:
        overrides["overcrowd_nodes"] = min(48, (3 * M) // 4)
    return M


def make_durotaxis(name: str = "Durotaxis-v0", **overrides):
    """``(env, params)`` with the capacity rule of :func:`pop_capacity`; the params are validated."""
    from balancedrl.envs.registry import with_overrides

    env = Durotaxis(max_nodes=pop_capacity(overrides))
    return env, validate_params(with_overrides(env.default_params, overrides, name))
