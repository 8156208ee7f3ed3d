"""Typed, validated training configuration.

Sections and key names follow the seeds (``trainer.advantage_weighting.enable_learnable_weights``,
``trainer.gradient_scaling.gradient_norm_target``, ``trainer.entropy_regularization.*``,
``actor_critic.use_wsa``, ``actor_critic.wsa_config.*``) so a reader of the seeds finds them.

Configs load from YAML (:func:`load_config`), take ``section.key=value`` overrides (:func:`apply_overrides`),
and are checked by :func:`validate` before anything is compiled: an unknown key or an out-of-range value
raises :class:`ConfigError` naming the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_origin, get_type_hints

import yaml


class ConfigError(ValueError):
    """A configuration key is unknown or its value is out of range."""


@dataclass
class EnvConfig:
    name: str = "Durotaxis-v0"
    num_envs: int = 32
    # Overrides of the environment's default params (e.g. {max_steps_in_episode: 100}).
    params: dict = field(default_factory=dict)


@dataclass
class PTMConfig:
    model_type: str = "pretrained_cnn"
    freeze: bool = True


@dataclass
class WSAConfigSection:
    embedding_dim: int = 64
    context_dim: int = 32
    ptms: list = field(
        default_factory=lambda: [
            PTMConfig("pretrained_cnn", True),
            PTMConfig("random_cnn", False),
            PTMConfig("gnn_token", False),
        ]
    )
    attention_temperature: float = 1.0
    fusion: str = "wsa"
    raster_size: int = 24


@dataclass
class ActorCriticConfig:
    hidden_dim: int = 64
    num_gnn_layers: int = 2
    gnn_layer: str = "sage"
    log_std_init: float = -0.5
    # "mpdqn": the parameterised-action tasks start their parameter means at MP-DQN's fixed linear prior
    # (training/hybrid_adapters.py); "none" elsewhere.
    param_prior: str = "none"
    use_wsa: bool = False
    wsa_config: WSAConfigSection = field(default_factory=WSAConfigSection)


@dataclass
class AdvantageWeightingConfig:
    """Seed 000. ``mode`` picks how component advantages become one advantage:
    ``learnable`` (softmax + attention weighting), ``total`` (the `total` component only), ``mean``."""

    enable_learnable_weights: bool = True
    enable_attention_weighting: bool = True
    weight_learning_rate: float = 0.01
    weight_regularization: float = 0.001
    weight_max_grad_norm: float = 0.5
    fallback: str = "total"  # used when enable_learnable_weights is false: total | mean


@dataclass
class GradientScalingConfig:
    """Seed 001."""

    enable_adaptive_scaling: bool = True
    gradient_norm_target: float = 1.0
    scaling_momentum: float = 0.9
    min_scaling_factor: float = 0.1
    max_scaling_factor: float = 10.0
    warmup_steps: int = 100  # counted in gradient-norm measurements (see norm_refresh)
    # "minibatch": measure per-loss gradient norms on every minibatch (the seed); "epoch": on the first
    # minibatch of each epoch, the other minibatches reuse the EMA weights with one backward pass.
    norm_refresh: str = "minibatch"
    base_discrete_weight: float = 0.7
    base_continuous_weight: float = 0.3


@dataclass
class EntropyConfig:
    """Seed 004. ``entropy_decay_episodes`` is counted in PPO updates here (documented in the README)."""

    enable_adaptive_entropy: bool = True
    entropy_coeff_start: float = 0.1
    entropy_coeff_end: float = 0.001
    entropy_decay_episodes: int = 500
    entropy_coeff: float = 0.01  # fixed coefficient when the schedule is off
    discrete_entropy_weight: float = 1.0
    continuous_entropy_weight: float = 0.5
    min_entropy_threshold: float = 0.1
    penalty_scale: float = 3.0


@dataclass
class RewardNormalizationConfig:
    """Two-tier reward normalisation (tier 1 running std per component, tier 2 median balancing)."""

    enable: bool = False
    clip: float = 10.0


@dataclass
class ExpertGuidanceConfig:
    """Seed 003 in PPO: expert frames with per-actor advantage normalisation and AWR imitation."""

    enable: bool = False
    expert_ratio_start: float = 0.5
    expert_ratio_end: float = 0.0
    decay_updates: int = 100
    imitation_coeff: float = 1.0
    awr_beta: float = 1.5
    per_actor_normalization: bool = True


@dataclass
class TrainerConfig:
    total_timesteps: int = 400_000
    num_steps: int = 64
    update_epochs: int = 4
    num_minibatches: int = 4
    learning_rate: float = 3e-4
    anneal_lr: bool = True
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    vf_clip: float = 0.2
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    joint_ratio: bool = False
    advantage_weighting: AdvantageWeightingConfig = field(default_factory=AdvantageWeightingConfig)
    gradient_scaling: GradientScalingConfig = field(default_factory=GradientScalingConfig)
    entropy_regularization: EntropyConfig = field(default_factory=EntropyConfig)
    reward_normalization: RewardNormalizationConfig = field(default_factory=RewardNormalizationConfig)
    expert_guidance: ExpertGuidanceConfig = field(default_factory=ExpertGuidanceConfig)


# How the seeds of a run are laid out (run.seed_axis; trainer.make_run_chunk).
SEED_AXES = ("vmap", "map")


@dataclass
class RunConfig:
    name: str = "durotaxis_default"
    seed: int = 0
    num_seeds: int = 1
    # "vmap": seeds side by side in one batched program; "map": one after another (jax.lax.map), for CPU
    # runs of the WSA policy, whose CNNs are slow as grouped convolutions under vmap.
    seed_axis: str = "vmap"
    out_dir: str = "runs"
    chunk_updates: int = 10  # updates per jitted call between progress/log/checkpoint
    checkpoint_every: int = 50  # updates
    eval_episodes: int = 256
    render_gif: bool = True


@dataclass
class Config:
    env: EnvConfig = field(default_factory=EnvConfig)
    actor_critic: ActorCriticConfig = field(default_factory=ActorCriticConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    run: RunConfig = field(default_factory=RunConfig)

    # Derived sizes -------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return self.env.num_envs * self.trainer.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.trainer.num_minibatches

    @property
    def num_updates(self) -> int:
        return max(1, self.trainer.total_timesteps // self.batch_size)


# Allowed ranges: (low, high, low_inclusive, high_inclusive) or a tuple of choices.
_POS = (0.0, math.inf, False, True)
_NONNEG = (0.0, math.inf, True, True)
_UNIT_OPEN = (0.0, 1.0, False, False)
_UNIT = (0.0, 1.0, True, True)
_POS_INT = (1, math.inf, True, True)
_NONNEG_INT = (0, math.inf, True, True)

RANGES: dict[str, Any] = {
    "env.name": ("Durotaxis-v0", "Platform-v0", "Goal-v0", "CartPole-v1", "Pendulum-v1"),
    "env.num_envs": _POS_INT,
    "actor_critic.hidden_dim": _POS_INT,
    "actor_critic.num_gnn_layers": _NONNEG_INT,
    "actor_critic.gnn_layer": ("sage", "mpnn", "attention"),
    "actor_critic.log_std_init": (-10.0, 2.0, True, True),
    "actor_critic.param_prior": ("none", "mpdqn"),
    "actor_critic.wsa_config.embedding_dim": _POS_INT,
    "actor_critic.wsa_config.context_dim": _POS_INT,
    "actor_critic.wsa_config.attention_temperature": _POS,
    "actor_critic.wsa_config.fusion": ("wsa", "concat", "mean"),
    "actor_critic.wsa_config.raster_size": (8, 128, True, True),
    "trainer.total_timesteps": _POS_INT,
    "trainer.num_steps": _POS_INT,
    "trainer.update_epochs": _POS_INT,
    "trainer.num_minibatches": _POS_INT,
    "trainer.learning_rate": _POS,
    "trainer.gamma": _UNIT,
    "trainer.gae_lambda": _UNIT,
    "trainer.clip_eps": _POS,
    "trainer.vf_clip": _POS,
    "trainer.vf_coef": _NONNEG,
    "trainer.max_grad_norm": _POS,
    "trainer.advantage_weighting.weight_learning_rate": _POS,
    "trainer.advantage_weighting.weight_regularization": _NONNEG,
    "trainer.advantage_weighting.weight_max_grad_norm": _POS,
    "trainer.advantage_weighting.fallback": ("total", "mean"),
    "trainer.gradient_scaling.gradient_norm_target": _POS,
    "trainer.gradient_scaling.scaling_momentum": (0.0, 1.0, True, False),
    "trainer.gradient_scaling.min_scaling_factor": _POS,
    "trainer.gradient_scaling.max_scaling_factor": _POS,
    "trainer.gradient_scaling.warmup_steps": _NONNEG_INT,
    "trainer.gradient_scaling.norm_refresh": ("minibatch", "epoch"),
    "trainer.gradient_scaling.base_discrete_weight": _POS,
    "trainer.gradient_scaling.base_continuous_weight": _POS,
    "trainer.entropy_regularization.entropy_coeff_start": _NONNEG,
    "trainer.entropy_regularization.entropy_coeff_end": _NONNEG,
    "trainer.entropy_regularization.entropy_decay_episodes": _POS_INT,
    "trainer.entropy_regularization.entropy_coeff": _NONNEG,
    "trainer.entropy_regularization.discrete_entropy_weight": _NONNEG,
    "trainer.entropy_regularization.continuous_entropy_weight": _NONNEG,
    "trainer.entropy_regularization.min_entropy_threshold": _NONNEG,
    "trainer.entropy_regularization.penalty_scale": _NONNEG,
    "trainer.reward_normalization.clip": _POS,
    "trainer.expert_guidance.expert_ratio_start": _UNIT,
    "trainer.expert_guidance.expert_ratio_end": _UNIT,
    "trainer.expert_guidance.decay_updates": _POS_INT,
    "trainer.expert_guidance.imitation_coeff": _NONNEG,
    "trainer.expert_guidance.awr_beta": _NONNEG,
    "run.num_seeds": _POS_INT,
    "run.seed_axis": SEED_AXES,
    "run.chunk_updates": _POS_INT,
    "run.checkpoint_every": _POS_INT,
    "run.eval_episodes": _POS_INT,
    "run.seed": _NONNEG_INT,
}

PTM_TYPES = ("pretrained_cnn", "random_cnn", "gnn_token", "token_image")


def _describe(rng: Any) -> str:
    if isinstance(rng, tuple) and len(rng) == 4 and not isinstance(rng[0], str):
        lo, hi, lo_inc, hi_inc = rng
        return f"{'[' if lo_inc else '('}{lo}, {hi}{']' if hi_inc else ')'}"
    return "one of " + ", ".join(repr(c) for c in rng)


def _check_range(key: str, value: Any, rng: Any) -> None:
    if isinstance(rng, tuple) and len(rng) == 4 and not isinstance(rng[0], str):
        lo, hi, lo_inc, hi_inc = rng
        ok_lo = value >= lo if lo_inc else value > lo
        ok_hi = value <= hi if hi_inc else value < hi
        if not (ok_lo and ok_hi) or (isinstance(value, float) and math.isnan(value)):
            raise ConfigError(f"config key '{key}' = {value!r} is out of range; allowed: {_describe(rng)}")
    elif value not in rng:
        raise ConfigError(f"config key '{key}' = {value!r} is not allowed; allowed: {_describe(rng)}")


def _float_keys(node: Any, prefix: str = ""):
    """``(dotted key, value)`` of every float-typed field, nested sections included."""
    hints = _hints(type(node))
    for f in fields(node):
        v = getattr(node, f.name)
        if is_dataclass(v):
            yield from _float_keys(v, f"{prefix}{f.name}.")
        elif hints.get(f.name) is float:
            yield f"{prefix}{f.name}", v


def validate(cfg: Config) -> Config:
    """Check that every float key is finite, every ranged key, and the cross-key constraints; return
    ``cfg`` unchanged."""
    for key, value in _float_keys(cfg):
        if not (isinstance(value, (int, float)) and math.isfinite(value)):
            raise ConfigError(f"config key '{key}' = {value!r} is not allowed; allowed: a finite number")
    for key, rng in RANGES.items():
        _check_range(key, get_key(cfg, key), rng)
    t = cfg.trainer
    if t.total_timesteps < cfg.batch_size:
        raise ConfigError(
            f"config key 'trainer.total_timesteps' = {t.total_timesteps} is below one update; allowed: >= "
            f"env.num_envs * trainer.num_steps = {cfg.batch_size}"
        )
    if cfg.batch_size % t.num_minibatches:
        raise ConfigError(
            f"config key 'trainer.num_minibatches' = {t.num_minibatches} must divide env.num_envs * "
            f"trainer.num_steps = {cfg.batch_size}"
        )
    gs = t.gradient_scaling
    if gs.min_scaling_factor > gs.max_scaling_factor:
        raise ConfigError(
            f"config key 'trainer.gradient_scaling.min_scaling_factor' = {gs.min_scaling_factor} must be <= "
            f"max_scaling_factor = {gs.max_scaling_factor}"
        )
    ptms = cfg.actor_critic.wsa_config.ptms
    if cfg.actor_critic.use_wsa and not ptms:
        raise ConfigError(
            "config key 'actor_critic.wsa_config.ptms' is empty; allowed: a list of >= 1 extractors"
        )
    for i, p in enumerate(ptms):
        if p.model_type not in PTM_TYPES:
            raise ConfigError(
                f"config key 'actor_critic.wsa_config.ptms[{i}].model_type' = {p.model_type!r} is not allowed; "
                f"allowed: {_describe(PTM_TYPES)}"
            )
    if not isinstance(cfg.env.params, dict):
        raise ConfigError(
            f"config key 'env.params' = {cfg.env.params!r} must be a mapping of env param overrides"
        )
    return cfg


# ------------------------------------------------------------------------------------------------
# dict / YAML conversion


def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _from_dict(cls: type, data: dict, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(
            f"config section '{prefix.rstrip('.') or '<root>'}' must be a mapping, got {data!r}"
        )
    known = {f.name: f for f in fields(cls)}
    hints = _hints(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(
                f"unknown config key '{prefix}{key}'; allowed keys in this section: {', '.join(sorted(known))}"
            )
        kwargs[key] = _coerce(hints[key], value, f"{prefix}{key}")
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, key: str) -> Any:
    if is_dataclass(tp):
        return _from_dict(tp, value, key + ".")
    if key.endswith("wsa_config.ptms"):
        if not isinstance(value, list):
            raise ConfigError(f"config key '{key}' = {value!r} must be a list of {{model_type, freeze}}")
        return [
            p if isinstance(p, PTMConfig) else _from_dict(PTMConfig, p, f"{key}[{i}].")
            for i, p in enumerate(value)
        ]
    origin = get_origin(tp) or tp
    if origin is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        raise ConfigError(f"config key '{key}' = {value!r} must be a boolean (true/false)")
    if origin is int:
        if isinstance(value, str):
            try:
                value = float(value)  # accepts "4e5"
            except ValueError:
                _bad(key, value, "an integer")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
            _bad(key, value, "an integer")
        return int(value)
    if origin is float:
        if isinstance(value, bool):
            _bad(key, value, "a number")
        try:
            return float(value)
        except (TypeError, ValueError):
            _bad(key, value, "a number")
    if origin is str:
        if not isinstance(value, str):
            _bad(key, value, "a string")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            _bad(key, value, "a mapping")
        return dict(value)
    return value


def _bad(key: str, value: Any, what: str):
    raise ConfigError(f"config key '{key}' = {value!r} must be {what}")


def from_dict(data: dict) -> Config:
    """Build and validate a :class:`Config` from a nested mapping (unknown keys rejected)."""
    return validate(_from_dict(Config, data or {}, ""))


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load YAML (or defaults when ``path`` is None), apply ``key=value`` overrides, validate."""
    data: dict = _read_yaml(Path(path)) if path is not None else {}
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: the value is not valid YAML ({_yaml_problem(e)})") from e
        _set_nested(data, key.strip(), value)
    return from_dict(data)


