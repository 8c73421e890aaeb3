#!/usr/bin/env bash
# Makes the Python environment for bench/fashion_mnist_keras.py: a venv with
# tensorflow-cpu and Keras 3 from PyPI, under bench/.venv (git-ignored; never
# committed). Prints the venv's python. Re-running reuses an existing venv.
#   bench/keras_venv.sh [DIR]          (default bench/.venv)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-bench/.venv}
if ! "$venv/bin/python" -c "import tensorflow, keras" 2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --upgrade pip >&2
  "$venv/bin/pip" install --quiet tensorflow-cpu 'keras>=3' >&2
fi
echo "$venv/bin/python"
