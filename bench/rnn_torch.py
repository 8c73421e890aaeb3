"""PyTorch peer of bench/rnn_bench.c: the same eleven models, time-major,
timed per training step (forward, backward, optimizer) and per inference
step (forward under no_grad), median milliseconds after one warm-up. Run with
Debian's python3-torch (a benchmark tool, not a dependency of loopgrad):

    /usr/bin/python3 bench/rnn_torch.py [--quick] [--steps N] [--threads N] [--only NAME]

Prints "core <openblas_get_corename()>" (of the OpenBLAS torch loaded), then
per model "<config> torch<threads> train_ms M infer_ms M train_cpu_ms M
infer_cpu_ms M". Used by bench/rnn.sh."""
import argparse
import ctypes
import statistics
import time

import torch
from torch import nn

# name, T, B, in (vocabulary with an embedding), embed, kind, units, layers,
# body ("cell": torch.nn's layer; "hand": the LSTM from ops; "peephole": the
# peephole LSTM from ops), bidirectional, head, classes, optimizer: as
# configs[] in rnn_bench.c
CONFIGS = [
    ("lstm64_rows", 28, 64, 28, 0, "lstm", 64, 1, "cell", False, "classes", 10, "sgd"),
    ("lstm32_rmsprop", 120, 256, 14, 0, "lstm", 32, 1, "cell", False, "regress", 1, "rmsprop"),
    ("gru32x2", 120, 256, 14, 0, "gru", 32, 2, "cell", False, "regress", 1, "rmsprop"),
    ("emb_rnn64x2", 80, 128, 10000, 100, "rnn", 64, 2, "cell", False, "binary", 1, "adam"),
    ("lstm256", 100, 64, 32, 0, "lstm", 256, 1, "cell", False, "regress", 1, "adam"),
    ("lstm512", 50, 32, 32, 0, "lstm", 512, 1, "cell", False, "regress", 1, "adam"),
    ("lstm256_ops", 100, 64, 32, 0, "lstm", 256, 1, "hand", False, "regress", 1, "adam"),
    ("lstm10_sincos", 20, 50, 1, 0, "lstm", 10, 1, "cell", False, "seq", 1, "adam"),
    ("gru256", 100, 64, 32, 0, "gru", 256, 1, "cell", False, "regress", 1, "adam"),
    ("bilstm64_rows", 28, 64, 28, 0, "lstm", 64, 1, "cell", True, "classes", 10, "adam"),
    ("peephole256", 100, 64, 32, 0, "lstm", 256, 1, "peephole", False, "regress", 1, "adam"),
]


class HandLSTM(nn.Module):
    """The LSTM written from ops in a Python loop, Keras layout (rnn_bench.c's
    hand_lstm_step)."""

    def __init__(self, n_in, units):
        super().__init__()
        self.w = nn.Parameter(torch.empty(n_in, 4 * units).uniform_(-0.1, 0.1))
        self.u = nn.Parameter(torch.empty(units, 4 * units).uniform_(-0.1, 0.1))
        self.b = nn.Parameter(torch.zeros(4 * units))
        self.units = units

    def gates(self, z, c):
        """The new h and c from a step's z = x W + h U + b and c_{t-1}."""
        i, f, g, o = z.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    def forward(self, x):
        h = x.new_zeros(x.shape[1], self.units)
        c = x.new_zeros(x.shape[1], self.units)
        ys = []
        for t in range(x.shape[0]):
            h, c = self.gates(x[t] @ self.w + h @ self.u + self.b, c)
            ys.append(h)
        return torch.stack(ys), (h[None], c[None])


class PeepholeLSTM(HandLSTM):
    """examples/cells/peephole.c's cell in a Python loop: i and f see
    c_{t-1}, o sees c_t, through elementwise weights."""

    def __init__(self, n_in, units):
        super().__init__(n_in, units)
        self.p = nn.Parameter(torch.empty(3, units).uniform_(-0.1, 0.1))

    def gates(self, z, c):
        zi, zf, zc, zo = z.chunk(4, 1)
        i = torch.sigmoid(zi + self.p[0] * c)
        f = torch.sigmoid(zf + self.p[1] * c)
        c = f * c + i * torch.tanh(zc)
        return torch.sigmoid(zo + self.p[2] * c) * torch.tanh(c), c


class Net(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        _, _, _, n_in, embed, kind, units, layers, body, bidir, head, classes, _ = cfg
        self.emb = nn.Embedding(n_in, embed) if embed else None
        dim = embed or n_in
        make = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind]
        self.rnns = nn.ModuleList()
        for _ in range(layers):
            own = {"hand": HandLSTM, "peephole": PeepholeLSTM}.get(body)
            self.rnns.append(own(dim, units) if own else make(dim, units, bidirectional=bidir))
            dim = units * (2 if bidir else 1)
        self.kind, self.head, self.bidir = kind, head, bidir
        self.dense = nn.Linear(dim, classes)

    def forward(self, x):
        ys = self.emb(x) if self.emb is not None else x
        for rnn in self.rnns:
            ys, hn = rnn(ys)
        if self.head == "seq":
            return self.dense(ys)
        h = hn[0] if self.kind == "lstm" else hn
        if self.bidir:  # Keras's Bidirectional: both directions' final h
            return self.dense(torch.cat((h[-2], h[-1]), 1))
        return self.dense(h[-1])


def openblas_core():
    with open("/proc/self/maps") as f:
        libs = sorted({line.split()[-1] for line in f if "blas" in line and ".so" in line})
    for path in libs:
        lib = ctypes.CDLL(path)  # already loaded: the same handle torch uses
        if hasattr(lib, "openblas_get_corename"):
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return lib.openblas_get_corename().decode()
    return "none (torch loaded no OpenBLAS)"


def timed(fn, steps):
    wall, cpu = [], []
    for s in range(steps + 1):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        if s:
            wall.append((time.perf_counter() - w0) * 1e3)
            cpu.append((time.process_time() - c0) * 1e3)
    return statistics.median(wall), statistics.median(cpu)


def bench(cfg, steps, threads):
    name, T, B, n_in, embed, _, _, _, _, _, head, classes, opt_name = cfg
    torch.manual_seed(0)
    model = Net(cfg)
    x = torch.randint(0, n_in, (T, B)) if embed else torch.rand(T, B, n_in) * 2 - 1
    if head == "classes":
        y, loss_fn = torch.randint(0, classes, (B,)), nn.CrossEntropyLoss()
    elif head == "seq":
        y, loss_fn = torch.rand(T, B, 1), nn.MSELoss()
    elif head == "binary":
        y, loss_fn = torch.rand(B, 1), nn.BCEWithLogitsLoss()
    else:
        y, loss_fn = torch.rand(B, 1), nn.MSELoss()
    if opt_name == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    elif opt_name == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    else:
        opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)

    def train():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    def infer():
        with torch.no_grad():
            model(x)

    tw, tc = timed(train, steps)
    iw, ic = timed(infer, steps)
    print(f"{name} torch{threads} train_ms {tw:.2f} infer_ms {iw:.2f} train_cpu_ms {tc:.2f} infer_cpu_ms {ic:.2f}",
          flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    steps = a.steps or (2 if a.quick else 7)
    print(f"core {openblas_core()}", flush=True)
    for cfg in CONFIGS:
        if not a.only or a.only == cfg[0]:
            bench(cfg, steps, a.threads)


if __name__ == "__main__":
    main()
