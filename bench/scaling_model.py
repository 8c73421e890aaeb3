#!/usr/bin/env python3
"""On-paper data-parallel scaling (bench/README.md, "Data-parallel scaling").

Time per training step on N processes with a fixed global batch:

    T(N) = C / N + A(n, N)
    A(n, N) = 2 (N - 1) alpha + 2 (N - 1) / N * n * beta + (N - 1) / N * n * gamma

C is one core's compute for the whole batch, n the gradient block in bytes,
A Open MPI's ring allreduce (reduce-scatter then allgather: 2 (N - 1)
messages of n / N bytes each way, and (N - 1) / N of the block summed;
Thakur, Rabenseifner and Gropp 2005). Prints the speedup C / T(N).
C/N is the ideal: at small per-process batches a share costs more than its
fraction (measured here: a 32-row share of fashion_mnist costs 0.72 of a
64-row batch, not 0.5), so these speedups are upper bounds.
"""

# name, gradient parameters (f32), batch, timesteps, parameters a step multiplies by
MODELS = [
    ("fashion_mnist LSTM(64)", 24586, 64, 28, 24458),
    ("forecast LSTM(32)", 4385, 32, 24, 4385),
    ("char_lm LSTM(128)", 94668, 32, 64, 92160),
    ("seq2seq 2x LSTM(128)", 150734, 64, 13, 150300),
    # not an example: a word model whose 50k x 256 Embedding makes the block large
    ("Embedding(50k, 256) + LSTM(256)", 12800000 + 525312, 32, 50, 525312),
]
# one core's rate, from fashion_mnist: 25 ms a step of 64 at 1 thread (6 flops a
# multiplied parameter per example and step: forward 2, backward 4)
RATE = 6 * 24458 * 64 * 28 / 0.025
# alpha (s a message), beta (s a byte), gamma (s a byte summed)
NETWORKS = [
    ("shared memory", 1e-6, 0.2e-9, 0.1e-9),
    ("10 GbE", 25e-6, 0.8e-9, 0.1e-9),
    ("100 Gb/s InfiniBand", 2e-6, 0.08e-9, 0.1e-9),
]
NS = [2, 4, 8, 16, 32, 64]


def allreduce(n, procs, alpha, beta, gamma):
    return 2 * (procs - 1) * alpha + (procs - 1) / procs * n * (2 * beta + gamma)


def main():
    print("speedup C / T(N), fixed global batch; C from flops at %.1f GFLOP/s" % (RATE / 1e9))
    for net, alpha, beta, gamma in NETWORKS:
        print("\n%s (alpha %g us, %g GB/s)" % (net, alpha * 1e6, 1e-9 / beta))
        print("| model | gradient | C (ms) | " + " | ".join("N=%d" % n for n in NS) + " |")
        print("|---|---|---|" + "---|" * len(NS))
        for name, params, batch, steps, mult in MODELS:
            c = 6 * mult * batch * steps / RATE
            n = 4 * params
            cells = ["%.1f" % (c / (c / p + allreduce(n, p, alpha, beta, gamma))) for p in NS]
            size = "%.0f KB" % (n / 1e3) if n < 1e6 else "%.0f MB" % (n / 1e6)
            print("| %s | %s | %.1f | %s |" % (name, size, c * 1e3, " | ".join(cells)))


if __name__ == "__main__":
    main()
