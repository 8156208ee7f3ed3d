"""The ablation's statistics (``experiments/ablation.py``): interquartile mean with fractional ends and its
percentile-bootstrap confidence interval, against hand-computed values."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from experiments.ablation import bootstrap_ci, iqm  # noqa: E402


def test_iqm_hand_values():
    # n = 8: the middle four values 3, 4, 5, 6
    assert iqm(np.arange(1, 9)) == pytest.approx(4.5)
    # n = 5: the 25%-75% window [1.25, 3.75] covers 0.75 of the 2nd, all of the 3rd, 0.75 of the 4th value
    assert iqm([100, 0, 10, 1, 0]) == pytest.approx((0.75 * 0 + 1 + 0.75 * 10) / 2.5)
    assert iqm([7.0]) == pytest.approx(7.0)
    # order does not matter; outliers at either end do not move it
    assert iqm([5, 1e6, 3, 4, 6, -1e6, 4.5, 5.5]) == pytest.approx(iqm([5, 9, 3, 4, 6, 0, 4.5, 5.5]))


def test_bootstrap_ci_brackets_and_degenerates():
    x = np.array([0.1, 0.2, 0.4, 0.5, 0.55, 0.6, 0.8, 0.9])
    lo, hi = bootstrap_ci(x, reps=500, seed=3)
    assert lo <= iqm(x) <= hi and hi - lo > 0
    assert bootstrap_ci(x, reps=500, seed=3) == (lo, hi)  # seeded: reproducible
    assert bootstrap_ci(np.full(8, 0.25), reps=200) == (pytest.approx(0.25), pytest.approx(0.25))
