"""Small ResNet-style CNN feature extractor for rasterised graphs (the WSA source's "PTM" backbones).

The same architecture serves the pre-trained (frozen, loaded from the shipped orbax checkpoint)
and the random (trainable) extractors, so a checkpoint fits either. Architecture, for an image
[..., S, S, C]:
    x  = concat(image, coord_x, coord_y)              (CoordConv: position is what matters here)
    x  = relu(Conv3x3(c0)(x))
    per stage k: x = ResBlock(c_k, stride 2 if k > 0)  (y = relu(x' + Conv(relu(Conv(x))))),
                 x' = 1x1 strided projection when the shape changes
    E  = Dense(embedding_dim)([mean_hw(x), max_hw(x)])
Global pooling makes the parameter shapes independent of the raster size. No batch norm (no
mutable state, so frozen parameters stay exactly frozen).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class ResidualBlock(nn.Module):
    """y = relu(shortcut(x) + Conv3x3(relu(Conv3x3_stride(x))))."""

    channels: int
    stride: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        s = (self.stride, self.stride)
        y = nn.relu(nn.Conv(self.channels, (3, 3), strides=s, padding="SAME", name="conv1")(x))
        y = nn.Conv(self.channels, (3, 3), padding="SAME", name="conv2")(y)
        if x.shape[-1] != self.channels or self.stride != 1:
            x = nn.Conv(self.channels, (1, 1), strides=s, name="proj")(x)
        return nn.relu(x + y)


class ResNetEncoder(nn.Module):
    """Image [..., S, S, C] → embedding [..., embedding_dim] (see module docstring)."""

    channels: Sequence[int] = (8, 16, 16)
    embedding_dim: int = 64

    @nn.compact
    def __call__(self, image: jax.Array) -> jax.Array:
        if image.ndim < 3:
            raise ValueError(f"image must have shape [..., H, W, C], got {image.shape}")
        lead = image.shape[:-3]
        x = image.reshape((-1,) + image.shape[-3:])
        b, h, w, _ = x.shape
        cy = jnp.broadcast_to(jnp.linspace(-1.0, 1.0, h)[None, :, None, None], (b, h, w, 1))
        cx = jnp.broadcast_to(jnp.linspace(-1.0, 1.0, w)[None, None, :, None], (b, h, w, 1))
        x = jnp.concatenate([x, cx, cy], axis=-1)
        x = nn.relu(nn.Conv(self.channels[0], (3, 3), padding="SAME", name="stem")(x))
        for k, c in enumerate(self.channels):
            x = ResidualBlock(c, stride=1 if k == 0 else 2, name=f"block_{k}")(x)
        pooled = jnp.concatenate([jnp.mean(x, axis=(1, 2)), jnp.max(x, axis=(1, 2))], axis=-1)
        emb = nn.Dense(self.embedding_dim, name="head")(pooled)
        return emb.reshape(lead + (self.embedding_dim,))
