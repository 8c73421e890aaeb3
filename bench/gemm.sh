#!/usr/bin/env bash
# The GEMM provider table (bench/gemm.c): OpenBLAS under the core it detects,
# then under each forced core (OPENBLAS_CORETYPE must be set before OpenBLAS
# loads, so each is its own run), and oneDNN; 1 and 2 threads each.
#   bench/gemm.sh [REPEATS] [CORES...]     (defaults 5; SkylakeX Haswell Prescott)
# The machine's load is printed before and after: on a shared machine, compare
# ratios within one run, not numbers across runs.
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-5}
shift || true
cores=("$@")
((${#cores[@]})) || cores=(SkylakeX Haswell Prescott)
build=${LG_BUILD_DIR:-build}
[ -x "$build/bench/gemm" ] || { echo "build first: scripts/setup" >&2; exit 1; }
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ') model $(grep -m1 '^model\s' /proc/cpuinfo | cut -d: -f2 | tr -d ' '), $(nproc) cores"
echo "load before: $(uptime | sed 's/.*load average/load average/')"
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset} (as detected):"
"$build/bench/gemm" --repeats "$repeats"
for c in "${cores[@]}"; do
  echo
  echo "OPENBLAS_CORETYPE=$c:"
  OPENBLAS_CORETYPE=$c "$build/bench/gemm" --repeats "$repeats" --only openblas | tail -n +3
done
echo
echo "load after: $(uptime | sed 's/.*load average/load average/')"
