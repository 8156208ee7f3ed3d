"""Catch Point (HyAR, Li et al. ICLR 2022; a mimic of the H-PPO task of Fan et al.) as a pure-JAX gymnax env.

Faithful port of ``/work/shared/reference/hybrid_envs_2/SPEC2.md`` §2 (HyAR's MPE scenario
``simple_catch``, action type 1, ``pad_action`` and the episode loop of its training scripts), quirks
included: the move force is ``F = 2 (sin theta, cos theta)`` with ``theta = p * pi`` (x uses sin, y uses
cos) and nothing clips ``p``; a catch applies no force and is judged at the position *after* the drift;
after 11 failed catches the next step returns the sentinel reward 0, which ends the episode.

Action: ``{"discrete": a in {0 move, 1 catch}, "continuous": (p,)}``, ``p`` nominally in [-1, 1]; the
catch ignores it (``PARAM_OWNER = (0,)``).

Step (point mass, docs/specs/hyar_envs.md §2.5; DT = 0.1, damping 0.25, mass 1):
``v <- 0.75 v``; ``v <- v + 0.1 F``; ``x <- x + 0.1 v``; ``d2 = |x - l|^2`` at the new position;
while ``valid_time <= 10``: catch with ``d2 <= 0.2**2`` gives ``r = -(d2 - 20)`` (success), a failed
catch ``valid_time += 1, r = -d2``, a move ``r = -d2``; once ``valid_time > 10``: ``r = 0``.
HyAR's loop ends the episode when ``r > 4`` (success) or ``r == 0`` (budget spent): ``terminated``;
the 25-step cap of its loop is the truncation ``time >= max_steps_in_episode``.
``info["success"] = r > 4``, the flag HyAR's evaluation counts (docs/specs/hyar_envs.md §2.7).

Observation ``[v_x, v_y, l_x - x, l_y - y]`` (unscaled). Reset: ``x ~ U(-1, 1)^2``, ``l ~ U(-1, 1)^2``,
``v = 0``, ``valid_time = 0`` (the only randomness; steps are deterministic).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from balancedrl.envs.parameterised import checked_dtype, hybrid_action_space

# ---- constants (docs/specs/hyar_envs.md §2.2) ----
DT = 0.1
DAMPING = 0.25
MASS = 1.0
FORCE_SCALE = 2.0
CATCH_RADIUS_SQ = 0.2**2  # 0.04000000000000001, compared as d2 <= 0.2**2
CATCH_REWARD = 20.0
MAX_VALID_TIME = 10  # catches are judged while valid_time <= 10: 11 failed catches allowed
SUCCESS_REWARD_THRESHOLD = 4.0  # HyAR's loop: success and done when r > 4
MAX_STEPS = 25  # HyAR's episode cap for Catch Point
NUM_ACTIONS = 2
PARAM_LOW = np.array([-1.0])
PARAM_HIGH = np.array([1.0])
PARAM_OWNER = np.array([0], dtype=np.int32)  # the catch ignores the parameter
PARAM_SLICES = ((0, 1), (1, 1))


@struct.dataclass
class CatchPointState(environment.EnvState):
    """Agent position ``pos`` and velocity ``vel``, target ``target`` ([2] each), failed catches
    ``valid_time`` and the step counter ``time``."""

    pos: jax.Array
    vel: jax.Array
    target: jax.Array
    valid_time: jax.Array
    time: jax.Array


@struct.dataclass
class CatchPointParams(environment.EnvParams):
    """``max_steps_in_episode``: HyAR's loop cap (25 steps), a truncation."""

    max_steps_in_episode: int = MAX_STEPS


def unpack_action(action: Any) -> tuple[jax.Array, jax.Array]:
    """``(discrete, continuous)`` from a mapping or a NamedTuple with those two fields."""
    if isinstance(action, Mapping):
        return action["discrete"], action["continuous"]
    if hasattr(action, "discrete") and hasattr(action, "continuous"):
        return action.discrete, action.continuous
    raise TypeError(
        "action must be a mapping or NamedTuple with 'discrete' and 'continuous', "
        f"got {type(action).__name__}"
    )


def point_mass_step(pos: jax.Array, vel: jax.Array, force: jax.Array) -> tuple[jax.Array, jax.Array]:
    """MPE integration (docs/specs/hyar_envs.md §2.5 steps 1-3): ``v <- v (1 - 0.25)``; ``v <- v + (F / 1) 0.1``;
    ``x <- x + 0.1 v``, in this order (bit-exact against the original in float64)."""
    vel = vel * (1.0 - DAMPING)
    vel = vel + (force / MASS) * DT
    return pos + vel * DT, vel


def squared_distance(pos: jax.Array, target: jax.Array) -> jax.Array:
    """``(x - l_x)^2 + (y - l_y)^2`` (``np.sum(np.square(p - l))``)."""
    d = pos - target
    return d[0] * d[0] + d[1] * d[1]


def point_obs(state) -> jax.Array:
    """``[v_x, v_y, l_x - x, l_y - y]`` (docs/specs/hyar_envs.md §2.5 step 5)."""
    return jnp.concatenate([state.vel, state.target - state.pos])


