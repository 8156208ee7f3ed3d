"""Weight Sharing Attention (WSA) fusion of several feature extractors (the WSA source).

Given K embeddings E_i (any widths, leading batch axes allowed) and a state vector g (the GNN
graph token):
    C     = Dense_context(g)                          [..., context_dim]
    Ê_i   = Dense_i(E_i)                              [..., embedding_dim]  (one projection per model)
    s_i   = MLP_shared([C, Ê_i])                      (ONE scoring MLP for every i — weight sharing)
    w     = softmax_i(s_i / temperature)              per sample, over the K models
    R     = Σ_i w_i Ê_i
Ablation modes: "concat" R = Dense(concat_i Ê_i), "mean" R = mean_i Ê_i; both return uniform
weights 1/K (there is no attention to report). Works for any K ≥ 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

FUSION_MODES = ("wsa", "concat", "mean")


class WSAFusion(nn.Module):
    """Fuse K embeddings; returns (R [..., embedding_dim], weights [..., K])."""

    embedding_dim: int = 64
    context_dim: int = 32
    temperature: float = 1.0
    mode: str = "wsa"
    score_hidden: int = 32

    @nn.compact
    def __call__(self, embeddings: Sequence[jax.Array], state: jax.Array):
        if self.mode not in FUSION_MODES:
            raise ValueError(f"WSAFusion mode={self.mode!r} is not one of {FUSION_MODES}")
        if not self.temperature > 0:
            raise ValueError(f"WSAFusion temperature must be > 0, got {self.temperature}")
        k = len(embeddings)
        if k < 1:
            raise ValueError("WSAFusion needs at least one embedding (K >= 1), got 0")
        proj = jnp.stack(
            [nn.Dense(self.embedding_dim, name=f"proj_{i}")(e) for i, e in enumerate(embeddings)],
            axis=-2,
        )  # [..., K, D]
        lead = proj.shape[:-2]
        uniform = jnp.full(lead + (k,), 1.0 / k, proj.dtype)
        if self.mode == "mean":
            return jnp.mean(proj, axis=-2), uniform
        if self.mode == "concat":
            fused = nn.Dense(self.embedding_dim, name="concat_out")(
                proj.reshape(lead + (k * self.embedding_dim,))
            )
            return fused, uniform
        ctx = nn.Dense(self.context_dim, name="context")(state)  # [..., Cd]
        ctx = jnp.broadcast_to(ctx[..., None, :], lead + (k, self.context_dim))
        score_in = jnp.concatenate([ctx, proj], axis=-1)
        hid = nn.tanh(nn.Dense(self.score_hidden, name="score_hidden")(score_in))
        scores = nn.Dense(1, name="score_out")(hid)[..., 0]  # [..., K]
        weights = jax.nn.softmax(scores / self.temperature, axis=-1)
        fused = jnp.sum(weights[..., None] * proj, axis=-2)
        return fused, weights
