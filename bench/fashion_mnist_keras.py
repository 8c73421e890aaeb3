"""Keras 3 + TensorFlow peer of examples/fashion_mnist.c: the Keras RNN
guide's model (Input(28, 28), LSTM(64), BatchNormalization, Dense(10)),
sparse categorical cross-entropy from logits, SGD lr 0.05 momentum 0.9,
batch 64, on Fashion-MNIST read from Debian's IDX files. Run it in the venv
that bench/keras_venv.sh makes:

    $(bench/keras_venv.sh) bench/fashion_mnist_keras.py [--epochs N] [--limit N]
        [--intra N] [--inter N] [--info]

Each epoch is timed by a callback from on_epoch_begin to on_epoch_end; the
first epoch includes tf.function tracing and XLA-free graph building, so
the second epoch is the steady state. Prints the TensorFlow and Keras
versions and thread settings, one line per epoch: "epoch E seconds S loss L
accuracy A
cpu C" (C: the epoch's process CPU seconds, user + system, all threads),
then the test accuracy. Used by bench/fashion_mnist.sh; not a
dependency of the library."""
import argparse
import gzip
import os
import resource
import struct
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    _, _, _, rank = struct.unpack(">BBBB", data[:4])
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def cpu_seconds():
    """User + system CPU seconds of this process, all its threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--intra", type=int, default=0, help="TF intra-op threads; 0 keeps TF's default")
    ap.add_argument("--inter", type=int, default=0, help="TF inter-op threads; 0 keeps TF's default")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--info", action="store_true", help="print the versions and thread settings, then stop")
    a = ap.parse_args()

    import tensorflow as tf
    import keras
    from keras import layers

    if a.intra:
        tf.config.threading.set_intra_op_parallelism_threads(a.intra)
    if a.inter:
        tf.config.threading.set_inter_op_parallelism_threads(a.inter)
    keras.utils.set_random_seed(a.seed)
    print(f"tensorflow {tf.__version__}, keras {keras.__version__}, intra_op "
          f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default'}, inter_op "
          f"{tf.config.threading.get_inter_op_parallelism_threads() or 'default'}, {os.cpu_count()} cpus",
          flush=True)
    if a.info:
        return

    x = idx(a.data + "/train-images-idx3-ubyte.gz").astype(np.float32) / 255
    y = idx(a.data + "/train-labels-idx1-ubyte.gz").astype(np.int64)
    xt = idx(a.data + "/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255
    yt = idx(a.data + "/t10k-labels-idx1-ubyte.gz").astype(np.int64)
    if a.limit:
        x, y = x[:a.limit], y[:a.limit]

    model = keras.Sequential([
        keras.Input(shape=(28, 28)),
        layers.LSTM(64),
        layers.BatchNormalization(),
        layers.Dense(10),
    ])
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=keras.optimizers.SGD(learning_rate=0.05, momentum=0.9),
        metrics=["accuracy"],
    )

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()
            self.cpu = cpu_seconds()

        def on_epoch_end(self, epoch, logs=None):
            secs = time.perf_counter() - self.start
            print(f"epoch {epoch + 1} seconds {secs:.3f} loss {logs['loss']:.4f} "
                  f"accuracy {logs['accuracy']:.4f} cpu {cpu_seconds() - self.cpu:.3f}", flush=True)

    model.fit(x, y, batch_size=a.batch, epochs=a.epochs, shuffle=True, verbose=0, callbacks=[Timer()])
    _, acc = model.evaluate(xt, yt, batch_size=1000, verbose=0)
    print(f"test accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