class CatchPoint(environment.Environment[CatchPointState, CatchPointParams]):
    """Catch Point as a gymnax environment (docs/specs/hyar_envs.md §2). ``dtype`` float32 (default) or float64 (needs x64)."""

    param_low = PARAM_LOW
    param_high = PARAM_HIGH
    param_owner = PARAM_OWNER
    param_slices = PARAM_SLICES

    def __init__(self, dtype: Any = jnp.float32):
        super().__init__()
        self.dtype = checked_dtype(dtype)

    # ------------------------------------------------------------------ API
    @property
    def default_params(self) -> CatchPointParams:
        return CatchPointParams()

    @property
    def name(self) -> str:
        return "CatchPoint-v0"

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    def action_space(self, params: CatchPointParams | None = None) -> spaces.Dict:
        """Dict(discrete=Discrete(2), continuous=Box(-1, 1, (1,))): uniform samples as docs/specs/hyar_envs.md §4.4."""
        return hybrid_action_space(NUM_ACTIONS, PARAM_LOW, PARAM_HIGH)

    def observation_space(self, params: CatchPointParams | None = None) -> spaces.Box:
        """Unbounded in principle (no walls, no speed cap); positions start in [-1, 1]^2."""
        return spaces.Box(-jnp.inf, jnp.inf, (4,), self.dtype)

    def param_mask(self, discrete: jax.Array) -> jax.Array:
        """bool [1]: True for a move (the catch reads no parameter)."""
        return jnp.asarray(PARAM_OWNER) == jnp.asarray(discrete)[..., None]

    def reset_env(self, key: jax.Array, params: CatchPointParams) -> tuple[jax.Array, CatchPointState]:
        """``(x, l) ~ U(-1, 1)^4`` then :meth:`reset_from_draws`."""
        draws = jax.random.uniform(key, (4,), self.dtype, -1.0, 1.0)
        state = self.reset_from_draws(draws)
        return self.get_obs(state), state

    def reset_from_draws(self, draws: jax.Array) -> CatchPointState:
        """Reset from the four draws ``[x, y, l_x, l_y]`` (the JSON ``reset_draws``)."""
        d = jnp.asarray(draws, self.dtype)
        return CatchPointState(
            pos=d[0:2],
            vel=jnp.zeros((2,), self.dtype),
            target=d[2:4],
            valid_time=jnp.zeros((), jnp.int32),
            time=jnp.zeros((), jnp.int32),
        )

    def state_from_vector(self, vec: jax.Array, time: Any = 0) -> CatchPointState:
        """State from the JSON layout ``[x, y, v_x, v_y, l_x, l_y, valid_time]`` and a step counter."""
        v = jnp.asarray(vec)
        f = v.astype(self.dtype)
        return CatchPointState(
            pos=f[0:2],
            vel=f[2:4],
            target=f[4:6],
            valid_time=v[6].astype(jnp.int32),
            time=jnp.asarray(time, jnp.int32),
        )

    @staticmethod
    def state_to_vector(state: CatchPointState) -> jax.Array:
        """``[x, y, v_x, v_y, l_x, l_y, valid_time]`` (float)."""
        return jnp.concatenate(
            [state.pos, state.vel, state.target, state.valid_time.astype(state.pos.dtype)[None]]
        )

    def get_obs(
        self, state: CatchPointState, params: CatchPointParams | None = None, key: Any = None
    ) -> jax.Array:
        return point_obs(state)

    def step_env(
        self, key: jax.Array, state: CatchPointState, action: Any, params: CatchPointParams
    ) -> tuple[jax.Array, CatchPointState, jax.Array, jax.Array, dict]:
        """Deterministic step (the key is unused: Catch Point draws nothing after the reset).

        ``info``: ``success`` (r > 4), ``budget_spent`` (the r = 0 step), ``force`` [2], ``time``.
        """
        dt = self.dtype
        a, cont = unpack_action(action)
        catch = jnp.asarray(a, jnp.int32) == 1
        p = jnp.asarray(cont, dt).reshape(-1)[0]
        theta = p * jnp.asarray(np.pi, dt)
        move_force = jnp.stack([jnp.sin(theta) * FORCE_SCALE, jnp.cos(theta) * FORCE_SCALE])
        force = jnp.where(catch, jnp.zeros((2,), dt), move_force)
        pos, vel = point_mass_step(state.pos, state.vel, force)
        d2 = squared_distance(pos, state.target)
        judging = state.valid_time <= MAX_VALID_TIME
        caught = catch & (d2 <= CATCH_RADIUS_SQ)
        missed = catch & ~caught
        reward = jnp.where(judging, jnp.where(caught, -(d2 - CATCH_REWARD), -d2), jnp.zeros((), dt))
        valid_time = state.valid_time + (judging & missed).astype(jnp.int32)
        new_state = CatchPointState(
            pos=pos, vel=vel, target=state.target, valid_time=valid_time, time=state.time + 1
        )
        success = reward > SUCCESS_REWARD_THRESHOLD
        terminated = success | (reward == 0.0)
        info = {"success": success, "budget_spent": ~judging, "force": force, "time": new_state.time}
        return self.get_obs(new_state), new_state, reward, terminated, info


def make_catch_point(name: str = "CatchPoint-v0", **overrides):
    """``(env, params)`` with ``overrides`` replacing fields of the default params."""
    from balancedrl.envs.registry import with_overrides

    env = CatchPoint()
    return env, with_overrides(env.default_params, overrides, name)
