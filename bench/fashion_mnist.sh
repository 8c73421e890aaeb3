#!/usr/bin/env bash
# Epoch time of examples/fashion_mnist against PyTorch's same model, measured
# in the same run, both under this environment's OPENBLAS_CORETYPE.
#   bench/fashion_mnist.sh [REPEATS] [LIMIT]     (defaults 3, 0 = all 60000)
# Prints each run, then medians and the ratio loopgrad / PyTorch (best
# threading: OMP_WAIT_POLICY=PASSIVE) and PyTorch's default threading too.
# LG_BENCH_PROVIDERS="auto openblas onednn Prescott:auto" times loopgrad once
# per GEMM provider as well (auto: the library's own choice; the others:
# LG_GEMM), each optionally under a forced OpenBLAS core (CORE:provider sets
# OPENBLAS_CORETYPE=CORE for that run: Prescott is what Debian's OpenBLAS
# falls back to on CPUs it does not know);
# PyTorch is skipped with a note when python3-torch is missing, or with
# LG_BENCH_TORCH=0.
# Keras 3 + TensorFlow (bench/fashion_mnist_keras.py) is timed too when its
# venv exists (bench/keras_venv.sh makes it; KERAS_PYTHON names another
# interpreter), once per LG_BENCH_KERAS_THREADS entry (default: "default 2:1";
# INTRA:INTER sets TF's intra-op and inter-op thread counts), two epochs a
# run: the first includes TF's tracing, the second is the steady state.
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-3}
limit=${2:-0}
build=${LG_BUILD_DIR:-build}
python=${PYTHON:-/usr/bin/python3}
[ -x "$build/examples/fashion_mnist" ] || { echo "build first: scripts/setup" >&2; exit 1; }
read -r -a providers <<< "${LG_BENCH_PROVIDERS:-auto}"
torch=1
"$python" -c "import torch" 2>/dev/null || { torch=0; echo "PyTorch: not installed (python3-torch), skipped"; }
[ "${LG_BENCH_TORCH:-1}" = 0 ] && { torch=0; echo "PyTorch: skipped (LG_BENCH_TORCH=0)"; }
keras_python=${KERAS_PYTHON:-bench/.venv/bin/python}
read -r -a keras_threads <<< "${LG_BENCH_KERAS_THREADS:-default 2:1}"
keras=1
"$keras_python" -c "import tensorflow, keras" 2>/dev/null || { keras=0; echo "Keras: no TensorFlow + Keras at $keras_python (make it: bench/keras_venv.sh), skipped"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
seconds() { awk '/^epoch 1 seconds/ {print $4}'; }
# Runs the Keras peer with thread setting $1 (default or INTRA:INTER), appending
# its epoch 1 and epoch 2 seconds and its test accuracy to $tmp/ks{1,2,acc}_$1.
run_keras() {
  local args=() out
  [ "$1" = default ] || args=(--intra "${1%%:*}" --inter "${1#*:}")
  out=$("$keras_python" bench/fashion_mnist_keras.py --epochs 2 --limit "$limit" "${args[@]}" 2> "$tmp/keras_err") ||
    { cat "$tmp/keras_err" >&2; return 1; }
  awk '/^epoch 1 seconds/ {print $4}' <<< "$out" >> "$tmp/ks1_$1"
  awk '/^epoch 2 seconds/ {print $4}' <<< "$out" >> "$tmp/ks2_$1"
  awk '/^epoch [12] seconds/ {printf "%s%s", sep, $NF; sep = "/"} END {print ""}' <<< "$out" >> "$tmp/kscpu_$1"
  awk '/^test accuracy/ {print $NF}' <<< "$out" >> "$tmp/ksacc_$1"
}
# CPU seconds (user + system) of a whole run: on a shared, loaded machine this
# moves far less than the wall-clock epoch time.
TIMEFORMAT='%3U %3S'
export TIMEFORMAT
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, $(nproc) cores, limit ${limit} (0: all), ${repeats} repeats, $(uptime | sed 's/.*load average/load average/')"
# Runs fashion_mnist under configuration $1 ([CORE:]provider) with the rest of the arguments.
run_lg() {
  local p=${1#*:} core=
  [[ $1 == *:* ]] && core=${1%%:*}
  shift
  if [ "$p" = auto ]; then
    env -u LG_GEMM ${core:+OPENBLAS_CORETYPE=$core} "$build/examples/fashion_mnist" "$@"
  else
    env LG_GEMM="$p" ${core:+OPENBLAS_CORETYPE=$core} "$build/examples/fashion_mnist" "$@"
  fi
}
for p in "${providers[@]}"; do
  echo "$p: $(run_lg "$p" --limit 64 --checkpoint "$tmp/ck.safetensors" | grep '^GEMM')"
done
if ((keras)); then
  echo "Keras: $("$keras_python" bench/fashion_mnist_keras.py --info 2>/dev/null), thread settings: ${keras_threads[*]}"
fi
for r in $(seq "$repeats"); do
  line="run $r:"
  for p in "${providers[@]}"; do
    { time run_lg "$p" --limit "$limit" --checkpoint "$tmp/ck.safetensors" > "$tmp/out"; } 2>> "$tmp/cpu_$p"
    seconds < "$tmp/out" >> "$tmp/lg_$p"
    awk '/^test loss/ {print $NF}' "$tmp/out" >> "$tmp/acc_$p"
    awk '{print $1 + $2}' <(tail -1 "$tmp/cpu_$p") >> "$tmp/cpus_$p"
    line+=" loopgrad $p $(tail -1 "$tmp/lg_$p") s (process CPU $(tail -1 "$tmp/cpus_$p") s, test accuracy $(tail -1 "$tmp/acc_$p")),"
  done
  if ((keras)); then
    for k in "${keras_threads[@]}"; do
      run_keras "$k"
      line+=" keras ($k) epoch 1 $(tail -1 "$tmp/ks1_$k") s, epoch 2 $(tail -1 "$tmp/ks2_$k") s (epoch CPU $(tail -1 "$tmp/kscpu_$k") s, test accuracy $(tail -1 "$tmp/ksacc_$k")),"
    done
  fi
  if ((torch)); then
    OMP_WAIT_POLICY=PASSIVE "$python" bench/fashion_mnist_torch.py --limit "$limit" | seconds >> "$tmp/pt_best"
    "$python" bench/fashion_mnist_torch.py --limit "$limit" | seconds >> "$tmp/pt_default"
    line+=" pytorch (passive) $(tail -1 "$tmp/pt_best") s, pytorch (default) $(tail -1 "$tmp/pt_default") s"
  fi
  echo "$line"
done
for p in "${providers[@]}"; do
  echo "median epoch seconds, loopgrad $p: $(median < "$tmp/lg_$p") (process CPU seconds, whole run: $(median < "$tmp/cpus_$p"))"
done
echo "load after: $(uptime | sed 's/.*load average/load average/')"
lg=$(median < "$tmp/lg_${providers[0]}")
if ((keras)); then
  for k in "${keras_threads[@]}"; do
    k1=$(median < "$tmp/ks1_$k"); k2=$(median < "$tmp/ks2_$k")
    echo "median epoch seconds: loopgrad (${providers[0]}) $lg, keras ($k) epoch 1 $k1, epoch 2 $k2"
    awk -v a="$lg" -v b="$k1" -v c="$k2" -v k="$k" 'BEGIN {printf "loopgrad / keras (%s): %.2f (keras epoch 1), %.2f (keras epoch 2)\n", k, a / b, a / c}'
  done
fi
((torch)) || exit 0
lg=$(median < "$tmp/lg_${providers[0]}"); best=$(median < "$tmp/pt_best"); def=$(median < "$tmp/pt_default")
echo "median epoch seconds: loopgrad (${providers[0]}) $lg, pytorch passive $best, pytorch default $def"
awk -v a="$lg" -v b="$best" -v c="$def" 'BEGIN {printf "loopgrad / pytorch: %.2f (best threading), %.2f (default)\n", a / b, a / c}'
