"""Typed, validated training configuration.

Sections and key names follow the source project (``trainer.advantage_weighting.enable_learnable_weights``,
``trainer.gradient_scaling.gradient_norm_target``, ``trainer.entropy_regularization.*``,
``actor_critic.use_wsa``, ``actor_critic.wsa_config.*``) so a reader of the source documents finds them.

Configs load from YAML (:func:`load_config`), take ``section.key=value`` overrides (:func:`apply_overrides`),
and are checked by :func:`validate` before anything is compiled: an unknown key or an out-of-range value
raises :class:`ConfigError` naming the key, the value and what is allowed.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import warnings
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_origin, get_type_hints

import yaml

from balancedrl.networks.actor_critic import EXTRACTOR_TYPES as PTM_TYPES
from balancedrl.networks.gnn import GNN_LAYERS
from balancedrl.networks.mlp import DISCRETE_HEADS
from balancedrl.networks.wsa import FUSION_MODES


class ConfigError(ValueError):
    """A configuration key is unknown or its value is out of range."""


# Allowed ranges: (low, high, low_inclusive, high_inclusive) or a tuple of choices.
_POS = (0.0, math.inf, False, True)
_NONNEG = (0.0, math.inf, True, True)
_UNIT_OPEN = (0.0, 1.0, False, False)
_UNIT = (0.0, 1.0, True, True)
_POS_INT = (1, math.inf, True, True)
_NONNEG_INT = (0, math.inf, True, True)

NORM_REFRESH = ("minibatch", "epoch")  # trainer.balancer.norm_refresh (training/learner.py)
PARAM_PRIORS = ("none", "mpdqn")  # actor_critic.param_prior (training/adapters/parameterised.py)
ADVANTAGE_FALLBACKS = ("total", "mean")  # trainer.advantage_weighting.fallback (training/losses.py)
# trainer.advantage_weighting.mode (training/losses.py, training/meta.py)
WEIGHTING_MODES = ("softmax_attention", "meta_gradient", "fixed")
META_PARAMETERIZATIONS = ("softmax", "signed", "attention")  # = balancedrl.meta_weighting.META_PARAMETERIZATIONS
SEED_AXES = ("vmap", "map")  # run.seed_axis (trainer.make_run_chunk)


def ranged(default: Any, allowed: Any):
    """A config field with its allowed values in the field's metadata: ``(low, high, low_inclusive,
    high_inclusive)`` or a tuple of choices. :data:`RANGES` and :func:`validate` read them from there."""
    return field(default=default, metadata={"allowed": allowed})


@dataclass
class EnvConfig:
    name: str = "Durotaxis-v0"
    num_envs: int = ranged(32, _POS_INT)
    # Overrides of the environment's default params (e.g. {max_steps_in_episode: 100}).
    params: dict = field(default_factory=dict)


@dataclass
class PTMConfig:
    model_type: str = "pretrained_cnn"
    freeze: bool = True


@dataclass
class WSAConfigSection:
    embedding_dim: int = ranged(64, _POS_INT)
    context_dim: int = ranged(32, _POS_INT)
    ptms: list = field(
        default_factory=lambda: [
            PTMConfig("pretrained_cnn", True),
            PTMConfig("random_cnn", False),
            PTMConfig("gnn_token", False),
        ]
    )
    attention_temperature: float = ranged(1.0, _POS)
    fusion: str = ranged("wsa", FUSION_MODES)
    raster_size: int = ranged(24, (8, 128, True, True))


@dataclass
class ActorCriticConfig:
    hidden_dim: int = ranged(32, _POS_INT)
    num_gnn_layers: int = ranged(2, _NONNEG_INT)
    gnn_layer: str = ranged("sage", GNN_LAYERS)
    log_std_init: float = ranged(-0.5, (-10.0, 2.0, True, True))
    # "mpdqn": the parameterised-action tasks start their parameter means at MP-DQN's fixed linear prior
    # (training/adapters/parameterised.py); "none" elsewhere.
    param_prior: str = ranged("none", PARAM_PRIORS)
    # "factorised": n Bernoulli logits for 2^n joint actions (networks/mlp.py; Hard Move only)
    discrete_head: str = ranged("categorical", DISCRETE_HEADS)
    use_wsa: bool = False
    wsa_config: WSAConfigSection = field(default_factory=WSAConfigSection)


@dataclass
class AdvantageWeightingConfig:
    """How the reward components' advantages become one advantage (``mode``):

