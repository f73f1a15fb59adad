"""Curriculum learning costs and savings, side by side.

- `progressive_resizing`: one short training run of a small CNN on 32×32
  digits, at full size throughout vs progressive resizing with the scale going
  0.5 → 1 over the first half of training (`ke.callbacks.ProgressiveResizing`).
  Claim: at least 25% less time (ratio ≤ 0.75), on the median over 5 fresh
  processes and within 0.1 in the worst one. At setup, the test accuracy
  after an untimed 5-epoch run of each (seed 0) is printed.
- `example_statistics`: two epochs of `fit` on the digits with and without
  `ke.callbacks.ExampleStatistics` recording per-example statistics.
  Claim: at most 5% more time (ratio ≤ 1.05), median over the rounds.
"""

import functools

import keras
import numpy as np
import tensorflow as tf

from keras_efficient.bench.base import Benchmark
from keras_efficient.bench.base import Case
from keras_efficient.callbacks import ExampleStatistics
from keras_efficient.callbacks import ProgressiveResizing
from keras_efficient.data import load_digits
from keras_efficient.demo.base import accuracy_of
from keras_efficient.demo.base import resolution_free_cnn

BATCH_SIZE = 64
EPOCHS = 4
STEPS_PER_EPOCH = 8
ACCURACY_EPOCHS = 5  # the untimed run whose test accuracy is printed
STATISTICS_EPOCHS = 2  # per timed call: per-call overhead amortized, median over rounds


@functools.cache
def _digits(image_size):
    return load_digits(image_size=image_size)


def _compiled(model):
    model.compile(optimizer="adam", metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _trainer(progressive, epochs, steps_per_epoch):
    """A function training a model for `epochs` × `steps_per_epoch` steps on 32×32
    digits, at full size or with the scale going 0.5 → 1 over the first half."""
    data = _digits(32)
    batches = (tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train))
               .shuffle(len(data.y_train), seed=0).batch(BATCH_SIZE, drop_remainder=True))
    callbacks = []
    if progressive:
        resizing = ProgressiveResizing(epochs * steps_per_epoch, initial_scale=0.5,
                                       delay_fraction=0.0, finetune_fraction=0.5,
                                       size_increment=8)
        batches = resizing.apply(batches)
        callbacks = [resizing]
    else:
        batches = batches.repeat().prefetch(tf.data.AUTOTUNE)

    def train(model):
        model.fit(batches, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=0,
                  callbacks=callbacks)

    return train


def _setup_resizing(progressive):
    def setup():
        data = _digits(32)
        keras.utils.set_random_seed(0)
        model = _compiled(resolution_free_cnn(width=32))
        _trainer(progressive, ACCURACY_EPOCHS, len(data.y_train) // BATCH_SIZE)(model)
        print(f"    test accuracy after {ACCURACY_EPOCHS} epochs "
              f"({'progressive' if progressive else 'full size'}, seed 0): "
              f"{accuracy_of(model, data.x_test, data.y_test):.3f}", flush=True)
        keras.utils.set_random_seed(0)
        model = _compiled(resolution_free_cnn(width=32))
        train = _trainer(progressive, EPOCHS, STEPS_PER_EPOCH)
        return lambda: train(model)

    return setup


def _setup_statistics(record):
    def setup():
        data = _digits(16)
        ids = np.arange(len(data.y_train))
        features = {"inputs": data.x_train, "example_id": ids} if record else data.x_train
        train = (tf.data.Dataset.from_tensor_slices((features, data.y_train))
                 .shuffle(len(ids), seed=0).batch(BATCH_SIZE).prefetch(tf.data.AUTOTUNE))
        keras.utils.set_random_seed(0)
        model = _compiled(resolution_free_cnn(width=32))
        callbacks = [ExampleStatistics(len(ids))] if record else []
        return lambda: model.fit(train, epochs=STATISTICS_EPOCHS, verbose=0, callbacks=callbacks)

    return setup


BENCHMARKS = [
    Benchmark(
        name="progressive_resizing",
        description=(f"{EPOCHS}×{STEPS_PER_EPOCH} steps of a small CNN on 32×32×1 digits, "
                     f"batch {BATCH_SIZE}: full size vs scale 0.5→1 over the first half "
                     "(increment 8)"),
        cases=[Case("full size", _setup_resizing(False)),
               Case("progressive", _setup_resizing(True), max_ratio=0.75)],
        baseline="full size",
        rounds=8,
        warmup=1,
        processes=5,
    ),
    Benchmark(
        name="example_statistics",
        description=(f"{STATISTICS_EPOCHS} epochs of fit, small CNN on 16×16 digits (1347), "
                     f"batch {BATCH_SIZE}"),
        cases=[Case("plain", _setup_statistics(False)),
               Case("ExampleStatistics", _setup_statistics(True), max_ratio=1.05)],
        baseline="plain",
        rounds=20,
        warmup=2,
    ),
]
