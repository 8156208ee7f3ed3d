"""Hybrid PPO on the parameterised-action benchmarks (Platform-v0, Goal-v0 and HyAR's Hard Goal, Catch
Point and Hard Move n = 4, 6, 8, 10), against published numbers.

Runs ``jax.jit(jax.vmap(trainer.train))(keys)`` for ``--seeds`` vmapped seeds (default 5), evaluates each
seed's **greedy** policy (argmax action, squashed mean parameters) with
:func:`balancedrl.training.evaluate.make_evaluate`, and reports the task's standard metric:

* Platform-v0: mean episode return (= mean fraction of the level covered, final x / 1035), docs/specs/parameterised_envs.md §3;
* Goal-v0: scoring rate (fraction of episodes with return 50), same section;
* HardGoal-v0, CatchPoint-v0, HardMove-n{4,6,8,10}-v0: HyAR's success rate (docs/specs/hyar_envs.md §1.7, §2.7,
  §3.6): the fraction of greedy evaluation episodes that end with the env's ``info["success"]`` (Hard Goal:
  return 50; Catch Point / Hard Move: some step with r > 4, i.e. within 0.2 of the target, within the 25 / 30
  step cap).

Evaluation episodes per seed (``--eval-episodes`` overrides): HyAR's counts for its tasks (Hard Goal 100,
Catch Point 50, Hard Move 50: :data:`EVAL_EPISODES`), 1000 for Platform / Goal (as their earlier rows).

Budgets (env steps per seed, ``trainer.total_timesteps`` of the YAML, ``--steps`` overrides): Platform /
Goal / Hard Goal / Hard Move 1,024,000 (1,000 updates of 16 envs x 64 steps); Catch Point 512,000. They
are stated in every row (column ``env steps / seed``).

Per seed the metric is the mean over its evaluation episodes; the row gives mean ± sd (ddof 1) over seeds
and is appended to ``docs/hybrid_benchmarks.md`` with the exact command and the machine.

``--techniques on`` switches on adaptive gradient scaling (``norm_refresh: epoch``, the YAML's scaling
values) and the adaptive entropy schedule with collapse penalty (threshold 0.05, scale 1.0), and stretches
the entropy schedule over the run's updates (``platform.yaml`` / ``goal.yaml`` have them on already, the HyAR
tasks' YAMLs off); ``--techniques off`` switches both off: fixed surrogate weights ``base / sum(base)``
(0.5 / 0.5 in the YAMLs), fixed entropy coefficient ``entropy_coeff``, no collapse penalty. Everything
else (network, PPO settings, budget) is identical.

``--env all`` runs the eight rows of HyAR's suite (Goal, Hard Goal, Platform, Catch Point, Hard Move
n = 4, 6, 8, 10) one after the other. ``--smoke`` checks the pipeline in about a minute per env: a tiny
config (2 envs x 16 steps, 2 updates, hidden 8), 2 seeds, 4 evaluation episodes, nothing written.

Usage::

    nice -n 19 python experiments/hybrid_benchmarks.py --env Platform-v0 --seeds 5 --techniques on
    nice -n 19 python experiments/hybrid_benchmarks.py --env Goal-v0 --seeds 5 --techniques off --steps 200000
    nice -n 19 python experiments/hybrid_benchmarks.py --env HardMove-n10-v0 --seeds 5 --techniques off
    nice -n 19 python experiments/hybrid_benchmarks.py --env all --techniques off
    nice -n 19 python experiments/hybrid_benchmarks.py --env all --smoke
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from balancedrl.training.config import load_config  # noqa: E402
from balancedrl.training.evaluate import make_evaluate, summarize  # noqa: E402
from balancedrl.training.trainer import make_train  # noqa: E402
from benchmarks.common import command_line, machine_info, machine_line  # noqa: E402

_CFG = REPO / "experiments" / "configs"
HARD_MOVES = tuple(f"HardMove-n{n}-v0" for n in (4, 6, 8, 10))
CONFIGS = {
    "Platform-v0": _CFG / "platform.yaml",
    "Goal-v0": _CFG / "goal.yaml",
    "HardGoal-v0": _CFG / "hard_goal.yaml",
    "CatchPoint-v0": _CFG / "catch_point.yaml",
    **{name: _CFG / "hard_move.yaml" for name in HARD_MOVES},  # n from env.name
}
# HyAR's suite in the order of its tables (CHDP's too): eight rows
SUITE = ("Goal-v0", "HardGoal-v0", "Platform-v0", "CatchPoint-v0", *HARD_MOVES)
METRIC = {
    "Platform-v0": ("mean_return", "mean return"),
    "Goal-v0": ("success_rate", "scoring rate"),
    "HardGoal-v0": ("success_rate", "success rate"),
    "CatchPoint-v0": ("success_rate", "success rate"),
    **{name: ("success_rate", "success rate") for name in HARD_MOVES},
}
# greedy evaluation episodes per seed: HyAR's counts (docs/specs/hyar_envs.md §1.7, §2.7, §3.6) for its
# tasks; Platform / Goal keep the 1000 of their earlier rows
EVAL_EPISODES = {
    "Platform-v0": 1000,
    "Goal-v0": 1000,
    "HardGoal-v0": 100,
    "CatchPoint-v0": 50,
    **{name: 50 for name in HARD_MOVES},
}
SMOKE = [
    "env.num_envs=2",
    "trainer.num_steps=16",
    "trainer.update_epochs=1",
    "trainer.num_minibatches=1",
    "trainer.total_timesteps=64",  # 2 updates
    "actor_critic.hidden_dim=8",
    "trainer.gradient_scaling.warmup_steps=0",
]

ON = [
    "trainer.gradient_scaling.enable_adaptive_scaling=true",
    "trainer.entropy_regularization.enable_adaptive_entropy=true",
    "trainer.entropy_regularization.min_entropy_threshold=0.05",
    "trainer.entropy_regularization.penalty_scale=1.0",
]
OFF = [
    "trainer.gradient_scaling.enable_adaptive_scaling=false",
    "trainer.entropy_regularization.enable_adaptive_entropy=false",
    "trainer.entropy_regularization.min_entropy_threshold=0.0",
    "trainer.entropy_regularization.penalty_scale=0.0",
]


def build_config(env: str, techniques: bool, steps: int | None, config: str | None, overrides: list[str]):
    """The run's validated config: YAML, ``--steps``, techniques toggles, then the user's ``--set``."""
    path = config or CONFIGS[env]
    base = [f"env.name={env}"] + ([f"trainer.total_timesteps={steps}"] if steps else [])
    cfg = load_config(path, base + list(overrides))
    toggles = (
        ON + [f"trainer.entropy_regularization.entropy_decay_episodes={cfg.num_updates}"] if techniques else OFF
    )
    return load_config(path, base + toggles + list(overrides))


def run(env, seeds, techniques, steps=None, config=None, overrides=(), seed=0, eval_episodes=None):
    cfg = build_config(env, techniques, steps, config, list(overrides))
    trainer = make_train(cfg)
    keys = jax.random.split(jax.random.PRNGKey(seed), seeds + 1)
    train_keys, eval_key = keys[:seeds], keys[seeds]
    t0 = time.perf_counter()
    compiled = jax.jit(jax.vmap(trainer.train)).lower(train_keys).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    runner, metrics = jax.block_until_ready(compiled(train_keys))
    train_s = time.perf_counter() - t0

    eval_episodes = eval_episodes or EVAL_EPISODES[env]
    evaluate = make_evaluate(trainer.adapter, trainer.policy_apply, eval_episodes, "greedy")
    t0 = time.perf_counter()
    res = jax.block_until_ready(
        jax.vmap(evaluate)(runner.params["network"], jax.random.split(eval_key, seeds))
    )
    eval_s = time.perf_counter() - t0
    per_seed = [summarize(jax.tree_util.tree_map(lambda x, i=i: x[i], res)) for i in range(seeds)]
    key, _ = METRIC[env]
    vals = np.asarray([s[key] for s in per_seed])
    m = {k: np.asarray(v) for k, v in jax.device_get(metrics).items()}
    return {
        "env": env,
        "techniques": "on" if techniques else "off",
        "param_prior": cfg.actor_critic.param_prior,
        "seeds": seeds,
        "eval_episodes": eval_episodes,
        "num_updates": cfg.num_updates,
        "env_steps_per_seed": cfg.num_updates * cfg.batch_size,
        "per_seed": per_seed,
        "values": vals,
        "mean": float(vals.mean()),
        "sd": float(vals.std(ddof=1)) if seeds > 1 else 0.0,
        "compile_s": compile_s,
        "train_s": train_s,
        "eval_s": eval_s,
        "steps_per_s": seeds * cfg.num_updates * cfg.batch_size / train_s,
        "curves": {
            k: np.nanmean(m[k], axis=0)
            for k in (
                "episode_return",
                "success_rate",
                "discrete_entropy",
                "continuous_entropy",
                "discrete_weight_used",
                "continuous_weight_used",
            )
            if k in m
        },
    }


PUBLISHED = (
    "# Hybrid PPO on Platform-v0 and Goal-v0\n\n"
    "Metric (docs/specs/parameterised_envs.md §3): Platform-v0 = mean episode return over evaluation episodes (final x / 1035, the fraction "
    "of the level covered; max 1.0); Goal-v0 = scoring rate (fraction of episodes with return 50; max 1.0).\n\n"
    "Published results (`/work/shared/reference/hybrid_envs/SPEC.md` §3):\n\n"
    "| method (source) | Platform | Goal |\n"
    "|---|---|---|\n"
    "| HPPO (HyAR, Li et al., ICLR 2022, Table 2) | 0.80 ± 0.02 | 0.0 |\n"
    "| PDQN (HyAR Table 2) | 0.93 ± 0.05 | 0.70 ± 0.07 |\n"
    "| HyAR-TD3 (HyAR Table 2) | 0.98 ± 0.01 | 0.78 ± 0.03 |\n"
    "| MP-DQN (Bester et al. 2019) | 0.987 | 0.789 |\n"
    "| random policy (docs/specs/parameterised_envs.md §3) | 0.154 | 0.0005 |\n\n"
    "Note: our rows below use small CPU budgets (column `env steps / seed`); the papers' training budgets are "
    "given in the papers and were not checked here.\n\n"
    "## balancedrl hybrid PPO (written by `experiments/hybrid_benchmarks.py`)\n\n"
    "Per seed: the greedy policy (argmax action, squashed mean parameters) evaluated on the episodes given; "
    "then mean ± sd (ddof 1) over seeds. techniques on = adaptive gradient scaling (the gradient-scaling source, "
    "`norm_refresh: epoch`) + adaptive entropy schedule with collapse penalty (the entropy-schedule source); off = fixed 0.5 / 0.5 "
    "surrogate weights, fixed entropy coefficient, no penalty.\n\n"
    "| env | techniques | seeds | env steps / seed | metric | mean ± sd | per seed | success rate (mean) "
    "| eval episodes / seed | train s | machine | date (UTC) | command |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
)


def techniques_label(r: dict) -> str:
    """``on`` / ``off``, plus the parameter prior where one was used (``actor_critic.param_prior``)."""
    prior = r["param_prior"]
    return r["techniques"] + ("" if prior == "none" else f" + {prior} prior")


def write_row(path: Path, r: dict, machine: dict, eval_episodes: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(PUBLISHED)
    _, label = METRIC[r["env"]]
    succ = np.mean([s["success_rate"] for s in r["per_seed"]])
    row = (
        f"| {r['env']} | {techniques_label(r)} | {r['seeds']} | {r['env_steps_per_seed']:,} | {label} | "
        f"{r['mean']:.3f} ± {r['sd']:.3f} | {', '.join(f'{v:.3f}' for v in r['values'])} | {succ:.3f} | "
        f"{eval_episodes} | {r['train_s']:.0f} | {machine_line(machine)} | {machine['date_utc']} | "
        f"`{command_line()}` |\n"
    )
    with path.open("a") as f:
        f.write(row)


def report(r: dict, machine: dict) -> None:
    """Print one run: budget, learning curves (8 points), per-seed evaluation, metric and timings."""
    _, label = METRIC[r["env"]]
    print(
        f"{r['env']}  techniques={techniques_label(r)}  seeds={r['seeds']}  updates={r['num_updates']}  "
        f"env steps/seed={r['env_steps_per_seed']:,}  eval episodes/seed={r['eval_episodes']}"
    )
    for k, c in r["curves"].items():
        idx = np.linspace(0, len(c) - 1, min(8, len(c))).astype(int)
        print(f"  {k:24s} " + ", ".join(f"u{i}:{c[i]:.3g}" for i in idx))
    for i, s in enumerate(r["per_seed"]):
        print(
            f"  seed {i}: mean_return {s['mean_return']:.3f}  success_rate {s['success_rate']:.3f}  "
            f"mean_length {s['mean_length']:.2f}"
        )
    print(
        f"{label}: {r['mean']:.3f} ± {r['sd']:.3f}  |  train {r['train_s']:.0f} s ({r['steps_per_s']:,.0f} "
        f"env steps/s), compile {r['compile_s']:.0f} s, eval {r['eval_s']:.0f} s  |  {machine_line(machine)}"
    )


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", choices=sorted(CONFIGS) + ["all"], required=True, help="a task, or all eight rows")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--techniques", choices=("on", "off"), default="on")
    p.add_argument("--steps", type=int, default=None, help="env steps per seed (trainer.total_timesteps)")
    p.add_argument("--config", default=None, help="YAML config (default: experiments/configs/<env>.yaml)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override, repeatable (applied last)",
    )
    p.add_argument("--seed", type=int, default=0, help="base PRNG seed (split into --seeds + 1 keys)")
    p.add_argument(
        "--eval-episodes", type=int, default=None, help="per seed (default: HyAR's count per task, see EVAL_EPISODES)"
    )
    p.add_argument("--out", default=str(REPO / "docs" / "hybrid_benchmarks.md"))
    p.add_argument("--no-write", action="store_true", help="do not append to docs/hybrid_benchmarks.md")
    p.add_argument(
        "--smoke", action="store_true", help="pipeline check: tiny config, 2 seeds, 4 eval episodes, no row written"
    )
    a = p.parse_args(argv)
    if a.smoke:
        a.seeds, a.eval_episodes, a.no_write, a.steps = 2, 4, True, None
        a.overrides = SMOKE + list(a.overrides)
    if a.seeds < 1:
        p.error(f"--seeds must be >= 1, got {a.seeds}")
    if a.steps is not None and a.steps < 1:
        p.error(f"--steps must be >= 1, got {a.steps}")
    if a.eval_episodes is not None and a.eval_episodes < 1:
        p.error(f"--eval-episodes must be >= 1, got {a.eval_episodes}")
    if a.env == "all" and a.config:
        p.error("--config needs a single --env (each task has its own YAML)")
    results = []
    for env in SUITE if a.env == "all" else (a.env,):
        r = run(env, a.seeds, a.techniques == "on", a.steps, a.config, a.overrides, a.seed, a.eval_episodes)
        machine = machine_info()
        report(r, machine)
        if not a.no_write:
            write_row(Path(a.out), r, machine, r["eval_episodes"])
            print(f"appended a row to {a.out}")
        results.append(r)
    return results


if __name__ == "__main__":
    main()
