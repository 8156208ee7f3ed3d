"""Hard Move with n actuators (HyAR, Li et al. ICLR 2022; n = 4, 6, 8, 10) as a pure-JAX gymnax env.

Faithful port of ``/work/shared/reference/hybrid_envs_2/SPEC2.md`` §3 (HyAR's MPE scenario
``simple_move_4_direction_v1``, action type 8, ``pad_action`` and the episode loop of its scripts).
The point-mass world of Catch Point (``v <- 0.75 v + 0.1 F``, ``x <- x + 0.1 v``) with n actuators evenly
spaced on the circle; the agent must end a step within 0.2 of a fixed target.

Actuator table (docs/specs/hyar_envs.md §3.2), built once in float64 NumPy by :func:`actuator_tables`:
``movement[k] = round3(cos x_k, sin x_k)`` with ``x = linspace(0, 2 pi, n + 1)``;
``bits(a)[k] = (a >> (n - 1 - k)) & 1`` -- the **least significant bit of a drives actuator n - 1**, the
most significant bit actuator 0; ``raw[a] = bits(a) . movement`` summed in the order of the original's
BLAS ``ddot`` (bit-exact tables); ``motions[a] = raw[a] / max_a |raw[a]|``.

Action: ``{"discrete": a in {0 .. 2^n - 1}, "continuous": params}``. Only one strength is read for the
whole pattern (docs/specs/hyar_envs.md §3.3): with ``param_layout="per_action"`` (default, the original interface)
``params`` has 2^n entries and ``p = params[a]`` (``PARAM_OWNER[i] = i``); with ``param_layout="shared"``
``params`` has one entry, used by every action (``param_owner = (-1,)``) -- the same dynamics with a
2^n times smaller parameter vector. ``p`` is never clipped (negative p reverses the direction).
Force ``F = (motions[a]_x p 2, motions[a]_y p 2)``.

Reward with the new position: ``r = -(d2 - 20)`` if ``d2 <= 0.2**2`` else ``-d2`` (``d2 = |x - l|^2``).
HyAR's loop ends the episode when ``r > 4`` (``terminated``, ``info["success"]``, the flag its evaluation
counts, docs/specs/hyar_envs.md §3.6) and cuts it after 30 steps (truncation ``time >= max_steps_in_episode``).
Observation ``[v_x, v_y, l_x - x, l_y - y]``. Reset: ``x ~ U(-1, 1)^2``, ``l ~ U(-1, 1)^2``, ``v = 0``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from balancedrl.envs.catch_point import (
    CATCH_RADIUS_SQ,
    FORCE_SCALE,
    SUCCESS_REWARD_THRESHOLD,
    point_mass_step,
    point_obs,
    squared_distance,
    unpack_action,
)
from balancedrl.envs.parameterised import checked_dtype

SUCCESS_REWARD = 20.0
MAX_STEPS = 30  # HyAR's episode cap for Hard Move
HYAR_SIZES = (4, 6, 8, 10)
MIN_ACTUATORS, MAX_ACTUATORS = 1, 12
PARAM_LAYOUTS = ("per_action", "shared")


def actuator_bits(n: int) -> np.ndarray:
    """int [2^n, n]: ``bits[a, k] = (a >> (n - 1 - k)) & 1`` (HyAR's ``binaryEncoding``: the least
    significant bit of ``a`` is actuator n - 1)."""
    a = np.arange(2**n)[:, None]
    return (a >> (n - 1 - np.arange(n))[None, :]) & 1


def actuator_tables(n: int) -> dict[str, Any]:
    """``movement`` [n, 2], ``motions`` [2^n, 2] and ``max_dist`` of the original code, float64, bit-exact.

    The sum ``bits(a) . movement`` follows the original's BLAS ``ddot`` order (docs/specs/hyar_envs.md §3.2): with
    ``m = n - n mod 8``, even and odd k < m are accumulated separately from 0.0, the rest (k >= m) in a
    tail from 0.0, and ``raw = tail + (even + odd)``. A plain left-to-right sum is off by <= 3.3e-16.
    """
    if not isinstance(n, (int, np.integer)) or not MIN_ACTUATORS <= n <= MAX_ACTUATORS:
        raise ValueError(
            f"n (number of actuators) must be an int in [{MIN_ACTUATORS}, {MAX_ACTUATORS}], got {n!r}"
        )
    x = np.linspace(0.0, 2.0 * np.pi, n + 1)[:n]
    movement = np.stack([np.around(np.cos(x), 3), np.around(np.sin(x), 3)], axis=1)
    q = actuator_bits(n)[:, :, None] * movement[None, :, :]  # [A, n, 2], products exact (bits are 0/1)
    m = n - n % 8
    acc0 = np.zeros((2**n, 2))
    acc1 = np.zeros((2**n, 2))
    tail = np.zeros((2**n, 2))
    for k in range(n):  # increasing k, each accumulator from 0.0
        if k >= m:
            tail = tail + q[:, k]
        elif k % 2 == 0:
            acc0 = acc0 + q[:, k]
        else:
            acc1 = acc1 + q[:, k]
    raw = tail + (acc0 + acc1)
    max_dist = float(np.max(np.sqrt(raw[:, 0] ** 2 + raw[:, 1] ** 2)))
    return {"movement": movement, "motions": raw / max_dist, "max_dist": max_dist}


@struct.dataclass
class HardMoveState(environment.EnvState):
    """Agent position ``pos`` and velocity ``vel``, target ``target`` ([2] each) and the step counter."""

    pos: jax.Array
    vel: jax.Array
    target: jax.Array
    time: jax.Array


@struct.dataclass
class HardMoveParams(environment.EnvParams):
    """``max_steps_in_episode``: HyAR's loop cap (30 steps), a truncation."""

    max_steps_in_episode: int = MAX_STEPS


