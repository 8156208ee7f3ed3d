"""Hard Goal (HyAR, Li et al. ICLR 2022) as a pure-JAX gymnax env: Goal-v0 with the shots split into regions.

Faithful port of ``/work/shared/reference/hybrid_envs_2/SPEC2.md`` §1: the physics, keeper, reset, reward
and 100-step rule are Goal-v0's (:mod:`balancedrl.envs.goal`, unchanged); on top sit HyAR's action
mapping (``pad_action``), MP-DQN's parameter rescaling and its scaled observation, quirks included.

Action: ``{"discrete": a in {0..10}, "continuous": p in R^12}``, nominally ``[-1, 1]^12``:

* ``a = 0``: kick-to with ``u = (p[0], p[1])`` (Goal kicks to ``(q1, q1)``: ``p[1]`` has no effect);
* ``a = 1..5`` (Goal shoot 1) and ``a = 6..10`` (Goal shoot 2, identical): region ``i = (a - 1) mod 5``,
  ``u = p[a + 1] m_i + o_i`` with ``m_i = (c0 - c1) / 2``, ``o_i = c0 - m_i`` from HyAR's region list
  ``[[-1, -0.6], [-0.6, -0.2], [0.2, 0.2], [0.2, 0.6], [0.6, 1]]``: p = +1 gives the region's first bound,
  p = -1 its second. **Region 2 is [0.2, 0.2]**: actions 3 and 8 always shoot at y = 1.402.

``u`` is not clipped; it is rescaled with the wrapper's float32 bounds, ``env_p = R (u + 1) / 2 + L``
(kick-to ``R = (40, 30), L = (0, -15)``; shoot ``R = float32(14.02), L = float32(-7.01)``), and Goal-v0
clips ``env_p`` into its bounds before simulating.

Observation (``obs_mode="scaled17"``, default): ``2 (s17 - L) / R - 1`` with Goal's unscaled 17 features
``s17`` and float32 bounds ``L = float32(low)``, ``R = float32(high) - float32(low)`` (docs/specs/hyar_envs.md §1.4; the
values can leave [-1, 1]). ``obs_mode="raw"`` gives Goal's 14-vector.

``info["success"]``: the step ended the episode with a goal (reward +50), HyAR's evaluation criterion
"episode return == 50" (docs/specs/hyar_envs.md §1.7). ``info["u"]`` [2] and ``info["env_p"]`` [2] are the mapped parameter
before and after the rescaling (a shoot repeats its scalar).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces

from balancedrl.envs.goal import OBS_HIGH, OBS_LOW, Goal, GoalNoise, GoalParams, GoalState, _unpack_action
from balancedrl.envs.parameterised import hybrid_action_space

NUM_ACTIONS = 11
NUM_PARAMS = 12
PARAM_LOW = -np.ones(NUM_PARAMS)
PARAM_HIGH = np.ones(NUM_PARAMS)
# p[0:2] belong to kick-to (a = 0); p[a + 1] to shoot action a = 1..10
PARAM_OWNER = np.array([0, 0, *range(1, NUM_ACTIONS)], dtype=np.int32)
PARAM_SLICES = ((0, 2), *((a + 1, a + 2) for a in range(1, NUM_ACTIONS)))
SUCCESS_REWARD = 50.0
# HyAR's shot regions (c0, c1), literally as in its pad_action (region 2 is [0.2, 0.2]: a quirk kept)
C_RATE = np.array([[-1.0, -0.6], [-0.6, -0.2], [0.2, 0.2], [0.2, 0.6], [0.6, 1.0]])
REGION_SLOPE = (C_RATE[:, 0] - C_RATE[:, 1]) / 2.0  # m_i, float64
REGION_OFFSET = C_RATE[:, 0] - 1.0 * REGION_SLOPE  # o_i, float64
# ScaledParameterisedActionWrapper bounds: float32 constants used in float64 arithmetic
KICK_RANGE = np.float32([40.0, 30.0]).astype(np.float64)
KICK_LOW = np.float32([0.0, -15.0]).astype(np.float64)
SHOOT_RANGE = float(np.float32(7.01) * np.float32(2.0))  # 14.020000457763672
SHOOT_LOW = float(np.float32(-7.01))  # -7.010000228881836
# ScaledStateWrapper bounds: float32 low and a range computed in float32
OBS_LOW_F32 = OBS_LOW.astype(np.float32).astype(np.float64)
OBS_RANGE_F32 = (OBS_HIGH.astype(np.float32) - OBS_LOW.astype(np.float32)).astype(np.float64)


class HardGoal(Goal):
    """Hard Goal as a gymnax environment (docs/specs/hyar_envs.md §1): Goal-v0 dynamics, 11 actions, 12 parameters in [-1, 1].

    dtype: float32 (default) or float64 (needs x64). obs_mode: "scaled17" (default) or "raw".
    reset_margin: as :class:`balancedrl.envs.goal.Goal`.
    """

    param_low = PARAM_LOW
    param_high = PARAM_HIGH
    param_owner = PARAM_OWNER
    param_slices = PARAM_SLICES

    @property
    def name(self) -> str:
        return "HardGoal-v0"

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    def action_space(self, params: GoalParams | None = None) -> spaces.Dict:
        """Dict(discrete=Discrete(11), continuous=Box(-1, 1, (12,))): uniform samples as docs/specs/hyar_envs.md §4.4."""
        return hybrid_action_space(NUM_ACTIONS, PARAM_LOW, PARAM_HIGH)

    def param_mask(self, discrete: jax.Array) -> jax.Array:
        """bool [12]: which continuous entries the chosen discrete action reads (``PARAM_OWNER == a``)."""
        return jnp.asarray(PARAM_OWNER) == jnp.asarray(discrete)[..., None]

    def get_obs(self, state: GoalState, params: GoalParams | None = None, key: Any = None) -> jax.Array:
        if self.obs_mode == "raw":
            return self.raw_obs(state)
        s = self.features17(state)
        low = jnp.asarray(OBS_LOW_F32, self.dtype)
        rng = jnp.asarray(OBS_RANGE_F32, self.dtype)
        return 2.0 * (s - low) / rng - 1.0

    def goal_action(self, action: Any) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        """HyAR's ``pad_action`` + rescaling: ``(g, cont4, u, env_p)`` with the Goal-v0 action ``g`` in
        {0, 1, 2}, its 4-vector ``(q1, q2, s, s)`` (not yet clipped: Goal-v0 clips), ``u`` [2] and
        ``env_p`` [2] (a shoot repeats its scalar)."""
        dt = self.dtype
        a, p = _unpack_action(action)
        a = jnp.asarray(a, jnp.int32)
        p = jnp.asarray(p, dt)
        if p.shape != (NUM_PARAMS,):
            raise ValueError(f"action['continuous'] must have shape ({NUM_PARAMS},), got {p.shape}")
        region = jnp.mod(a - 1, 5)
        shot_u = p[jnp.clip(a + 1, 2, NUM_PARAMS - 1)] * jnp.asarray(REGION_SLOPE, dt)[region]
        shot_u = shot_u + jnp.asarray(REGION_OFFSET, dt)[region]
        shot_p = SHOOT_RANGE * (shot_u + 1.0) / 2.0 + SHOOT_LOW
        kick_u = p[0:2]
        kick_p = jnp.asarray(KICK_RANGE, dt) * (kick_u + 1.0) / 2.0 + jnp.asarray(KICK_LOW, dt)
        kick = a == 0
        g = jnp.where(kick, 0, jnp.where(a <= 5, 1, 2)).astype(jnp.int32)
        u = jnp.where(kick, kick_u, jnp.stack([shot_u, shot_u]))
        env_p = jnp.where(kick, kick_p, jnp.stack([shot_p, shot_p]))
        cont = jnp.concatenate([kick_p, shot_p[None], shot_p[None]])
        return g, cont, u, env_p

    def _with_mapping(self, run, action):
        g, cont, u, env_p = self.goal_action(action)
        obs, state, reward, term, info = run({"discrete": g, "continuous": cont})
        info = {
            **info,
            "success": term & (reward == SUCCESS_REWARD),
            "goal_action": g,
            "u": u,
            "env_p": env_p,
        }
        return obs, state, reward, term, info

    def step_env(
        self, key: jax.Array, state: GoalState, action: Any, params: GoalParams
    ) -> tuple[jax.Array, GoalState, jax.Array, jax.Array, dict]:
        """Keyed macro-step of Goal-v0 on the mapped action; ``info["success"]`` = scored (+50)."""
        return self._with_mapping(lambda ga: super(HardGoal, self).step_env(key, state, ga, params), action)

    def step_with_noise(
        self, state: GoalState, action: Any, params: GoalParams, noise: GoalNoise
    ) -> tuple[jax.Array, GoalState, jax.Array, jax.Array, dict]:
        """Replay of recorded draws (Goal-v0's ``step_with_noise``) on the mapped action."""
        return self._with_mapping(
            lambda ga: super(HardGoal, self).step_with_noise(state, ga, params, noise), action
        )


def make_hard_goal(name: str = "HardGoal-v0", **overrides):
    """``(env, params)`` with ``overrides`` replacing fields of the default params."""
    from balancedrl.envs.registry import with_overrides

    env = HardGoal()
    return env, with_overrides(env.default_params, overrides, name)
