"""Goal-v0 (Masson, Ranchod & Konidaris, AAAI 2016; gym-goal by C. Bester) as a pure-JAX gymnax env.

Faithful port of ``/work/shared/reference/hybrid_envs/SPEC.md`` §2, quirks included: kick-to aims at
``(q1, q1)`` and ignores q2; multiplicative angle noise ``theta' = (1 + rr) theta``; collisions negate both
velocities in one sequential pass; the keeper reacts to the ball velocity after this tick's kick; the
100th step call simulates nothing and ends the episode with ``-goal_distance(ball)``.

Action: ``{"discrete": k in {0 kick-to, 1 shoot, 2 shoot}, "continuous": (q1, q2, s1, s2)}`` in physical
units; ``PARAM_OWNER = (0, 0, 1, 2)``. The chosen action's parameters are clipped into their bounds.

One ``step`` = ``time += 1`` then a capped ``lax.while_loop`` of ticks (kick-to: until the ball is
kickable and slower than 0.1; shoot: until terminal). Reward: +50 goal, ``-goal_distance(b)`` on any other
termination, 0 otherwise. ``accelerate`` draws ``rr ~ U(-rand, rand)`` and ``(nx, ny) ~ U(-rmax, rmax)``
with ``rmax = rand |v|`` (docs/specs/parameterised_envs.md §2.7, §2.10): once for the player's kick/dash (if any) and once for the keeper.

``step_env`` draws, per tick, six ``U(-1, 1)`` values (:func:`tick_uniforms`: Threefry-2x32 of the tick's
counters under a 64-bit seed drawn once from the step's key) and scales them by (rand, rmax, rmax);
``step_with_noise`` feeds recorded raw draws (``GoalNoise``) to the same tick code.

Speed (docs/performance.md, "Environments"): vmapped, the tick loop compacts the lanes still ticking
(:mod:`balancedrl.envs.compacting_loop`), and a tick evaluates 3 atan2 and 2 sin/cos pairs.

Reset: ``y0 ~ U(-15, 15)``, ball ``1.6 - margin`` in front of the player (margin 1e-12 in float64, 1e-5 in
float32, docs/specs/parameterised_envs.md §2.11/§4.3, so the first tick kicks), keeper on the ball-goal line at x = 14.5.

Observation (``obs_mode``): ``"scaled17"`` (default; the MP-DQN wrapper: 14 raw + keeper-to-ball unit
vector + keeper goal-line projection, mapped to [-1, 1] with LOW/HIGH, docs/specs/parameterised_envs.md §2.8) or ``"raw"`` (14-vector
``[p, v_p, th_p, k, v_k, th_k, b, v_b]``). The tick count is ``info["ticks"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces
from jax.extend.random import threefry_2x32

from balancedrl.envs.compacting_loop import compacting_while_loop
from balancedrl.envs.parameterised import checked_dtype, hybrid_action_space

PI = float(np.pi)
# ---- constants (docs/specs/parameterised_envs.md §2.2) ----
HALF_LENGTH = 20.0  # PITCH_LENGTH / 2, goal line
HALF_WIDTH = 15.0
GOAL_HALF = 14.02 / 2  # 7.01
GOAL_DEPTH = 2.44
GOAL_AREA_X = 14.5
GOAL_AREA_HALF = 18.32 / 2  # 9.16
KICKABLE = 1.6
CATCHABLE = 2.0
INERTIA_MOMENT = 5.0
MAXPOWER = 100.0
BALL_DECAY_GAP = 1.0 - 0.94  # 0.06000000000000005 (computed in float64, docs/specs/parameterised_envs.md §2.7)
# (radius, power_rate, rand, accel_max, speed_max, decay)
PLAYER = (0.9, 0.006, 0.1, 1.0, 1.0, 0.4)
KEEPER = (0.9, 0.006, 0.1, 1.0, 1.0, 0.4)
BALL = (0.4, 0.027, 0.05, 2.7, 2.7, 0.94)
MAX_TIME = 100
NUM_ACTIONS = 3
PARAM_LOW = np.array([0.0, -15.0, -7.01, -7.01])
PARAM_HIGH = np.array([40.0, 15.0, 7.01, 7.01])
PARAM_OWNER = np.array([0, 0, 1, 2], dtype=np.int32)
PARAM_SLICES = ((0, 2), (2, 3), (3, 4))
OBS_LOW = np.array(
    [0, -15, -1, -1, -PI, 0, -15, -1, -1, -PI, 0, -15, -3, -3, -1, -1, -GOAL_HALF], dtype=np.float64
)
OBS_HIGH = np.array([20, 15, 1, 1, PI, 20, 15, 1, 1, PI, 20, 15, 3, 3, 1, 1, 14.02], dtype=np.float64)
DO_LETTERS = "KDT"  # info["do"] codes: 0 kick, 1 dash, 2 turn


@struct.dataclass
class GoalState(environment.EnvState):
    """Player ``p, vp, theta_p`` (unwrapped), keeper ``k, vk, theta_k``, ball ``b, vb`` ([2] each), time."""

    p: jax.Array
    vp: jax.Array
    theta_p: jax.Array
    k: jax.Array
    vk: jax.Array
    theta_k: jax.Array
    b: jax.Array
    vb: jax.Array
    time: jax.Array


@struct.dataclass
class GoalParams(environment.EnvParams):
    """``max_steps_in_episode``: the env's own 100-step rule (a *terminal* step, faithful to the original,
    so ``is_truncated`` is always False). ``max_ticks``: tick-loop cap (``info["tick_cap_hit"]``)."""

    max_steps_in_episode: int = MAX_TIME
    max_ticks: int = 1000


class GoalNoise(NamedTuple):
    """Recorded raw draws of one step, padded to N rows: ``act`` [N, 3] = (rr, nx, ny) of each kick/dash in
    order; ``goalie`` [N, 3] = the keeper's (rr, nx, ny) of every tick. N sets the replay trace length."""

    act: jax.Array
    goalie: jax.Array