* ``softmax_attention`` (default): the source's learnable weights (softmax base weights + attention;
  ``balancedrl.weighting``), trained through the PPO surrogate. With ``enable_learnable_weights: false``
  the advantage is the ``fallback``: the ``total`` component, or the ``mean`` of the components.
* ``meta_gradient``: weights ``w(eta)`` (``meta_parameterization``: softmax | signed | attention) learned
  by the meta-gradient of the true ``total`` objective on the next minibatch, differentiated through
  the trainer's own optimizer step (``balancedrl.meta_weighting``, ``training/meta.py``); ``eta`` has its
  own learning rate ``weight_learning_rate``. ``enable_learnable_weights`` / ``fallback`` are not used.
* ``fixed``: constant weights ``fixed_weights`` (one per component, e.g. an oracle's).

Every mode z-scores the combined advantage over the learner's rows."""

    mode: str = ranged("softmax_attention", WEIGHTING_MODES)
    meta_parameterization: str = ranged("softmax", META_PARAMETERIZATIONS)
    fixed_weights: list = field(default_factory=list)  # mode fixed: one finite weight per reward component
    enable_learnable_weights: bool = True
    enable_attention_weighting: bool = True
    weight_learning_rate: float = ranged(0.01, _POS)
    weight_regularization: float = ranged(0.001, _NONNEG)
    weight_max_grad_norm: float = ranged(0.5, _POS)
    fallback: str = ranged("total", ADVANTAGE_FALLBACKS)  # used when enable_learnable_weights is false: total | mean


@dataclass
class GradientScalingConfig:
    """Adaptive gradient scaling between the discrete and continuous surrogates (the ``grad_scaling``
    balancer) and the two surrogates' base weights (normalised to sum 1 wherever they are used)."""

    enable_adaptive_scaling: bool = True
    gradient_norm_target: float = ranged(1.0, _POS)
    scaling_momentum: float = ranged(0.9, (0.0, 1.0, True, False))
    min_scaling_factor: float = ranged(0.1, _POS)
    max_scaling_factor: float = ranged(10.0, _POS)
    warmup_steps: int = ranged(20, _NONNEG_INT)  # counted in gradient-norm measurements (see trainer.balancer.norm_refresh)
    base_discrete_weight: float = ranged(0.7, _POS)
    base_continuous_weight: float = ranged(0.3, _POS)


@dataclass
class EntropyConfig:
    """Entropy schedule with collapse protection (``balancedrl.entropy``). ``entropy_decay_episodes`` is
    counted in PPO updates here."""

    enable_adaptive_entropy: bool = True
    entropy_coeff_start: float = ranged(0.02, _NONNEG)
    entropy_coeff_end: float = ranged(0.001, _NONNEG)
    entropy_decay_episodes: int = ranged(150, _POS_INT)
    entropy_coeff: float = ranged(0.01, _NONNEG)  # fixed coefficient when the schedule is off
    discrete_entropy_weight: float = ranged(1.0, _NONNEG)
    continuous_entropy_weight: float = ranged(0.05, _NONNEG)
    min_entropy_threshold: float = ranged(0.1, _NONNEG)
    penalty_scale: float = ranged(3.0, _NONNEG)


@dataclass
class RewardNormalizationConfig:
    """Two-tier reward normalisation (tier 1 running std per component, tier 2 median balancing)."""

    enable: bool = False
    clip: float = ranged(10.0, _POS)


@dataclass
class ExpertGuidanceConfig:
    """Expert guidance in PPO: expert frames with per-actor advantage normalisation and AWR imitation."""

    enable: bool = False
    expert_ratio_start: float = ranged(0.5, _UNIT)
    expert_ratio_end: float = ranged(0.0, _UNIT)
    decay_updates: int = ranged(100, _POS_INT)
    imitation_coeff: float = ranged(1.0, _NONNEG)
    awr_beta: float = ranged(1.5, _NONNEG)
    per_actor_normalization: bool = True


@dataclass
class BalancerConfig:
    """How the named losses are balanced (``balancedrl.balancers``; ``docs/architecture.md``)."""

    name: str = "grad_scaling"
    # Which losses the balancer weighs; the others keep their fixed coefficients.
    losses: list = field(default_factory=lambda: ["discrete", "continuous"])
    hyper: dict = field(default_factory=dict)  # the balancer's hyper-parameters (balancers.make)
    # "minibatch": measure per-loss gradients on every minibatch; "epoch": on the first minibatch of each
    # epoch, the others reuse the balancer's weights with one backward pass.
    norm_refresh: str = ranged("epoch", NORM_REFRESH)
    # Also measure per-loss gradient norms and cosines for balancers that need only loss values.
    log_gradients: bool = False


@dataclass
class TrainerConfig:
    total_timesteps: int = ranged(350_000, _POS_INT)
    num_steps: int = ranged(32, _POS_INT)
    update_epochs: int = ranged(4, _POS_INT)
    num_minibatches: int = ranged(4, _POS_INT)
    learning_rate: float = ranged(3e-4, _POS)
    anneal_lr: bool = True
    gamma: float = ranged(0.99, _UNIT)
    gae_lambda: float = ranged(0.95, _UNIT)
    clip_eps: float = ranged(0.2, _POS)
    vf_clip: float = ranged(10.0, _POS)
    vf_coef: float = ranged(0.5, _NONNEG)
    max_grad_norm: float = ranged(0.5, _POS)
    joint_ratio: bool = False
    advantage_weighting: AdvantageWeightingConfig = field(default_factory=AdvantageWeightingConfig)
    gradient_scaling: GradientScalingConfig = field(default_factory=GradientScalingConfig)
    entropy_regularization: EntropyConfig = field(default_factory=EntropyConfig)
    reward_normalization: RewardNormalizationConfig = field(default_factory=RewardNormalizationConfig)
    expert_guidance: ExpertGuidanceConfig = field(default_factory=ExpertGuidanceConfig)
    balancer: BalancerConfig = field(default_factory=BalancerConfig)



@dataclass
class RunConfig:
    name: str = "durotaxis_default"
    seed: int = ranged(0, _NONNEG_INT)
    num_seeds: int = ranged(1, _POS_INT)
    # "vmap": seeds side by side in one batched program; "map": one after another (jax.lax.map), for CPU
    # runs of the WSA policy, whose CNNs are slow as grouped convolutions under vmap.
    seed_axis: str = ranged("vmap", SEED_AXES)
    out_dir: str = "runs"
    chunk_updates: int = ranged(5, _POS_INT)  # updates per jitted call between progress/log/checkpoint
    checkpoint_every: int = ranged(50, _POS_INT)  # updates
    eval_episodes: int = ranged(256, _POS_INT)
    render_gif: bool = True
    # Where metrics go (training/logging.py). jsonl (metrics.jsonl) is the run's record that resume, plots
    # and eval read, so it is always in the list; tensorboard and wandb are the optional extras of the same name.
    loggers: list = field(default_factory=lambda: ["jsonl"])
    wandb_project: str = "balancedrl"


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


def _leaf_fields(cls: type, prefix: str = ""):
    """``(dotted key, field, type)`` of every non-section field of the config dataclass ``cls``, nested
    sections included."""
    hints = get_type_hints(cls)
    for f in fields(cls):
        if is_dataclass(hints[f.name]):
            yield from _leaf_fields(hints[f.name], f"{prefix}{f.name}.")
        else:
            yield prefix + f.name, f, hints[f.name]


# "section.key" -> allowed values, read from the fields' metadata (see `ranged`).
RANGES: dict[str, Any] = {k: f.metadata["allowed"] for k, f, _ in _leaf_fields(Config) if "allowed" in f.metadata}
FLOAT_KEYS: tuple[str, ...] = tuple(k for k, _, t in _leaf_fields(Config) if t is float)



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


def validate(cfg: Config) -> Config:
    """Check that every float key is finite, every ranged key, and the cross-key constraints; return
    ``cfg`` unchanged."""
    from balancedrl.envs.registry import trainable_envs

    _check_range("env.name", cfg.env.name, trainable_envs())
    for key in FLOAT_KEYS:
        value = get_key(cfg, key)
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
    _validate_balancer(t.balancer)
    _validate_loggers(cfg.run.loggers)
    _validate_weighting(t.advantage_weighting, t.balancer)
    if t.advantage_weighting.mode == "meta_gradient" and t.num_minibatches < 2:
        raise ConfigError(
            f"config key 'trainer.num_minibatches' = {t.num_minibatches} leaves no held-out minibatch for "
            "trainer.advantage_weighting.mode = 'meta_gradient'; allowed: >= 2"
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


def _validate_loggers(loggers) -> None:
    from balancedrl.training.logging import LOGGERS

    if not isinstance(loggers, list) or any(not isinstance(n, str) or n not in LOGGERS for n in loggers):
        raise ConfigError(
            f"config key 'run.loggers' = {loggers!r} is not allowed; allowed: a list of names from "
            f"{', '.join(LOGGERS)}"
        )
    if len(set(loggers)) != len(loggers):
        raise ConfigError(f"config key 'run.loggers' = {loggers!r} names a logger twice")
    if "jsonl" not in loggers:
        raise ConfigError(
            f"config key 'run.loggers' = {loggers!r} must include 'jsonl' (metrics.jsonl is the run's record: "
            "resume, plots and eval read it); e.g. [jsonl, tensorboard]"
        )


def _validate_weighting(aw, bc) -> None:
    """``fixed_weights`` is a list of finite numbers, non-empty exactly in ``fixed`` mode (its length is
    checked against the environment's components when the trainer is built); in ``meta_gradient`` mode the
    ``regularizer`` loss (the source's weight regulariser) is not balanced (it is 0 there)."""
    fw = aw.fixed_weights
    ok = isinstance(fw, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in fw)
    if not ok:
        raise ConfigError(f"config key 'trainer.advantage_weighting.fixed_weights' = {fw!r} must be a list of "
                          "finite numbers, one per reward component")
    if aw.mode == "fixed" and not fw:
        raise ConfigError("config key 'trainer.advantage_weighting.fixed_weights' = [] is empty; allowed with "
                          "mode 'fixed': one finite weight per reward component")
    if aw.mode != "fixed" and fw:
        raise ConfigError(f"config key 'trainer.advantage_weighting.fixed_weights' = {fw!r} is only used with "
                          f"trainer.advantage_weighting.mode = 'fixed' (mode is {aw.mode!r}); allowed: []")
    if aw.mode != "softmax_attention" and "regularizer" in bc.losses:
        raise ConfigError(f"config key 'trainer.balancer.losses' = {bc.losses!r} balances 'regularizer', the "
                          f"softmax_attention weights' regulariser; allowed with trainer.advantage_weighting.mode = "
                          f"{aw.mode!r}: any list without 'regularizer'")


def _validate_balancer(bc) -> None:
    from balancedrl.balancers import available
    from balancedrl.training.losses import LOSS_NAMES

    if bc.name not in available():
        raise ConfigError(
            f"config key 'trainer.balancer.name' = {bc.name!r} is not allowed; allowed: {_describe(available())}"
        )
    losses = bc.losses
    if not isinstance(losses, list) or not losses or any(n not in LOSS_NAMES for n in losses):
        raise ConfigError(
            f"config key 'trainer.balancer.losses' = {losses!r} must be a non-empty list of loss names; "
            f"allowed names: {_describe(LOSS_NAMES)}"
        )
    if len(set(losses)) != len(losses):
        raise ConfigError(f"config key 'trainer.balancer.losses' = {losses!r} names a loss twice")
    if not isinstance(bc.hyper, dict):
        raise ConfigError(f"config key 'trainer.balancer.hyper' = {bc.hyper!r} must be a mapping")
    from balancedrl.balancers.registry import unknown_hyperparameters

    unknown, allowed = unknown_hyperparameters(bc.name, bc.hyper)
    if unknown:
        raise ConfigError(
            f"config key 'trainer.balancer.hyper' names {unknown}, not hyper-parameters of balancer "
            f"{bc.name!r}; allowed: {_describe(tuple(allowed)) if allowed else 'none'}"
        )


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


# Renamed keys: old dotted name -> new dotted name. The old name still works, with a deprecation message.
ALIASES = {"trainer.gradient_scaling.norm_refresh": "trainer.balancer.norm_refresh"}


def _apply_aliases(data: dict) -> dict:
    data = copy.deepcopy(data)
    for old, new in ALIASES.items():
        *path, leaf = old.split(".")
        node = data
        for p in path:
            node = node.get(p) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            continue
        value = node.pop(leaf)
        warnings.warn(f"config key '{old}' is deprecated; use '{new}'", DeprecationWarning, stacklevel=3)
        print(f"warning: config key '{old}' is deprecated; use '{new}'", file=sys.stderr)
        *npath, nleaf = new.split(".")
        target = data
        for p in npath:
            target = target.setdefault(p, {})
        target.setdefault(nleaf, value)
    return data


def from_dict(data: dict) -> Config:
    """Build and validate a :class:`Config` from a nested mapping (unknown keys rejected, renamed keys
    accepted under their old names)."""
    return validate(_from_dict(Config, _apply_aliases(data or {}), ""))


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
