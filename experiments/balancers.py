"""Which balancers help hybrid PPO? Every registered balancer against tuned plain summation, on one task.

    python experiments/balancers.py --task platform --seeds 8 --steps 300000 [--methods sum mgda ...]

Each row trains ``--seeds`` vmapped seeds with ``trainer.balancer.name=<method>`` over the discrete and the
continuous surrogates (K = 2; ``--losses4`` balances value and entropy too), every source technique off
(``--set`` adds overrides), per-loss gradients measured once per epoch. The null hypothesis is ``sum``
(Kurin et al. 2022; Xin et al. 2022) with its learning rate tuned over ``--sum-lr-factors`` (rows ``sum_lr*``);
``--lr-factors`` runs every other method at those learning-rate factors too (rows ``<method>_lr<f>x``).
Reported per row over seeds, as in ``experiments/ablation.py``: IQM of the final greedy success and return
and of the training-success and training-return AUC, with 95% stratified-bootstrap CIs (rliable,
:mod:`experiments.stats`), plus the mean gradient cosine between the balanced losses and their gradient-norm
ratio (is there any conflict to resolve?); and a figure: performance profiles of the greedy return and the
probability that each row improves on ``sum``.

Rows are cached in ``experiments/results/balancers_<task>/`` (resumable: ``--resume``); the report is
``docs/balancers_<task>.md`` and ``docs/images/balancers_<task>_profiles.png``. ``--report-only`` rewrites
both from ``experiments/results/balancers_<task>.json`` without training.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from experiments import stats  # noqa: E402
from experiments.ablation import run_variant, with_stats  # noqa: E402

TASKS = {"platform": "experiments/configs/platform.yaml", "goal": "experiments/configs/goal.yaml",
         "durotaxis": "experiments/configs/default.yaml"}
OFF = [
    "trainer.advantage_weighting.enable_learnable_weights=false",
    "trainer.advantage_weighting.enable_attention_weighting=false",
    "trainer.gradient_scaling.enable_adaptive_scaling=false",
    "trainer.entropy_regularization.enable_adaptive_entropy=false",
    "trainer.reward_normalization.enable=false",
    "trainer.expert_guidance.enable=false",
    "trainer.balancer.norm_refresh=epoch",
    "trainer.balancer.log_gradients=true",
]
SUM_LR_FACTORS = (0.5, 1.0, 2.0)


def _lr_row(name: str, factor: float) -> str:
    return name if factor == 1.0 else f"{name}_lr{factor:g}x"


def method_rows(methods: list[str], base_lr: float, sum_lr_factors=SUM_LR_FACTORS,
                lr_factors=(1.0,)) -> dict[str, list[str]]:
    """``{row name: overrides}``: ``sum`` at each of ``sum_lr_factors`` x the config's learning rate (the
    tuned null hypothesis), then every other method at each of ``lr_factors`` (row ``<method>_lr<f>x``)."""
    rows = {}
    for m in methods:
        factors = sum_lr_factors if m == "sum" else lr_factors
        for f in factors:
            ov = [f"trainer.balancer.name={m}", f"trainer.learning_rate={base_lr * f:g}"]
            if m == "grad_scaling":
                ov.append("trainer.gradient_scaling.enable_adaptive_scaling=true")
            rows[_lr_row(m, f)] = ov
    return rows


def gradient_summary(run_dir: Path) -> dict:
    """Mean over updates and seeds of the discrete|continuous gradient cosine and log10 norm ratio."""
    from balancedrl.training.logging import read_metrics

    rows = read_metrics(run_dir / "metrics.jsonl")
    # Rows logged before learner._cosine bounded it: 0 where a norm is 0, else clipped to [-1, 1].
    cos = [
        (0.0 if not (r.get("grad_norm/discrete") and r.get("grad_norm/continuous")) else max(-1.0, min(1.0, c)))
        if isinstance(c := r.get("grad_cosine/discrete|continuous"), float) else None
        for r in rows
    ]
    ratio = [
        np.log10(r["grad_norm/continuous"] / r["grad_norm/discrete"])
        for r in rows
        if r.get("grad_norm/discrete") and r.get("grad_norm/continuous")
    ]
    cos = [c for c in cos if isinstance(c, float)]
    return {
        "cosine_mean": float(np.mean(cos)) if cos else None,
        "cosine_frac_negative": float(np.mean(np.asarray(cos) < 0)) if cos else None,
        "log10_norm_ratio_mean": float(np.mean(ratio)) if ratio else None,
    }


def _cell(r, key, fmt=".3f"):
    lo, hi = r[key + "_ci"]
    return f"{r[key + '_iqm']:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def write_report(results: list[dict], command: str, out_md: Path, args) -> None:
    """The table (IQM [95% CI] over seeds of greedy success, greedy return, training success AUC and
    training return AUC; gradient cosine and norm ratio); a hand-written "## Verdict" below it survives."""
    k = 4 if args.losses4 else 2
    results = [with_stats(r) for r in results]
    png = out_md.parent / "images" / (out_md.stem + "_profiles.png")
    lines = [
        f"# Balancers on {args.task} (K = {k} balanced losses)",
        "",
        f"Command: `{command}`  ",
        f"{args.seeds} seeds per row, {args.steps:,} env steps per seed, {args.eval_episodes} greedy evaluation "
        "episodes per seed; every source technique off; per-loss gradients once per epoch. IQM over seeds with "
        "95% stratified-bootstrap CIs (2,000 resamples; rliable, `experiments/stats.py`). *cos* = mean cosine between the discrete and continuous "
        "surrogates' gradients (share of measurements < 0 in brackets); *log10 ratio* = mean log10 of "
        "continuous / discrete gradient norm.",
        "",
        f"![performance profiles and probability of improvement](images/{png.name})",
        "",
        "| row | greedy success | greedy return | training success AUC | training return AUC | cos (share < 0) "
        "| log10 ratio | train s | machine (date) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cos = r.get("cosine_mean")
        cos_s = "—" if cos is None else f"{cos:+.3f} ({r['cosine_frac_negative']:.2f})"
        lr = r.get("log10_norm_ratio_mean")
        lines.append(
            f"| {r['variant']} | {_cell(r, 'greedy')} | {_cell(r, 'greedy_return')} | {_cell(r, 'auc')} "
            f"| {_cell(r, 'return_auc')} | {cos_s} | {'—' if lr is None else f'{lr:+.2f}'} | {r['wall_s']:.0f} "
            f"| {r.get('machine', '?')} ({r.get('date_utc', '?')}) |"
        )
    tail = ""
    if out_md.exists() and "\n## Verdict" in out_md.read_text():
        tail = "\n## Verdict" + out_md.read_text().split("\n## Verdict", 1)[1]
    out_md.write_text("\n".join(lines) + "\n" + tail)
    scores = {r["variant"]: r["greedy_return"] for r in results}
    sums = [r for r in results if r["variant"] == "sum" or r["variant"].startswith("sum_lr")]
    if sums and len(scores) > 1:  # improvement over the tuned null hypothesis: the best sum row
        best = max(sums, key=lambda r: (r["greedy_return_iqm"], r["return_auc_iqm"]))["variant"]
        png.parent.mkdir(parents=True, exist_ok=True)
        stats.plot_profiles_and_improvement(
            scores, best, np.linspace(0, 1, 101), "final greedy return τ", png, f"Balancers on {args.task}"
        )


def main(argv=None) -> None:
    from balancedrl.balancers import available
    from balancedrl.training.config import load_config
    from benchmarks.common import machine_line

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", choices=sorted(TASKS), default="platform")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--steps", type=int, default=300_000, help="env steps per seed")
    default_methods = [m for m in available() if m != "fixed"]
    ap.add_argument("--methods", nargs="*", default=default_methods, choices=default_methods)
    ap.add_argument("--losses4", action="store_true", help="balance [discrete, continuous, value, entropy]")
    ap.add_argument("--sum-lr-factors", nargs="+", type=float, default=list(SUM_LR_FACTORS),
                    help="sum's learning-rate grid, x the config's trainer.learning_rate")
    ap.add_argument("--lr-factors", nargs="+", type=float, default=[1.0],
                    help="every other method at these learning-rate factors (rows <method>_lr<f>x)")
    ap.add_argument("--eval-episodes", type=int, default=100)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the report and figure from experiments/results/balancers_<task>.json (no training)",
    )
    args = ap.parse_args(argv)
    base = TASKS[args.task]
    extra = OFF + list(args.set)
    if args.losses4:
        extra.append("trainer.balancer.losses=[discrete, continuous, value, entropy]")
    base_lr = load_config(ROOT / base).trainer.learning_rate
    suffix = args.task + ("_k4" if args.losses4 else "")
    if args.report_only:
        stored = json.loads((ROOT / f"experiments/results/balancers_{suffix}.json").read_text())
        write_report(stored["results"], stored["command"], ROOT / f"docs/balancers_{suffix}.md", args)
        return
    cache = ROOT / f"experiments/results/balancers_{suffix}"
    cache.mkdir(parents=True, exist_ok=True)
    key = {"seeds": args.seeds, "steps": args.steps, "task": args.task, "set": extra}
    command = "python experiments/balancers.py " + " ".join(a for a in (argv or sys.argv[1:]) if a != "--resume")
    results = []
    for name, ov in method_rows(args.methods, base_lr, args.sum_lr_factors, args.lr_factors).items():
        path = cache / f"{name}.json"
        cached = json.loads(path.read_text()) if path.exists() else None
        if not (args.resume and cached and cached.get("key") == key):
            run_dir = cache / "runs" / name
            r = run_variant(name, str(ROOT / base), extra + ov, args.seeds, args.steps, args.eval_episodes, run_dir)
            r.update(gradient_summary(run_dir))
            r["machine"], r["date_utc"] = machine_line(), time.strftime("%Y-%m-%d", time.gmtime())
            path.write_text(json.dumps({"key": key, **r}, indent=1))
            cached = json.loads(path.read_text())
        results.append(cached)
        print(f"{name:>14}: greedy IQM {cached['greedy_iqm']:.3f}, AUC IQM {cached['auc_iqm']:.3f}, "
              f"cos {cached.get('cosine_mean')}, {cached['wall_s']:.0f} s", flush=True)
        write_report(results, command, ROOT / f"docs/balancers_{suffix}.md", args)
        (ROOT / f"experiments/results/balancers_{suffix}.json").write_text(json.dumps({"command": command, "results": results}, indent=1))


if __name__ == "__main__":
    main()
