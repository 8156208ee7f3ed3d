"""compacting_while_loop: under vmap (one or two levels of it) every lane equals lax.while_loop bit for bit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from balancedrl.envs.compacting_loop import compacting_while_loop, level_widths


def _cond(consts, c):
    limit, _ = consts
    x, n = c
    return (x < 1e6) & (n < limit)


def _body(consts, c):
    _, scale = consts
    x, n = c
    x = jnp.where(jnp.mod(jnp.floor(x), 2.0) == 0.0, x * scale + 0.37, jnp.sqrt(x) * 1.9)
    return x, n + 1


def _plain(consts, init):
    return jax.lax.while_loop(lambda c: _cond(consts, c), lambda c: _body(consts, c), init)


def _compact(consts, init, **kw):
    return compacting_while_loop(_cond, _body, consts, init, **kw)


@pytest.mark.parametrize("shrink,min_lanes", [(2, 8), (4, 1), (3, 5)])
def test_vmap_equals_while_loop(shrink, min_lanes):
    x0 = jnp.asarray(np.random.default_rng(0).uniform(1, 500, 300).astype(np.float32))
    # heavy-tailed iteration counts across lanes (exponential, mean ~20)
    limit = jnp.asarray(1 + np.random.default_rng(1).exponential(20.0, 300).astype(int), jnp.int32)
    consts = (limit, jnp.float32(1.7))  # second const unbatched: broadcast by the rule
    init = (x0, jnp.zeros(300, jnp.int32))
    ref = jax.jit(jax.vmap(_plain, in_axes=((0, None), 0)))(consts, init)
    got = jax.jit(jax.vmap(lambda c, i: _compact(c, i, shrink=shrink, min_lanes=min_lanes), in_axes=((0, None), 0)))(
        consts, init
    )
    assert int(ref[1].max()) > 4 * float(np.median(ref[1]))  # the test needs a tail of slow lanes
    for r, g in zip(ref, got, strict=True):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(r))


def test_unbatched_and_nested_vmap():
    x0 = jnp.asarray(np.random.default_rng(2).uniform(1, 300, (3, 40)).astype(np.float32))
    consts = (jnp.int32(300), jnp.float32(1.0))
    init = (x0, jnp.zeros((3, 40), jnp.int32))
    single = jax.jit(_compact)(consts, (x0[0, 0], jnp.int32(0)))
    np.testing.assert_array_equal(np.asarray(single[0]), np.asarray(_plain(consts, (x0[0, 0], jnp.int32(0)))[0]))
    nest = jax.vmap(jax.vmap(_compact, in_axes=(None, 0)), in_axes=(None, 0))
    ref = jax.vmap(jax.vmap(_plain, in_axes=(None, 0)), in_axes=(None, 0))(consts, init)
    got = jax.jit(nest)(consts, init)
    for r, g in zip(ref, got, strict=True):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(r))


def test_level_widths_and_bad_args():
    assert level_widths(1024) == (1024, 256, 64, 16)
    assert level_widths(1024, shrink=2, min_lanes=8) == (1024, 512, 256, 128, 64, 32, 16, 8)
    assert level_widths(5) == (5,)
    with pytest.raises(ValueError, match="shrink"):
        level_widths(8, shrink=1)
    with pytest.raises(ValueError, match="min_lanes"):
        compacting_while_loop(_cond, _body, (1, 1.0), (2.0, 0), min_lanes=0)
