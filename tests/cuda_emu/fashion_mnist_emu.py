#!/usr/bin/env python3
"""examples/fashion_mnist on cuda:0 under the emulator against --device cpu.

    fashion_mnist_emu.py EXAMPLE DATA_DIR TRAIN_IMAGES TEST_IMAGES

Copies DATA_DIR's Fashion-MNIST files into a temporary directory, the test
set cut to its first TEST_IMAGES (the emulated cuDNN evaluates 10000 images
in about 15 s, too slow for CI's sanitizer build), runs EXAMPLE (built
against the fake runtime) for one epoch on --limit TRAIN_IMAGES with
--device cuda:0 and with --device cpu, the same seed, and checks what
scripts/gpu-check reads and issue 12 asks: both exit 0 and print the lines
gpu-check parses ('epoch 1 seconds', 'test accuracy'), the accuracies are
within 2 test images of each other, and the two checkpoints (saved from the
device and from the host) hold the same tensors, equal to 1e-5 (1e-7 seen).
Exits 77 (skipped) when DATA_DIR is missing (apt install
dataset-fashion-mnist). Any sanitizer report fails it, as in check.py.
"""
import array
import gzip
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def cut_idx(src, dst, n):
    """The first n items of a gzipped IDX file (magic, counts, then bytes)."""
    with gzip.open(src, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = list(struct.unpack(">%dI" % dims, data[4:4 + 4 * dims]))
    item = 1
    for d in shape[1:]:
        item *= d
    head = 4 + 4 * dims
    shape[0] = min(n, shape[0])
    with gzip.open(dst, "wb") as f:
        f.write(data[:4] + struct.pack(">%dI" % dims, *shape) + data[head:head + shape[0] * item])


def tensors(path):
    """A safetensors file's tensors: name -> (dtype, shape, values)."""
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        values = array.array({"F32": "f", "F64": "d", "I32": "i", "I64": "q"}[t["dtype"]])
        values.frombytes(blob[8 + n + a:8 + n + b])
        out[name] = (t["dtype"], t["shape"], values)
    return out


def run(cmd, problems):
    r = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    sys.stdout.write("$ %s\n%s%s" % (" ".join(cmd), r.stdout[-1500:], r.stderr[-1500:]))
    if r.returncode != 0:
        problems.append("%s exited %d" % (" ".join(cmd), r.returncode))
    problems += ["a sanitizer report in %s" % " ".join(cmd) for t in ("ERROR: LeakSanitizer", "ERROR: AddressSanitizer",
                                                                    "runtime error:") if t in r.stderr]
    found = {}
    for key, regex in (("accuracy", r"test accuracy ([0-9.]+)"), ("seconds", r"^epoch 1 seconds ([0-9.]+)")):
        m = re.search(regex, r.stdout, re.M)
        if m:
            found[key] = float(m.group(1))
        else:
            problems.append("%s printed no %r (scripts/gpu-check reads it)" % (" ".join(cmd), regex))
    return found


def main():
    example, data, train, test = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if not all(os.path.exists(os.path.join(data, f)) for f in FILES):
        print("skipped: no Fashion-MNIST in %s (apt install dataset-fashion-mnist)" % data)
        return 77
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        small = os.path.join(tmp, "data")
        os.mkdir(small)
        for f in FILES[:2]:
            shutil.copy(os.path.join(data, f), small)
        for f in FILES[2:]:
            cut_idx(os.path.join(data, f), os.path.join(small, f), test)
        got, saved = {}, {}
        for device in ("cuda:0", "cpu"):
            saved[device] = os.path.join(tmp, device.replace(":", "") + ".safetensors")
            got[device] = run([example, "--epochs", "1", "--limit", str(train), "--data", small, "--device", device,
                               "--checkpoint", saved[device]], problems)
        if problems:
            print("\n".join("FAIL: " + p for p in problems))
            return 1
        gpu, cpu = got["cuda:0"]["accuracy"], got["cpu"]["accuracy"]
        print("test accuracy: cuda:0 %.4f, cpu %.4f (%d test images)" % (gpu, cpu, test))
        if abs(gpu - cpu) * test > 2.5:
            problems.append("the accuracies differ by more than 2 test images")
        a, b = tensors(saved["cuda:0"]), tensors(saved["cpu"])
        if sorted(a) != sorted(b):
            problems.append("the checkpoints name different tensors: %s, %s" % (sorted(a), sorted(b)))
        worst = 0.0
        for name in sorted(set(a) & set(b)):
            (ta, sa, va), (tb, sb, vb) = a[name], b[name]
            if (ta, sa) != (tb, sb):
                problems.append("%s: %s%s from cuda:0, %s%s from cpu" % (name, ta, sa, tb, sb))
                continue
            for x, y in zip(va, vb):
                d = abs(x - y) / max(1.0, abs(y))
                worst = max(worst, d)
                if d > 1e-5:
                    problems.append("%s: %g from cuda:0, %g from cpu" % (name, x, y))
                    break
        print("checkpoints: %d tensors, largest difference %.3g (relative above 1)" % (len(a), worst))
    if problems:
        print("\n".join("FAIL: " + p for p in problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
