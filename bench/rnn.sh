#!/usr/bin/env bash
# loopgrad against PyTorch on eleven recurrent models (issue 10's eight, a
# GRU(256), a Bidirectional LSTM and a custom peephole cell), both sides in
# this run, under the same OPENBLAS_CORETYPE (the one OpenBLAS detects here,
# unless set):
#   bench/rnn.sh [--quick]          (--quick: 2 timed steps each, < 3 minutes)
# loopgrad runs with the fuse_rnn pass off ("generic": loops stepped by the
# executor) and as built ("fused": compile replaces matched loops by the fused
# rnn op). PyTorch (Debian's python3-torch) runs at 1 thread with
# OPENBLAS_NUM_THREADS=1 and at 2 threads with OMP_WAIT_POLICY=PASSIVE; its
# best per model is the reference. Prints the table (median ms per step, wall
# and CPU time of all threads; ratio loopgrad / PyTorch, above 1 = slower),
# the OpenBLAS core of both sides, and last
#   geomean loopgrad/pytorch train R infer R
# for loopgrad as built (the fused column; wall clock).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${LG_BUILD_DIR:-build}
python=${PYTHON:-/usr/bin/python3}
quick=""
[ "${1:-}" = "--quick" ] && quick="--quick"
[ -x "$build/bench/rnn_bench" ] || { echo "build first: scripts/setup" >&2; exit 1; }
"$python" -c "import torch" 2>/dev/null || { echo "needs PyTorch: apt-get install python3-torch" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  OPENBLAS_CORETYPE=$("$build/bench/rnn_bench" --only none | awk '/^core/ {print $2}')
  export OPENBLAS_CORETYPE
fi
echo "OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE, $(nproc) cores, load: $(uptime | sed 's/.*load average: //')"
# Interleaved per configuration (loopgrad, PyTorch 1 thread, PyTorch 2
# threads), so that a change in the machine's speed during the run falls on
# both sides of a ratio alike.
for cfg in $("$build/bench/rnn_bench" --list); do
  "$build/bench/rnn_bench" $quick --only "$cfg" | tee -a "$tmp/lg"
  OPENBLAS_NUM_THREADS=1 "$python" bench/rnn_torch.py $quick --threads 1 --only "$cfg" | tee -a "$tmp/pt1"
  OMP_WAIT_POLICY=PASSIVE "$python" bench/rnn_torch.py $quick --threads 2 --only "$cfg" | tee -a "$tmp/pt2"
done
echo "load after: $(uptime | sed 's/.*load average: //')"
"$python" - "$tmp/lg" "$tmp/pt1" "$tmp/pt2" <<'PY'
import math, sys
rows, core = {}, {}
for path in sys.argv[1:]:
    for line in open(path):
        f = line.split()
        if f[0] == "core":
            core[path] = " ".join(f[1:])
        elif len(f) > 2 and f[2] == "train_ms":
            rows.setdefault(f[0], {})[f[1]] = {f[i]: float(f[i + 1]) for i in range(2, 10, 2)}
        elif len(f) == 3 and f[1] == "gemm_bound_ms":
            rows.setdefault(f[0], {})["bound"] = float(f[2])
print("\nOpenBLAS core: loopgrad %s, pytorch %s / %s" % tuple(core.get(p, "?") for p in sys.argv[1:]))
hdr = "%-15s %9s %9s %9s %6s %6s | %8s %8s %8s %6s %6s | %7s %7s %7s | %s"
print(hdr % ("config", "train lg", "fused", "torch", "lg/pt", "fu/pt", "infer lg", "fused", "torch", "lg/pt",
             "fu/pt", "cpu lg", "fused", "torch", "train cpu ms; gemm bound"))
geo = {k: [] for k in ("tl", "tf", "il", "if", "cl", "cf")}
for name, r in rows.items():
    if "generic" not in r:
        continue
    pt = [r[k] for k in ("torch1", "torch2") if k in r]
    best = {m: min(p[m] for p in pt) for m in ("train_ms", "infer_ms", "train_cpu_ms", "infer_cpu_ms")}
    g, fu = r["generic"], r.get("fused", r["generic"])
    q = lambda a, b: a / b if b > 0 else float("nan")
    ratios = {"tl": q(g["train_ms"], best["train_ms"]), "tf": q(fu["train_ms"], best["train_ms"]),
              "il": q(g["infer_ms"], best["infer_ms"]), "if": q(fu["infer_ms"], best["infer_ms"]),
              "cl": q(g["train_cpu_ms"], best["train_cpu_ms"]), "cf": q(fu["train_cpu_ms"], best["train_cpu_ms"])}
    for k, v in ratios.items():
        geo[k].append(v)
    bound = " bound %.1f (fused %.2fx)" % (r["bound"], fu["train_ms"] / r["bound"]) if "bound" in r else ""
    print("%-15s %9.2f %9.2f %9.2f %6.2f %6.2f | %8.2f %8.2f %8.2f %6.2f %6.2f | %7.2f %7.2f %7.2f |%s" % (
        name, g["train_ms"], fu["train_ms"], best["train_ms"], ratios["tl"], ratios["tf"], g["infer_ms"],
        fu["infer_ms"], best["infer_ms"], ratios["il"], ratios["if"], g["train_cpu_ms"], fu["train_cpu_ms"],
        best["train_cpu_ms"], bound))
gm = lambda v: math.exp(sum(map(math.log, v)) / len(v)) if v else float("nan")
print("geomean generic (fuse_rnn off)/pytorch train %.2f infer %.2f" % (gm(geo["tl"]), gm(geo["il"])))
print("geomean cpu time loopgrad/pytorch train %.2f, fused/pytorch train %.2f" % (gm(geo["cl"]), gm(geo["cf"])))
print("geomean loopgrad/pytorch train %.2f infer %.2f" % (gm(geo["tf"]), gm(geo["if"])))
PY
