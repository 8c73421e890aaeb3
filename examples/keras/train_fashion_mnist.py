#!/usr/bin/python3
"""Train the Keras RNN guide's model on Fashion-MNIST in Keras, for loopgrad.

    python3 examples/keras/train_fashion_mnist.py [--epochs N] [--out FILE]

Makes (once) a virtual environment with Keras and JAX (CPU) from PyPI in
$KERAS_VENV (default /tmp/loopgrad-keras-venv), reads Debian's
dataset-fashion-mnist files, trains LSTM(64) -> BatchNormalization ->
Dense(10) (the layers build/examples/fashion_mnist builds, under the same
names) with SGD, prints Keras's test accuracy and saves the weights
(default fashion_mnist.weights.h5). Then

    build/examples/fashion_mnist --keras fashion_mnist.weights.h5

runs the same model in C on those weights and prints the same accuracy.
tests/fixtures/fashion_mnist_keras.weights.h5 was made by this script
(one epoch, keras 3.15.1, jax 0.10.2), where Keras printed "test loss
0.5611, test accuracy 0.8012"; the example's test checks that the C model
prints the same.
"""
import argparse
import gzip
import os
import subprocess
import sys

VENV = os.environ.get("KERAS_VENV", "/tmp/loopgrad-keras-venv")
DATA = "/usr/share/datasets/fashion-mnist"


def in_venv():
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([py, "-m", "pip", "install", "-q", "keras==3.15.1", "jax[cpu]==0.10.2"])
    os.execve(py, [py, os.path.abspath(__file__), "--in-venv"] + sys.argv[1:], dict(os.environ, KERAS_BACKEND="jax"))


def idx(name):
    import numpy as np
    with gzip.open(os.path.join(DATA, name)) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def parse(argv):
    p = argparse.ArgumentParser(prog="train_fashion_mnist.py",
                                description="Trains fashion_mnist's model in Keras 3 and saves its weights for "
                                "fashion_mnist --keras (the first run installs Keras and JAX in $KERAS_VENV, "
                                "default %s)." % VENV)
    p.add_argument("--epochs", type=int, default=1, help="epochs to train (default 1)")
    p.add_argument("--out", default="fashion_mnist.weights.h5", metavar="FILE",
                   help="the weights file to write (default fashion_mnist.weights.h5)")
    return p.parse_args(argv)


def main(argv):
    a = parse(argv)
    import keras
    x_train = idx("train-images-idx3-ubyte.gz").astype("float32") / 255
    y_train = idx("train-labels-idx1-ubyte.gz").astype("int32")
    x_test = idx("t10k-images-idx3-ubyte.gz").astype("float32") / 255
    y_test = idx("t10k-labels-idx1-ubyte.gz").astype("int32")

    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((28, 28)),
        keras.layers.LSTM(64),
        keras.layers.BatchNormalization(),
        keras.layers.Dense(10),
    ])
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  optimizer=keras.optimizers.SGD(0.05, momentum=0.9), metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=64, epochs=a.epochs, verbose=2)
    loss, acc = model.evaluate(x_test, y_test, batch_size=500, verbose=0)
    print("Keras: test loss %.4f, test accuracy %.4f" % (loss, acc))
    model.save_weights(a.out)  # with the optimizer's state, which loopgrad does not read
    print("weights written to", a.out, "(layers %s)" % ", ".join(l.name for l in model.layers))


if __name__ == "__main__":
    if "--in-venv" in sys.argv:
        main(sys.argv[sys.argv.index("--in-venv") + 1:])
    else:
        parse(sys.argv[1:])  # --help and bad flags answered before the venv is made (a download)
        in_venv()