def _unpack_action(action: Any) -> tuple[jax.Array, jax.Array]:
    if isinstance(action, Mapping):
        return action["discrete"], action["continuous"]
    if hasattr(action, "discrete") and hasattr(action, "continuous"):
        return action.discrete, action.continuous
    raise TypeError(
        "action must be a mapping or NamedTuple with 'discrete' and 'continuous', "
        f"got {type(action).__name__}"
    )


class Goal(environment.Environment[GoalState, GoalParams]):
    """Goal-v0 as a gymnax environment (docs/specs/parameterised_envs.md §2).

    dtype: float32 (default) or float64 (needs x64). obs_mode: "scaled17" (default) or "raw".
    reset_margin: how much closer than 1.6 the reset ball sits (default 1e-12 in float64, 1e-5 in float32).
    """

    param_low = PARAM_LOW
    param_high = PARAM_HIGH
    param_owner = PARAM_OWNER
    param_slices = PARAM_SLICES

    def __init__(
        self, dtype: Any = jnp.float32, obs_mode: str = "scaled17", reset_margin: float | None = None
    ):
        super().__init__()
        dt = checked_dtype(dtype)
        if obs_mode not in ("scaled17", "raw"):
            raise ValueError(f"obs_mode must be 'scaled17' or 'raw', got {obs_mode!r}")
        if reset_margin is None:
            reset_margin = 1e-12 if dt == jnp.dtype(jnp.float64) else 1e-5
        if not 0.0 <= reset_margin < KICKABLE:
            raise ValueError(f"reset_margin must be in [0, 1.6), got {reset_margin!r}")
        self.dtype = dt
        self.obs_mode = obs_mode
        self.reset_margin = float(reset_margin)

    # ------------------------------------------------------------------ API
    @property
    def default_params(self) -> GoalParams:
        return GoalParams()

    @property
    def name(self) -> str:
        return "Goal-v0"

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    def action_space(self, params: GoalParams | None = None) -> spaces.Dict:
        """Dict(discrete=Discrete(3), continuous=Box(PARAM_LOW, PARAM_HIGH, (4,))) in physical units."""
        return hybrid_action_space(NUM_ACTIONS, PARAM_LOW, PARAM_HIGH)

    def observation_space(self, params: GoalParams | None = None) -> spaces.Box:
        if self.obs_mode == "raw":
            return spaces.Box(
                jnp.asarray(OBS_LOW[:14], self.dtype),
                jnp.asarray(OBS_HIGH[:14], self.dtype),
                (14,),
                self.dtype,
            )
        return spaces.Box(-1.0, 1.0, (17,), self.dtype)

    def param_mask(self, discrete: jax.Array) -> jax.Array:
        """bool [4]: which continuous entries the chosen discrete action reads (``PARAM_OWNER == k``)."""
        return jnp.asarray(PARAM_OWNER) == jnp.asarray(discrete)[..., None]

    def reset_env(self, key: jax.Array, params: GoalParams) -> tuple[jax.Array, GoalState]:
        """``y0 ~ U(-15, 15)`` then :meth:`reset_from_y0` (docs/specs/parameterised_envs.md §2.5)."""
        y0 = jax.random.uniform(key, (), self.dtype, -HALF_WIDTH, HALF_WIDTH)
        state = self.reset_from_y0(y0)
        return self.get_obs(state), state

    def reset_from_y0(self, y0: jax.Array) -> GoalState:
        """Deterministic part of the reset: player (0, y0) facing (20, 0), ball ``1.6 - margin`` ahead,
        keeper at ``keeper_target(ball)`` facing the ball."""
        dt = self.dtype
        y0 = jnp.asarray(y0, dt)
        p = jnp.stack([jnp.zeros((), dt), y0])
        theta = jnp.arctan2(0.0 - p[1], HALF_LENGTH - p[0])
        dist = jnp.asarray(np.float64(KICKABLE) - np.float64(self.reset_margin), dt)
        b = p + dist * jnp.stack([jnp.cos(theta), jnp.sin(theta)])
        # keeper_target(b)
        g = -b[1] / (HALF_LENGTH - b[0])
        c = b[1] - g * b[0]
        xv = jnp.where(
            b[0] < GOAL_AREA_X,
            b[0],
            jnp.where(b[1] < -GOAL_AREA_HALF, (-GOAL_AREA_HALF - c) / g, (GOAL_AREA_HALF - c) / g),
        )
        xv = jnp.clip(xv, GOAL_AREA_X, HALF_LENGTH)
        yv = jnp.clip(g * xv + c, -GOAL_AREA_HALF, GOAL_AREA_HALF)
        k = jnp.stack([xv, yv])
        zero2 = jnp.zeros((2,), dt)
        return GoalState(
            p=p,
            vp=zero2,
            theta_p=theta,
            k=k,
            vk=zero2,
            theta_k=jnp.arctan2(b[1] - k[1], b[0] - k[0]),
            b=b,
            vb=zero2,
            time=jnp.zeros((), jnp.int32),
        )

    def step_env(
        self, key: jax.Array, state: GoalState, action: Any, params: GoalParams
    ) -> tuple[jax.Array, GoalState, jax.Array, jax.Array, dict]:
        """Keyed macro-step: tick t uses ``tick_uniforms(seed, t)`` x (rand, rmax, rmax), ``seed`` = 2 uint32
        words drawn from ``key`` (one Threefry block per step instead of a ``fold_in`` per tick)."""

        dt = self.dtype

        def fetch(seed, t, i):
            u = tick_uniforms(seed, t, dt)
            return u[0], u[1]

        seed = jax.random.bits(key, (2,), jnp.uint32)
        return self._macro_step(state, action, params, fetch, seed, unit_noise=True, trace_len=0)

    def step_with_noise(
        self, state: GoalState, action: Any, params: GoalParams, noise: GoalNoise
    ) -> tuple[jax.Array, GoalState, jax.Array, jax.Array, dict]:
        """Deterministic macro-step replaying recorded draws (docs/specs/parameterised_envs.md §4.3); same tick code as ``step_env``.

        Returns ``obs, state, reward, terminated, info`` with ``info["trace"]`` [N, 14] (raw state after each
        tick) and ``info["do"]`` [N] (0 K, 1 D, 2 T; -1 past ``info["ticks"]``).
        """
        act = jnp.asarray(noise.act, self.dtype)
        goalie = jnp.asarray(noise.goalie, self.dtype)
        n = goalie.shape[0]

        def fetch(src, t, i):
            act, goalie = src
            return act[jnp.minimum(i, n - 1)], goalie[jnp.minimum(t, n - 1)]

        return self._macro_step(state, action, params, fetch, (act, goalie), unit_noise=False, trace_len=n)

    def get_obs(self, state: GoalState, params: GoalParams | None = None, key: Any = None) -> jax.Array:
        if self.obs_mode == "raw":
            return self.raw_obs(state)
        s = self.features17(state)
        low = jnp.asarray(OBS_LOW, self.dtype)
        high = jnp.asarray(OBS_HIGH, self.dtype)
        return 2.0 * (s - low) / (high - low) - 1.0

    def features17(self, state: GoalState) -> jax.Array:
        """Unscaled 17-vector: raw 14, keeper-to-ball unit vector, keeper goal-line projection (docs/specs/parameterised_envs.md §2.8)."""
        raw = self.raw_obs(state)
        b, k = state.b, state.k
        diff = b - k
        unit = diff / jnp.sqrt(diff[0] * diff[0] + diff[1] * diff[1])
        same_x = k[0] == b[0]
        dxk = jnp.where(same_x, 1.0, k[0] - b[0])
        g = (k[1] - b[1]) / dxk
        c = b[1] - g * b[0]
        proj = jnp.where(
            same_x,
            jnp.where(k[1] < b[1], -GOAL_HALF, GOAL_HALF),
            jnp.clip(g * HALF_LENGTH + c, -GOAL_HALF, 14.02),
        )
        return jnp.concatenate([raw, unit, proj[None]])

    @staticmethod
    def raw_obs(state: GoalState) -> jax.Array:
        """The 14-vector ``[p, v_p, th_p, k, v_k, th_k, b, v_b]`` (docs/specs/parameterised_envs.md §2.8)."""
        return jnp.concatenate(
            [
                state.p,
                state.vp,
                state.theta_p[None],
                state.k,
                state.vk,
                state.theta_k[None],
                state.b,
                state.vb,
            ]
        )

    def state_from_vector(self, vec: jax.Array, time: Any = 0) -> GoalState:
        """Build a state from the raw 14-vector (the JSON ``obs`` layout) and a step counter."""
        v = jnp.asarray(vec, self.dtype)
        return GoalState(
            p=v[0:2],
            vp=v[2:4],
            theta_p=v[4],
            k=v[5:7],
            vk=v[7:9],
            theta_k=v[9],
            b=v[10:12],
            vb=v[12:14],
            time=jnp.asarray(time, jnp.int32),
        )

    def is_terminated(self, state: GoalState, params: GoalParams) -> jax.Array:
        term, _ = _outcome(state.k, state.b)
        return term | (state.time >= params.max_steps_in_episode)

    def is_truncated(self, state: GoalState, params: GoalParams) -> jax.Array:
        """Never: the 100-step rule of Goal-v0 is a terminal step with reward ``-goal_distance``."""
        return jnp.zeros((), bool)

    # ------------------------------------------------------------------ macro step
    def _macro_step(self, state, action, params, fetch, noise_src, unit_noise: bool, trace_len: int):
        dt = self.dtype
        kind, cont = _unpack_action(action)
        kind = jnp.asarray(kind, jnp.int32)
        cont = jnp.clip(jnp.asarray(cont, dt), jnp.asarray(PARAM_LOW, dt), jnp.asarray(PARAM_HIGH, dt))
        # target T: kick-to (q1, q1) (q2 ignored, docs/specs/parameterised_envs.md §2.4), shoot (20.4, s)
        shoot_y = jnp.where(kind == 1, cont[2], cont[3])
        target = jnp.where(
            kind == 0,
            jnp.stack([cont[0], cont[0]]),
            jnp.stack([jnp.asarray(HALF_LENGTH + BALL[0], dt), shoot_y]),
        )
        time = state.time + 1
        timeup = time >= params.max_steps_in_episode
        phys = (state.p, state.vp, state.theta_p, state.k, state.vk, state.theta_k, state.b, state.vb)
        tl = max(trace_len, 1)
        trace = jnp.zeros((tl, 14), dt)
        do = jnp.full((tl,), -1, jnp.int32)
        max_ticks = jnp.asarray(params.max_ticks, jnp.int32)
        zero_i = jnp.zeros((), jnp.int32)

        def cond(consts, c):
            return c[-1]

        def body(consts, c):
            kind, target, max_ticks, noise_src = consts
            phys, t, i, _, _, trace, do, _ = c
            act_noise, goalie_noise = fetch(noise_src, t, i)
            phys, reward, term, code = _tick(phys, target, act_noise, goalie_noise, unit_noise)
            i = i + (code != 2).astype(jnp.int32)
            t = t + 1
            if trace_len:
                trace = trace.at[t - 1].set(
                    jnp.concatenate(
                        [phys[0], phys[1], phys[2][None], phys[3], phys[4], phys[5][None], phys[6], phys[7]]
                    ),
                    mode="drop",
                )
                do = do.at[t - 1].set(code, mode="drop")
            more = jnp.where(kind == 0, _kickto_running(phys), True) & ~term
            return phys, t, i, reward, term, trace, do, more & (t < max_ticks)

        init = (phys, zero_i, zero_i, jnp.zeros((), dt), jnp.zeros((), bool), trace, do, ~timeup)
        # vmapped, the tick loop runs only the lanes still ticking (compacting_loop: same values per lane)
        consts = (kind, target, max_ticks, noise_src)
        phys, ticks, _, reward, term, trace, do, _ = compacting_while_loop(cond, body, consts, init)
        cap_hit = (ticks >= max_ticks) & ~term & jnp.where(kind == 0, _kickto_running(phys), True)
        p, vp, th_p, k, vk, th_k, b, vb = phys
        reward = jnp.where(timeup, -_goal_distance(b), reward)
        term = term | timeup
        new_state = GoalState(p=p, vp=vp, theta_p=th_p, k=k, vk=vk, theta_k=th_k, b=b, vb=vb, time=time)
        # success: the episode ended with a goal (+50, which only the ball-in-net outcome gives)
        info = {"ticks": ticks, "tick_cap_hit": cap_hit, "time": time, "success": term & (reward >= 50.0)}
        if trace_len:
            info["trace"] = trace
            info["do"] = do
        return self.get_obs(new_state), new_state, reward, term, info


