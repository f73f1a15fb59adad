"""Curriculum learning on the digits, two experiments.

"curriculum": at a limited training budget, the digits CNN trained on batches
paced by difficulty (`ke.curriculum.CurriculumDataset`, Wu et al.'s linear
pacing from 20% of the data to all of it at 80% of training) with the easiest
examples first (curriculum), the hardest first (anti-curriculum) or a random
order (the baseline), on clean labels and with 20% symmetric label noise. The
difficulty score is the mean loss of each example over a separate 3-epoch
scoring run of the same CNN on the same labels (`ExampleStatistics`; one
epoch with `--quick`). Wu et
al. (2021) found curricula help only with a limited budget or noisy labels.

"progressive_resizing": a small CNN with global average pooling on 16×16
digits at full size vs `ProgressiveResizing` (scale 0.5 → 1 over the first
half of training, sides multiples of 4); reports accuracy and
`train_seconds`, the summed wall time of the training steps. (The 32×32 time
claim is measured in `keras_efficient/bench/benchmarks/curriculum.py`.)
"""

import dataclasses
import functools
import math

import keras
import numpy as np
import tensorflow as tf

from keras_efficient.curriculum import CurriculumDataset
from keras_efficient.curriculum import ExampleStatistics
from keras_efficient.curriculum import ProgressiveResizing
from keras_efficient.curriculum import pacing
from keras_efficient.data import load_digits
from keras_efficient.data import symmetric_label_noise
from keras_efficient.demo import base

SCORING_EPOCHS = 3
NOISE_SEED = 0
NOISE_FRACTION = 0.2
RESIZE_IMAGE_SIZE = 16
RESIZE_INCREMENT = 4
_SCORES = {}
_MODELS = {}


