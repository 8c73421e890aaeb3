#!/usr/bin/env bash
# Epoch time of examples/fashion_mnist against PyTorch's same model, measured
# in the same run, both under this environment's OPENBLAS_CORETYPE.
#   bench/fashion_mnist.sh [REPEATS] [LIMIT]     (defaults 3, 0 = all 60000)
# Prints each run, then medians and the ratio loopgrad / PyTorch (best
# threading: OMP_WAIT_POLICY=PASSIVE) and PyTorch's default threading too.
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-3}
limit=${2:-0}
build=${LG_BUILD_DIR:-build}
python=${PYTHON:-/usr/bin/python3}
[ -x "$build/examples/fashion_mnist" ] || { echo "build first: scripts/setup" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
seconds() { awk '/^epoch 1 seconds/ {print $4}'; }
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, $(nproc) cores, limit ${limit} (0: all), ${repeats} repeats"
for r in $(seq "$repeats"); do
  "$build/examples/fashion_mnist" --limit "$limit" --checkpoint "$tmp/ck.safetensors" | seconds >> "$tmp/lg"
  OMP_WAIT_POLICY=PASSIVE "$python" bench/fashion_mnist_torch.py --limit "$limit" | seconds >> "$tmp/pt_best"
  "$python" bench/fashion_mnist_torch.py --limit "$limit" | seconds >> "$tmp/pt_default"
  echo "run $r: loopgrad $(tail -1 "$tmp/lg") s, pytorch (passive) $(tail -1 "$tmp/pt_best") s, pytorch (default) $(tail -1 "$tmp/pt_default") s"
done
lg=$(median < "$tmp/lg"); best=$(median < "$tmp/pt_best"); def=$(median < "$tmp/pt_default")
echo "median epoch seconds: loopgrad $lg, pytorch passive $best, pytorch default $def"
awk -v a="$lg" -v b="$best" -v c="$def" 'BEGIN {printf "loopgrad / pytorch: %.2f (best threading), %.2f (default)\n", a / b, a / c}'
