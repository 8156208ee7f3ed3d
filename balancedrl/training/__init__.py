"""Training system: config, the jitted hybrid PPO, the host loop with checkpoints, evaluation and plots."""

from balancedrl.training.config import Config, ConfigError, load_config
from balancedrl.training.trainer import RunnerState, Trainer, make_run_chunk, make_train

__all__ = ["Config", "ConfigError", "RunnerState", "Trainer", "load_config", "make_run_chunk", "make_train"]
