"""PyTorch peer of examples/fashion_mnist.c: the same model, data, batch and
optimizer, timed per epoch. Run with Debian's python3-torch:

    /usr/bin/python3 bench/fashion_mnist_torch.py [--epochs N] [--limit N] [--threads N]

Prints one line per epoch: "epoch E seconds S loss L accuracy A", then the
test accuracy. Used by bench/fashion_mnist.sh; not a dependency of the
library."""
import argparse
import gzip
import struct
import time

import numpy as np
import torch
from torch import nn


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    _, _, _, rank = struct.unpack(">BBBB", data[:4])
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


class Model(nn.Module):
    """LSTM(64) over 28 rows, BatchNorm1d, Linear(10): the Keras guide's model."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(28, 64, batch_first=True)
        self.bn = nn.BatchNorm1d(64, eps=1e-3, momentum=0.01)  # Keras's epsilon and momentum 0.99
        self.dense = nn.Linear(64, 10)

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        return self.dense(self.bn(h[-1]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads; 0 keeps the default")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x = torch.tensor(idx(a.data + "/train-images-idx3-ubyte.gz"), dtype=torch.float32) / 255
    y = torch.tensor(idx(a.data + "/train-labels-idx1-ubyte.gz"), dtype=torch.long)
    xt = torch.tensor(idx(a.data + "/t10k-images-idx3-ubyte.gz"), dtype=torch.float32) / 255
    yt = torch.tensor(idx(a.data + "/t10k-labels-idx1-ubyte.gz"), dtype=torch.long)
    if a.limit:
        x, y = x[:a.limit], y[:a.limit]
    model = Model()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(a.epochs):
        model.train()
        perm = torch.randperm(len(x))
        start = time.perf_counter()
        total, hits, seen = 0.0, 0, 0
        for i in range(0, len(x), a.batch):
            idxs = perm[i:i + a.batch]
            xb, yb = x[idxs], y[idxs]
            opt.zero_grad()
            out = model(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(yb)
            hits += (out.argmax(1) == yb).sum().item()
            seen += len(yb)
        secs = time.perf_counter() - start
        print(f"epoch {epoch + 1} seconds {secs:.3f} loss {total / seen:.4f} accuracy {hits / seen:.4f}", flush=True)
    model.eval()
    with torch.no_grad():
        acc = (model(xt).argmax(1) == yt).float().mean().item()
    print(f"test accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
