#!/usr/bin/env python3
"""A shared library does not load the libraries it should open on demand.

    not_needed.py READELF LIBRARY PREFIX...

Fails, naming them, when `readelf -d LIBRARY` lists a NEEDED entry that
starts with a PREFIX: libloopgrad opens cuBLAS (about 210 MB with cuBLASLt,
0.3 s to load) when a program opens "cuda:N" (src/backends/cuda/cuda_cublas.h),
so a CPU-only program must not map it.
"""
import os
import re
import subprocess
import sys


def main(argv):
    readelf, lib, prefixes = argv[1], argv[2], argv[3:]
    env = {**os.environ, "LC_ALL": "C"}  # readelf translates "Shared library"
    out = subprocess.run([readelf, "-d", lib], check=True, capture_output=True, text=True, env=env).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)
    if not needed:
        print(f"{lib}: readelf listed no NEEDED entries; is it a shared library?")
        return 1
    bad = [n for n in needed if n.startswith(tuple(prefixes))]
    if bad:
        print(f"{lib} loads {', '.join(bad)} at start-up; open it on demand instead")
        return 1
    print(f"{lib}: NEEDED {', '.join(needed)}; none starts with {', '.join(prefixes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