def _read_yaml(path: Path, seen: tuple = ()) -> dict:
    """Read a YAML config; a top-level ``extends: other.yaml`` (relative to this file) is loaded first and
    deep-merged under this file's keys (presets extend ``default.yaml``)."""
    if not path.is_file():
        raise ConfigError(f"config file '{path}' does not exist")
    if path.resolve() in seen:
        raise ConfigError(f"config file '{path}' extends itself (cycle: {' -> '.join(map(str, seen))})")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"config file '{path}' is not valid YAML: {_yaml_problem(e)}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file '{path}' cannot be read: {e}") from e
    if data is None:
        raise ConfigError(
            f"config file '{path}' is empty; it would train the built-in defaults (a "
            f"{TrainerConfig().total_timesteps:,}-step {EnvConfig().name} run): "
            "write the keys you mean, or omit --config to train the defaults deliberately"
        )
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{path}' must contain a mapping, got {type(data).__name__}")
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(
            f"config file '{path}': 'extends' = {parent!r} must be one file name (a string), relative to this file"
        )
    return _deep_merge(_read_yaml(path.parent / parent, seen + (path.resolve(),)), data)


def _yaml_problem(e: Exception) -> str:
    mark = getattr(e, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return where + " ".join(str(getattr(e, "problem", None) or e).split())


def _deep_merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for k, v in top.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _set_nested(data: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override key '{dotted}': '{p}' is not a section")
    node[parts[-1]] = value


def get_key(cfg: Any, dotted: str) -> Any:
    node = cfg
    for p in dotted.split("."):
        node = getattr(node, p)
    return node


def replace_key(cfg: Config, dotted: str, value: Any) -> Config:
    """Return a validated copy of ``cfg`` with one dotted key replaced."""
    data = to_dict(cfg)
    _set_nested(data, dotted, value)
    return from_dict(data)