def tick_uniforms(seed: jax.Array, t: jax.Array, dtype: Any = jnp.float32) -> jax.Array:
    """[2, 3] draws ``U[-1, 1)`` for tick ``t``: Threefry-2x32 (Salmon et al. 2011, 20 rounds, jax's own
    generator) of the counters ``w t + j``, ``j < w``, under the key ``seed`` (uint32 [2]); ``w = 6`` words
    in float32 (23 mantissa bits each), ``w = 12`` in float64 (two words, 52 bits, per draw)."""
    dt = jnp.dtype(dtype)
    wide = dt == jnp.dtype(jnp.float64)
    w = 12 if wide else 6
    count = jnp.asarray(t, jnp.uint32) * jnp.uint32(w) + jnp.arange(w, dtype=jnp.uint32)
    bits = jax.lax.optimization_barrier(threefry_2x32((seed[0], seed[1]), count))
    if wide:
        b = (bits[:6].astype(jnp.uint64) << 32) | bits[6:].astype(jnp.uint64)
        one = jax.lax.bitcast_convert_type((b >> 12) | jnp.uint64(0x3FF0000000000000), jnp.float64)
    else:
        one = jax.lax.bitcast_convert_type((bits >> 9) | jnp.uint32(0x3F800000), jnp.float32)
    # one in [1, 2): 2 (one - 1) - 1 in [-1, 1), exact arithmetic
    return (2.0 * (one - 1.0) - 1.0).reshape(2, 3)


