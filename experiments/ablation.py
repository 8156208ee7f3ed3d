"""Ablation on Durotaxis-v0: from the full configuration, switch off one technique at a time, plus all off.

    python experiments/ablation.py --seeds 8 [--steps N] [--variants full no_grad_scaling ...]

The full configuration is ``experiments/configs/ablation.yaml``: ``default.yaml``'s techniques (learnable
component weights with attention, the gradient-scaling source gradient scaling, the entropy-schedule source entropy schedule) plus expert guidance
with per-actor normalisation (the per-actor-normalisation source), on a smaller Durotaxis-v0 instance (300 px wide, 32 node slots,
100-step episodes) so that 8 seeds x 7 variants fit a CPU session. The WSA policy (the WSA source) is the opt-in
variant ``with_wsa``: WSA training runs at 69 env steps/s with 1 seed and 26 with 8 vmapped seeds on this 2-core CPU (``benchmarks/train_throughput.py``, 2026-12-01), against 3,091 / 3,562 for the GNN policy,
so it is not in the default set; on a CPU its seeds run one after another (``run.seed_axis=map``), which is
faster there than vmapping them.

Each variant trains ``--seeds`` vmapped seeds in one jitted program, then evaluates every seed's final policy
over ``--eval-episodes`` episodes, sampled (the stochastic policy PPO trains) and greedy (argmax / squashed
mean). Reported per variant, over seeds: the interquartile mean (IQM: the 25%-trimmed mean; with 8 seeds the
mean of the middle four) of the final sampled success rate, of the greedy one, and of the area under the
training success curve (mean training success over all updates, in [0, 1]; in expert-guided variants the
early training episodes include expert steps), each with a 95% stratified-bootstrap confidence interval
(2,000 resamples of the seeds), computed by rliable (Agarwal et al., "Deep RL at the edge of the statistical
precipice", NeurIPS 2021; :mod:`experiments.stats`), plus the performance profiles of the final sampled
success and the probability that each variant improves on ``full``.

Writes ``docs/ablation.md`` (table + the exact command), ``docs/images/ablation.png``,
``docs/images/ablation_profiles.png`` and ``experiments/results/ablation.json``. ``--report-only`` rewrites
the report and figures from ``experiments/results/ablation.json`` without training (the statistics are
recomputed from the stored per-seed scores).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import jax
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from experiments import stats  # noqa: E402
from experiments.watchdog import run_with_restarts  # noqa: E402

VARIANTS = {
    "full": [],
    "no_learnable_weights": ["trainer.advantage_weighting.enable_learnable_weights=false"],
    "no_attention": ["trainer.advantage_weighting.enable_attention_weighting=false"],
    "no_grad_scaling": ["trainer.gradient_scaling.enable_adaptive_scaling=false"],
    "no_adaptive_entropy": ["trainer.entropy_regularization.enable_adaptive_entropy=false"],
    "no_per_actor_norm": ["trainer.expert_guidance.per_actor_normalization=false"],
    "all_off": [
        "trainer.advantage_weighting.enable_learnable_weights=false",
        "trainer.gradient_scaling.enable_adaptive_scaling=false",
        "trainer.entropy_regularization.enable_adaptive_entropy=false",
        "trainer.expert_guidance.enable=false",
    ],
    "with_wsa": ["actor_critic.use_wsa=true"],
}
DEFAULT_VARIANTS = [v for v in VARIANTS if v != "with_wsa"]
# How a variant is executed on a CPU, not what it computes: the WSA policy's CNNs become slow grouped
# convolutions when vmapped over seeds (26 env steps/s for 8 vmapped seeds vs 69 for one seed,
# benchmarks/train_throughput.py), so its seeds run one after another (run.seed_axis=map), in short
# chunks so that the progress bar moves.
CPU_EXECUTION = {"with_wsa": ["run.seed_axis=map", "run.chunk_updates=2"]}


# per-seed score lists in a result row -> the prefix of their IQM / CI fields
SCORES = {
    "final_success": "final",
    "greedy_success": "greedy",
    "auc": "auc",
    "greedy_return": "greedy_return",
    "return_auc": "return_auc",
}


def with_stats(r: dict) -> dict:
    """The row with ``<key>_iqm`` and ``<key>_ci`` recomputed by rliable from its per-seed scores (IQM and
    2,000-resample stratified-bootstrap 95% CI, :mod:`experiments.stats`)."""
    out = dict(r)
    for scores, key in SCORES.items():
        if scores in r:
            out[key + "_iqm"], out[key + "_ci"] = stats.iqm_ci(r[scores])
    return out


def run_variant(
    name: str,
    base: str,
    extra: list[str],
    seeds: int,
    steps: int | None,
    eval_episodes: int,
    run_dir: Path,
) -> dict:
    """Train ``seeds`` vmapped seeds of one variant with the library's checkpointed host loop (so a restarted
    child resumes from its last checkpoint), then evaluate every seed's final policy."""
    from balancedrl.training.config import load_config
    from balancedrl.training.evaluate import make_evaluate, summarize
    from balancedrl.training.logging import read_metrics
    from balancedrl.training.loop import load_run, run_training, seed_slice

    overrides = VARIANTS.get(name, []) + extra + [f"run.num_seeds={seeds}", f"run.name=ablation_{name}"]
    overrides += ["run.render_gif=false", "run.checkpoint_every=10"]
    if steps:
        overrides.append(f"trainer.total_timesteps={steps}")
    if jax.default_backend() == "cpu":
        overrides += CPU_EXECUTION.get(name, [])
    cfg = load_config(base, overrides)
    t0 = time.time()
    run_training(cfg, run_dir=run_dir, resume=True, progress=True, evaluate=False, plots=False)
    wall = time.time() - t0
    trainer, runner = load_run(run_dir)
    succ = np.zeros((seeds, cfg.num_updates))  # updates without a finished episode count as 0
    ret = np.full((seeds, cfg.num_updates), np.nan)
    for row in read_metrics(run_dir / "metrics.jsonl"):
        succ[row["seed"], row["update"] - 1] = row.get("success_rate") or 0.0
        if isinstance(row.get("episode_return"), float):
            ret[row["seed"], row["update"] - 1] = row["episode_return"]
    auc = succ.mean(axis=1)
    return_auc = np.nanmean(ret, axis=1)
    final, final_return = {}, {}
    for mode in ("sample", "greedy"):
        ev = make_evaluate(trainer.adapter, trainer.policy_apply, eval_episodes, mode)
        summaries = [
            summarize(ev(seed_slice(runner.params["network"], s), jax.random.PRNGKey(1000 + s))) for s in range(seeds)
        ]
        final[mode] = np.array([m["success_rate"] for m in summaries])
        final_return[mode] = np.array([m["mean_return"] for m in summaries])
    return with_stats({
        "variant": name,
        "overrides": VARIANTS.get(name, []) + list(extra),
        "seeds": seeds,
        "env_steps": cfg.num_updates * cfg.batch_size,
        "wall_s": wall,
        "final_success": final["sample"].tolist(),
        "greedy_success": final["greedy"].tolist(),
        "auc": auc.tolist(),
        "greedy_return": final_return["greedy"].tolist(),
        "return_auc": return_auc.tolist(),
    })


