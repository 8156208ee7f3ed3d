"""``experiments/watchdog.py``: a child that finishes returns, a failing child raises with its status, and a
child that sits at 0% CPU is killed and restarted, then reported as wedged."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from experiments.watchdog import run_with_restarts  # noqa: E402


def test_finishing_child_returns():
    run_with_restarts(["-c", "pass"], idle_s=5, retries=0, poll_s=0.1)


def test_failing_child_raises_with_status():
    with pytest.raises(RuntimeError, match="status 3"):
        run_with_restarts(["-c", "raise SystemExit(3)"], idle_s=5, retries=0, poll_s=0.1)


def test_idle_child_is_restarted_then_reported(capsys):
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="wedged after 1 restarts"):
        run_with_restarts(["-c", "import time; time.sleep(60)"], idle_s=1.0, retries=1, poll_s=0.2)
    assert time.monotonic() - t0 < 30
    assert capsys.readouterr().out.count("[watchdog] under 1% CPU") == 2
