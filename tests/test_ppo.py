"""Tests for balancedrl.ppo (clipped surrogate, hybrid policy loss, clipped value loss)."""

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancedrl.ppo import clipped_surrogate, clipped_value_loss, hybrid_policy_loss

EPS = 0.2
surr_jit = jax.jit(clipped_surrogate)
hyb_jit = jax.jit(hybrid_policy_loss, static_argnames=("joint",))
val_jit = jax.jit(clipped_value_loss)


def np_surrogate(new, old, adv, eps):
    r = np.exp(new.astype(np.float64) - old)
    loss = -np.minimum(r * adv, np.clip(r, 1 - eps, 1 + eps) * adv)
    return loss, (r - 1) - np.log(r), (np.abs(r - 1) > eps).astype(np.float64)


def masked_mean(x, w, axis=None):
    return (w * x).sum(axis) / np.maximum(w.sum(axis), 1.0)


def _data(B=4, M=5, seed=0):
    rng = np.random.default_rng(seed)
    f = lambda *s: rng.normal(size=s).astype(np.float32)
    node = rng.random((B, M)) < 0.7
    spawn = node & (rng.random((B, M)) < 0.5)
    spawn[0] = False  # a sample without spawning nodes
    node[1] = False  # a sample without alive nodes
    spawn[1] = False
    return (f(B, M) * 0.3, f(B, M) * 0.3, f(B, M) * 0.3, f(B, M) * 0.3, f(B), node, spawn)


def test_clipped_surrogate_numpy_jit():
    rng = np.random.default_rng(1)
    new, old, adv = (rng.normal(size=8).astype(np.float32) * 0.4 for _ in range(3))
    mask = np.arange(8) < 6
    loss, m = surr_jit(new, old, adv, EPS, mask)
    l, kl, cf = np_surrogate(new, old, adv, EPS)
    assert float(loss) == pytest.approx(masked_mean(l, mask), rel=1e-5)
    assert float(m["approx_kl"]) == pytest.approx(masked_mean(kl, mask), rel=1e-4)
    assert float(m["clip_fraction"]) == pytest.approx(masked_mean(cf, mask), rel=1e-6)
    loss_v, _ = jax.vmap(clipped_surrogate, in_axes=(0, 0, 0, None))(np.stack([new, old]),
                                                                       np.stack([old, new]),
                                                                       np.stack([adv, adv]), EPS)
    assert float(loss_v[0]) == pytest.approx(float(np_surrogate(new, old, adv, EPS)[0].mean()), rel=1e-5)
    assert float(loss_v[1]) == pytest.approx(float(np_surrogate(old, new, adv, EPS)[0].mean()), rel=1e-5)


def _np_hybrid(d_new, d_old, c_new, c_old, adv, node, spawn, joint):
    out = []
    for new, old, w in ((d_new, d_old, node.astype(float)), (c_new, c_old, (node & spawn).astype(float))):
        has = w.sum(1) > 0
        if joint:
            l, kl, cf = np_surrogate((w * new).sum(1), (w * old).sum(1), adv, EPS)
        else:
            ln, kln, cfn = np_surrogate(new, old, adv[:, None], EPS)
            l, kl, cf = masked_mean(ln, w, 1), masked_mean(kln, w, 1), masked_mean(cfn, w, 1)
        out.append(((l * has).sum() / len(adv), (kl * has).sum() / max(has.sum(), 1),
                    (cf * has).sum() / max(has.sum(), 1)))
    return out


@pytest.mark.parametrize("joint", [False, True])
def test_hybrid_policy_loss_numpy(joint):
    data = _data()
    d_loss, c_loss, m = hyb_jit(*data, EPS, joint=joint)
    (dl, dkl, dcf), (cl, ckl, ccf) = _np_hybrid(*data, joint)
    assert float(d_loss) == pytest.approx(dl, rel=1e-5)
    assert float(c_loss) == pytest.approx(cl, rel=1e-5)
    assert float(m["discrete_approx_kl"]) == pytest.approx(dkl, rel=1e-4, abs=1e-7)
    assert float(m["continuous_approx_kl"]) == pytest.approx(ckl, rel=1e-4, abs=1e-7)
    assert float(m["discrete_clip_fraction"]) == pytest.approx(dcf, abs=1e-6)
    assert float(m["continuous_clip_fraction"]) == pytest.approx(ccf, abs=1e-6)


