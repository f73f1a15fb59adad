#!/usr/bin/env bash
# The ratio benchmarks on an accelerator, in under 8 minutes:
# SAM vs two bare passes, stochastic depth skipping, NT-Xent vs a straightforward
# version, MAML second vs first order. Run where the package is installed:
#
#   bash keras_efficient/bench/gpu.sh [--rounds N] [--backend jax|tensorflow] [--out DIR] [--quick] [--dry-run]
#
# --rounds: timed rounds per case (default 20); --backend: KERAS_BACKEND (default:
# Keras's); --out: folder for the JSON results and summary.md (default
# bench_results/gpu); --quick: one round, no warm-up, no time limit (checks that every
# case runs, e.g. on a CPU; its figures mean nothing); --dry-run: print the command
# instead of running it.
# The run is stopped at 8 minutes; each finished benchmark's JSON is already written.
set -euo pipefail

BENCHMARKS=(sam stochastic_depth ssl_nt_xent maml_order)
LIMIT_SECONDS=480
rounds=20
backend="${KERAS_BACKEND:-}"
out=bench_results/gpu
dry_run=false
quick=false

usage_error() {
  echo "gpu.sh: $1" >&2
  echo "usage: bash keras_efficient/bench/gpu.sh [--rounds N] [--backend jax|tensorflow] [--out DIR] [--quick] [--dry-run]" >&2
  exit 2
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds)
      [[ $# -ge 2 ]] || usage_error "--rounds needs a value"
      [[ "$2" =~ ^[1-9][0-9]*$ ]] || usage_error "--rounds expects a positive integer. Received: --rounds $2"
      rounds="$2"; shift 2 ;;
    --backend)
      [[ $# -ge 2 ]] || usage_error "--backend needs a value"
      [[ "$2" == jax || "$2" == tensorflow ]] \
        || usage_error "--backend expects jax or tensorflow. Received: --backend $2"
      backend="$2"; shift 2 ;;
    --out)
      [[ $# -ge 2 ]] || usage_error "--out needs a value"
      out="$2"; shift 2 ;;
    --quick) quick=true; shift ;;
    --dry-run) dry_run=true; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) usage_error "unknown argument $1" ;;
  esac
done

command=(timeout "$LIMIT_SECONDS" env ${backend:+KERAS_BACKEND=$backend}
         python -m keras_efficient.cli bench "${BENCHMARKS[@]}" --rounds "$rounds" --out "$out")
if $quick; then
  command=(env ${backend:+KERAS_BACKEND=$backend}
           python -m keras_efficient.cli bench "${BENCHMARKS[@]}" --rounds 1 --warmup 0 --out "$out")
fi
if $dry_run; then
  printf '%q ' "${command[@]}"; echo
  exit 0
fi
exec "${command[@]}"
