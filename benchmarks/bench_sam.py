"""SAM's cost: a SAM step, an interval-5 SAM cycle and a plain step, side by side.

One timed unit is five `train_on_batch` calls on the same batch (a full
`interval=5` cycle: one SAM step and four plain ones), so every case is
averaged over the same cycle. The claims: SAM costs at most 2x a plain step
(two forward-backward passes, nothing more), and `interval=5` at most 1.3x
(the `tf.cond` really skips the perturbed pass on the plain steps).
"""

import keras
import numpy as np

import keras_efficient as ke
from keras_efficient.benchmarking import Benchmark
from keras_efficient.benchmarking import Case

_BATCH = 128
_STEPS_PER_UNIT = 5


def _small_cnn():
    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(32, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10),
        ]
    )


def _setup(wrap):
    def setup():
        keras.utils.set_random_seed(0)
        rng = np.random.default_rng(0)
        x = rng.uniform(size=(_BATCH, 32, 32, 3)).astype("float32")
        y = rng.integers(0, 10, size=(_BATCH,)).astype("int32")
        model = wrap(_small_cnn())
        model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )

        def step():
            for _ in range(_STEPS_PER_UNIT):
                loss = model.train_on_batch(x, y)
            return loss

        return step

    return setup


BENCHMARKS = [
    Benchmark(
        name="sam",
        description=(
            "Small BN CNN on 32x32x3, batch 128, SGD; one unit = 5 train_on_batch "
            "calls: plain vs SAM vs interval-5 SAM."
        ),
        cases=[
            Case("plain", _setup(lambda model: model)),
            Case("sam", _setup(ke.models.SharpnessAwareMinimization), max_ratio=2.0),
            Case("sam_interval_5",
                 _setup(lambda model: ke.models.SharpnessAwareMinimization(model, interval=5)),
                 max_ratio=1.3),
        ],
        baseline="plain",
        rounds=15,
        warmup=2,
    )
]