def _compiled(model, context):
    model.compile(optimizer=context.make_optimizer(), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _classifier(build, context, role):
    """`build()`, compiled, in the state a new model would have for this seed.

    One compiled model per role and runtime setting is kept and reset (the
    seed's initial weights, the optimizer's initial state) for every run:
    tracing a new model's train and predict functions costs about 1.5 s here,
    more than a short training run itself.
    """
    keras.utils.set_random_seed(context.seed)
    initial = build()
    settings = context.settings
    key = (role, initial.name, settings.optimizer, settings.learning_rate,
           settings.jit_compile, settings.steps_per_execution, id(tf.distribute.get_strategy()))
    if key not in _MODELS:
        model = _compiled(build(), context)
        model.optimizer.build(model.trainable_variables)
        _MODELS[key] = (model, [variable.numpy() for variable in model.optimizer.variables])
    model, optimizer_state = _MODELS[key]
    model.set_weights(initial.get_weights())
    for variable, value in zip(model.optimizer.variables, optimizer_state):
        variable.assign(value)
    return model


def _train_labels(data, noisy):
    # The same flipped labels for the scoring run and every seed's training run.
    if not noisy:
        return data.y_train
    return symmetric_label_noise(data.y_train, NOISE_FRACTION, data.num_classes, NOISE_SEED)[0]


@functools.cache
def _statistics(num_examples):
    # One recorder per data size: it keeps its hooked train function across the
    # clean and noisy scoring runs of the shared scoring model.
    return ExampleStatistics(num_examples)


def _difficulty(context, noisy):
    """Mean loss per example over a scoring run (seed 0), cached per data set."""
    key = (id(context.data), noisy)
    if key not in _SCORES:
        data = context.data
        labels = _train_labels(data, noisy)
        ids = np.arange(len(labels))
        batches = tf.data.Dataset.from_tensor_slices(
            ({"inputs": data.x_train, "example_id": ids}, labels))
        batches = batches.shuffle(len(ids), seed=0).batch(context.settings.batch_size)
        scoring = dataclasses.replace(context, seed=0)
        model = _classifier(lambda: base.digits_cnn(scoring), scoring, "scoring")
        if tf.distribute.has_strategy():
            # Under a strategy Keras builds the compiled loss and metrics from the
            # raw (id-carrying) batch before callbacks run: build them on plain data.
            model.evaluate(data.x_train[:2], labels[:2], verbose=0)
        statistics = _statistics(len(ids))
        statistics.reset()
        epochs = 1 if context.settings.quick else SCORING_EPOCHS
        # `batches` is a tf.data pipeline: Keras would warn that it ignores shuffle=True.
        model.fit(batches, epochs=epochs, verbose=0, callbacks=[statistics], shuffle=False)
        _SCORES[key] = statistics.mean_loss
    return _SCORES[key]


def _paced(ordering, noisy):
    def run(context):
        data = context.data
        steps_per_epoch = math.ceil(len(data.y_train) / context.settings.batch_size)
        train = CurriculumDataset(
            data.x_train, _train_labels(data, noisy), scores=_difficulty(context, noisy),
            pacing=pacing.linear(context.epochs * steps_per_epoch, start_fraction=0.2,
                                 full_data_fraction=0.8),
            batch_size=context.settings.batch_size, ordering=ordering, seed=context.seed)
        model = _classifier(lambda: base.digits_cnn(context), context, "paced")
        return base.train_classifier(model, context, train_data=train,
                                     steps_per_epoch=steps_per_epoch)

    return run


def _paced_variants(orderings):
    """Each ordering on clean labels, then each on noisy labels (`<ordering>_noisy`)."""
    return {f"{ordering}{'_noisy' if noisy else ''}": _paced(ordering, noisy)
            for noisy in (False, True) for ordering in orderings}


base.register_experiment(base.Experiment(
    name="curriculum",
    title="Curriculum vs anti-curriculum vs random order, clean and 20% noisy labels",
    description=(
        "Digits CNN (Adam 1e-3, batch 64) on CurriculumDataset batches: linear pacing "
        "from the easiest 20% to all data at 80% of a short budget; difficulty = mean "
        "loss over a 3-epoch scoring run (ExampleStatistics) on the same labels. "
        "'random' paces a fixed random order. *_noisy: 20% of the training labels "
        "flipped (fixed draw; clean test labels)."),
    variants=_paced_variants(("random", "curriculum", "anti_curriculum")),
    baseline="random",
    epochs=8,
    claim=base.Claim(
        text="easiest-first ordering helps under label noise (Wu et al. 2021)",
        variant="curriculum_noisy",
        baseline="random_noisy",
        why_held="the noisy (high-loss) examples enter training last",
        why_not="Wu et al. find the gain mainly when the budget is also tight, and a "
                "2-epoch budget (`--full`: curriculum_tight_budget) did not show it either; "
                "why is not diagnosed (the card)",
    ),
))


base.register_experiment(base.Experiment(
    name="curriculum_tight_budget",
    title="Curriculum vs random order at a tight budget (2 epochs), clean and noisy (study)",
    description=(
        "As `curriculum` with a quarter of its budget: 2 epochs, the pacing from the "
        "easiest 20% to all data at 80% of them (Wu et al. 2021 find curricula help "
        "mainly at limited budgets). Same difficulty scores and noisy labels."),
    variants=_paced_variants(("random", "curriculum")),
    baseline="random",
    epochs=2,
    full_only=True,
    claim=base.Claim(
        text="easiest-first ordering helps at a tight budget (Wu et al. 2021)",
        variant="curriculum",
        why_held="the first steps fit the examples the network can learn quickly",
        why_not="easiest-first also trailed random order in the card's 2-epoch run; why "
                "is not diagnosed (the card)",
    ),
))


@functools.cache
def _digits(image_size):
    return load_digits(image_size=image_size)


@functools.cache
def _resizing(total_steps):
    # One instance per schedule: it keeps the traced train function of each size.
    return ProgressiveResizing(total_steps, initial_scale=0.5, delay_fraction=0.0,
                               finetune_fraction=0.5, size_increment=RESIZE_INCREMENT)


def steady_train_seconds(step_seconds, sizes):
    """Training time without tracing: per image size, the median step time times
    the number of steps at that size (what `bench progressive_resizing` compares;
    a size's first step traces its train function)."""
    by_size = {}
    for seconds, size in zip(step_seconds, sizes):
        by_size.setdefault(size, []).append(seconds)
    return float(sum(np.median(times) * len(times) for times in by_size.values()))


def _resized(progressive):
    def run(context):
        context = dataclasses.replace(context, data=_digits(RESIZE_IMAGE_SIZE))
        data = context.data
        steps_per_epoch = len(data.y_train) // context.settings.batch_size
        batches = base.digits_dataset(context, drop_remainder=True)
        timer = base.StepTimer()
        callbacks = [timer]
        if progressive:
            resizing = _resizing(context.epochs * steps_per_epoch)
            batches = resizing.apply(batches)
            callbacks.append(resizing)
        else:
            batches = batches.repeat()
        model = _classifier(lambda: base.resolution_free_cnn(data.num_classes), context,
                            "progressive" if progressive else "full_size")
        result = base.train_classifier(model, context, train_data=batches,
                                       steps_per_epoch=steps_per_epoch, callbacks=callbacks)
        result.extra["train_seconds"] = float(np.sum(timer.seconds))
        sizes = [resizing.size_at(step) if progressive else None
                 for step in range(len(timer.seconds))]
        result.extra["train_seconds_after_tracing"] = steady_train_seconds(timer.seconds, sizes)
        return result

    return run


base.register_experiment(base.Experiment(
    name="progressive_resizing",
    title=f"Progressive resizing: {RESIZE_IMAGE_SIZE}×{RESIZE_IMAGE_SIZE} digits at full size "
          "vs scale 0.5 → 1",
    description=(
        f"A small CNN with global average pooling (Adam 1e-3, batch 64) on "
        f"{RESIZE_IMAGE_SIZE}×{RESIZE_IMAGE_SIZE} digits: full size throughout vs "
        f"ProgressiveResizing (scale 0.5 → 1 over the first half, sides multiples of "
        f"{RESIZE_INCREMENT}, full size in the second half; evaluated at full size). "
        "train_seconds = summed step wall time, tracing of each size included (once per "
        "process: later seeds reuse the traced functions); train_seconds_after_tracing = "
        "per size, median step time x steps (the benchmark's measure)."),
    variants={"full_size": _resized(False), "progressive": _resized(True)},
    baseline="full_size",
    epochs=8,
    ignored_settings={"task.image_size": f"it loads its own {RESIZE_IMAGE_SIZE}×"
                                          f"{RESIZE_IMAGE_SIZE} digits"},
    claim=base.Claim(
        text="progressive resizing costs no accuracy (its gain is training time: the "
             "benchmark measures 0.747x the step time at 32x32)",
        variant="progressive",
        holds_if=("helped", "no effect within noise"),
        why_held="the second half at full size recovers what the small images miss",
        why_not="at 8 epochs even the full-size net is far from converged and progressive "
                "resizing halves its full-size steps; untested whether a longer budget closes "
                "the gap (the card)",
    ),
))