def test_hybrid_policy_loss_no_spawn_vmap_and_grads():
    d_new, d_old, c_new, c_old, adv, node, spawn = _data(seed=2)
    no_spawn = np.zeros_like(spawn)
    d_loss, c_loss, m = hyb_jit(d_new, d_old, c_new, c_old, adv, node, no_spawn, EPS,
                                sample_mask=np.array([1, 1, 1, 0], bool))
    assert float(c_loss) == 0.0 and np.isfinite(float(d_loss))
    assert all(np.isfinite(float(v)) for v in m.values())
    g = jax.jit(jax.grad(lambda c: hybrid_policy_loss(d_new, d_old, c, c_old, adv, node, no_spawn, EPS)[1]))(
        c_new)
    assert np.all(np.asarray(g) == 0.0)
    b = lambda x: np.stack([x, x])
    dl, cl, _ = jax.jit(jax.vmap(lambda *a: hybrid_policy_loss(*a, EPS)))(
        b(d_new), b(d_old), b(c_new), b(c_old), b(adv), b(node), np.stack([spawn, no_spawn]))
    (ref_d, _, _), (ref_c, _, _) = _np_hybrid(d_new, d_old, c_new, c_old, adv, node, spawn, False)
    assert float(dl[0]) == pytest.approx(ref_d, rel=1e-5) and float(cl[0]) == pytest.approx(ref_c, rel=1e-5)
    assert float(cl[1]) == 0.0


def test_clipped_value_loss_numpy_jit_vmap():
    rng = np.random.default_rng(3)
    v, vo, R = (rng.normal(size=(6, 3)).astype(np.float32) for _ in range(3))
    mask = np.arange(6) < 5
    loss, per = val_jit(v, vo, R, EPS, mask)
    vc = vo + np.clip(v - vo, -EPS, EPS)
    ref = 0.5 * np.maximum((v - R) ** 2, (vc - R) ** 2)
    ref_per = (ref * mask[:, None]).sum(0) / mask.sum()
    np.testing.assert_allclose(per, ref_per, rtol=1e-5)
    assert float(loss) == pytest.approx(ref_per.sum(), rel=1e-5)  # sum over components
    lv, pv = jax.vmap(clipped_value_loss, in_axes=(0, 0, 0, None))(np.stack([v, R]), np.stack([vo, vo]),
                                                                     np.stack([R, R]), EPS)
    np.testing.assert_allclose(pv[0], ref.mean(0), rtol=1e-5)
    # v == R: the unclipped error is 0 but the clipped one is not -> the max keeps the clipped error
    vc1 = vo + np.clip(R - vo, -EPS, EPS)
    assert float(lv[1]) == pytest.approx((0.5 * (vc1 - R) ** 2).mean(0).sum(), rel=1e-5)
    assert float(lv[1]) > 0
    with pytest.raises(AssertionError):
        clipped_value_loss(v[:, 0], vo[:, 0], R[:, 0], EPS)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**20 - 1), st.floats(-30, 30), st.booleans())
def test_property_masks_finite(bits, shift, joint):
    d_new, d_old, c_new, c_old, adv, _, _ = _data(seed=4)
    node = np.array([(bits >> i) & 1 for i in range(20)], bool).reshape(4, 5)
    spawn = np.roll(node, 1)
    d_loss, c_loss, m = hyb_jit(d_new + shift, d_old, c_new - shift, c_old, adv, node, spawn, EPS,
                                joint=joint)
    for x in (d_loss, c_loss, *m.values()):
        assert np.isfinite(float(x))
