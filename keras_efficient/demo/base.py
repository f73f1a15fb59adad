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

from keras_efficient.data.digits import Digits


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """How a batch of experiments runs: from the `demo` command's flags, or from a
    YAML config with `RunSettings.from_config`.

    Args:
        seeds: seeds to repeat every variant over.
        quick: shrink epochs to a quarter (at least 2) for a smoke run; variants
            may shrink extra work with it.
        epochs: override every experiment's epoch budget.
        batch_size: the batch size of the digits batches (`digits_dataset`).
        variants: run only these variants (the baseline is always included).
        strategy: a `tf.distribute.Strategy` to build models under, or None.
        jit_compile: XLA choice (None: Keras's default); applied by `apply_runtime`.
        steps_per_execution: applied by `apply_runtime`.
        optimizer: the kind of every optimizer the experiments build
            (`ExperimentContext.make_optimizer`); None: each experiment's own.
        learning_rate: their learning rate; None: each experiment's own.
        drop_remainder: batch with static shapes (TPUs); used by `digits_dataset`.
    """

    seeds: tuple = (0, 1, 2)
    quick: bool = False
    epochs: int = None
    batch_size: int = 64
    variants: tuple = None
    strategy: object = None
    jit_compile: object = None
    steps_per_execution: int = 1
    optimizer: str = None
    learning_rate: float = None
    drop_remainder: bool = False

    @classmethod
    def from_config(cls, config, experiment):
        """The settings a validated `keras_efficient.config.ExperimentConfig` gives
        `experiment`, its `task.technique`. Every key reaches what it configures
        (`runtime.mixed_precision` is the dtype policy, set by `run_config`); a key
        that cannot apply (`task.params`, unknown `task.variants`, one of the
        experiment's `ignored_settings` away from its default) raises `ConfigError`
        naming it."""
        from keras_efficient import distribute
        from keras_efficient.config import SCHEMA
        from keras_efficient.config import ConfigError

        runtime, trainer, task = config.runtime, config.trainer, config.task
        unknown = [v for v in task["variants"] or [] if v not in experiment.variants]
        if unknown:
            raise ConfigError(
                f"{config.path}: key `task.variants` names unknown variants {unknown}; "
                f"{experiment.name!r} has {list(experiment.variants)}.")
        if task["params"]:
            raise ConfigError(
                f"{config.path}: key `task.params` does not apply: the demo experiment "
                f"{experiment.name!r} reads no parameters; received {sorted(task['params'])}.")
        for key, reason in experiment.ignored_settings.items():
            block, name = key.split(".")
            value, default = getattr(config, block)[name], SCHEMA[block][name].default
            if value != default:
                raise ConfigError(
                    f"{config.path}: key `{key}` does not apply to the demo experiment "
                    f"{experiment.name!r} ({reason}); leave it at its default {default!r}; "
                    f"received {value!r}.")
        strategy = distribute.get_strategy(runtime["strategy"], runtime["tpu"])
        recommended = distribute.recommended_settings(strategy)
        try:
            recommended.check_batch_size(trainer["batch_size"])
        except ValueError as error:
            raise ConfigError(f"{config.path}: key `trainer.batch_size`: {error}") from error
        jit = runtime["jit_compile"]
        learning_rate = trainer["learning_rate"]
        return cls(
            seeds=tuple(trainer["seeds"]), epochs=trainer["epochs"],
            batch_size=trainer["batch_size"],
            variants=tuple(task["variants"]) if task["variants"] else None,
            strategy=strategy,
            jit_compile=distribute.jit_compile_for(strategy) if jit == "auto" else jit,
            steps_per_execution=runtime["steps_per_execution"],
            optimizer=trainer["optimizer"],
            learning_rate=None if learning_rate is None else float(learning_rate),
            drop_remainder=recommended.drop_remainder,
        )


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
        settings: the `RunSettings` of the whole run.
    """

    data: object
    seed: int
    epochs: int
    settings: RunSettings = dataclasses.field(default_factory=RunSettings)

    def __post_init__(self):
        if isinstance(self.data, Digits):
            self.data = with_validation(self.data)

    def make_optimizer(self, learning_rate=1e-3, optimizer="adam"):
        """A fresh optimizer: the settings' kind and learning rate where set (a
        config's `trainer` block), else the experiment's own, given here."""
        settings = self.settings
        return keras.optimizers.get({
            "class_name": settings.optimizer or optimizer,
            "config": {"learning_rate": settings.learning_rate or learning_rate}})


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
        ignored_settings: the config keys (`"block.key"` of
            `keras_efficient.config.SCHEMA`) that some training the experiment
            measures does not follow, each mapped to why (e.g.
            `{"trainer.batch_size": "pre-training uses batches of 256"}`);
            `RunSettings.from_config` rejects a config that sets one to other than
            its default. Evaluation procedures with their own documented settings
            (linear probes, a difficulty-scoring run) do not count.
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
    ignored_settings: dict = dataclasses.field(default_factory=dict)
    claim: object = None
    full_only: bool = False

    def __post_init__(self):
        from keras_efficient.config import SCHEMA

        if self.baseline not in self.variants:
            raise ValueError(
                f"Invalid value received for argument `baseline`. Expected one of "
                f"{list(self.variants)}. Received: baseline={self.baseline!r}"
            )
        keys = [f"{block}.{key}" for block, fields in SCHEMA.items() for key in fields]
        unknown = sorted(set(self.ignored_settings) - set(keys))
        if unknown:
            raise ValueError(
                f"Invalid value received for argument `ignored_settings`. Expected config "
                f"keys among {keys}. Received: ignored_settings={unknown}"
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
    """All registered experiments by name: the package's in the demo's order (their
    table of contents, `keras_efficient.demo.experiments.MODULES`), then any other."""
    from keras_efficient.demo import experiments

    for module in experiments.MODULES:
        importlib.import_module(f"{experiments.__name__}.{module}")
    ordered = {name: _REGISTRY[name] for names in experiments.MODULES.values() for name in names}
    return {**ordered, **_REGISTRY}


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
    key = (what, id(context.data), context.epochs, context.settings)
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
    if context.settings.jit_compile is not None:
        model.jit_compile = context.settings.jit_compile
    model.steps_per_execution = context.settings.steps_per_execution
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


def digits_dataset(context, x=None, y=None, drop_remainder=False):
    """Shuffled (seeded, reshuffled each epoch) training batches of the digits.

    Batches have static shapes when `drop_remainder` or the settings' (TPUs) is set.
    """
    x = context.data.x_train if x is None else x
    y = context.data.y_train if y is None else y
    return (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(y), seed=context.seed)
        .batch(context.settings.batch_size,
               drop_remainder=drop_remainder or context.settings.drop_remainder)
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
