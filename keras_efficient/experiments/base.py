"""The experiment contract: a technique measured against its baseline.

An experiment is a set of named variants (the baseline and one or more
techniques). Each variant is a function that trains on the embedded data for one
seed and returns a `RunResult`; the runner (`keras_efficient.experiments.runner`)
repeats it over seeds, aggregates mean ± std, computes step-time ratios against
the baseline, and writes the report.

A technique module adds its experiment with `register_experiment`:

```python
from keras_efficient.experiments import base

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
import time

import keras
import numpy as np
import tensorflow as tf

from keras_efficient.data.digits import Digits


@dataclasses.dataclass
class ExperimentContext:
    """What a variant gets for one run.

    Args:
        data: a `keras_efficient.data.Digits` (x_train, y_train, x_test, y_test,
            num_classes), identical for every variant and seed; a `Digits` is
            replaced by its `with_validation` split (x_val, y_val taken from the
            training part) so that every choice can be made without the test split.
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

    def __post_init__(self):
        if isinstance(self.data, Digits):
            self.data = with_validation(self.data)

    def make_optimizer(self):
        """A fresh optimizer of the configured kind and learning rate."""
        return keras.optimizers.get(
            {"class_name": self.optimizer, "config": {"learning_rate": self.learning_rate}})


@dataclasses.dataclass
class RunResult:
    """What one variant measured for one seed.

    Args:
        test_accuracy: accuracy on the held-out test split, in [0, 1] (NaN when
            the run had no test split, as in `choose_on_validation`).
        val_curve: validation accuracy after each epoch (for the learning-curve plot).
        step_seconds: median wall time of one training step.
        extra: further named numbers to report (mean over seeds is shown).
        val_accuracy: validation accuracy at the end of training, what
            `choose_on_validation` ranks candidates by.
    """

    test_accuracy: float
    val_curve: list
    step_seconds: float
    extra: dict = dataclasses.field(default_factory=dict)
    val_accuracy: float = None


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
        claim: optional `Claim`, the book's claim that the report checks.
        full_only: a longer study, outside the demo's time budget: run by
            `keras-efficient demo --full`, or when named with `--only`.
    """

    name: str
    title: str
    description: str
    variants: dict
    baseline: str
    epochs: int = 20
    figures: object = None
    claim: object = None
    full_only: bool = False

    def __post_init__(self):
        if self.baseline not in self.variants:
            raise ValueError(
                f"Invalid value received for argument `baseline`. Expected one of "
                f"{list(self.variants)}. Received: baseline={self.baseline!r}"
            )


@dataclasses.dataclass
class Claim:
    """What the book (or the paper) claims, checked by the report against one variant.

    Args:
        text: the claim, completing "The claim that ...".
        variant: the variant that carries the claim; it is compared with the
            experiment's baseline by `report.compare_to_baseline`.
        holds_if: the verdicts that count as the claim holding: `("helped",)`
            for a gain, `("helped", "no effect within noise")` for "no accuracy loss".
        why_held, why_not: one clause each, from the method card, on why the
            claim holds or does not hold in this setting.
        baseline: the variant to compare with, if not the experiment's baseline
            (for example the noisy-label baseline of a noisy-label claim).
    """

    text: str
    variant: str
    holds_if: tuple = ("helped",)
    why_held: str = ""
    why_not: str = ""
    baseline: str = None


_REGISTRY: dict = {}


def register_experiment(experiment: Experiment) -> Experiment:
    """Add `experiment` to the demo. Names must be unique."""
    if experiment.name in _REGISTRY:
        raise ValueError(f"An experiment named {experiment.name!r} is already registered.")
    _REGISTRY[experiment.name] = experiment
    return experiment


def registered_experiments() -> dict:
    """All registered experiments by name, in registration order."""
    from keras_efficient import experiments  # noqa: F401  (imports every module)

    return dict(_REGISTRY)


VALIDATION_FRACTION = 0.2
VALIDATION_SEED = 0


@dataclasses.dataclass
class SplitDigits(Digits):
    """`Digits` whose training part is split again: x_train/y_train to fit on,
    x_val/y_val to choose on (hyperparameters, early stopping, learning curves).
    The test split is for the reported numbers only."""

    x_val: np.ndarray = None
    y_val: np.ndarray = None


_SPLITS = {}  # id(data) -> (data, its SplitDigits): one split object per data set


def with_validation(data, fraction=VALIDATION_FRACTION, seed=VALIDATION_SEED):
    """`data` with a stratified, seeded validation part taken from its training part.

    The split depends only on `seed` (not on the run's seed), so every variant
    and seed of an experiment chooses on the same examples, and the same data
    object gives the same `SplitDigits` object (experiments cache by identity).
    Data that already has a validation part is returned unchanged.

    Args:
        data: a `keras_efficient.data.Digits`.
        fraction: share of the training part held out for validation, in (0, 1).
        seed: seed of the split.

    Returns:
        A `SplitDigits`.
    """
    if getattr(data, "x_val", None) is not None:
        return data
    if id(data) not in _SPLITS:
        from sklearn.model_selection import train_test_split

        x_train, x_val, y_train, y_val = train_test_split(
            data.x_train, data.y_train, test_size=fraction, stratify=data.y_train,
            random_state=seed)
        fields = {field.name: getattr(data, field.name) for field in dataclasses.fields(data)}
        fields.update(x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val)
        _SPLITS[id(data)] = (data, SplitDigits(**fields))
    return _SPLITS[id(data)][1]


def without_test(context):
    """`context` whose data has no test split: what a selection run may see."""
    return dataclasses.replace(
        context, data=dataclasses.replace(context.data, x_test=None, y_test=None))


def choose_on_validation(context, candidates, run):
    """Pick the candidate whose run reaches the best final validation accuracy.

    Every candidate runs from the run's seed on the data without its test split,
    so the choice cannot depend on the test split.

    Args:
        context: the `ExperimentContext` of the run that needs the choice.
        candidates: the values to choose from.
        run: `run(context, candidate) -> RunResult` with `val_accuracy` set
            (`train_classifier` sets it).

    Returns:
        `(best candidate, {candidate: validation accuracy})`.
    """
    selection = without_test(context)
    scores = {}
    for candidate in candidates:
        keras.utils.set_random_seed(context.seed)
        scores[candidate] = float(run(selection, candidate).val_accuracy)
    keras.utils.set_random_seed(context.seed)  # the chosen run starts where the others did
    return max(scores, key=scores.get), scores


SELECTION_SEED = 0
_CHOICES = {}  # (what, data, budget) -> the candidate chosen on validation


def chosen_once(context, what, candidates, build):
    """`choose_on_validation` once per data and budget, with seed `SELECTION_SEED`'s
    runs, for every seed of an experiment (the demo's budget has no room for a
    selection per seed).

    Args:
        context: the run's `ExperimentContext`.
        what: a name for the choice, unique among the experiments.
        candidates: the values to choose from.
        build: `build(candidate)` is the variant (`context -> RunResult`) to run.

    Returns:
        The chosen candidate.
    """
    key = (what, id(context.data), context.epochs, context.batch_size, context.optimizer,
           context.learning_rate)
    if key not in _CHOICES:
        _CHOICES[key] = choose_on_validation(
            dataclasses.replace(context, seed=SELECTION_SEED), candidates,
            lambda selection, candidate: build(candidate)(selection))[0]
        keras.utils.set_random_seed(context.seed)  # the run starts as if not cached
    return _CHOICES[key]


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
        x_test, y_test: optional evaluation data (default: the digits test split),
            read once, after training.
        **fit_kwargs: passed to `model.fit` (callbacks are appended to ours).

    Returns:
        A `RunResult`: the learning curve and `val_accuracy` on the validation
        part, `test_accuracy` on the test split (NaN if the data has none).
    """
    apply_runtime(model, context)
    data = context.data
    x_test = data.x_test if x_test is None else x_test
    y_test = data.y_test if y_test is None else y_test
    timer = StepTimer()
    curve = _AccuracyCurve(model, data.x_val, data.y_val)
    callbacks = [timer, curve] + list(fit_kwargs.pop("callbacks", []))
    if train_data is None:
        train_data = digits_dataset(context)
    # Datasets are shuffled in the pipeline; Keras warns if asked to shuffle them.
    fit_kwargs.setdefault("shuffle", False)
    model.fit(train_data, epochs=context.epochs, verbose=0, callbacks=callbacks, **fit_kwargs)
    return RunResult(
        test_accuracy=accuracy_of(model, x_test, y_test) if x_test is not None else float("nan"),
        val_curve=curve.values,
        step_seconds=timer.median_step_seconds(),
        val_accuracy=curve.values[-1],
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
    """Validation accuracy after each epoch, outside the timed training steps."""

    def __init__(self, model, x, y):
        super().__init__()
        self._classifier = model
        self._x, self._y = x, y
        self.values = []

    def on_epoch_end(self, epoch, logs=None):
        self.values.append(accuracy_of(self._classifier, self._x, self._y))
