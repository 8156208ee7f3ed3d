"""Shared helpers for the benchmarks and experiments: machine info, timing, table printing, JSON output.

Every result file records the machine (CPU model, core count, platform, python/jax/jaxlib/flax versions,
JAX backend and devices) and the UTC date, so numbers from different machines are never mixed up.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import jax

REPO = Path(__file__).resolve().parent.parent
# BENCH_RESULTS_DIR redirects every result file (benchmarks/run_all.sh --smoke writes to a temporary directory)
RESULTS_DIR = Path(os.environ.get("BENCH_RESULTS_DIR") or REPO / "benchmarks" / "results")


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """CPU model, usable core count, load average, OS, python / jax / jaxlib / flax versions, JAX backend,
    devices, UTC date."""
    import flax
    import jaxlib

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu_model": cpu_model(),
        "cpu_cores": cores,
        "load_average_1_5_15min": load,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def machine_line(info: dict | None = None) -> str:
    """One-line summary, e.g. ``Intel Xeon, 2 cores, cpu, jax 0.10.2``."""
    info = info or machine_info()
    return f"{info['cpu_model']}, {info['cpu_cores']} cores, {info['backend']}, jax {info['jax']}"


def command_line() -> str:
    """The exact command that ran this script (python + argv, relative to the repo when possible)."""
    argv = list(sys.argv)
    try:
        argv[0] = str(Path(argv[0]).resolve().relative_to(REPO))
    except ValueError:
        pass
    return "python " + " ".join(shlex.quote(a) for a in argv)


def block(tree):
    """``jax.block_until_ready`` on every leaf; returns ``tree``."""
    return jax.block_until_ready(tree)


def time_call(fn: Callable, *args) -> tuple[float, object]:
    """Wall seconds of ``fn(*args)`` until its outputs are ready, and the outputs."""
    t0 = time.perf_counter()
    out = block(fn(*args))
    return time.perf_counter() - t0, out


def median(xs) -> float:
    return float(statistics.median(xs))


def format_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """Plain-text table. ``columns``: (key, header, format spec such as ',.0f' or '')."""
    cells = [[h for _, h, _ in columns]]
    for r in rows:
        cells.append([("-" if r.get(k) is None else format(r[k], f)) for k, _, f in columns])
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_json(name: str, payload: dict, machine: dict | None = None) -> Path:
    """Write ``benchmarks/results/<name>.json`` with ``machine`` info and the command line added."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    doc = {"benchmark": name, "command": command_line(), "machine": machine or machine_info(), **payload}
    path.write_text(json.dumps(doc, indent=1, default=float) + "\n")
    return path


# ------------------------------------------------------------------ training throughput (shared by scripts)

CONFIG_DIR = REPO / "experiments" / "configs"


def load_bench_config(name: str, overrides: list[str] | None = None):
    """``experiments/configs/<name>`` with overrides (validated by ``load_config``)."""
    from balancedrl.training.config import load_config

    return load_config(CONFIG_DIR / name, list(overrides or []))


def measure_training(cfg, num_seeds: int, num_updates: int, repeats: int = 1, seed: int = 0) -> dict:
    """Env steps/s of the full training loop: the jitted, seed-vmapped chunk of ``num_updates`` updates
    (``make_run_chunk``, the one the host loop uses). It is compiled ahead of time (``compile_s``), then
    ``repeats`` calls are timed and the fastest counts. steps = seeds x updates x num_envs x num_steps."""
    from balancedrl.training.trainer import make_run_chunk, make_train

    trainer = make_train(cfg)
    keys = jax.random.split(jax.random.PRNGKey(seed), num_seeds)
    runner = block(jax.jit(jax.vmap(trainer.init))(keys))
    t0 = time.perf_counter()
    chunk = make_run_chunk(trainer, num_updates, num_seeds).lower(runner).compile()
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        dt, (runner, _) = time_call(chunk, runner)
        times.append(dt)
    steps = num_seeds * num_updates * cfg.batch_size
    best = min(times)
    return {
        "seeds": num_seeds,
        "updates": num_updates,
        "env_steps": steps,
        "compile_s": compile_s,
        "timed_s": times,
        "steps_per_s": steps / best,
        "updates_per_s": num_updates / best,
    }
