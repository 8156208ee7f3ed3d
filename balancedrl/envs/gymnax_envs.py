"""Environments from gymnax (Lange 2022), used as they are: ``gymnax.make(name)`` with overrides; and
:class:`FlatObservation`, the view of one the MLP trainer takes.

Which gymnax environments are registered (:data:`GYMNAX_ENVS`) and which are not (:data:`GYMNAX_SKIPPED`,
with the reason) is decided here; ``tests/test_gymnax_adapters.py`` checks that the two together are
exactly gymnax's own list, so a gymnax release that adds an environment fails the test until it is sorted.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

__all__ = ["GYMNAX_ENVS", "GYMNAX_SKIPPED", "FlatObservation", "make_gymnax_env"]

# Every gymnax 1.0 environment whose observation is one fixed-shape Box and whose action space is
# Discrete or Box: vectors as they are, images (MinAtar 10x10xC, Catch 10x5, DeepSea 8x8, Pong 30x40x3)
# flattened by FlatObservation.
GYMNAX_ENVS = (
    "CartPole-v1",
    "Pendulum-v1",
    "Acrobot-v1",
    "MountainCar-v0",
    "MountainCarContinuous-v0",
    "Asterix-MinAtar",
    "Breakout-MinAtar",
    "Freeway-MinAtar",
    "Seaquest-MinAtar",
    "SpaceInvaders-MinAtar",
    "Catch-bsuite",
    "DeepSea-bsuite",
    "MemoryChain-bsuite",
    "UmbrellaChain-bsuite",
    "DiscountingChain-bsuite",
    "SimpleBandit-bsuite",
    "FourRooms-misc",
    "MetaMaze-misc",
    "PointRobot-misc",
    "BernoulliBandit-misc",
    "GaussianBandit-misc",
    "Reacher-misc",
    "Swimmer-misc",
    "Pong-misc",
)

GYMNAX_SKIPPED = {
    "MNISTBandit-bsuite": "gymnax.make downloads MNIST from the internet when the environment is built",
    "FrozenLake-misc": "its observation is a Discrete state index, not a Box (one-hot it to train it)",
}


def make_gymnax_env(name: str, **overrides):
    """``(env, params)`` from ``gymnax.make(name)``, ``overrides`` replacing fields of its default params."""
    import gymnax

    from balancedrl.envs.registry import with_overrides

    env, params = gymnax.make(name)
    return env, with_overrides(params, overrides, name)


class FlatObservation:
    """A gymnax environment whose observations (and ``info["final_observation"]``) are reshaped to one
    float32 vector ``[prod(shape)]``, row-major (MinAtar's ``[10, 10, C]`` booleans become ``[100 C]``
    floats); everything else is the wrapped environment's. A pure reshape: no information is lost, and the
    MLP sees what a flattening first layer would."""

    def __init__(self, env):
        self._env = env

    def __getattr__(self, name):
        return getattr(self._env, name)

    @property
    def unwrapped(self):
        return self._env

    @staticmethod
    def _flat(obs):
        return jnp.reshape(obs, (-1,)).astype(jnp.float32)

    def observation_space(self, params):
        from gymnax.environments import spaces

        box = self._env.observation_space(params)
        size = int(np.prod(box.shape))
        low = np.broadcast_to(np.asarray(box.low, np.float32), box.shape).reshape(size)
        high = np.broadcast_to(np.asarray(box.high, np.float32), box.shape).reshape(size)
        return spaces.Box(low, high, (size,), jnp.float32)

    def reset(self, key, params=None):
        obs, state = self._env.reset(key, params)
        return self._flat(obs), state

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        info = {**info, "final_observation": self._flat(info["final_observation"])}
        return self._flat(obs), state, reward, terminated, truncated, info