# ---------------------------------------------------------------------- physics (docs/specs/parameterised_envs.md §2.7)
def _norm(v):
    return jnp.sqrt(v[0] * v[0] + v[1] * v[1])


def _atan2(v):
    return jnp.arctan2(v[1], v[0])


WRAP_UNROLL = 2  # wraps of |a| <= (2 WRAP_UNROLL + 1) pi need no loop (all but pathological angles)


def _wrap_once(a):
    return jnp.where(a > PI, a - 2.0 * PI, jnp.where(a < -PI, a + 2.0 * PI, a))


def _wrap(a):
    """Map into [-pi, pi] by repeatedly subtracting / adding 2 pi (not a single modulo: bit-exactness).

    ``WRAP_UNROLL`` steps are unrolled (loop-free, fused); a ``while_loop`` finishes larger angles (under
    vmap it costs one check per call: its body runs only when some lane needs it). One loop does both
    directions: from ``a > pi`` the subtractions never go below ``-pi`` (``pi - fl(2 pi) = -pi`` exactly),
    so this equals the original's two loops. Odd symmetry holds: ``_wrap(-a) == -_wrap(a)``."""
    for _ in range(WRAP_UNROLL):
        a = _wrap_once(a)
    return jax.lax.while_loop(lambda x: (x > PI) | (x < -PI), _wrap_once, a)


