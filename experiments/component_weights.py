"""Reward-component weights that maximise the true return (issue 16): six ways to weigh the reward components'
advantages, on Durotaxis-Sparse-v0, Durotaxis-Misscaled-v0 and Durotaxis-v0.

    python experiments/component_weights.py --seeds 8 --steps 16384 [--rows sparse:meta_gradient ...]
                                            [--worker 0 --workers 2] [--report-only]

Methods (``trainer.advantage_weighting``; the combined advantage is z-scored over the minibatch in each):

* ``total_only``          the ``total`` component alone (the true objective);
* ``equal_sum``           the mean of all components (an equal-weight sum);
* ``two_tier_equal_sum``  two-tier reward normalisation of the components, then their mean;
* ``seed000``             the source's learnable softmax + attention weights, trained through the PPO surrogate;
* ``meta_gradient``       softmax weights learned by the meta-gradient of the true return on the next
                          minibatch (``balancedrl.meta_weighting``, ``training/meta.py``), weight lr ``META_LR``;
* ``oracle``              fixed weights: ``total`` + the helpful channels at their natural scale
                          (``durotaxis_variants.oracle_weights``: (1, 1, 1, 0, 0) on Sparse, (1, 1e3, 0.1, 0, 0)
                          on Misscaled). Durotaxis-v0 has no oracle row: its ``total`` already is the designed
                          sum of its shaping terms, so its oracle is ``total_only``.

Base: ``experiments/configs/component_weights.yaml`` (the ablation's smaller Durotaxis instance, expert
guidance off). Each row trains ``--seeds`` vmapped seeds in one program with the checkpointed host loop
(``experiments/ablation.run_variant``), then evaluates every seed's final policy, sampled and greedy.
Reported per row over seeds: IQM of final sampled / greedy success and of the training-success AUC with 95%
percentile-bootstrap CIs over seeds (2,000 resamples; one task per row, so the stratified bootstrap of
Agarwal et al. 2021 is the plain one over seeds), and the weight trajectory (per update, mean over seeds) of
the learned weights.

Rows are written one by one to ``experiments/results/component_weights/<row>.json`` as each finishes (rows run
in the order given; ``--worker k --workers n`` takes every n-th row from k so two processes share the list);
``--report-only`` rebuilds ``docs/component_weights.md`` and ``docs/images/component_weights_*.png`` from the
rows present. A hand-written "## Verdict" below the table survives.
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

from experiments.ablation import run_variant  # noqa: E402
from experiments.stats import bootstrap_ci, iqm  # noqa: E402

BASE = ROOT / "experiments/configs/component_weights.yaml"
CACHE = ROOT / "experiments/results/component_weights"
ENVS = {"sparse": "Durotaxis-Sparse-v0", "misscaled": "Durotaxis-Misscaled-v0", "default": "Durotaxis-v0"}
META_LR = 0.03  # the weights' Adam lr in meta_gradient mode (one setting, not tuned)
_OFF = "trainer.advantage_weighting.enable_learnable_weights=false"
METHODS = {
    "total_only": [_OFF, "trainer.advantage_weighting.fallback=total"],
    "equal_sum": [_OFF, "trainer.advantage_weighting.fallback=mean"],
    "two_tier_equal_sum": [_OFF, "trainer.advantage_weighting.fallback=mean", "trainer.reward_normalization.enable=true"],
    "seed000": ["trainer.advantage_weighting.enable_learnable_weights=true",
                "trainer.advantage_weighting.enable_attention_weighting=true"],
    "meta_gradient": ["trainer.advantage_weighting.mode=meta_gradient",
                      "trainer.advantage_weighting.meta_parameterization=softmax",
                      f"trainer.advantage_weighting.weight_learning_rate={META_LR}"],
    "oracle": None,  # per environment: mode=fixed with oracle_weights
}
# The rows written before each row recorded its command were run with this one.
FIRST_COMMAND = "python experiments/component_weights.py --seeds 8 --steps 16384 --eval-episodes 32 --resume"
# Importance order (issue 16 brief): the Sparse comparison first, then Misscaled, then the default task.
ORDER = ["meta_gradient", "equal_sum", "oracle", "total_only", "seed000", "two_tier_equal_sum"]
DEFAULT_ROWS = ([f"sparse:{m}" for m in ORDER] + [f"misscaled:{m}" for m in ORDER]
                + [f"default:{m}" for m in ORDER if m != "oracle"])


def component_names(env_name: str) -> tuple:
    from balancedrl.envs import make

    env, _ = make(env_name)
    return tuple(getattr(env, "component_names", ("total", "graph", "spawn", "delete", "edge", "total_node")))


def channel_scales(env_name: str) -> np.ndarray:
    """Multiplier of each component relative to its natural scale (1 for Durotaxis-v0 and ``total``)."""
    from balancedrl.envs import make

    _, p = make(env_name)
    s = getattr(p, "channel_scales", None)
    return np.ones(len(component_names(env_name))) if s is None else np.concatenate([[1.0], np.asarray(s, float)])


def oracle(env_name: str) -> list[float]:
    from balancedrl.envs import make, oracle_weights

    return [float(v) for v in oracle_weights(make(env_name)[1])]


def row_overrides(row: str) -> list[str]:
    env_key, method = row.split(":")
    ov = [f"env.name={ENVS[env_key]}"]
    if method == "oracle":
        w = ", ".join(f"{v:g}" for v in oracle(ENVS[env_key]))
        return ov + ["trainer.advantage_weighting.mode=fixed", f"trainer.advantage_weighting.fixed_weights=[{w}]"]
    return ov + METHODS[method]


def fixed_weights_of(row: str) -> np.ndarray | None:
    """The constant weights a non-learning row applies to the raw components (None: learned, or
    ``two_tier`` whose weights act on normalised components)."""
    env_key, method = row.split(":")
    C = len(component_names(ENVS[env_key]))
    if method == "total_only":
        return np.eye(C)[0]
    if method == "equal_sum":
        return np.full(C, 1.0 / C)
    if method == "oracle":
        return np.asarray(oracle(ENVS[env_key]))
    return None


def weight_trajectory(run_dir: Path, names: tuple, seeds: int, updates: int) -> np.ndarray:
    """``[seeds, updates, C]`` logged final component weights (NaN where not logged)."""
    from balancedrl.training.logging import read_metrics

    out = np.full((seeds, updates, len(names)), np.nan)
    for r in read_metrics(run_dir / "metrics.jsonl"):
        for c, n in enumerate(names):
            v = r.get(f"component_final_weight/{n}")
            if isinstance(v, float):
                out[r["seed"], r["update"] - 1, c] = v
    return out


def success_curve(run_dir: Path, seeds: int, updates: int) -> np.ndarray:
    from balancedrl.training.logging import read_metrics

    succ = np.zeros((seeds, updates))
    for r in read_metrics(run_dir / "metrics.jsonl"):
        succ[r["seed"], r["update"] - 1] = r.get("success_rate") or 0.0
    return succ


def row_file(row: str, tag: str) -> str:
    return (f"{tag}__" if tag else "") + row.replace(":", "__")


def progress(run_dir: Path, seeds: int, updates: int, front_scale: float) -> dict:
    """A proxy of progress toward the goal when no episode succeeds: the front advance per finished episode
    on the channel's natural scale (100 x advance / width), ``mean front reward per step / s_front x mean
    episode length`` of each update's rollout (approximate: the first is over all steps of the rollout, the
    second over the episodes that ended in it). Per seed, the mean over the last quarter of the updates;
    also the mean episode length there, and both curves (mean over seeds)."""
    from balancedrl.training.logging import read_metrics

    fpe = np.full((seeds, updates), np.nan)
    length = np.full((seeds, updates), np.nan)
    for r in read_metrics(run_dir / "metrics.jsonl"):
        ln, fr = r.get("episode_length"), r.get("reward_mean/front")
        if isinstance(ln, float):
            length[r["seed"], r["update"] - 1] = ln
            if isinstance(fr, float):
                fpe[r["seed"], r["update"] - 1] = fr / front_scale * ln
    q = max(1, updates // 4)
    last = np.nanmean(fpe[:, -q:], 1)
    last_len = np.nanmean(length[:, -q:], 1)
    return {
        "front_per_episode": last.tolist(), "front_per_episode_iqm": iqm(last), "front_per_episode_ci": bootstrap_ci(last),
        "episode_length_last": last_len.tolist(), "episode_length_iqm": iqm(last_len),
        "episode_length_ci": bootstrap_ci(last_len),
        "front_per_episode_curve": np.nanmean(fpe, 0).tolist(), "episode_length_curve": np.nanmean(length, 0).tolist(),
    }


def add_progress(r: dict) -> dict:
    """``progress`` for a shaping-variant row whose run directory is present (no-op otherwise)."""
    run_dir = CACHE / "runs" / row_file(r["row"], r.get("tag", ""))
    if "front_per_episode" in r or r["env"] == "Durotaxis-v0" or not (run_dir / "metrics.jsonl").exists():
        return r
    return {**r, **progress(run_dir, r["seeds"], r["num_updates"], r["channel_scales"][1])}


def run_row(row: str, args) -> dict:
    from balancedrl.training.config import load_config
    from benchmarks.common import machine_line

    env_key, method = row.split(":")
    name = row_file(row, args.tag)
    run_dir = CACHE / "runs" / name
    ov = row_overrides(row) + list(args.set)
    r = run_variant(name, str(BASE), ov, args.seeds, args.steps, args.eval_episodes, run_dir)
    names = component_names(ENVS[env_key])
    cfg = load_config(str(BASE), ov + [f"trainer.total_timesteps={args.steps}"])
    w = weight_trajectory(run_dir, names, args.seeds, cfg.num_updates)
    succ = success_curve(run_dir, args.seeds, cfg.num_updates)
    r.update(
        row=row, tag=args.tag, extra_overrides=list(args.set), env=ENVS[env_key], method=method,
        components=list(names), num_envs=cfg.env.num_envs,
        batch_size=cfg.batch_size, num_updates=cfg.num_updates,
        success_curve_mean=succ.mean(0).tolist(),
        weights_mean=np.nanmean(w, 0).tolist() if np.isfinite(w).any() else None,
        weights_final_per_seed=w[:, -1].tolist() if np.isfinite(w).any() else None,
        fixed_weights=None if fixed_weights_of(row) is None else fixed_weights_of(row).tolist(),
        oracle_weights=oracle(ENVS[env_key]) if env_key != "default" else None,
        channel_scales=channel_scales(ENVS[env_key]).tolist(),
        machine=machine_line(), date_utc=time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    )
    return add_progress(r)


def load_rows() -> list[dict]:
    """Every finished row in ``CACHE``, ordered by budget (env steps), environment, then ``DEFAULT_ROWS``."""
    rows = [json.loads(p.read_text()) for p in CACHE.glob("*.json")]
    order = {r: i for i, r in enumerate(DEFAULT_ROWS)}
    return sorted(rows, key=lambda r: (r["env_steps"], list(ENVS.values()).index(r["env"]), order[r["row"]]))


def _cell(r, key):
    return f"{r[key + '_iqm']:.3f} [{r[key + '_ci'][0]:.3f}, {r[key + '_ci'][1]:.3f}]"


def _pcell(r, key):
    if key + "_iqm" not in r:
        return "—"
    return f"{r[key + '_iqm']:.1f} [{r[key + '_ci'][0]:.1f}, {r[key + '_ci'][1]:.1f}]"


def natural_share(w, scales) -> np.ndarray:
    """Weights on the natural scale of each channel, ``|w_c s_c| / sum_c |w_c s_c|`` (shares of 1)."""
    a = np.abs(np.asarray(w, float) * np.asarray(scales, float))
    return a / np.maximum(a.sum(-1, keepdims=True), 1e-30)


def _slug(env: str) -> str:
    return env.lower().replace("-v0", "").replace("durotaxis-", "").replace("durotaxis", "default")


def write_report(results: list[dict], command: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_md = ROOT / "docs/component_weights.md"
    lines = [
        "# Reward-component weights that maximise the true return (issue 16)",
        "",
        "Commands: " + ", ".join(f"`{c}`" for c in dict.fromkeys(r.get("command", FIRST_COMMAND) for r in results))
        + " (each in two worker processes, `--worker 0` and `--worker 1` of `--workers 2`, `nice -n 10`); the table "
        "is rebuilt with `--report-only`.  ",
        "Base config: `experiments/configs/component_weights.yaml`. Each row: its seeds vmapped in one program; "
        "IQM over seeds with 95% percentile-bootstrap CIs over seeds (2,000 resamples). *sampled* / *greedy*: "
        "success rate of each seed's final policy over the evaluation episodes; *AUC*: mean training success over "
        "all updates. *final weights*: each channel's share of the weight on its natural scale, "
        "`|w_c s_c| / sum |w s|` (s = the variant's channel scale), mean over seeds at the last update; the "
        "oracle's shares are (0.33, 0.33, 0.33, 0, 0) on both variants.",
        "",
        "| env | method | seeds | env steps (envs x updates) | sampled success | greedy success | training AUC "
        "| front advance / episode | episode length | final weights (natural-scale shares) | train s | run on (date UTC) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        wf = None
        if r.get("weights_final_per_seed") is not None:
            wf = natural_share(np.nanmean(np.asarray(r["weights_final_per_seed"], float), 0), r["channel_scales"])
        elif r.get("fixed_weights") is not None:
            wf = natural_share(r["fixed_weights"], r["channel_scales"])
        ws = "—" if wf is None else ", ".join(f"{n} {v:.2f}" for n, v in zip(r["components"], wf))
        lines.append(
            f"| {r['env']} | {r['method']} | {r['seeds']} | {r['env_steps']:,} ({r.get('num_envs', 16)} x "
            f"{r['num_updates']}) | {_cell(r, 'final')} "
            f"| {_cell(r, 'greedy')} | {_cell(r, 'auc')} | {_pcell(r, 'front_per_episode')} "
            f"| {_pcell(r, 'episode_length')} | {ws} | {r['wall_s']:.0f} | {r['machine']} ({r['date_utc']}) |"
        )
    lines += ["", "Learning curves (training success; front advance per finished episode) and the learned weights' "
              "trajectories (natural-scale shares, mean over seeds; dotted: the oracle's), one figure per environment "
              "and budget:", ""]
    lines += [f"![{env}, {steps:,} steps](images/component_weights_{_slug(env)}_{steps // 1024}k.png)"
              for env, steps in dict.fromkeys((r["env"], r["env_steps"]) for r in results)]
    tail = ""
    if out_md.exists() and "\n## Verdict" in out_md.read_text():
        tail = "\n## Verdict" + out_md.read_text().split("\n## Verdict", 1)[1]
    out_md.write_text("\n".join(lines) + "\n" + tail)

    for env, steps in dict.fromkeys((r["env"], r["env_steps"]) for r in results):
        rs = [r for r in results if r["env"] == env and r["env_steps"] == steps]
        learned = [r for r in rs if r.get("weights_mean") is not None and r["method"] in ("meta_gradient", "seed000")]
        curves = [("success_curve_mean", "training success"), ("front_per_episode_curve", "front advance / episode")]
        curves = [c for c in curves if any(c[0] in r for r in rs)]
        n = len(curves) + len(learned)
        fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 3.8), squeeze=False)
        for ax, (key, title) in zip(axes[0], curves):
            for r in rs:
                if key in r:
                    x = (np.arange(r["num_updates"]) + 1) * r["batch_size"]
                    ax.plot(x, r[key], label=r["method"])
            ax.set_title(f"{env}, {steps:,} steps:\n{title} (mean of {rs[0]['seeds']} seeds)", fontsize=9)
            ax.set_xlabel("env steps")
            ax.legend(fontsize=7)
        for ax, r in zip(axes[0, len(curves):], learned):
            w = natural_share(np.asarray(r["weights_mean"], float), r["channel_scales"])
            x = (np.arange(len(w)) + 1) * r["batch_size"]
            for c, n in enumerate(r["components"]):
                line = ax.plot(x, w[:, c], label=n)[0]
                if r.get("oracle_weights") is not None:
                    o = natural_share(r["oracle_weights"], r["channel_scales"])[c]
                    ax.axhline(o, color=line.get_color(), ls=":", lw=1)
            ax.set_title(f"{r['method']} weights (natural-scale shares; dotted: oracle)", fontsize=9)
            ax.set_xlabel("env steps")
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(ROOT / f"docs/images/component_weights_{_slug(env)}_{steps // 1024}k.png", dpi=100)
        plt.close(fig)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--steps", type=int, default=16384, help="env steps per seed")
    ap.add_argument("--eval-episodes", type=int, default=32)
    ap.add_argument("--rows", nargs="*", default=DEFAULT_ROWS, choices=DEFAULT_ROWS)
    ap.add_argument("--worker", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra overrides for every row")
    ap.add_argument("--tag", default="", help="prefix of the rows' result files (another budget)")
    ap.add_argument("--resume", action="store_true", help="skip rows whose JSON exists with the same key")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args(argv)
    given = sys.argv[1:] if argv is None else argv
    drop = {"--resume", "--report-only"}
    command = "python experiments/component_weights.py " + " ".join(
        a for i, a in enumerate(given) if a not in drop and a not in ("--worker", "--workers")
        and (i == 0 or given[i - 1] not in ("--worker", "--workers")))
    if args.report_only:
        for p in CACHE.glob("*.json"):  # backfill the progress proxy of rows written before it existed
            r = json.loads(p.read_text())
            r2 = add_progress(r)
            if r2 is not r:
                p.write_text(json.dumps(r2, indent=1))
        write_report(load_rows(), command)
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    key = {"seeds": args.seeds, "steps": args.steps, "eval_episodes": args.eval_episodes,
           "base": (BASE.read_text()), "set": list(args.set)}
    for i, row in enumerate(args.rows):
        if i % args.workers != args.worker:
            continue
        path = CACHE / (row_file(row, args.tag) + ".json")
        if args.resume and path.exists() and json.loads(path.read_text()).get("key") == key:
            continue
        r = run_row(row, args)
        r["command"] = command
        path.write_text(json.dumps({"key": key, **r}, indent=1))
        print(f"{row:>30}: sampled {r['final_iqm']:.3f} greedy {r['greedy_iqm']:.3f} AUC {r['auc_iqm']:.3f} "
              f"({r['wall_s']:.0f} s)", flush=True)
        write_report(load_rows(), command)


if __name__ == "__main__":
    main()
