"""XLA on and off for a train step of a small conv net: the measurement behind
`ke.distribute.jit_compile_for` (no bound asserted: the answer differs per device;
run it on the device you train on)."""

import keras
import numpy as np

from keras_efficient.benchmarking import Benchmark
from keras_efficient.benchmarking import Case

BATCH_SIZE = 128


def _conv_net():
    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10),
        ]
    )


def _setup(jit_compile):
    def setup():
        rng = np.random.default_rng(0)
        x = rng.normal(size=(BATCH_SIZE, 32, 32, 3)).astype("float32")
        y = rng.integers(0, 10, size=(BATCH_SIZE,))
        keras.utils.set_random_seed(0)
        model = _conv_net()
        model.compile(optimizer="adam",
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      jit_compile=jit_compile)
        return lambda: model.train_on_batch(x, y)

    return setup


BENCHMARKS = [
    Benchmark(
        name="xla",
        description=f"train step of a small conv net, 32×32×3, batch {BATCH_SIZE}",
        cases=[Case("jit_compile=False", _setup(False)),
               Case("jit_compile=True", _setup(True))],
        baseline="jit_compile=False",
        rounds=30,
    )
]