def _accelerate(v, pr, theta, spec, noise, unit_noise: bool):
    """``theta' = (1 + rr) theta``; ``a = clip(pr * (cos, sin)(theta') + (nx, ny), +-amax)`` with
    ``pr = power * rate`` (computed by the caller); ``v = clip(v + a, +-smax)``. ``noise`` = raw
    (rr, nx, ny), or U(-1, 1) units x (rand, rmax, rmax). ``spec``'s (rand, amax, smax) may be arrays
    (one call for the player's dash or the ball's kick)."""
    _, _, rand, amax, smax, _ = spec
    rr, nx, ny = noise[0], noise[1], noise[2]
    if unit_noise:
        rmax = rand * _norm(v)
        rr, nx, ny = rand * rr, rmax * nx, rmax * ny
    th = (1.0 + rr) * theta
    a = jnp.stack([pr * jnp.cos(th) + nx, pr * jnp.sin(th) + ny])
    a = jnp.clip(a, -amax, amax)
    return jnp.clip(v + a, -smax, smax)


def _kickto_running(phys):
    p, b, vb = phys[0], phys[6], phys[7]
    return (_norm(b - p) > KICKABLE) | (_norm(vb) > 0.1)


def _goal_distance(b):
    """Distance of the ball to the goal mouth (docs/specs/parameterised_envs.md §2.7, asymmetric sign behind the line kept)."""
    bx, by = b[0], b[1]
    d_low = jnp.sqrt((HALF_LENGTH - bx) ** 2 + (-GOAL_HALF - by) ** 2)
    d_high = jnp.sqrt((HALF_LENGTH - bx) ** 2 + (GOAL_HALF - by) ** 2)
    front = jnp.where(by < -GOAL_HALF, d_low, jnp.where(by > GOAL_HALF, d_high, HALF_LENGTH - bx))
    behind = jnp.where(by < -GOAL_HALF, GOAL_HALF - by, jnp.where(by > GOAL_HALF, by - GOAL_HALF, 0.0))
    return jnp.where(bx < HALF_LENGTH, front, behind)


