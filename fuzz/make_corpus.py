#!/usr/bin/python3
"""Seed inputs for the safetensors fuzz target (fuzz_safetensors.c).

    python3 fuzz/make_corpus.py

rewrites the valid-* and broken-* seeds in fuzz/corpus/ (plain Python, no
packages). Valid seeds cover every dtype, rank 0 to 6, empty tensors,
metadata and a padded header; broken ones one defect each, as in the table
of tests/test_checkpoint.c. replay.c checks that valid-* parse and broken-*
do not. valid-torch_rnn.safetensors is a copy of the PyTorch fixture
(tests/fixtures/torch_rnn.safetensors). Inputs the fuzzer found are kept
under other names and are not touched here.
"""

import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
SIZES = {"F32": 4, "F64": 8, "I32": 4}


def prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def file_bytes(header, data=b"", hlen=None, pad=0):
    """The 8-byte length (hlen, or the header's), the header text, the data."""
    text = (header if isinstance(header, str) else json.dumps(header, separators=(",", ":"))) + " " * pad
    raw = text.encode()
    return struct.pack("<Q", len(raw) if hlen is None else hlen) + raw + data


def tensors(entries, metadata=None, pad=0):
    """A valid file of (name, dtype, shape) tensors, laid out in order."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape in entries:
        n = prod(shape) * SIZES[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + n]}
        data += bytes((len(data) + i) % 251 for i in range(n))
    return file_bytes(header, data, pad=pad)


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


VALID = {
    "empty": tensors([]),
    "one_f32": tensors([("w", "F32", [2, 3])]),
    "dtypes": tensors([("a", "F32", [2]), ("b", "F64", [3]), ("c", "I32", [1, 4])]),
    "ranks": tensors([("r0", "F64", []), ("r1", "F32", [1]), ("r3", "F32", [2, 1, 3]), ("r6", "I32", [1, 2, 1, 2, 1, 2])]),
    "zero_size": tensors([("z", "F32", [0, 5]), ("w", "F64", [2]), ("e", "I32", [3, 0])]),
    "metadata": tensors([("w", "F32", [2])], metadata={"format": "pt", "note": "x"}, pad=5),
    "names": tensors([("enc/lstm/kernel", "F32", [2, 4]), ("optimizer/iterations", "I32", []), ("é", "F32", [1])]),
}

BROKEN = {
    "short": b"\x10\x00\x00",
    "huge_length": file_bytes("{}", hlen=2**64 - 1),
    "length_beyond": file_bytes("{}", hlen=40),
    "truncated_data": tensors([("w", "F64", [4])])[:-5],
    "bad_json": file_bytes('{"w":{"dtype":"F32",'),
    "array": file_bytes("[1,2]"),
    "duplicate": file_bytes('{"a":%s,"a":%s}' % (json.dumps(entry("F32", [1], 0, 4)), json.dumps(entry("F32", [1], 4, 8))), b"\0" * 8),
    "dtype": file_bytes({"w": entry("BF16", [2], 0, 4)}, b"\0" * 4),
    "negative_dim": file_bytes({"w": entry("F32", [-2], 0, 8)}, b"\0" * 8),
    "real_dim": file_bytes('{"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}', b"\0" * 8),
    "rank7": file_bytes({"w": entry("F32", [1] * 7, 0, 4)}, b"\0" * 4),
    "overflow": file_bytes({"w": entry("F64", [2**32, 2**32], 0, 8)}, b"\0" * 8),
    # A zero dim does not excuse the others (tensor.h's size rule): this one
    # opened, then failed on get, and the fuzz target trapped.
    "zero_huge_dims": file_bytes({"w": entry("F32", [2**62, 2**62, 0], 0, 0)}),
    "size_mismatch": file_bytes({"w": entry("F32", [3], 0, 8)}, b"\0" * 8),
    "end_before_begin": file_bytes({"w": entry("F32", [0], 8, 0)}, b"\0" * 8),
    "out_of_range": file_bytes({"w": entry("F32", [2], 8, 16)}, b"\0" * 8),
    "overlap": file_bytes({"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}, b"\0" * 12),
    "gap": file_bytes({"a": entry("F32", [1], 0, 4), "b": entry("F32", [1], 8, 12)}, b"\0" * 12),
    "trailing": file_bytes({"a": entry("F32", [1], 0, 4)}, b"\0" * 8),
    "metadata_value": file_bytes({"__metadata__": {"k": 1}}),
    "unknown_field": file_bytes({"w": dict(entry("F32", [1], 0, 4), extra=1)}, b"\0" * 4),
}


def main():
    os.makedirs(CORPUS, exist_ok=True)
    for kind, seeds in (("valid", VALID), ("broken", BROKEN)):
        for name, data in seeds.items():
            with open(os.path.join(CORPUS, f"{kind}-{name}.safetensors"), "wb") as f:
                f.write(data)
    fixture = os.path.join(HERE, "..", "tests", "fixtures", "torch_rnn.safetensors")
    shutil.copyfile(fixture, os.path.join(CORPUS, "valid-torch_rnn.safetensors"))
    print(f"wrote {len(VALID) + 1} valid and {len(BROKEN)} broken seeds to {CORPUS}")


if __name__ == "__main__":
    main()
