"""XLA on and off for train steps of a small conv net and of the package's models
(SAM, a ResNet with stochastic depth): the measurement behind
`ke.distribute.jit_compile_for` (no bound asserted: the answer differs per device;
run it on the device you train on)."""

import keras
import numpy as np

import keras_efficient as ke
from keras_efficient.bench.base import Benchmark
from keras_efficient.bench.base import Case

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


def _setup(build, jit_compile):
    def setup():
        rng = np.random.default_rng(0)
        x = rng.normal(size=(BATCH_SIZE, 32, 32, 3)).astype("float32")
        y = rng.integers(0, 10, size=(BATCH_SIZE,))
        keras.utils.set_random_seed(0)
        model = build()
        model.compile(optimizer="adam",
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      jit_compile=jit_compile)
        return lambda: model.train_on_batch(x, y)

    return setup


def _sam():
    return ke.models.SharpnessAwareMinimization(_conv_net(), rho=0.05)


def _resnet_stochastic_depth():
    return ke.models.build_resnet((32, 32, 3), 10, blocks=4, filters=32, stochastic_depth=0.5,
                                  seed=0)


def _xla_benchmark(name, description, build):
    return Benchmark(
        name=name,
        description=f"{description}, 32×32×3, batch {BATCH_SIZE}",
        cases=[Case("jit_compile=False", _setup(build, False)),
               Case("jit_compile=True", _setup(build, True))],
        baseline="jit_compile=False",
        rounds=20,
    )


BENCHMARKS = [
    _xla_benchmark("xla", "train step of a small conv net", _conv_net),
    _xla_benchmark("xla_sam", "SAM train step of the same conv net", _sam),
    _xla_benchmark("xla_resnet_stochastic_depth",
                   "train step of a 4-block ResNet (32 ch) with stochastic depth p_L=0.5",
                   _resnet_stochastic_depth),
]