def _outcome(k, b):
    """(terminal, reward): goal +50; caught (|k - b| < 2) or out of field: -goal_distance(b)."""
    in_net = (
        (HALF_LENGTH <= b[0])
        & (b[0] <= HALF_LENGTH + GOAL_DEPTH)
        & (-GOAL_HALF <= b[1])
        & (b[1] <= GOAL_HALF)
    )
    caught = _norm(k - b) < CATCHABLE
    in_field = (0.0 <= b[0]) & (b[0] <= HALF_LENGTH) & (-HALF_WIDTH <= b[1]) & (b[1] <= HALF_WIDTH)
    lost = caught | ~in_field
    reward = jnp.where(in_net, 50.0, jnp.where(lost, -_goal_distance(b), 0.0))
    return in_net | lost, reward.astype(b.dtype)


def _collide(p1, v1, r1, p2, v2, r2):
    """Overlapping discs move apart by half the overlap each along the centre line, velocities negate.

    The original's ``(cos, sin)(atan2(d))`` is computed as ``d / |d|`` (the same unit vector to ~1 ulp;
    six transcendentals fewer per pair); at ``d = 0`` both fall back to ``atan2(0, 0) = 0``, i.e. (1, 0)."""
    diff = p1 - p2
    dist = _norm(diff)
    hit = dist < r1 + r2
    o = (r1 + r2 - dist) / 2.0
    apart = dist > 0.0
    unit = jnp.where(apart, diff / jnp.where(apart, dist, 1.0), jnp.asarray([1.0, 0.0], diff.dtype))
    back = jnp.where(apart, -unit, unit)
    n1 = p1 + o * unit
    n2 = p2 + o * back
    return jnp.where(hit, n1, p1), jnp.where(hit, -v1, v1), jnp.where(hit, n2, p2), jnp.where(hit, -v2, v2)


