"""The experiment contract: a technique measured against its baseline.

An experiment is a set of named variants (the baseline and one or more
techniques). Each variant is a function that trains on the embedded data for one
seed and returns a `RunResult`; the runner (`keras_efficient.demo.runner`)
repeats it over seeds, aggregates mean ± std, computes step-time ratios against
the baseline, and writes the report.

A technique module adds its experiment with `register_experiment`:

```python
from keras_efficient.demo import base

def _plain(context):
    model = base.digits_cnn(context)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return base.train_classifier(model, context)

base.register_experiment(base.Experiment(
    name="my_technique",
    title="My technique vs plain training",
    description="What is measured and why.",
    variants={"plain": _plain, "technique": _technique},
    baseline="plain",
))
```
"""

import dataclasses
import importlib
import time

import keras
import numpy as np
import tensorflow as tf


@dataclasses.dataclass
class ExperimentContext:
    """What a variant gets for one run.

    Args:
        data: a `keras_efficient.data.Digits` (x_train, y_train, x_test, y_test,
            num_classes), identical for every variant and seed.
        seed: the run's seed; the runner calls `keras.utils.set_random_seed(seed)`
            before each variant.
        epochs: the training budget for this run (smaller with `--quick`).
        batch_size: the batch size the runner chose.
        quick: True under `--quick`; variants may shrink extra work with it.
        jit_compile: XLA choice from the runtime config (None: Keras's default);
            applied by `apply_runtime`.
        steps_per_execution: from the runtime config; applied by `apply_runtime`.
        params: technique hyperparameters from a config's `task.params`.
        optimizer, learning_rate: the trainer's choice, built by `make_optimizer`.
        drop_remainder: batch with static shapes (TPUs); used by `train_classifier`.
    """

    data: object
    seed: int
    epochs: int
    batch_size: int = 64
    quick: bool = False
    jit_compile: object = None
    steps_per_execution: int = 1
    params: dict = dataclasses.field(default_factory=dict)
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    drop_remainder: bool = False

    def make_optimizer(self):
        """A fresh optimizer of the configured kind and learning rate."""
        return keras.optimizers.get(
            {"class_name": self.optimizer, "config": {"learning_rate": self.learning_rate}})


@dataclasses.dataclass
class RunResult:
    """What one variant measured for one seed.

    Args:
        test_accuracy: accuracy on the held-out test split, in [0, 1].
        val_curve: test accuracy after each epoch (for the learning-curve plot).
        step_seconds: median wall time of one training step.
        extra: further named numbers to report (mean over seeds is shown).
    """

    test_accuracy: float
    val_curve: list
    step_seconds: float
    extra: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Experiment:
    """A technique against its baseline.

    Args:
        name: short identifier used by `keras-efficient demo --only`.
        title: one line for the report.
        description: what is compared and how; shown under the table.
        variants: ordered mapping of variant name to a function
            `ExperimentContext -> RunResult`.
        baseline: the variant that ratios are computed against.
        epochs: default training budget (the runner shrinks it for `--quick`).
        figures: optional `figures(folder) -> [(caption, file name), ...]`, called
            after the runs to draw pictures into `folder` for the report.
    """

    name: str
    title: str
    description: str
    variants: dict
    baseline: str
    epochs: int = 20
    figures: object = None

    def __post_init__(self):
        if self.baseline not in self.variants:
            raise ValueError(
                f"Invalid value received for argument `baseline`. Expected one of "
                f"{list(self.variants)}. Received: baseline={self.baseline!r}"
            )


_REGISTRY: dict = {}


def register_experiment(experiment: Experiment) -> Experiment:
    """Add `experiment` to the demo. Names must be unique."""
    if experiment.name in _REGISTRY:
        raise ValueError(f"An experiment named {experiment.name!r} is already registered.")
    _REGISTRY[experiment.name] = experiment
    return experiment


def registered_experiments() -> dict:
    """All registered experiments by name, in registration order."""
    from keras_efficient.demo import experiments

    for module in experiments.MODULES:
        importlib.import_module(f"{experiments.__name__}.{module}")
    return dict(_REGISTRY)


