"""The reports' statistics (``experiments/stats.py``, rliable): IQM and its stratified-bootstrap CI against
hand-computed values, NumPy references for the performance profile and the probability of improvement, and
today's reported numbers (frozen in ``tests/data/stats_before_rliable.json``, made by the hand-written code
rliable replaced) reproduced within bootstrap noise."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rliable", reason="the 'stats' extra (rliable) is not installed")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from experiments import stats  # noqa: E402


def test_iqm_hand_values():
    # n = 8: the middle four values 3, 4, 5, 6
    assert stats.iqm(np.arange(1, 9)) == pytest.approx(4.5)
    # n = 5: rliable trims whole runs, int(0.25 n) = 1 from each end: mean of 0, 1, 10
    assert stats.iqm([100, 0, 10, 1, 0]) == pytest.approx(11 / 3)
    assert stats.iqm([7.0]) == pytest.approx(7.0)
    # order does not matter; outliers at either end do not move it
    assert stats.iqm([5, 1e6, 3, 4, 6, -1e6, 4.5, 5.5]) == pytest.approx(stats.iqm([5, 9, 3, 4, 6, 0, 4.5, 5.5]))
    with pytest.raises(ValueError, match="finite"):
        stats.iqm([1.0, float("nan")])


def test_iqm_ci_brackets_reproduces_and_degenerates():
    x = np.array([0.1, 0.2, 0.4, 0.5, 0.55, 0.6, 0.8, 0.9])
    m, (lo, hi) = stats.iqm_ci(x, reps=500, seed=3)
    assert m == pytest.approx(0.5125) and lo <= m <= hi and hi - lo > 0
    assert stats.iqm_ci(x, reps=500, seed=3) == (m, (lo, hi))  # seeded: reproducible
    # the CI of a resampled IQM lies within the data
    assert x.min() <= lo and hi <= x.max()
    m, (lo, hi) = stats.iqm_ci(np.full(8, 0.25), reps=200)
    assert (m, lo, hi) == (pytest.approx(0.25), pytest.approx(0.25), pytest.approx(0.25))


def test_profile_and_improvement_against_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.3, 1.0, 8), rng.uniform(0.0, 0.7, 8)
    taus = np.linspace(0, 1, 11)
    prof, band = stats.performance_profiles({"a": a, "b": b}, taus, reps=200)
    np.testing.assert_allclose(prof["a"], [(a > t).mean() for t in taus])
    assert band["a"].shape == (2, 11) and np.all(band["a"][0] <= prof["a"] + 1e-12)
    est, ci = stats.probability_of_improvement({"a,b": (a, b)}, reps=200)
    # P(a > b) = mean over all pairs of [a_i > b_j] (+ 1/2 for ties)
    ref = np.mean(a[:, None] > b[None, :]) + 0.5 * np.mean(a[:, None] == b[None, :])
    assert est["a,b"][0] == pytest.approx(ref)
    assert ci["a,b"][0, 0] <= ref <= ci["a,b"][1, 0]


def _frozen_rows():
    return json.loads((ROOT / "tests/data/stats_before_rliable.json").read_text())["rows"]


def test_todays_numbers_within_bootstrap_noise():
    """For every frozen row (ablation: final sampled success and AUC; balancers on Platform: greedy return;
    8 seeds each): rliable's IQM equals the hand-written one (8 runs: both are the mean of the middle four),
    and its 2,000-resample CI ends lie within 10% of the per-seed range of the reported ends. Two bootstrap
    runs of 2,000 resamples differ by Monte-Carlo noise only; in one comparison over all 92 reported CIs the largest
    difference was 6.8% of the range (a 68% interval instead moves an end by far more: checked below)."""
    worst = 0.0
    for r in _frozen_rows():
        x = np.asarray(r["per_seed"])
        m, (lo, hi) = stats.iqm_ci(x)
        assert m == pytest.approx(r["iqm"], abs=1e-9), (r["report"], r["row"], r["score"])
        span = max(float(np.ptp(x)), 1e-12)
        for ours, theirs in ((lo, r["ci"][0]), (hi, r["ci"][1])):
            worst = max(worst, abs(ours - theirs) / span)
            assert abs(ours - theirs) <= 0.10 * span + 1e-9, (r["report"], r["row"], r["score"], ours, theirs)
    assert worst > 0  # the two bootstraps are independent draws, not the same numbers
    # the tolerance is tight enough to see a different interval
    row = next(r for r in _frozen_rows() if r["row"] == "full" and r["score"] == "final_success")
    x = np.asarray(row["per_seed"])
    _, (lo68, hi68) = stats.iqm_ci(x, size=0.68)
    assert abs(lo68 - row["ci"][0]) > 0.10 * np.ptp(x)
