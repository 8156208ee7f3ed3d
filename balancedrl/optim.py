"""Optimizer partition: network parameters, learnable weighting parameters, frozen parameters.

Three groups through ``optax.multi_transform`` (the component-weighting source's separate weight optimizer, the WSA source's frozen
pre-trained models, DESIGN section 5):

* ``"weighting"`` -- leaves with a path component equal to ``weights_key``:
  ``clip_by_global_norm(weights_max_grad_norm) -> adam(weights_lr)`` (the component-weighting source: own lr, clip 0.5);
* ``"frozen"``    -- leaves whose key path contains any of the substrings in ``frozen``:
  ``optax.set_to_zero()`` -- no update and no optimizer state (takes precedence over the others);
* ``"network"``   -- everything else: ``clip_by_global_norm(max_grad_norm) -> adam(network_lr)``.

Each clip is the global norm of its own group only.
"""

from __future__ import annotations

import optax
from jax.tree_util import DictKey, FlattenedIndexKey, GetAttrKey, SequenceKey, tree_map_with_path

__all__ = ["make_optimizer", "make_label_fn", "path_to_str"]

NETWORK, WEIGHTING, FROZEN = "network", "weighting", "frozen"


def _key_name(k):
    if isinstance(k, DictKey):
        return str(k.key)
    if isinstance(k, GetAttrKey):
        return k.name
    if isinstance(k, (SequenceKey, FlattenedIndexKey)):
        return str(k.idx)
    return str(k)


def path_to_str(path):
    """``('params', 'encoder', 'kernel')`` style key path as ``"params/encoder/kernel"``."""
    return "/".join(_key_name(k) for k in path)


def make_label_fn(weights_key="weighting", frozen=None):
    """Return ``label_fn(params) -> tree of "network" | "weighting" | "frozen"`` (see module docstring)."""
    if isinstance(frozen, str):
        frozen = (frozen,)
    frozen = tuple(frozen or ())

    def label_leaf(path, _):
        names = [_key_name(k) for k in path]
        joined = "/".join(names)
        if any(f in joined for f in frozen):
            return FROZEN
        if weights_key is not None and weights_key in names:
            return WEIGHTING
        return NETWORK

    def label_fn(params):
        return tree_map_with_path(label_leaf, params)

    return label_fn


def make_optimizer(network_lr, weights_lr, max_grad_norm=0.5, weights_max_grad_norm=0.5, frozen=None,
                   weights_key="weighting", anneal_steps=None, eps_root=0.0):
    """Build ``(tx, label_fn)``: an ``optax.multi_transform`` over the three groups above.

    ``network_lr``: float or optax schedule. ``anneal_steps``: if given (float ``network_lr`` only), the
    network lr decays linearly from ``network_lr`` to 0 over that many updates. ``frozen``: tuple of
    substrings of the key path (e.g. ``("pretrained_cnn",)``). ``eps_root``: Adam's
    ``sqrt(nu_hat + eps_root)``; > 0 (e.g. 1e-16) makes the update differentiable where a gradient and
    its second moment are exactly 0 (the meta-gradient weights differentiate through it,
    ``balancedrl.meta_weighting``); 0 elsewhere.
    """
    if anneal_steps is not None:
        if callable(network_lr):
            raise ValueError("make_optimizer: anneal_steps needs a float network_lr, got a schedule; put the "
                             "annealing into your schedule instead")
        if int(anneal_steps) <= 0:
            raise ValueError(f"make_optimizer: anneal_steps must be > 0, got {anneal_steps}")
        network_lr = optax.linear_schedule(network_lr, 0.0, int(anneal_steps))
    for name, v in (("max_grad_norm", max_grad_norm), ("weights_max_grad_norm", weights_max_grad_norm)):
        if not v > 0:
            raise ValueError(f"make_optimizer: {name} must be > 0, got {v}")
    label_fn = make_label_fn(weights_key, frozen)
    transforms = {
        NETWORK: optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(network_lr, eps_root=eps_root)),
        WEIGHTING: optax.chain(optax.clip_by_global_norm(weights_max_grad_norm),
                               optax.adam(weights_lr, eps_root=eps_root)),
        FROZEN: optax.set_to_zero(),
    }
    return optax.multi_transform(transforms, label_fn), label_fn