def write_report(
    results: list[dict], command: str, out_md: Path, out_png: Path, title: str = "Ablation on Durotaxis-v0"
) -> None:
    """The table, the IQM bar chart ``out_png`` and ``<out_png stem>_profiles.png``: performance profiles of
    the final sampled success and P(variant > full), all from the rows' per-seed scores."""
    import matplotlib

    from benchmarks.common import machine_line

    profiles_png = out_png.with_name(out_png.stem + "_profiles.png")
    profiles_png_rel = f"images/{profiles_png.name}"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = [with_stats(r) for r in results]
    lines = [
        f"# {title}",
        "",
        f"Command: `{command}`  ",
        f"Report written on: {machine_line()}; date (UTC) {time.strftime('%Y-%m-%d %H:%M', time.gmtime())}. "
        "Each variant's own machine and date are in its row (variants are cached, `--resume`).",
        "",
        "IQM over seeds with 95% stratified-bootstrap CI (2,000 resamples; rliable, `experiments/stats.py`). "
        "*sampled* / *greedy* = success rate of each seed's final policy over the evaluation episodes, sampled "
        "from the policy / argmax-and-mean; *AUC* = mean training success rate over all updates.",
        "",
        f"![performance profiles and probability of improvement]({profiles_png_rel})",
        "",
        "| variant | seeds | env steps | sampled success IQM [95% CI] | greedy success IQM [95% CI] "
        "| AUC IQM [95% CI] | train s (incl. compile) | run on (date UTC) |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def cell(r, key):
        return f"{r[key + '_iqm']:.3f} [{r[key + '_ci'][0]:.3f}, {r[key + '_ci'][1]:.3f}]"

    for r in results:
        lines.append(
            f"| {r['variant']} | {r['seeds']} | {r['env_steps']:,} | {cell(r, 'final')} | {cell(r, 'greedy')} "
            f"| {cell(r, 'auc')} | {r['wall_s']:.0f} | {r.get('machine', 'not recorded')} ({r.get('date_utc', '?')}) |"
        )
    # a hand-written "## Verdict" section below the table survives regeneration
    tail = ""
    if out_md.exists() and "\n## Verdict" in out_md.read_text():
        tail = "\n## Verdict" + out_md.read_text().split("\n## Verdict", 1)[1]
    out_md.write_text("\n".join(lines) + "\n" + tail)
    fig, axes = plt.subplots(1, 3, figsize=(15, 0.5 * len(results) + 1.5), sharey=True)
    names = [r["variant"] for r in results]
    for ax, key, panel in zip(
        axes,
        ("final", "greedy", "auc"),
        ("final sampled success (IQM, 95% CI)", "final greedy success", "training success AUC"),
    ):
        mid = [r[f"{key}_iqm"] for r in results]
        lo = [r[f"{key}_iqm"] - r[f"{key}_ci"][0] for r in results]
        hi = [r[f"{key}_ci"][1] - r[f"{key}_iqm"] for r in results]
        ax.barh(names, mid, xerr=[lo, hi], color="tab:blue", alpha=0.7)
        ax.set_xlim(0, 1)
        ax.set_title(panel)
    axes[0].invert_yaxis()
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    scores = {r["variant"]: r["final_success"] for r in results}
    if "full" in scores and len(scores) > 1:
        stats.plot_profiles_and_improvement(
            scores, "full", np.linspace(0, 1, 101), "final sampled success τ", profiles_png, title
        )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "experiments/configs/ablation.yaml"))
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--steps", type=int, default=None, help="env steps per seed (default: the config's)")
    ap.add_argument("--variants", nargs="*", default=DEFAULT_VARIANTS, choices=list(VARIANTS))
    ap.add_argument("--eval-episodes", type=int, default=256)
    ap.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra overrides for every variant"
    )
    ap.add_argument("--out", default=str(ROOT / "docs/ablation.md"))
    ap.add_argument("--png", default=str(ROOT / "docs/images/ablation.png"))
    ap.add_argument(
        "--resume",
        action="store_true",
        help="reuse variants already in experiments/results/ablation/ (same seeds, steps and overrides)",
    )
    ap.add_argument(
        "--in-process",
        action="store_true",
        help="run every variant in this process (default: one watched child process per variant)",
    )
    ap.add_argument("--only", choices=list(VARIANTS), help=argparse.SUPPRESS)  # a child's single variant
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the report and figures from experiments/results/ablation.json (no training)",
    )
    args = ap.parse_args(argv)
    if args.report_only:
        stored = json.loads((ROOT / "experiments/results/ablation.json").read_text())
        write_report(stored["results"], stored["command"], Path(args.out), Path(args.png))
        return
    cache = ROOT / "experiments/results/ablation"
    runs = cache / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    key = {"seeds": args.seeds, "steps": args.steps, "config": Path(args.config).name, "set": args.set}

    def run_and_save(name: str) -> None:
        from benchmarks.common import machine_line

        r = run_variant(name, args.config, args.set, args.seeds, args.steps, args.eval_episodes, runs / name)
        r["machine"], r["date_utc"] = machine_line(), time.strftime("%Y-%m-%d", time.gmtime())
        (cache / f"{name}.json").write_text(json.dumps({"key": key, **r}, indent=1))

    if args.only:  # child: train + evaluate one variant, write its JSON, exit
        run_and_save(args.only)
        return
    given = sys.argv[1:] if argv is None else argv
    command = "python experiments/ablation.py " + " ".join(a for a in given if a != "--resume")
    results = []
    for name in args.variants:
        path = cache / f"{name}.json"
        cached = json.loads(path.read_text()) if path.exists() else None
        if not (args.resume and cached and cached.get("key") == key):
            if not args.resume:
                shutil.rmtree(runs / name, ignore_errors=True)
            if args.in_process:
                run_and_save(name)
            else:
                forwarded = [a for a in given if a != "--resume"]
                run_with_restarts([str(Path(__file__).resolve()), *forwarded, "--only", name])
            cached = json.loads(path.read_text())
        results.append(cached)
        print(
            f"{name:>22}: sampled IQM {cached['final_iqm']:.3f}, greedy IQM {cached['greedy_iqm']:.3f}, "
            f"AUC IQM {cached['auc_iqm']:.3f}, {cached['wall_s']:.0f} s",
            flush=True,
        )
        (ROOT / "experiments/results/ablation.json").write_text(
            json.dumps({"command": command, "results": results}, indent=1)
        )
        write_report(results, command, Path(args.out), Path(args.png))


if __name__ == "__main__":
    main()
