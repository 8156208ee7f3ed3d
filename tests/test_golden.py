"""The trainer's behaviour is pinned by golden metrics recorded before the trainer was split into parts
(``tests/golden/make_golden.py``): short CartPole, Durotaxis and Platform runs with every technique on and
off must reproduce every recorded metric and the final parameters to 1e-5 relative."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.golden.cases import CASES, run_case

GOLDEN = json.loads((Path(__file__).parent / "golden" / "golden_metrics.json").read_text())
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_metrics(case):
    got = run_case(case, root=ROOT)
    want = GOLDEN[case]
    missing = sorted(set(want) - set(got))
    assert not missing, f"metrics no longer reported: {missing}"
    for name, ref in want.items():
        np.testing.assert_allclose(
            np.asarray(got[name], np.float64), np.asarray(ref, np.float64), rtol=1e-5, atol=1e-7,
            equal_nan=True, err_msg=f"{case}: {name}",
        )
