"""Run a long experiment step in a child process and restart it if it stops making progress.

Why it exists: on this project's 2-core CPU a compiled, seed-vmapped ``train`` used to never return, at 0%
CPU. The cause was found in session 3: a batched LAPACK QR (flax's orthogonal initialiser under ``vmap``)
whose jaxlib kernel waits on XLA's intra-op pool from inside that pool, a deadlock once two such QRs run
at once on a 2-thread pool (``balancedrl/networks/init.py``, which replaced it). The watchdog stays as a
guard for hours-long runs: each step runs as ``python <script> ...`` in a child process whose CPU time is
polled; a child that uses under 1% of a core for ``idle_s`` seconds is killed and started again (the steps are
deterministic functions of their seeds and may resume from their own checkpoints, so a restart gives the same
result). A program that stalls on every run stays stalled: after ``retries`` restarts the step fails."""

from __future__ import annotations

import os
import subprocess
import sys
import time


def _cpu_seconds(pid: int) -> float | None:
    """utime + stime of ``pid`` and its threads (Linux ``/proc``); None where unavailable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def run_with_restarts(args: list[str], idle_s: float = 180.0, retries: int = 3, poll_s: float = 10.0) -> None:
    """Run ``python *args``; restart it (at most ``retries`` times) when it used less than 1% of one core over
    the last ``idle_s`` seconds. Raises ``RuntimeError`` when the child fails or stays wedged after the last
    restart."""
    cmd = [sys.executable, *args]
    for attempt in range(retries + 1):
        child = subprocess.Popen(cmd)
        history = [(time.monotonic(), _cpu_seconds(child.pid))]
        while child.poll() is None:
            time.sleep(poll_s)
            now, cpu = time.monotonic(), _cpu_seconds(child.pid)
            history.append((now, cpu))
            # the newest sample taken at least idle_s ago: CPU used since then
            old = [h for h in history if now - h[0] >= idle_s]
            if not old or cpu is None or old[-1][1] is None:
                continue
            history = history[history.index(old[-1]) :]
            if cpu - old[-1][1] < 0.01 * idle_s:
                child.kill()
                child.wait()
                print(
                    f"[watchdog] under 1% CPU for {idle_s:.0f} s: killed and restarting "
                    f"(attempt {attempt + 1} of {retries + 1}): {' '.join(args)}",
                    flush=True,
                )
                break
        else:
            if child.returncode == 0:
                return
            raise RuntimeError(f"{' '.join(cmd)} exited with status {child.returncode}")
    raise RuntimeError(f"{' '.join(cmd)} stayed wedged after {retries} restarts")
