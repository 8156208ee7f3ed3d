"""Hybrid actor-critic over Durotaxis graphs, with optional WSA fusion (docs/design.md §5, the WSA source).

    tokens [M,d], g [d]   = GraphEncoder(obs)                       (jraph, gnn.py)
    rep                   = g                                        (use_wsa=False)
                          = WSAFusion([E_1..E_K], g)                 (use_wsa=True; E_i from extractors)
    per node: z_j         = tanh(Dense([tokens_j, rep]))
              logits_j    = Dense_3(z_j),  mean_j = Dense_4(z_j),
              log_std_j   = Dense_4(z_j) with bias init = log_std_init, kernel init N(0, 1e-3²)
    values [C]            = Dense_C(MLP_critic(rep))                 (one head per reward component)

Extractors (config `wsa.ptms`, a tuple of (type, freeze)): "pretrained_cnn" / "random_cnn"
(ResNetEncoder on `rasterize(obs)`; the pretrained one is loaded by `init_network`), "gnn_token"
(Dense projection of g), "token_image" (Dense([tokens_j, g]) → S×S image per node, summed over
alive nodes, then a ResNetEncoder). A frozen extractor's output goes through
`jax.lax.stop_gradient` (so its params get exactly zero gradient) and its name is listed by
`frozen_param_names` for the optax partition (`optax.set_to_zero`). Extractor i is the submodule
`extractor_{i}_{type}`.

Input: one Observation ([M, F]) or any leading batch axes ([..., M, F]); a batch is encoded as
one jraph graph batch, so batched and one-at-a-time outputs agree.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from balancedrl.networks.cnn import ResNetEncoder
from balancedrl.networks.gnn import GNN_LAYERS, GraphEncoder
from balancedrl.networks.init import orthogonal
from balancedrl.networks.pretrained import PTM_CHANNELS, PTM_EMBEDDING_DIM
from balancedrl.networks.raster import rasterize_batch
from balancedrl.networks.wsa import FUSION_MODES, WSAFusion
from balancedrl.types import NUM_COMPONENTS, NUM_CONTINUOUS, NUM_DISCRETE, Observation

EXTRACTOR_TYPES = ("pretrained_cnn", "random_cnn", "gnn_token", "token_image")
# Extractors whose output depends on the observation alone: frozen, they can be computed once per sample.
CACHEABLE = ("pretrained_cnn", "random_cnn")


def _check(cond: bool, key: str, value: Any, allowed: str) -> None:
    if not cond:
        raise ValueError(f"invalid config value {key}={value!r}; allowed: {allowed}")


@dataclasses.dataclass(frozen=True)
class WSAConfig:
    """WSA settings (the WSA source). `token_image=True` appends ("token_image", False) to `ptms` unless
    a token_image extractor is already listed. `cnn_channels`/`cnn_embedding_dim` must match the
    shipped checkpoint when "pretrained_cnn" is used."""

    embedding_dim: int = 64
    context_dim: int = 32
    ptms: tuple = (("pretrained_cnn", True), ("random_cnn", False), ("gnn_token", False))
    attention_temperature: float = 1.0
    fusion: str = "wsa"
    raster_size: int = 24
    token_image: bool = False
    cnn_channels: tuple = PTM_CHANNELS
    cnn_embedding_dim: int = PTM_EMBEDDING_DIM

    def __post_init__(self):
        object.__setattr__(self, "ptms", tuple(tuple(p) for p in self.ptms))
        object.__setattr__(self, "cnn_channels", tuple(self.cnn_channels))
        _check(
            isinstance(self.embedding_dim, int) and self.embedding_dim >= 1,
            "wsa.embedding_dim",
            self.embedding_dim,
            "integer >= 1",
        )
        _check(
            isinstance(self.context_dim, int) and self.context_dim >= 1,
            "wsa.context_dim",
            self.context_dim,
            "integer >= 1",
        )
        _check(
            self.attention_temperature > 0,
            "wsa.attention_temperature",
            self.attention_temperature,
            "float > 0",
        )
        _check(self.fusion in FUSION_MODES, "wsa.fusion", self.fusion, f"one of {FUSION_MODES}")
        _check(
            isinstance(self.raster_size, int) and self.raster_size >= 4,
            "wsa.raster_size",
            self.raster_size,
            "integer >= 4",
        )
        _check(
            len(self.cnn_channels) >= 1 and all(int(c) >= 1 for c in self.cnn_channels),
            "wsa.cnn_channels",
            self.cnn_channels,
            "non-empty tuple of integers >= 1",
        )
        _check(self.cnn_embedding_dim >= 1, "wsa.cnn_embedding_dim", self.cnn_embedding_dim, "integer >= 1")
        for i, p in enumerate(self.ptms):
            _check(
                len(p) == 2 and isinstance(p[1], bool),
                f"wsa.ptms[{i}]",
                p,
                "a pair (extractor_type, freeze: bool)",
            )
            _check(p[0] in EXTRACTOR_TYPES, f"wsa.ptms[{i}][0]", p[0], f"one of {EXTRACTOR_TYPES}")
        if self.token_image and not any(p[0] == "token_image" for p in self.ptms):
            object.__setattr__(self, "ptms", self.ptms + (("token_image", False),))
        _check(len(self.ptms) >= 1, "wsa.ptms", self.ptms, "at least one (extractor_type, freeze) pair")


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """Network settings (docs/design.md §5)."""

    hidden_dim: int = 64
    num_gnn_layers: int = 2
    num_components: int = NUM_COMPONENTS
    log_std_init: float = -0.5
    # The raw Gaussian's entropy grows without bound in log_std while the tanh-squashed action only
    # saturates, so an entropy bonus can push log_std up for ever (seen in training: continuous entropy
    # 3.7 -> 39 in 200 updates). Clamp it; a raw std of exp(0.5) = 1.65 already spreads the squashed
    # action over its whole range.
    log_std_min: float = -5.0
    log_std_max: float = 0.5
    use_wsa: bool = False
    wsa: WSAConfig = WSAConfig()
    num_heads: int = 4
    gnn_layer: str = "sage"

    def __post_init__(self):
        if isinstance(self.wsa, dict):
            object.__setattr__(self, "wsa", WSAConfig(**self.wsa))
        _check(
            isinstance(self.hidden_dim, int) and self.hidden_dim >= 1,
            "hidden_dim",
            self.hidden_dim,
            "integer >= 1",
        )
        _check(
            isinstance(self.num_heads, int) and self.num_heads >= 1 and self.hidden_dim % self.num_heads == 0,
            "num_heads",
            self.num_heads,
            f"integer >= 1 dividing hidden_dim={self.hidden_dim}",
        )
        _check(
            isinstance(self.num_gnn_layers, int) and self.num_gnn_layers >= 0,
            "num_gnn_layers",
            self.num_gnn_layers,
            "integer >= 0",
        )
        _check(
            isinstance(self.num_components, int) and self.num_components >= 1,
            "num_components",
            self.num_components,
            "integer >= 1",
        )
        _check(
            np.isfinite(self.log_std_init) and -10.0 <= self.log_std_init <= 2.0,
            "log_std_init",
            self.log_std_init,
            "finite float in [-10, 2]",
        )
        _check(self.gnn_layer in GNN_LAYERS, "gnn_layer", self.gnn_layer, f"one of {GNN_LAYERS}")
        _check(isinstance(self.wsa, WSAConfig), "wsa", self.wsa, "a WSAConfig (or dict of its fields)")
        _check(
            self.log_std_min <= self.log_std_init <= self.log_std_max,
            "log_std_init",
            self.log_std_init,
            f"a value in [log_std_min, log_std_max] = [{self.log_std_min}, {self.log_std_max}]",
        )

    @classmethod
    def from_dict(cls, d: dict) -> NetworkConfig:
        """Build from a plain dict (e.g. YAML); unknown keys raise ValueError naming them."""
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(d) - known)
        if bad:
            raise ValueError(f"unknown network config key(s) {bad}; allowed: {sorted(known)}")
        if isinstance(d.get("wsa"), dict):
            wknown = {f.name for f in dataclasses.fields(WSAConfig)}
            wbad = sorted(set(d["wsa"]) - wknown)
            if wbad:
                raise ValueError(f"unknown wsa config key(s) {wbad}; allowed: {sorted(wknown)}")
            d["wsa"] = WSAConfig(**d["wsa"])
        return cls(**d)


class PolicyOutput(NamedTuple):
    """Network outputs; leading axes follow the observation's."""

    discrete_logits: jax.Array  # [..., M, 3]
    cont_mean: jax.Array  # [..., M, 4]  raw (pre-squash) Gaussian mean
    cont_log_std: jax.Array  # [..., M, 4]
    values: jax.Array  # [..., C]
    wsa_weights: jax.Array  # [..., K], K = 0 when WSA is off


