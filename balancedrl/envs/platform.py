"""Platform-v0 (Masson, Ranchod & Konidaris, AAAI 2016; gym-platform by C. Bester) as a pure-JAX gymnax env.

Faithful port of the parameterised-action side-scroller described in
``/work/shared/reference/hybrid_envs/SPEC.md`` §1, quirks included (exact ``y == 40`` ground test, strict
enemy end test that reverses an enemy sitting on an end, only the active enemy moves, take-off clip
``dx0 = clip(param/T - vx, -600, 200 - dy0)`` with ``T = 2 dy0 / 9.8 + 1``).

Action: a macro-action ``{"discrete": k in {0 run, 1 hop, 2 leap}, "continuous": (p_run, p_hop, p_leap)}``
in physical units. Only ``continuous[k]`` is read (``PARAM_OWNER[i]`` is the discrete action that owns
entry ``i``), clipped into ``[PARAM_LOW[k], PARAM_HIGH[k]]``.

One ``step`` runs a capped ``lax.while_loop`` of physics ticks (run: 20 ticks; hop/leap: until landing),
stopping early on a terminal tick. The observation is the scaled 9-vector ``(raw + SHIFT) / SCALE``
(docs/specs/parameterised_envs.md §1.8); the tick count is ``info["ticks"]``. Reward = horizontal displacement / 1035 (so the return is
``final_x / 1035``). Randomness (docs/specs/parameterised_envs.md §1.11): per tick ``n_p ~ N(0, 0.025)`` (player, applied as
``vx -= |n_p|``), ``n_e ~ N(0, 0.025)`` (active enemy) and, on a take-off tick, ``j1, j2 ~ N(0, 1)``.

``step_env`` draws these from the key (one ``fold_in(key, tick)`` per tick) and runs the same tick code as
``step_with_noise``, which replays recorded draws (``PlatformNoise``) exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from balancedrl.envs.parameterised import checked_dtype, hybrid_action_space

# ---- constants (docs/specs/parameterised_envs.md §1.2) ----
DT = 0.05
MAX_DX, MAX_DY = 100.0, 200.0
MAX_DX_ON = 70.0
MAX_DDX, MAX_DDY = 600.0, 4000.0
GRAVITY = 9.8
VELOCITY_DECAY = 0.99
ENEMY_SPEED = 30.0
NOISE_SD = 0.5 * DT  # player and enemy per-tick noise sd (0.025)
JUMP_SD = 1.0  # HOP_DEV = LEAP_DEV
RIGHT = 1035.0
PLAYER_W, PLAYER_H = 20.0, 30.0
PLATFORM_X = (0.0, 475.0, 985.0)
PLATFORM_W = (250.0, 275.0, 50.0)
PLATFORM_TOP = 40.0
ENEMY_LEFT = (0.0, 475.0)
ENEMY_RIGHT = (230.0, 730.0)  # platform x + width - enemy width
RUN_TICKS = 20
NUM_ACTIONS = 3
PARAM_LOW = np.array([0.0, 0.0, 0.0])
PARAM_HIGH = np.array([30.0, 720.0, 430.0])
PARAM_OWNER = np.array(
    [0, 1, 2], dtype=np.int32
)  # continuous entry i belongs to discrete action PARAM_OWNER[i]
PARAM_SLICES = ((0, 1), (1, 2), (2, 3))  # [start, stop) of each discrete action's parameters
SHIFT = np.array([20.0, 0.0, 0.0, 30.0, 0.0, 0.0, 0.0, 0.0, 0.0])
SCALE = np.array([1055.0, 100.0, 1035.0, 60.0, 275.0, 275.0, 235.0, 1035.0, 1.0])
# platform features (w_cur, w_next, gap, plat_pos, height_diff) for x < 475, 475 <= x < 985, x >= 985
PLATFORM_FEATURES = np.array(
    [[250.0, 275.0, 225.0, 0.0, 0.0], [275.0, 50.0, 235.0, 475.0, 0.0], [50.0, 0.0, 0.0, 985.0, 0.0]]
)
RESET_VECTOR = (0.0, 40.0, 0.0, 0.0, 230.0, -30.0, 730.0, -30.0)


@struct.dataclass
class PlatformState(environment.EnvState):
    """Player ``(x, y, vx, vy)``, enemies ``enemy_x[2]``, ``enemy_dx[2]`` and the step counter ``time``."""

    x: jax.Array
    y: jax.Array
    vx: jax.Array
    vy: jax.Array
    enemy_x: jax.Array
    enemy_dx: jax.Array
    time: jax.Array


@struct.dataclass
class PlatformParams(environment.EnvParams):
    """``max_steps_in_episode``: TimeLimit of the standard registration (truncation).
    ``max_ticks``: cap of the internal tick loop (flight <= 144 ticks; ``info["tick_cap_hit"]``)."""

    max_steps_in_episode: int = 200
    max_ticks: int = 200


class PlatformNoise(NamedTuple):
    """Recorded random draws of one step, padded to a common length N.

    player: [N] n_p per tick; enemy: [N] n_e per tick; jump: [2] (j1, j2) of the take-off tick (ignored
    for run). Entries past the step's tick count are ignored. N also sets the length of the replay trace.
    """

    player: jax.Array
    enemy: jax.Array
    jump: jax.Array


def _unpack_action(action: Any) -> tuple[jax.Array, jax.Array]:
    if isinstance(action, Mapping):
        return action["discrete"], action["continuous"]
    if hasattr(action, "discrete") and hasattr(action, "continuous"):
        return action.discrete, action.continuous
    raise TypeError(
        "action must be a mapping or NamedTuple with 'discrete' and 'continuous', "
        f"got {type(action).__name__}"
    )


class Platform(environment.Environment[PlatformState, PlatformParams]):
    """Platform-v0 as a gymnax environment (docs/specs/parameterised_envs.md §1). ``dtype`` float32 (default) or float64 (needs x64)."""

    param_low = PARAM_LOW
    param_high = PARAM_HIGH
    param_owner = PARAM_OWNER
    param_slices = PARAM_SLICES

    def __init__(self, dtype: Any = jnp.float32):
        super().__init__()
        dt = checked_dtype(dtype)
        self.dtype = dt

    # ------------------------------------------------------------------ API
    @property
    def default_params(self) -> PlatformParams:
        return PlatformParams()

    @property
    def name(self) -> str:
        return "Platform-v0"

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    def action_space(self, params: PlatformParams | None = None) -> spaces.Dict:
        """Dict(discrete=Discrete(3), continuous=Box(PARAM_LOW, PARAM_HIGH, (3,))) in physical units."""
        return hybrid_action_space(NUM_ACTIONS, PARAM_LOW, PARAM_HIGH)

    def observation_space(self, params: PlatformParams | None = None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (9,), self.dtype)

    def param_mask(self, discrete: jax.Array) -> jax.Array:
        """bool [3]: which continuous entries the chosen discrete action reads (``PARAM_OWNER == k``)."""
        return jnp.asarray(PARAM_OWNER) == jnp.asarray(discrete)[..., None]

    def reset_env(self, key: jax.Array, params: PlatformParams) -> tuple[jax.Array, PlatformState]:
        """Deterministic reset (docs/specs/parameterised_envs.md §1.5): player (0, 40) at rest, enemies at 230 / 730 with dx = -30."""
        del key
        state = self.state_from_vector(jnp.asarray(RESET_VECTOR, self.dtype))
        return self.get_obs(state), state

    def step_env(
        self, key: jax.Array, state: PlatformState, action: Any, params: PlatformParams
    ) -> tuple[jax.Array, PlatformState, jax.Array, jax.Array, dict]:
        """Keyed macro-step: tick t draws ``normal(fold_in(key, t), 4) * (0.025, 0.025, 1, 1)``."""
        scale = jnp.asarray([NOISE_SD, NOISE_SD, JUMP_SD, JUMP_SD], self.dtype)

        def fetch(t):
            return jax.random.normal(jax.random.fold_in(key, t), (4,), self.dtype) * scale

        obs, new_state, reward, term, info = self._macro_step(state, action, params, fetch, trace_len=0)
        return obs, new_state, reward, term, info

    def step_with_noise(
        self, state: PlatformState, action: Any, params: PlatformParams, noise: PlatformNoise
    ) -> tuple[jax.Array, PlatformState, jax.Array, jax.Array, dict]:
        """Deterministic macro-step replaying recorded draws (docs/specs/parameterised_envs.md §4.3); same tick code as ``step_env``.

        Returns ``obs, state, reward, terminated, info`` with ``info["trace"]`` [N, 8] (state vector after
        each tick, zero past ``info["ticks"]``) and ``info["enemy_id"]`` [N] (1 or 2, 0 past the end).
        """
        player = jnp.asarray(noise.player, self.dtype)
        enemy = jnp.asarray(noise.enemy, self.dtype)
        jump = jnp.asarray(noise.jump, self.dtype)
        n = player.shape[-1]

        def fetch(t):
            i = jnp.minimum(t, n - 1)
            return jnp.stack([player[i], enemy[i], jump[0], jump[1]])

        return self._macro_step(state, action, params, fetch, trace_len=n)

    def get_obs(
        self, state: PlatformState, params: PlatformParams | None = None, key: Any = None
    ) -> jax.Array:
        """Scaled 9-vector ``(raw + SHIFT) / SCALE`` (docs/specs/parameterised_envs.md §1.8); enemy 2 iff x > 475; features by x."""
        x = state.x
        e = jnp.where(x > PLATFORM_X[1], 1, 0)
        f = jnp.where(x < PLATFORM_X[1], 0, jnp.where(x < PLATFORM_X[2], 1, 2))
        feats = jnp.asarray(PLATFORM_FEATURES, self.dtype)[f]
        raw = jnp.concatenate([jnp.stack([x, state.vx, state.enemy_x[e], state.enemy_dx[e]]), feats])
        return (raw + jnp.asarray(SHIFT, self.dtype)) / jnp.asarray(SCALE, self.dtype)

    def is_terminated(self, state: PlatformState, params: PlatformParams) -> jax.Array:
        return _terminal(state.x, state.y, state.enemy_x)

    # ------------------------------------------------------------------ helpers
    def state_from_vector(self, vec: jax.Array, time: Any = 0) -> PlatformState:
        """Build a state from ``[x, y, vx, vy, ex1, dx1, ex2, dx2]`` (the JSON layout)."""
        v = jnp.asarray(vec, self.dtype)
        return PlatformState(
            x=v[0],
            y=v[1],
            vx=v[2],
            vy=v[3],
            enemy_x=v[jnp.array([4, 6])],
            enemy_dx=v[jnp.array([5, 7])],
            time=jnp.asarray(time, jnp.int32),
        )

    @staticmethod
    def state_to_vector(state: PlatformState) -> jax.Array:
        return jnp.stack(
            [
                state.x,
                state.y,
                state.vx,
                state.vy,
                state.enemy_x[0],
                state.enemy_dx[0],
                state.enemy_x[1],
                state.enemy_dx[1],
            ]
        )

    def _macro_step(self, state, action, params, fetch, trace_len: int):
        k, cont = _unpack_action(action)
        k = jnp.asarray(k, jnp.int32)
        cont = jnp.asarray(cont, self.dtype)
        low = jnp.asarray(PARAM_LOW, self.dtype)
        high = jnp.asarray(PARAM_HIGH, self.dtype)
        param = jnp.clip(cont[k], low[k], high[k])
        x0 = state.x
        phys = (state.x, state.y, state.vx, state.vy, state.enemy_x, state.enemy_dx)
        zero = jnp.zeros((), self.dtype)
        tl = max(trace_len, 1)
        trace = jnp.zeros((tl, 8), self.dtype)
        eids = jnp.zeros((tl,), jnp.int32)
        max_ticks = jnp.asarray(params.max_ticks, jnp.int32)

        def cond(c):
            return c[-1]

        def body(c):
            phys, t, _, _, trace, eids, _ = c
            noise = fetch(t)
            phys, reward, term, eid = _tick(phys, k, param, x0, noise)
            t = t + 1
            if trace_len:
                vec = jnp.stack(
                    [phys[0], phys[1], phys[2], phys[3], phys[4][0], phys[5][0], phys[4][1], phys[5][1]]
                )
                trace = trace.at[t - 1].set(vec, mode="drop")
                eids = eids.at[t - 1].set(eid, mode="drop")
            more = jnp.where(k == 0, t < RUN_TICKS, ~_on_ground(phys[0], phys[1])) & ~term
            return phys, t, reward, term, trace, eids, more & (t < max_ticks)

        init = (phys, jnp.zeros((), jnp.int32), zero, jnp.zeros((), bool), trace, eids, jnp.ones((), bool))
        phys, ticks, reward, term, trace, eids, _ = jax.lax.while_loop(cond, body, init)
        cap_hit = (
            (ticks >= max_ticks) & ~term & jnp.where(k == 0, ticks < RUN_TICKS, ~_on_ground(phys[0], phys[1]))
        )
        new_state = PlatformState(
            x=phys[0],
            y=phys[1],
            vx=phys[2],
            vy=phys[3],
            enemy_x=phys[4],
            enemy_dx=phys[5],
            time=state.time + 1,
        )
        # success: the right end of platform 3 reached (the episode's return is then 1)
        info = {"ticks": ticks, "tick_cap_hit": cap_hit, "success": new_state.x >= RIGHT}
        if trace_len:
            info["trace"] = trace
            info["enemy_id"] = eids
        return self.get_obs(new_state), new_state, reward, term, info


# ---------------------------------------------------------------------- physics (docs/specs/parameterised_envs.md §1.7)
def _on_ground(x, y):
    """``y == 40`` exactly and ``-20 <= x - px <= w`` for some platform."""
    ok = jnp.zeros((), bool)
    for px, w in zip(PLATFORM_X, PLATFORM_W, strict=True):
        ok = ok | ((y - 0.0 == PLATFORM_TOP) & (-PLAYER_W <= x - px) & (x - px <= w))
    return ok


def _overlap(x, y, qx, qy, sx, sy):
    """Strict box overlap of the 20x30 player at (x, y) with a box at (qx, qy) of size (sx, sy)."""
    return (qx - PLAYER_W < x) & (x < qx + sx) & (qy - PLAYER_H < y) & (y < qy + sy)


def _terminal(x, y, enemy_x):
    """Fell (y < 40), touches either enemy, or reached the right end."""
    term = y < PLATFORM_TOP
    for i in range(2):
        term = term | _overlap(x, y, enemy_x[i], PLATFORM_TOP, PLAYER_W, PLAYER_H)
    return term | (x >= RIGHT)


def _tick(phys, k, param, x0, noise):
    """One physics tick in the order of docs/specs/parameterised_envs.md §1.7; ``noise = (n_p, n_e, j1, j2)``."""
    x, y, vx, vy, ex, edx = phys
    n_p, n_e, j1, j2 = noise[0], noise[1], noise[2], noise[3]
    on = _on_ground(x, y)
    # 1. action (run / take-off) or gravity, through accelerate()
    dy0 = jnp.where(k == 1, 35.0, 25.0).astype(x.dtype)
    flight = 2.0 * dy0 / GRAVITY + 1.0
    dx0 = jnp.clip(param / flight - vx, -MAX_DDX, MAX_DY - dy0)
    jump_ax = (dx0 + -jnp.abs(j1)) / DT
    jump_ay = (dy0 + -jnp.abs(j2)) / DT
    ax = jnp.where(on, jnp.where(k == 0, param / DT, jump_ax), 0.0)
    ay = jnp.where(on, jnp.where(k == 0, 0.0, jump_ay), -GRAVITY)
    ax = jnp.clip(ax, -MAX_DDX, MAX_DDX)
    ay = jnp.clip(ay, -MAX_DDY, MAX_DDY)
    vx = vx + ax * DT
    vy = vy + ay * DT
    vx = vx - jnp.abs(n_p)
    vx = jnp.clip(vx, -MAX_DX, MAX_DX)
    vy = jnp.clip(vy, -MAX_DY, MAX_DY)
    vx = jnp.maximum(vx, 0.0)
    # 2. ground speed cap
    vx = jnp.where(on, jnp.clip(vx, 0.0, MAX_DX_ON), vx)
    # 3. active enemy (player's x before the move)
    e = jnp.where(x > PLATFORM_X[1], 1, 0)
    # 4. player integration
    x = x + vx * DT
    y = y + vy * DT
    x = jnp.clip(x, 0.0, RIGHT)
    vx = VELOCITY_DECAY * vx
    # 5. active enemy update
    left = jnp.where(e == 1, ENEMY_LEFT[1], ENEMY_LEFT[0]).astype(x.dtype)
    right = jnp.where(e == 1, ENEMY_RIGHT[1], ENEMY_RIGHT[0]).astype(x.dtype)
    ex_e, dx_e = ex[e], edx[e]
    dx_e = jnp.where((left < ex_e) & (ex_e < right), dx_e, -dx_e)
    dx_e = dx_e + n_e
    dx_e = jnp.clip(dx_e, -ENEMY_SPEED, ENEMY_SPEED)
    ex_e = jnp.clip(ex_e + dx_e * DT, left, right)
    ex = ex.at[e].set(ex_e)
    edx = edx.at[e].set(dx_e)
    # 6. platform de-collision, platforms 1, 2, 3 in order
    for qx, sx in zip(PLATFORM_X, PLATFORM_W, strict=True):
        qy, sy = 0.0, PLATFORM_TOP
        hit = _overlap(x, y, qx, qy, sx, sy)
        nx = jnp.where(x < qx, qx - PLAYER_W, jnp.where(x > qx + sx - PLAYER_W, qx + sx, x))
        ny = jnp.where(y < qy, qy - PLAYER_H, jnp.where(y > qy + sy - PLAYER_H, qy + sy, y))
        sideways = (nx != x) & ((ny == y) | (jnp.abs(x - nx) < jnp.abs(y - ny)))
        new_x = jnp.where(sideways, nx, x)
        new_y = jnp.where(sideways, y, ny)
        new_vy = jnp.where(sideways, vy, 0.0)
        x = jnp.where(hit, new_x, x)
        y = jnp.where(hit, new_y, y)
        vy = jnp.where(hit, new_vy, vy)
        vx = jnp.where(hit, 0.0, vx)
    # 7. reward and termination
    term = _terminal(x, y, ex)
    reward = jnp.where(x >= RIGHT, (RIGHT - x0) / RIGHT, (x - x0) / RIGHT)
    return (x, y, vx, vy, ex, edx), reward, term, e + 1


def make_platform(name: str = "Platform-v0", **overrides):
    """``(env, params)`` with ``overrides`` replacing fields of the default params."""
    from balancedrl.envs.registry import with_overrides

    env = Platform()
    return env, with_overrides(env.default_params, overrides, name)
