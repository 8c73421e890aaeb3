#!/usr/bin/env bash
# Data-parallel scaling on one machine: epoch time of examples/fashion_mnist
# as 1 process x 2 OpenBLAS threads, 2 MPI processes x 1 thread
# (--distributed; Open MPI's default busy polling, then yielding the core while
# waiting, which is what a shared machine needs), and 1 process x 1 thread
# for the compute alone.
#   bench/scaling.sh [REPEATS] [LIMIT]     (defaults 3, 0 = all 60000 images)
# Prints the load (uptime) before and after, each run, and the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-3}
limit=${2:-0}
build=${LG_BUILD_DIR:-build}
[ -x "$build/examples/fashion_mnist" ] || { echo "build first: scripts/setup" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "needs mpirun (openmpi-bin)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
exe="$build/examples/fashion_mnist"
args=(--limit "$limit" --checkpoint "$tmp/ck.safetensors")
seconds() { awk '/^epoch 1 seconds/ {print $4}'; }
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, $(nproc) cores, limit ${limit} (0: all), ${repeats} repeats"
echo "load before: $(uptime)"
for r in $(seq "$repeats"); do
  OPENBLAS_NUM_THREADS=2 "$exe" "${args[@]}" | seconds >> "$tmp/p1t2"
  OPENBLAS_NUM_THREADS=1 mpirun --allow-run-as-root --oversubscribe --timeout 900 -np 2 \
    "$exe" --distributed "${args[@]}" | seconds >> "$tmp/p2t1"
  OPENBLAS_NUM_THREADS=1 mpirun --allow-run-as-root --oversubscribe --timeout 900 --mca mpi_yield_when_idle 1 -np 2 \
    "$exe" --distributed "${args[@]}" | seconds >> "$tmp/p2t1y"
  OPENBLAS_NUM_THREADS=1 "$exe" "${args[@]}" | seconds >> "$tmp/p1t1"
  echo "run $r: 1x2 $(tail -1 "$tmp/p1t2") s, 2x1 $(tail -1 "$tmp/p2t1") s, 2x1 yielding $(tail -1 "$tmp/p2t1y") s, 1x1 $(tail -1 "$tmp/p1t1") s"
done
echo "load after: $(uptime)"
echo "median epoch seconds: 1 process x 2 threads $(median < "$tmp/p1t2"), 2 processes x 1 thread $(median < "$tmp/p2t1")" \
  "(yielding $(median < "$tmp/p2t1y")), 1 process x 1 thread $(median < "$tmp/p1t1")"
