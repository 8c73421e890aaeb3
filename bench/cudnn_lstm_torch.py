"""PyTorch's side of bench/cudnn_lstm.c: the same LSTM training step on CUDA
(nn.LSTM, which runs cuDNN), time-major x [T, B, F] and R resident on the GPU,
loss sum(ys R), backward, SGD step; FP32 (TF32 off) unless --tf32. Wall clock
over --iters steps after 3 warm-up steps, synchronised before and after.
Prints one Markdown row like cudnn_lstm's; exits 77 without torch or a GPU.

    python3 bench/cudnn_lstm_torch.py [--units 512] [--batch 64] [--steps 100] [--input 512] [--iters 20] [--tf32]
"""
import argparse
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    for name, default in (("units", 512), ("batch", 64), ("steps", 100), ("input", 512), ("iters", 20)):
        ap.add_argument("--" + name, type=int, default=default)
    ap.add_argument("--tf32", action="store_true")
    a = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("cudnn_lstm_torch: nothing measured: no torch")
        return 77
    if not torch.cuda.is_available():
        print("cudnn_lstm_torch: nothing measured: torch sees no GPU")
        return 77
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    dev = torch.device("cuda:0")
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(a.input, a.units).to(dev)
    x = torch.empty(a.steps, a.batch, a.input, device=dev).uniform_(-0.1, 0.1)
    r = torch.empty(a.steps, a.batch, a.units, device=dev).uniform_(-0.1, 0.1)
    opt = torch.optim.SGD(lstm.parameters(), lr=1e-6)

    def step():
        opt.zero_grad(set_to_none=True)
        ys, _ = lstm(x)
        (ys * r).sum().backward()
        opt.step()

    best = float("inf")
    for _ in range(2):
        for _ in range(3):
            step()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(a.iters):
            step()
        torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - t0) * 1e3 / a.iters)
    shape = "LSTM(%d) B%d T%d F%d %s" % (a.units, a.batch, a.steps, a.input, "TF32" if a.tf32 else "FP32")
    print("| %s | %s | PyTorch %s nn.LSTM (cuDNN %s) | %.3f | |" % (
        torch.cuda.get_device_name(0), shape, torch.__version__, torch.backends.cudnn.version(), best))
    return 0


if __name__ == "__main__":
    sys.exit(main())