def extractor_names(config: NetworkConfig) -> tuple[str, ...]:
    """Submodule names of the WSA extractors, e.g. 'extractor_0_pretrained_cnn' (empty if WSA off)."""
    if not config.use_wsa:
        return ()
    return tuple(f"extractor_{i}_{kind}" for i, (kind, _) in enumerate(config.wsa.ptms))


def frozen_param_names(config: NetworkConfig) -> tuple[str, ...]:
    """Names (substrings of parameter paths) of frozen extractors: give them optax.set_to_zero."""
    if not config.use_wsa:
        return ()
    return tuple(n for n, (_, frz) in zip(extractor_names(config), config.wsa.ptms, strict=False) if frz)


def frozen_mask(params: Any, config: NetworkConfig) -> Any:
    """Pytree of bools like `params`: True for leaves under a frozen extractor."""
    names = frozen_param_names(config)

    def is_frozen(path, _):
        return any(jax.tree_util.keystr(path).find(f"'{n}'") >= 0 for n in names)

    return jax.tree_util.tree_map_with_path(is_frozen, params)


def count_params(variables: Any) -> int:
    """Total number of scalars in a pytree of arrays (e.g. `variables` or `variables['params']`)."""
    return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(variables)))


class TokenImageExtractor(nn.Module):
    """The WSA source's token image: img = Σ_{alive j} reshape(Dense(S²)([tokens_j, g]), S×S), then CNN."""

    size: int = 24
    channels: tuple = PTM_CHANNELS
    embedding_dim: int = PTM_EMBEDDING_DIM

    @nn.compact
    def __call__(self, tokens, graph_token, mask):
        g = jnp.broadcast_to(graph_token[..., None, :], tokens.shape[:-1] + graph_token.shape[-1:])
        pix = nn.Dense(self.size * self.size, name="to_image")(jnp.concatenate([tokens, g], -1))
        img = jnp.sum(pix * mask[..., None], axis=-2).reshape(tokens.shape[:-2] + (self.size, self.size, 1))
        return ResNetEncoder(self.channels, self.embedding_dim, name="cnn")(img)