class HardMove(environment.Environment[HardMoveState, HardMoveParams]):
    """Hard Move with ``n`` actuators (docs/specs/hyar_envs.md §3); 2^n discrete actions.

    dtype: float32 (default) or float64 (needs x64). param_layout: "per_action" (2^n parameters, the
    original interface) or "shared" (one parameter for every action).
    """

    def __init__(self, n: int = 4, dtype: Any = jnp.float32, param_layout: str = "per_action"):
        super().__init__()
        if param_layout not in PARAM_LAYOUTS:
            raise ValueError(f"param_layout must be one of {PARAM_LAYOUTS}, got {param_layout!r}")
        tables = actuator_tables(n)
        self.n = int(n)
        self.dtype = checked_dtype(dtype)
        self.param_layout = param_layout
        self.movement = tables["movement"]
        self.motions = tables["motions"]
        self.max_dist = tables["max_dist"]
        A = 2**self.n
        P = A if param_layout == "per_action" else 1
        self.param_low = -np.ones(P)
        self.param_high = np.ones(P)
        if param_layout == "per_action":
            self.param_owner = np.arange(A, dtype=np.int32)
            self.param_slices = tuple((i, i + 1) for i in range(A))
        else:
            self.param_owner = np.array([-1], dtype=np.int32)
            self.param_slices = ((0, 1),) * A

    # ------------------------------------------------------------------ API
    @property
    def default_params(self) -> HardMoveParams:
        return HardMoveParams()

    @property
    def name(self) -> str:
        return f"HardMove-n{self.n}-v0"

    @property
    def num_actions(self) -> int:
        return 2**self.n

    def action_space(self, params: HardMoveParams | None = None) -> spaces.Dict:
        """Dict(discrete=Discrete(2^n), continuous=Box(-1, 1, (P,))), P = 2^n or 1 (``param_layout``);
        uniform samples as docs/specs/hyar_envs.md §4.4."""
        P = len(self.param_low)
        return spaces.Dict(
            {
                "discrete": spaces.Discrete(2**self.n),
                "continuous": spaces.Box(-1.0, 1.0, (P,), jnp.float32),
            }
        )

    def observation_space(self, params: HardMoveParams | None = None) -> spaces.Box:
        """Unbounded in principle (no walls, no speed cap); positions start in [-1, 1]^2."""
        return spaces.Box(-jnp.inf, jnp.inf, (4,), self.dtype)

    def param_mask(self, discrete: jax.Array) -> jax.Array:
        """bool [P]: which continuous entries the chosen discrete action reads."""
        owner = jnp.asarray(self.param_owner)
        return (owner == -1) | (owner == jnp.asarray(discrete)[..., None])

    def reset_env(self, key: jax.Array, params: HardMoveParams) -> tuple[jax.Array, HardMoveState]:
        """``(x, l) ~ U(-1, 1)^4`` then :meth:`reset_from_draws`."""
        draws = jax.random.uniform(key, (4,), self.dtype, -1.0, 1.0)
        state = self.reset_from_draws(draws)
        return self.get_obs(state), state

    def reset_from_draws(self, draws: jax.Array) -> HardMoveState:
        """Reset from the four draws ``[x, y, l_x, l_y]`` (the JSON ``reset_draws``)."""
        d = jnp.asarray(draws, self.dtype)
        zero = jnp.zeros((2,), self.dtype)
        return HardMoveState(pos=d[0:2], vel=zero, target=d[2:4], time=jnp.zeros((), jnp.int32))

    def state_from_vector(self, vec: jax.Array, time: Any = 0) -> HardMoveState:
        """State from the JSON layout ``[x, y, v_x, v_y, l_x, l_y]`` and a step counter."""
        v = jnp.asarray(vec, self.dtype)
        return HardMoveState(pos=v[0:2], vel=v[2:4], target=v[4:6], time=jnp.asarray(time, jnp.int32))

    @staticmethod
    def state_to_vector(state: HardMoveState) -> jax.Array:
        """``[x, y, v_x, v_y, l_x, l_y]``."""
        return jnp.concatenate([state.pos, state.vel, state.target])

    def get_obs(
        self, state: HardMoveState, params: HardMoveParams | None = None, key: Any = None
    ) -> jax.Array:
        return point_obs(state)

    def step_env(
        self, key: jax.Array, state: HardMoveState, action: Any, params: HardMoveParams
    ) -> tuple[jax.Array, HardMoveState, jax.Array, jax.Array, dict]:
        """Deterministic step (the key is unused: Hard Move draws nothing after the reset).

        ``info``: ``success`` (r > 4), ``force`` [2], ``time``.
        """
        dt = self.dtype
        a, cont = unpack_action(action)
        a = jnp.asarray(a, jnp.int32)
        cont = jnp.asarray(cont, dt).reshape(-1)
        if cont.shape[0] != len(self.param_low):
            raise ValueError(
                f"action['continuous'] must have {len(self.param_low)} entries for param_layout="
                f"{self.param_layout!r} and n={self.n}, got shape {cont.shape}"
            )
        p = cont[a] if self.param_layout == "per_action" else cont[0]
        motion = jnp.asarray(self.motions, dt)[a]
        force = (motion * p) * FORCE_SCALE
        pos, vel = point_mass_step(state.pos, state.vel, force)
        d2 = squared_distance(pos, state.target)
        reward = jnp.where(d2 <= CATCH_RADIUS_SQ, -(d2 - SUCCESS_REWARD), -d2)
        new_state = HardMoveState(pos=pos, vel=vel, target=state.target, time=state.time + 1)
        success = reward > SUCCESS_REWARD_THRESHOLD
        info = {"success": success, "force": force, "time": new_state.time}
        return self.get_obs(new_state), new_state, reward, success, info


def make_hard_move(name: str = "HardMove-n4-v0", param_layout: str = "per_action", **overrides):
    """``(env, params)`` for ``HardMove-n{n}-v0``: the name fixes ``n``; ``param_layout`` ("per_action" |
    "shared") is a static constructor option (it changes shapes); ``overrides`` replace param fields."""
    from balancedrl.envs.registry import with_overrides

    n = int(name.split("-n")[1].split("-")[0])
    env = HardMove(n=n, param_layout=param_layout)
    return env, with_overrides(env.default_params, overrides, name)