class StepTimer(keras.callbacks.Callback):
    """Records the wall time of every training batch."""

    def __init__(self):
        super().__init__()
        self.seconds = []
        self._start = None

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)

    def median_step_seconds(self, skip_first=True):
        # The first step traces and compiles the train function.
        times = self.seconds[1:] if skip_first and len(self.seconds) > 1 else self.seconds
        return float(np.median(times))


def digits_cnn(context, num_classes=None, name="digits_cnn"):
    """The small CNN every digits experiment uses as its classifier."""
    data = context.data
    num_classes = num_classes or data.num_classes
    return keras.Sequential(
        [
            keras.Input(shape=data.x_train.shape[1:]),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(num_classes),
        ],
        name=name,
    )


def resolution_free_cnn(num_classes=10, channels=1, width=16):
    """A small CNN for images of any size (global average pooling, no Flatten),
    as progressive resizing needs; `width` filters, then twice as many."""
    return keras.Sequential([
        keras.Input((None, None, channels)),
        keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(2 * width, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(2 * width, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(num_classes),
    ], name="resolution_free_cnn")


def apply_runtime(model, context):
    """Apply the run's XLA and steps-per-execution choices to a compiled model."""
    if context.jit_compile is not None:
        model.jit_compile = context.jit_compile
    model.steps_per_execution = context.steps_per_execution
    return model


def train_classifier(model, context, train_data=None, x_test=None, y_test=None, **fit_kwargs):
    """Fit a compiled classifier on the digits and measure it.

    Args:
        model: a compiled model whose `evaluate` reports an `accuracy`-named metric
            ("accuracy", "sparse_categorical_accuracy", ...).
        context: the `ExperimentContext`.
        train_data: optional `tf.data.Dataset` of batches to train on instead of
            `digits_dataset(context)` (for example with mixup).
        x_test, y_test: optional evaluation data (default: the digits test split).
        **fit_kwargs: passed to `model.fit` (callbacks are appended to ours).

    Returns:
        A `RunResult`.
    """
    apply_runtime(model, context)
    data = context.data
    x_test = data.x_test if x_test is None else x_test
    y_test = data.y_test if y_test is None else y_test
    timer = StepTimer()
    curve = _AccuracyCurve(model, x_test, y_test)
    callbacks = [timer, curve] + list(fit_kwargs.pop("callbacks", []))
    if train_data is None:
        train_data = digits_dataset(context)
    # Datasets are shuffled in the pipeline; Keras warns if asked to shuffle them.
    fit_kwargs.setdefault("shuffle", False)
    model.fit(train_data, epochs=context.epochs, verbose=0, callbacks=callbacks, **fit_kwargs)
    return RunResult(
        test_accuracy=curve.values[-1],
        val_curve=curve.values,
        step_seconds=timer.median_step_seconds(),
    )


def digits_dataset(context, x=None, y=None):
    """Shuffled (seeded, reshuffled each epoch) training batches of the digits.

    Batches have static shapes when `context.drop_remainder` is set (TPUs).
    """
    x = context.data.x_train if x is None else x
    y = context.data.y_train if y is None else y
    return (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(y), seed=context.seed)
        .batch(context.batch_size, drop_remainder=context.drop_remainder)
        .prefetch(tf.data.AUTOTUNE)
    )


def accuracy_of(model, x, y, batch_size=1024):
    """Top-1 accuracy of a classifier's `predict` on integer labels `y`."""
    # One batch for small test sets: a single predict trace instead of two shapes.
    predictions = model.predict(x, batch_size=min(batch_size, len(y)), verbose=0)
    return float(np.mean(np.argmax(predictions, axis=-1) == np.asarray(y).reshape(-1)))


class _AccuracyCurve(keras.callbacks.Callback):
    """Test accuracy after each epoch, outside the timed training steps."""

    def __init__(self, model, x, y):
        super().__init__()
        self._classifier = model
        self._x, self._y = x, y
        self.values = []

    def on_epoch_end(self, epoch, logs=None):
        self.values.append(accuracy_of(self._classifier, self._x, self._y))