class HybridActorCritic(nn.Module):
    """Hybrid actor-critic (module docstring). `apply(variables, obs) -> PolicyOutput`."""

    config: NetworkConfig = NetworkConfig()

    @nn.compact
    def __call__(self, obs: Observation, frozen=None, only_frozen: bool = False) -> PolicyOutput:
        """``only_frozen=True``: return only the cacheable embeddings ``[..., D]`` (the frozen CNNs',
        concatenated; :func:`cached_width` gives ``D``), to store per rollout step. ``frozen``: those
        embeddings for the same observations, used instead of running the frozen CNNs again."""
        cfg = self.config
        if obs.nodes.ndim < 2:
            raise ValueError(f"obs.nodes must have shape [..., M, F], got {obs.nodes.shape}")
        lead = obs.nodes.shape[:-2]
        m, f = obs.nodes.shape[-2:]
        b = int(np.prod(lead)) if lead else 1
        flat = Observation(
            nodes=jnp.asarray(obs.nodes, jnp.float32).reshape(b, m, f),
            mask=jnp.asarray(obs.mask, bool).reshape(b, m),
            parent=jnp.asarray(obs.parent, jnp.int32).reshape(b, m),
            globals=jnp.asarray(obs.globals, jnp.float32).reshape(b, -1),
        )
        if only_frozen:
            return self._cacheable(flat).reshape(lead + (-1,))
        if frozen is not None:
            frozen = jnp.asarray(frozen, jnp.float32).reshape(b, -1)
        tokens, g = GraphEncoder(
            cfg.hidden_dim, cfg.num_gnn_layers, cfg.num_heads, cfg.gnn_layer, name="gnn"
        )(flat)
        if cfg.use_wsa:
            rep, weights = self._fuse(flat, tokens, g, frozen)
        else:
            rep, weights = g, jnp.zeros((b, 0), jnp.float32)

        h = cfg.hidden_dim
        ortho = orthogonal  # no LAPACK QR: see networks/init.py
        # Dense([tokens_j, rep]) computed as Dense(tokens_j) + Dense(rep): the graph-level half
        # once per graph instead of once per node (same function, half the per-node FLOPs).
        z = nn.Dense(h, kernel_init=ortho(np.sqrt(2)), name="actor_fc_node")(tokens)
        z = (
            z
            + nn.Dense(h, use_bias=False, kernel_init=ortho(np.sqrt(2)), name="actor_fc_graph")(rep)[:, None]
        )
        z = nn.tanh(z)
        logits = nn.Dense(NUM_DISCRETE, kernel_init=ortho(0.01), name="discrete_head")(z)
        mean = nn.Dense(NUM_CONTINUOUS, kernel_init=ortho(0.01), name="mean_head")(z)
        log_std = nn.Dense(
            NUM_CONTINUOUS,
            kernel_init=nn.initializers.normal(1e-3),
            bias_init=nn.initializers.constant(cfg.log_std_init),
            name="log_std_head",
        )(z)
        log_std = jnp.clip(log_std, cfg.log_std_min, cfg.log_std_max)
        c = nn.tanh(nn.Dense(h, kernel_init=ortho(np.sqrt(2)), name="critic_fc1")(rep))
        c = nn.tanh(nn.Dense(h, kernel_init=ortho(np.sqrt(2)), name="critic_fc2")(c))
        values = nn.Dense(cfg.num_components, kernel_init=ortho(1.0), name="value_head")(c)

        def unflat(x, tail):
            return x.reshape(lead + tail)

        return PolicyOutput(
            discrete_logits=unflat(logits, (m, NUM_DISCRETE)),
            cont_mean=unflat(mean, (m, NUM_CONTINUOUS)),
            cont_log_std=unflat(log_std, (m, NUM_CONTINUOUS)),
            values=unflat(values, (cfg.num_components,)),
            wsa_weights=unflat(weights, (weights.shape[-1],)),
        )

    def _cacheable(self, flat: Observation):
        """``[B, D]``: the cacheable extractors' embeddings, concatenated in ``ptms`` order."""
        w = self.config.wsa
        raster = rasterize_batch(flat, w.raster_size)
        embs = [
            ResNetEncoder(w.cnn_channels, w.cnn_embedding_dim, name=name)(raster)
            for name, (kind, freeze) in zip(extractor_names(self.config), w.ptms, strict=False)
            if freeze and kind in CACHEABLE
        ]
        if not embs:
            return jnp.zeros((flat.nodes.shape[0], 0), jnp.float32)
        return jax.lax.stop_gradient(jnp.concatenate(embs, -1))

    def _fuse(self, flat: Observation, tokens, g, frozen=None):
        w = self.config.wsa
        names = extractor_names(self.config)
        raster = None
        embs = []
        offset = 0
        for name, (kind, freeze) in zip(names, w.ptms, strict=False):
            if frozen is not None and freeze and kind in CACHEABLE:
                embs.append(frozen[:, offset : offset + w.cnn_embedding_dim])
                offset += w.cnn_embedding_dim
                continue
            if kind in ("pretrained_cnn", "random_cnn"):
                if raster is None:
                    raster = rasterize_batch(flat, w.raster_size)
                e = ResNetEncoder(w.cnn_channels, w.cnn_embedding_dim, name=name)(raster)
            elif kind == "gnn_token":
                e = nn.Dense(w.embedding_dim, name=name)(g)
            else:  # token_image
                e = TokenImageExtractor(w.raster_size, w.cnn_channels, w.cnn_embedding_dim, name=name)(
                    tokens, g, flat.mask
                )
            embs.append(jax.lax.stop_gradient(e) if freeze else e)
        return WSAFusion(w.embedding_dim, w.context_dim, w.attention_temperature, w.fusion, name="wsa")(
            embs, g
        )


def cached_width(config: NetworkConfig) -> int:
    """Width ``D`` of the cacheable embeddings (``only_frozen=True``); 0 when there is nothing to cache."""
    if not config.use_wsa:
        return 0
    return sum(config.wsa.cnn_embedding_dim for kind, frz in config.wsa.ptms if frz and kind in CACHEABLE)


def init_network(
    config: NetworkConfig,
    key: jax.Array,
    obs: Observation,
    ptm_path: str | None = None,
    variables: dict | None = None,
) -> dict:
    """Initialise `HybridActorCritic(config)` (unless `variables` are given) and load the
    pre-trained checkpoint (default: the shipped one) into every "pretrained_cnn" extractor.
    Returns the variables dict."""
    from balancedrl.networks.pretrained import insert_pretrained, load_ptm

    if variables is None:
        variables = jax.jit(HybridActorCritic(config).init)(key, obs)
    ptm = None
    for name, (kind, _) in zip(
        extractor_names(config), config.wsa.ptms if config.use_wsa else (), strict=False
    ):
        if kind == "pretrained_cnn":
            if ptm is None:
                ptm = load_ptm(ptm_path, like=variables["params"][name])
            variables = insert_pretrained(variables, ptm, name)
    return variables
