#!/usr/bin/python3
"""Seed inputs for the loaders' fuzz targets: fuzz_idx.c, fuzz_csv.c and
fuzz_checkpoint.c.

    python3 fuzz/make_loader_corpus.py

rewrites the valid-* and broken-* seeds in fuzz/corpus/idx/, csv/ and
checkpoint/ (plain Python, no packages). Each input is one options byte
(see the target's comment) and then the file. replay.c checks that valid-*
are read and broken-* refused. Inputs the fuzzer found are kept under other
names and are not touched here.
"""

import gzip
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
TORCH = os.path.join(HERE, "..", "tests", "fixtures", "torch_rnn.safetensors")


def idx(type_code, dims, data):
    return struct.pack(">BBBB", 0, 0, type_code, len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + data


def idx_seeds():
    u = bytes([0, 1, 2, 128, 254, 255])
    plain = idx(0x08, [2, 3], u)
    return {
        # byte 0: bit 0 gzip here, bits 1-2 dtype (f32, f64, i32, 3), bit 3 scale
        "valid-ubyte": b"\x00" + plain,
        "valid-ubyte_scaled": b"\x08" + plain,
        "valid-labels_i32": b"\x04" + idx(0x08, [6], u),
        "valid-sbyte_f64": b"\x02" + idx(0x09, [2, 3], u),
        "valid-i16": b"\x00" + idx(0x0B, [3], u),
        "valid-i32": b"\x04" + idx(0x0C, [1, 1], struct.pack(">i", -7)),
        "valid-f32": b"\x00" + idx(0x0D, [2], struct.pack(">ff", 1.5, -2)),
        "valid-f64": b"\x02" + idx(0x0E, [1], struct.pack(">d", 3.25)),
        "valid-rank6": b"\x00" + idx(0x08, [1, 1, 1, 1, 2, 3], u),
        "valid-empty_zero_first": b"\x00" + idx(0x08, [0, 65536, 65536], b""),
        "valid-empty_zero_last": b"\x00" + idx(0x08, [65536, 65536, 0], b""),
        "valid-gzipped_here": b"\x01" + plain,
        "valid-gzip_file": b"\x00" + gzip.compress(plain, mtime=0),
        "broken-magic": b"\x00" + b"\x01" + plain[1:],
        "broken-type": b"\x00" + idx(0x0A, [2, 3], u),
        "broken-rank0": b"\x00" + idx(0x08, [], u[:1]),
        "broken-rank7": b"\x00" + idx(0x08, [1, 1, 1, 1, 1, 2, 3], u),
        "broken-short_header": b"\x00" + plain[:9],
        "broken-short_data": b"\x00" + plain[:-1],
        "broken-long_data": b"\x00" + plain + b"x",
        "broken-overflow": b"\x00" + idx(0x0E, [0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF], u),
        "broken-overflow_zero_first": b"\x00" + idx(0x08, [0, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF], b""),
        "broken-overflow_zero_last": b"\x00" + idx(0x08, [0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0], b""),
        "broken-huge_claim": b"\x00" + idx(0x08, [65536, 65536, 65536], u),
        "broken-gzip_cut": b"\x00" + gzip.compress(plain, mtime=0)[:-5],
        "broken-i32_from_f32": b"\x04" + idx(0x0D, [2], struct.pack(">ff", 1.5, -2)),
        "broken-scale_sbyte": b"\x08" + idx(0x09, [2, 3], u),
        "broken-dtype3": b"\x06" + plain,
        "broken-empty": b"\x00",
    }


def csv_seeds():
    # byte 0: bits 0-1 delimiter , ; tab space, bit 2 header, bit 3 f64,
    # bit 4 allow_nonfinite, bit 5 columns 1 and 0
    return {
        "valid-header": b"\x04a,b,c\n1,2,3\n4.5,-5,6e2\n",
        "valid-no_header_semicolon": b"\x011;2\n3;4\n",
        "valid-tab_f64_crlf_blank": b"\x0e" + b"x\ty\r\n\r\n1e300\t-0.5\r\n  \n2\t3\r\n",
        "valid-space": b"\x031 2 3\n",
        "valid-quoted": b'\x04"a,b",c\n"1",2\n "3" ,"4"\n',
        "valid-select": b"\x24a,b,c\n1,2,3\n4,5,6\n",
        "valid-text_column_skipped": b"\x24v,w,date\n1,2,2024-01-01\n",
        "valid-nonfinite_allowed": b"\x14a,b,c\nnan,inf,1e39\n",
        "broken-nan": b"\x04a\nnan\n",
        "broken-inf": b"\x04a\n-inf\n",
        "broken-f64_overflow": b"\x0ca\n1e999\n",
        "broken-f32_overflow": b"\x04a\n1e39\n",
        "broken-nul": b"\x04a,b\n1,2\x003\n",
        "broken-ragged": b"\x04a,b,c\n1,2,3\n4,5\n",
        "broken-unterminated_quote": b'\x04a,b\n1,"2\n',
        "broken-after_quote": b'\x04a,b\n"1"x,2\n',
        "broken-text": b"\x04a,b\n1,abc\n",
        "broken-header_only": b"\x04a,b\n",
        "broken-empty": b"\x04",
        "broken-blank": b"\x04\n \n\r\n",
        "broken-select_outside": b"\x24a\n1\n",
    }


def safetensors(entries, metadata=None):
    """A file of (name, dtype, shape, bytes) entries laid out in order."""
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def f64s(n, start=0.0):
    return struct.pack("<%dd" % n, *[start + 0.01 * i for i in range(n)])


# The fuzz model's parameters (fuzz_checkpoint.c) and Adam's state.
PARAMS = [
    ("lstm/kernel", [3, 16]), ("lstm/recurrent_kernel", [4, 16]), ("lstm/bias", [16]),
    ("gru/kernel", [3, 12]), ("gru/recurrent_kernel", [4, 12]), ("gru/bias", [2, 12]),
    ("rnn/kernel", [3, 4]), ("rnn/recurrent_kernel", [4, 4]), ("rnn/bias", [4]),
]


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def checkpoint_seeds():
    torch = open(TORCH, "rb").read()
    params = [(n, "F64", s, f64s(numel(s), 0.5)) for n, s in PARAMS]
    state = [("optimizer/iterations", "I32", [], struct.pack("<i", 3))]
    for slot in ("momentum", "velocity"):
        state += [("optimizer/%s/%s" % (slot, n), "F64", s, f64s(numel(s), 0.1)) for n, s in PARAMS]
    kernel = [("lstm/kernel", "F64", [3, 16], f64s(48))]
    # byte 0: bits 0-1 call (0 load+opt strict, 1 load loose, 2 torch "<cell>.", 3 torch ""),
    # bits 2-3 cell (lstm, gru, rnn), bit 4 layer 1, bit 5 reverse
    return {
        "valid-checkpoint_with_optimizer": b"\x00" + safetensors(params + state, {"format": "pt"}),
        "valid-checkpoint_params_loose": b"\x01" + safetensors(params),
        "valid-checkpoint_one_loose": b"\x01" + safetensors(kernel),
        "valid-torch_lstm": b"\x02" + torch,
        "valid-torch_gru": b"\x06" + torch,
        "valid-torch_gru_reverse": b"\x26" + torch,
        "valid-torch_rnn": b"\x0a" + torch,
        "broken-checkpoint_strict_missing": b"\x00" + safetensors(params),
        "broken-checkpoint_extra": b"\x00" + safetensors(params + state + [("extra", "F32", [1], b"\0" * 4)]),
        "broken-checkpoint_shape": b"\x01" + safetensors([("lstm/kernel", "F64", [16, 3], f64s(48))]),
        "broken-checkpoint_dtype": b"\x01" + safetensors([("lstm/kernel", "F32", [3, 16], b"\0" * 192)]),
        "broken-checkpoint_cut": b"\x01" + safetensors(params)[:-1],
        "broken-torch_no_prefix": b"\x03" + torch,
        "broken-torch_rnn_layer1": b"\x1a" + torch,
        "broken-torch_lstm_layer1_shape": b"\x12" + torch,
        "broken-torch_cut": b"\x02" + torch[:-8],
        "broken-empty": b"\x02",
    }


def main():
    for name, seeds in (("idx", idx_seeds()), ("csv", csv_seeds()), ("checkpoint", checkpoint_seeds())):
        out = os.path.join(HERE, "corpus", name)
        os.makedirs(out, exist_ok=True)
        for f in os.listdir(out):
            if f.startswith(("valid-", "broken-")):
                os.remove(os.path.join(out, f))
        for seed, data in seeds.items():
            with open(os.path.join(out, seed), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
