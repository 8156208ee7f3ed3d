"""Plots of a run's ``metrics.jsonl``: learning curve (mean ± 95% CI over seeds), component weights,
gradient scaling, the balancer (weights, per-loss gradient norms, gradient cosines), entropy, WSA weights."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import EngFormatter  # noqa: E402

from balancedrl.training.logging import read_metrics  # noqa: E402


def _series(rows: list[dict], key: str):
    """``(x env steps [U], values [S, U])`` with NaN for missing values."""
    by_update: dict[int, dict[int, float]] = defaultdict(dict)
    steps: dict[int, float] = {}
    for r in rows:
        if key in r:
            by_update[r["update"]][r["seed"]] = np.nan if r[key] is None else r[key]
            steps[r["update"]] = r.get("env_steps") or r["update"]
    if not by_update:
        return None, None
    updates = sorted(by_update)
    seeds = sorted({s for u in updates for s in by_update[u]})
    vals = np.array([[by_update[u].get(s, np.nan) for u in updates] for s in seeds], dtype=float)
    return np.array([steps[u] for u in updates], dtype=float), vals


def _smooth(v: np.ndarray, k: int) -> np.ndarray:
    """Centred NaN-aware moving average along the last axis."""
    if k <= 1:
        return v
    out = np.full_like(v, np.nan)
    for i in range(v.shape[-1]):
        lo, hi = max(0, i - k // 2), min(v.shape[-1], i + k // 2 + 1)
        w = v[..., lo:hi]
        with np.errstate(all="ignore"):
            cnt = np.sum(~np.isnan(w), axis=-1)
            out[..., i] = np.where(cnt > 0, np.nansum(w, axis=-1) / np.maximum(cnt, 1), np.nan)
    return out


def _mean_ci(ax, x, vals, label, color=None, smooth=1):
    vals = _smooth(vals, smooth)
    with np.errstate(all="ignore"):
        n = np.sum(~np.isnan(vals), axis=0)
        mean = np.nanmean(vals, axis=0)
        sd = np.nanstd(vals, axis=0, ddof=1) if vals.shape[0] > 1 else np.zeros_like(mean)
        half = 1.96 * sd / np.sqrt(np.maximum(n, 1))
    line = ax.plot(x, mean, label=label, color=color)[0]
    if vals.shape[0] > 1:
        ax.fill_between(x, mean - half, mean + half, alpha=0.25, color=line.get_color())


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def _steps_axis(ax):
    """x axis in environment steps, ticks as 100k / 1M (plain integers overlap at these magnitudes)."""
    ax.set_xlabel("environment steps")
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))


def _panel(ax, rows, keys, title, labels=None):
    """One axis: mean ± 95% CI of each metric in ``keys`` over environment steps."""
    for key, label in zip(keys, labels or keys):
        x, v = _series(rows, key)
        if x is not None:
            _mean_ci(ax, x, v, label)
    ax.set_title(title)
    _steps_axis(ax)
    ax.legend(fontsize=7)


def plot_run(run_dir: str | Path, component_names=(), extractor_names=()) -> list[str]:
    """Write the PNGs into ``run_dir`` and return their paths."""
    run_dir = Path(run_dir)
    rows = read_metrics(run_dir / "metrics.jsonl")
    num_seeds = len({r["seed"] for r in rows})
    out = []
    smooth = max(1, len({r["update"] for r in rows}) // 40)

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for ax, key, title in zip(
        axes,
        ("success_rate", "episode_return", "episode_length"),
        ("training success rate", "episode return", "episode length"),
    ):
        x, v = _series(rows, key)
        if x is not None:
            _mean_ci(ax, x, v, key, smooth=smooth)
        ax.set_title(f"{title} (mean ± 95% CI, {num_seeds} seed{'s' if num_seeds > 1 else ''})")
        _steps_axis(ax)
    out.append(_save(fig, run_dir / "learning_curve.png"))

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for ax, part in zip(axes, ("base", "attention", "final")):
        for name in component_names:
            x, v = _series(rows, f"component_{part}_weight/{name}")
            if x is not None and not np.all(np.isnan(v)):
                _mean_ci(ax, x, v, name)
        ax.set_title(f"component weights: {part}")
        _steps_axis(ax)
        ax.legend(fontsize=7)
    out.append(_save(fig, run_dir / "component_weights.png"))

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    _panel(axes[0], rows, ("discrete_grad_norm", "continuous_grad_norm"), "gradient norms (EMA)")
    axes[0].set_yscale("log")
    _panel(axes[1], rows, ("discrete_weight_used", "continuous_weight_used"), "loss weights used")
    out.append(_save(fig, run_dir / "gradient_scaling.png"))

    out.extend(_balancer_figure(rows, run_dir))

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    _panel(axes[0], rows, ("discrete_entropy", "continuous_entropy"), "policy entropy (alive nodes)")
    _panel(
        axes[1],
        rows,
        ("current_entropy_coeff", "discrete_penalty"),
        "entropy coefficient and collapse penalty",
    )
    out.append(_save(fig, run_dir / "entropy.png"))

    if extractor_names:
        fig, ax = plt.subplots(figsize=(6, 3.8))
        keys = [f"wsa_weight/{name}" for name in extractor_names]
        _panel(ax, rows, keys, "WSA attention per extractor (batch mean)", labels=extractor_names)
        out.append(_save(fig, run_dir / "wsa_weights.png"))
    return out


def _measured(rows, prefix):
    """Metric names starting with ``prefix`` that hold at least one number."""
    keys = sorted({k for r in rows for k in r if k.startswith(prefix)})
    return [k for k in keys if any(isinstance(r.get(k), (int, float)) for r in rows)]


def _balancer_figure(rows, run_dir: Path) -> list[str]:
    """``balancer.png``: the balancer's weights per loss, the raw per-loss gradient norms (log scale) and the
    cosine between each pair of per-loss gradients, the quantity that says whether there was a conflict."""
    weights = _measured(rows, "balancer_weight/")
    if not weights:
        return []
    norms = _measured(rows, "grad_norm/")
    cosines = _measured(rows, "grad_cosine/")
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    _panel(axes[0], rows, weights, "balancer weights", labels=[k.split("/", 1)[1] for k in weights])
    if norms:
        _panel(axes[1], rows, norms, "per-loss gradient norm", labels=[k.split("/", 1)[1] for k in norms])
        axes[1].set_yscale("log")
    else:
        axes[1].set_title("per-loss gradient norm: not measured (trainer.balancer.log_gradients)")
    if cosines:
        _panel(axes[2], rows, cosines, "cosine between per-loss gradients", labels=[k.split("/", 1)[1] for k in cosines])
        axes[2].axhline(0.0, color="grey", lw=0.8)
    else:
        axes[2].set_title("gradient cosines: not measured")
    return [_save(fig, run_dir / "balancer.png")]