def _tick(phys, target, act_noise, goalie_noise, unit_noise: bool):
    """One tick (docs/specs/parameterised_envs.md §2.7): player behaviour, keeper, integration, collisions, termination.
    Returns (phys, reward, terminal, code) with code 0 kick, 1 dash, 2 turn."""
    p, vp, th_p, k, vk, th_k, b, vb = phys
    # 1. player behaviour
    rel = b - p
    d = _norm(rel)
    phi = _atan2(rel)
    kickable = d <= KICKABLE
    # one wrap: _wrap(phi - th_p) == -_wrap(th_p - phi) bit for bit (odd symmetry, fl(a - b) = -fl(b - a))
    w = _wrap(th_p - phi)
    facing = jnp.abs(w) < PI / 8.0
    turned = th_p + (-w) / (1.0 + INERTIA_MOMENT * _norm(vp))
    a_star = BALL_DECAY_GAP * (target - p) - vb
    kappa = 1.0 - 0.25 * jnp.abs(w) / PI - 0.25 * d / KICKABLE
    power = jnp.clip(_norm(a_star) / (kappa * BALL[1]), -MAXPOWER, MAXPOWER)
    psi = _atan2(a_star)
    # the kick (ball) or the dash (player): one _accelerate on the selected inputs, same ops per case
    pick = lambda kick, dash: jnp.where(kickable, kick, dash)  # noqa: E731
    spec = (None, None, *(pick(bs, ps) for bs, ps in zip(BALL[2:5], PLAYER[2:5], strict=True)), None)
    pr = pick(power * kappa * BALL[1], 10.0 * PLAYER[1])  # the dash's product in Python, as before
    moved = _accelerate(pick(vb, vp), pr, pick(th_p + (psi - th_p), th_p), spec, act_noise, unit_noise)
    code = jnp.where(kickable, 0, jnp.where(facing, 1, 2)).astype(jnp.int32)
    vb = jnp.where(kickable, moved, vb)
    vp = jnp.where(~kickable & facing, moved, vp)
    th_p = jnp.where(~kickable & ~facing, turned, th_p)
    # 2. keeper (uses the ball velocity after the kick)
    e = b + vb / BALL_DECAY_GAP
    ed = e - b
    flat = ed[0] == 0.0
    g = jnp.where(flat, 0.0, ed[1] / jnp.where(flat, 1.0, ed[0]))
    c = b[1] - g * b[0]
    gy = g * 40.0 / 2.0 + c
    lim = GOAL_HALF + CATCHABLE
    intercept = (e[0] > HALF_LENGTH) & (-lim <= gy) & (gy <= lim) & (g != 0.0)
    g_safe = jnp.where(g != 0.0, g, 1.0)
    g2 = -1.0 / g_safe
    c2 = k[1] - g2 * k[0]
    ix = (c2 - c) / (g_safe - g2)
    iy = g_safe * ix + c
    # the intercept or the ball's end point: one atan2 on the selected difference
    th_k = jnp.arctan2(jnp.where(intercept, iy - k[1], e[1] - k[1]), jnp.where(intercept, ix - k[0], e[0] - k[0]))
    vk = _accelerate(vk, jnp.where(intercept, 20.0, 8.0) * KEEPER[1], th_k, KEEPER, goalie_noise, unit_noise)
    # 3. integration: player, keeper, ball
    p = p + vp
    vp = PLAYER[5] * vp
    k = k + vk
    vk = KEEPER[5] * vk
    b = b + vb
    vb = BALL[5] * vb
    # 4. collisions: (player, keeper), (player, ball), (keeper, ball), sequential
    p, vp, k, vk = _collide(p, vp, PLAYER[0], k, vk, KEEPER[0])
    p, vp, b, vb = _collide(p, vp, PLAYER[0], b, vb, BALL[0])
    k, vk, b, vb = _collide(k, vk, KEEPER[0], b, vb, BALL[0])
    # 5. termination and reward
    term, reward = _outcome(k, b)
    return (p, vp, th_p, k, vk, th_k, b, vb), reward, term, code


def make_goal(name: str = "Goal-v0", **overrides):
    """``(env, params)`` with ``overrides`` replacing fields of the default params."""
    from balancedrl.envs.registry import with_overrides

    env = Goal()
    return env, with_overrides(env.default_params, overrides, name)
