#!/usr/bin/env bash
# Run every benchmark and write its JSON under benchmarks/results/ (or $BENCH_RESULTS_DIR).
#
#   benchmarks/run_all.sh [--quick | --smoke] [--dry-run] [--skip-compare]
#
# Runs unchanged on CPU or on a GPU (CUDA jax from the `cuda` extra: pip install -e '.[cuda]'): the
# backend is read from jax. On a GPU the training rows use 1, 8, 64 and 512 vmapped seeds and the WSA
# rows are included; on a CPU 1 and 8 seeds.
#   --quick         fewer rounds / updates per row (minutes on 2 CPU cores instead of an hour)
#   --smoke         tiny sizes, results in a temporary directory (checks the script end to end)
#   --dry-run       print the commands only
#   --skip-compare  skip compare_commits.py (needs the baseline worktree, see that script)
# Environment: PY (python to use; default .venv/bin/python, else python3), BENCH_BACKEND (override the
# detected backend, e.g. for a dry run: gpu or cpu), BASELINE (tree for compare_commits.py).
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=full
DRY=0
COMPARE=1
for arg in "$@"; do
  case "$arg" in
    --quick) MODE=quick ;;
    --smoke) MODE=smoke ;;
    --dry-run) DRY=1 ;;
    --skip-compare) COMPARE=0 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "run_all.sh: unknown argument '$arg' (allowed: --quick, --smoke, --dry-run, --skip-compare)" >&2; exit 2 ;;
  esac
done

if [[ -z "${PY:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-$PWD/.venv/jax_cache}"
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="${JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS:-0.5}"

BACKEND="${BENCH_BACKEND:-}"
if [[ -z "$BACKEND" ]]; then
  BACKEND=$("$PY" -c 'import jax; print(jax.default_backend())')
fi

if [[ "$MODE" == smoke ]]; then
  export BENCH_RESULTS_DIR="${BENCH_RESULTS_DIR:-$(mktemp -d)}"
fi
RES="${BENCH_RESULTS_DIR:-benchmarks/results}"
echo "run_all.sh: mode=$MODE backend=$BACKEND results=$RES"

run() {
  echo "+ $*"
  if [[ $DRY == 0 ]]; then "$@"; fi
}

if [[ "$BACKEND" == gpu || "$BACKEND" == cuda ]]; then
  SEEDS=(1 8 64 512)
  TRAIN_TASKS=(cartpole durotaxis durotaxis_wsa)
else
  SEEDS=(1 8)
  TRAIN_TASKS=(cartpole durotaxis durotaxis_wsa)
fi

case "$MODE" in
  smoke)
    run "$PY" benchmarks/env_throughput.py --batches 8 --steps 4 --repeats 1 --out "$RES/env_throughput.json"
    run "$PY" benchmarks/hybrid_env_throughput.py --envs HardGoal-v0,HardMove-n4-v0 --sizes 8 --episodes 16 \
      --steps 4 --out "$RES/hybrid_env_throughput.json"
    if [[ $COMPARE == 1 ]]; then run "$PY" benchmarks/compare_commits.py --smoke; fi
    ;;
  quick|full)
    Q=(); [[ "$MODE" == quick ]] && Q=(--quick)
    R=7; [[ "$MODE" == quick ]] && R=3
    run "$PY" benchmarks/env_throughput.py --out "$RES/env_throughput.json"
    run "$PY" benchmarks/hybrid_env_throughput.py --out "$RES/hybrid_env_throughput.json"
    run "$PY" benchmarks/hard_goal_ablation.py
    run "$PY" benchmarks/network_forward.py
    run "$PY" benchmarks/train_throughput.py "${Q[@]}" --seeds "${SEEDS[@]}" --tasks "${TRAIN_TASKS[@]}"
    run "$PY" benchmarks/seed_scaling.py "${Q[@]}" --seeds "${SEEDS[@]}"
    run "$PY" benchmarks/balance_overhead.py "${Q[@]}"
    run "$PY" benchmarks/meta_gradient_cost.py "${Q[@]}"
    run "$PY" benchmarks/meta_train_cost.py --rounds "$R"
    run "$PY" benchmarks/profile_update.py --rounds "$R"
    if [[ $COMPARE == 1 ]]; then
      run "$PY" benchmarks/compare_commits.py --rounds "$R" ${BASELINE:+--baseline "$BASELINE"}
      run "$PY" benchmarks/train_speedup.py --rounds "$R" ${BASELINE:+--baseline "$BASELINE"}
    fi
    ;;
esac
echo "run_all.sh: done ($RES)"
