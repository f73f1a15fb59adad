"""Bad input never becomes a silent NaN or a crash deep in TensorFlow.

Every public callable of every namespace is found by `inspect` (so a new public
name is covered without editing this file: it fails until it has an entry in
`TABLE`). Each entry gives valid base arguments and the kind of each numeric,
string, path, seed or callable argument; every argument is then fed one bad
value at a time from the families below (negative, zero, NaN, inf, huge, a
string, None, a list, a float for an int, a bool). Each case ends in one of:

- "clear error": a `ValueError`/`TypeError` whose message names the argument;
- "accepted": no error and, where the entry has a probe (one tiny forward pass,
  call or batch), every output finite;
- "silent NaN": accepted, but the probe returned NaN or inf;
- "crash": any other exception (AttributeError, ZeroDivisionError, a TF error);
- "vague error": a `ValueError`/`TypeError` that does not name the argument.

A bad value must end in "clear error"; the values an entry lists as `ok` (zero
for a rate, None for a seed) must end in "accepted". The figure in README.md's
"Reliability" paragraph comes from `PYTHONPATH=$PWD python tests/test_api_validation.py`.
"""

import collections
import dataclasses
import inspect
import json
import math
import os
import tempfile
import types

import hypothesis
import hypothesis.strategies as st
import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_efficient as ke
from keras_efficient import utils

NAMESPACES = {
    "ke.layers": ke.layers,
    "ke.losses": ke.losses,
    "ke.models": ke.models,
    "ke.callbacks": ke.callbacks,
    "ke.schedules": ke.schedules,
    "ke.data": ke.data,
    "ke.curriculum": ke.curriculum,
    "ke.curriculum.pacing": ke.curriculum.pacing,
    "ke.distribute": ke.distribute,
    "ke.recipes.bert": ke.recipes.bert,
    "ke.federated": ke.federated,
    "ke.recipes.in_context": ke.recipes.in_context,
}
# Public callables outside the namespaces above, still checked: the BERT smoke
# run's scaffolding (in `ke.testing`) and what `ke.distribute` no longer exports.
ALSO_CHECKED = {
    "ke.testing.smoke_environment": ke.recipes.bert.run.smoke_environment,
    "ke.testing.write_tiny_encoder": ke.recipes.bert.run.write_tiny_encoder,
    "keras_efficient.distribute.strategy.StrategyChoice": ke.distribute.strategy.StrategyChoice,
    "keras_efficient.distribute.settings.TrainingSettings":
        ke.distribute.settings.TrainingSettings,
    "keras_efficient.distribute.multi_worker.patch_keras_for_multi_worker":
        ke.distribute.multi_worker.patch_keras_for_multi_worker,
    "keras_efficient.distribute.xla.jit_compile_for_device":
        ke.distribute.xla.jit_compile_for_device,
}
try:  # Flower is the optional `federated` extra (which `test` installs)
    from keras_efficient.federated import flower

    NAMESPACES["ke.federated.flower"] = flower
except ImportError:
    flower = None

NAN = float("nan")
INF = float("inf")

# --- bad-value families per kind of argument ----------------------------------
_NUMBER_FAMILIES = {
    "negative": -1.0, "zero": 0.0, "nan": NAN, "inf": INF, "huge": 1e300,
    "string": "0.5", "none": None, "list": [0.5], "bool": True,
}
_INT_FAMILIES = {
    "negative": -1, "zero": 0, "nan": NAN, "inf": INF, "huge": 10**12,
    "string": "8", "none": None, "list": [8], "float_for_int": 2.5, "bool": True,
}
_STRING_FAMILIES = {
    "unknown": "no_such_value", "empty": "", "none": None, "int": 1, "list": ["x"],
    "bool": True,
}
_PAIR_FAMILIES = {
    "negative": (-0.5, 1.0), "nan": (NAN, 1.0), "inf": (0.5, INF), "reversed": (1.0, 0.5),
    "string": "0.5", "none": None, "scalar": 0.5, "triple": (0.1, 0.5, 1.0),
}
FAMILIES = {
    "float": _NUMBER_FAMILIES,
    "int": _INT_FAMILIES,
    "seed": _INT_FAMILIES,
    "choice": _STRING_FAMILIES,
    "key": _STRING_FAMILIES,
    "path": {"empty": "", "none": None, "int": 0, "list": ["/tmp/x"], "bool": True},
    "callable": {"string": "relu", "none": None, "int": 1, "list": [abs]},
    "pair": _PAIR_FAMILIES,
    "sizes": {
        "negative": (-1,), "zero": (0,), "huge": (10**12,), "string": "8",
        "float_for_int": (2.5,), "nan": (NAN,), "list_of_lists": [[8]], "bool": (True,),
    },
}


@dataclasses.dataclass
class Arg:
    """One argument: its kind (a key of FAMILIES) and the families it accepts."""

    kind: str
    ok: tuple = ()


@dataclasses.dataclass
class Entry:
    """How to call one public callable with valid arguments, and what to check.

    `base`: a zero-argument function returning the valid keyword arguments (fresh
    models each call). `probe(result)`: a tiny forward pass returning arrays to
    check for NaN; it runs for every accepted value and also surfaces errors
    raised at the first call. `call(result)`: what to do with the result before
    the probe (a batch transform is applied to a tiny batch, a context entered).
    `run_accepted=False` for callables whose accepted call would download or
    train for long: only the bad values are tried there; `tensorflow_only=True`
    runs accepted values on the TensorFlow backend only (models not yet ported
    to JAX, DESIGN.md section 7); `refuses_jax=True` runs no case on JAX, for
    callables that refuse that backend before reading their arguments.
    """

    base: object = dict
    args: dict = dataclasses.field(default_factory=dict)
    probe: object = None
    run_accepted: bool = True
    call: object = None
    tensorflow_only: bool = False
    refuses_jax: bool = False


def F(*ok):
    return Arg("float", ok)


def I(*ok):
    return Arg("int", ok)


SEED = Arg("seed", ("none", "zero"))
SEED_INT = Arg("seed", ("zero",))
FRACTION = F()
FRACTION0 = F("zero")
POSITIVE = F()
SIZE = I()
COUNT = I("zero")
CHOICE = Arg("choice")
CHOICE_NONE = Arg("choice", ("none",))
KEY = Arg("key", ("unknown",))  # any non-empty string is a valid name


# --- tiny fixtures ----------------------------------------------------------
def _mlp(inputs=4, outputs=3):
    return keras.Sequential([keras.Input((inputs,)), keras.layers.Dense(outputs)])


def _encoder():
    return keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                             keras.layers.Dense(4)])


def _fit_one_step(model, x, y=None):
    model.compile(optimizer="sgd", **({} if y is None else {"loss": "mse"}))
    history = model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
    return [np.asarray(v) for v in history.history.values()] + [
        np.asarray(w) for w in model.trainable_weights]


def _probe_layer(shape, training=True):
    def probe(layer):
        x = np.random.default_rng(0).uniform(size=shape).astype("float32")
        return [np.asarray(layer(x, training=training))]
    return probe


def _probe_loss(y_true, y_pred):
    return lambda loss: [np.asarray(loss(np.asarray(y_true), np.asarray(y_pred, "float32")))]


def _probe_schedule(schedule):
    return [np.asarray(schedule(step)) for step in (0, 1, 5, 50)]


def _probe_pacing(function):
    return [np.asarray(function(step), "float64") for step in (0, 1, 5, 10, 100)]


def _probe_batch(transform):
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 3)).astype("float32")
    y = np.array([0, 1, 2, 1])
    return [np.asarray(t) for t in keras.tree.flatten(transform(x, y))]


def _images_labels(n=12):
    rng = np.random.default_rng(0)
    return rng.uniform(size=(n, 4)).astype("float32"), np.arange(n) % 3


_X, _Y = _images_labels()
_PACING = {"total_steps": SIZE, "start_fraction": FRACTION, "full_data_fraction": FRACTION}
_PACING_BASE = lambda: {"total_steps": 10}
_MODEL_ARG = Arg("callable")


def _episode(meta_batch=1, item_shape=(4,)):
    """One tiny 2-way 2-shot episode batch `(support_x, support_y, query_x)`."""
    rng = np.random.default_rng(0)
    support_x = rng.uniform(size=(meta_batch, 4) + item_shape).astype("float32")
    query_x = rng.uniform(size=(meta_batch, 2) + item_shape).astype("float32")
    return support_x, np.tile([0, 0, 1, 1], (meta_batch, 1)), query_x


def _probe_episodic(model):
    return [np.asarray(model(_episode()))]


def _fit_maml_one_step(maml):
    support_x, _, query_x = _episode(2, (1,))
    support_y, query_y = support_x[..., 0], query_x[..., 0]
    maml.compile(optimizer="sgd", loss="mse")
    history = maml.fit((support_x, support_y, query_x), query_y, batch_size=2, verbose=0)
    return [np.asarray(v) for v in history.history.values()] + [
        np.asarray(w) for w in maml.trainable_weights]


def _first_element(dataset):
    return [np.asarray(t) for t in keras.tree.flatten(next(iter(dataset)))]


def _compiled_mlp():
    model = _mlp()
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    return model


_CLIENTS = [(_X[:6], _Y[:6]), (_X[6:], _Y[6:])]
_FEDERATED_BASE = lambda: {"model_fn": _compiled_mlp, "client_optimizer": "sgd"}


def _probe_federated(algorithm):
    algorithm.fit(_CLIENTS, rounds=1)
    return algorithm.get_weights()


def _probe_client_update(update):
    weights = [np.asarray(w) for w in update.model.weights]
    return update(weights, _X[:6], _Y[:6], np.random.default_rng(0))


_MIXING = np.full((2, 2), 0.5)
# Only `score` is looked up at construction; the accepted runs stop there.
_CAUSAL_LM = types.SimpleNamespace(score=lambda **kwargs: None)

TABLE = {
    # layers
    "ke.layers.DropBlock2D": Entry(
        args={"rate": FRACTION0, "block_size": SIZE, "warmup_steps": COUNT,
              "data_format": CHOICE_NONE, "seed": SEED},
        probe=_probe_layer((2, 8, 8, 3))),
    "ke.layers.ProjectionHead": Entry(
        base=lambda: {"hidden_dims": (4,), "output_dim": 2},
        args={"hidden_dims": Arg("sizes"), "output_dim": SIZE},
        probe=_probe_layer((4, 3))),
    "ke.layers.RandomResizedCrop": Entry(
        args={"scale": Arg("pair"), "ratio": Arg("pair"), "seed": SEED,
              "data_format": CHOICE_NONE},
        probe=_probe_layer((2, 8, 8, 3))),
    "ke.layers.SimCLRAugmentation": Entry(
        args={"scale": Arg("pair"), "jitter_strength": F("zero"),
              "jitter_probability": FRACTION0, "grayscale_probability": FRACTION0,
              "blur_probability": FRACTION0, "blur_kernel_size": SIZE,
              "value_range": Arg("pair", ("negative",)), "seed": SEED},
        probe=_probe_layer((2, 8, 8, 3))),
    "ke.layers.StochasticDepth": Entry(
        base=lambda: {"block": keras.layers.Dense(3)},
        args={"block": _MODEL_ARG, "survival_probability": FRACTION, "mode": CHOICE,
              "seed": SEED},
        probe=_probe_layer((4, 3))),
    "ke.layers.SubclassHead": Entry(
        base=lambda: {"num_classes": 2, "num_subclasses": 4},
        args={"num_classes": SIZE, "num_subclasses": SIZE},
        probe=_probe_layer((2, 3))),
    "ke.layers.stochastic_depth_survival": Entry(
        base=lambda: {"block_index": 1, "num_blocks": 4},
        args={"block_index": COUNT, "num_blocks": SIZE, "final_survival": FRACTION},
        probe=lambda p: [np.asarray(p)]),
    # losses
    # `reduction` is checked by keras.losses.Loss.
    "ke.losses.BYOLLoss": Entry(),
    "ke.losses.SimSiamLoss": Entry(),
    "ke.losses.KnowledgeDistillation": Entry(
        args={"temperature": POSITIVE},
        probe=_probe_loss(np.eye(2, 3), np.ones((2, 3)))),
    "ke.losses.NTXent": Entry(
        args={"temperature": POSITIVE},
        probe=_probe_loss(np.eye(2, 3), np.ones((2, 3)))),
    "ke.losses.SubclassAuxiliaryLoss": Entry(
        args={"temperature": POSITIVE},
        probe=_probe_loss(np.zeros((2,)), np.eye(2, 3))),
    "ke.losses.SparseCategoricalCrossentropy": Entry(
        args={"label_smoothing": FRACTION0,
              "ignore_class": Arg("int", ("none", "zero", "negative"))},
        probe=_probe_loss([0, 2], [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])),
    # models
    "ke.models.BYOL": Entry(
        base=lambda: {"encoder": _encoder()},
        args={"encoder": _MODEL_ARG, "target_decay": F("zero"),
              "decay_steps": Arg("int", ("none",))},
        tensorflow_only=True),
    "ke.models.SimCLR": Entry(
        base=lambda: {"encoder": _encoder()},
        args={"encoder": _MODEL_ARG, "temperature": POSITIVE}),
    "ke.models.SimSiam": Entry(base=lambda: {"encoder": _encoder()},
                               args={"encoder": _MODEL_ARG}),
    "ke.models.Distiller": Entry(
        base=lambda: {"teacher": _mlp(), "student": _mlp()},
        # None (the default) leaves both to keras-io's `compile` form.
        args={"teacher": _MODEL_ARG, "student": _MODEL_ARG, "temperature": F("none"),
              "alpha": F("zero", "none")}),
    "ke.models.SubclassDistiller": Entry(
        base=lambda: {"teacher": ke.models.SubclassTeacher(_mlp(4, 4), 2, 2),
                      "student": _mlp(4, 2)},
        args={"teacher": _MODEL_ARG, "student": _MODEL_ARG, "alpha": FRACTION0,
              "temperature": POSITIVE}),
    "ke.models.SubclassTeacher": Entry(
        base=lambda: {"backbone": _mlp(4, 4), "num_classes": 2, "num_subclasses": 4},
        args={"backbone": _MODEL_ARG, "num_classes": SIZE, "num_subclasses": SIZE,
              "beta": F("zero"), "temperature": POSITIVE}),
    "ke.models.SharpnessAwareMinimization": Entry(
        base=lambda: {"model": _mlp()},
        args={"model": _MODEL_ARG, "rho": POSITIVE,
              "num_batch_splits": Arg("int", ("none",)), "interval": SIZE,
              "eta": F("zero"), "looksam_alpha": F("none")},
        probe=lambda m: _fit_one_step(m, _X[:4], np.ones((4, 3), "float32")),
        tensorflow_only=True),
    "ke.models.build_resnet": Entry(
        base=lambda: {"input_shape": (8, 8, 1), "num_classes": 3, "blocks": 1, "filters": 2},
        args={"num_classes": SIZE, "blocks": SIZE, "filters": SIZE,
              "stochastic_depth": F("none"), "stochastic_depth_mode": CHOICE,
              "drop_block_rate": FRACTION0, "drop_block_size": SIZE, "seed": SEED}),
    "ke.models.fine_tuning_classifier": Entry(
        base=lambda: {"encoder": _encoder(), "num_classes": 3},
        args={"encoder": _MODEL_ARG, "num_classes": SIZE}),
    "ke.models.linear_probe": Entry(
        base=lambda: {"encoder": _encoder(), "num_classes": 3},
        args={"encoder": _MODEL_ARG, "num_classes": SIZE}),
    # callbacks
    "ke.callbacks.BackupAndRestore": Entry(
        base=lambda: {"backup_dir": "unused_backup_dir"},
        args={"backup_dir": Arg("path"), "save_freq": SIZE},
        run_accepted=False),
    "ke.callbacks.ExampleStatistics": Entry(
        base=lambda: {"num_examples": 4},
        args={"num_examples": SIZE, "loss": Arg("callable", ("none",)), "id_key": KEY},
        tensorflow_only=True),
    "ke.callbacks.KNNAccuracy": Entry(
        base=lambda: {"x_train": _X, "y_train": _Y, "x_test": _X, "y_test": _Y, "k": 2},
        args={"k": SIZE, "every": SIZE, "batch_size": SIZE}),
    "ke.callbacks.ProgressiveResizing": Entry(
        base=lambda: {"total_steps": 10},
        args={"total_steps": SIZE, "initial_scale": FRACTION, "delay_fraction": FRACTION0,
              "finetune_fraction": FRACTION0, "size_increment": SIZE,
              "target_size": Arg("sizes", ("none",)), "interpolation": CHOICE}),
    "ke.callbacks.ReduceLROnPlateau": Entry(
        args={"monitor": KEY, "factor": FRACTION, "patience": COUNT, "mode": CHOICE,
              "min_delta": F("zero"), "cooldown": COUNT, "min_lr": F("zero")}),
    "ke.callbacks.SequenceLengthWarmup": Entry(
        base=lambda: {"warmup_steps": 10},
        args={"warmup_steps": SIZE, "initial_length": SIZE, "length_increment": SIZE,
              "max_length": Arg("int", ("none",))}),
    # schedules
    "ke.schedules.ScaledSchedule": Entry(
        base=lambda: {"schedule": keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)},
        args={"schedule": Arg("callable"), "scale": F("zero")},
        probe=_probe_schedule),
    "ke.schedules.StepDecay": Entry(
        base=lambda: {"initial_learning_rate": 0.1, "decay_rate": 0.5, "step_size": 2},
        args={"initial_learning_rate": F("zero"), "decay_rate": FRACTION,
              "step_size": SIZE, "steps_per_epoch": SIZE},
        probe=_probe_schedule),
    "ke.schedules.WarmUp": Entry(
        base=lambda: {"schedule": 0.1, "warmup_steps": 4},
        args={"schedule": F("zero"), "warmup_steps": COUNT, "mode": CHOICE,
              "initial_learning_rate": F("zero")},
        probe=_probe_schedule),
    # data
    "ke.data.CutMix": Entry(
        base=lambda: {"num_classes": 3, "seed": 0},
        args={"alpha": POSITIVE, "num_classes": SIZE,
              "label_smoothing": FRACTION0, "seed": SEED, "data_format": CHOICE_NONE},
        call=lambda obj: _probe_batch(obj), probe=lambda outs: outs),
    "ke.data.MixUp": Entry(
        base=lambda: {"num_classes": 3, "seed": 0},
        args={"alpha": POSITIVE, "num_classes": SIZE,
              "label_smoothing": FRACTION0, "seed": SEED},
        call=lambda obj: _probe_batch(obj), probe=lambda outs: outs),
    "ke.data.Digits": Entry(),  # a record returned by load_digits, not an entry point
    "ke.data.JigsawPretext": Entry(
        base=lambda: {"patch_size": 2, "num_permutations": 4},
        args={"patch_size": SIZE, "gap": COUNT, "jitter": COUNT, "num_permutations": SIZE,
              "seed": SEED}),
    "ke.data.RelativePatchPretext": Entry(
        base=lambda: {"patch_size": 2},
        args={"patch_size": SIZE, "gap": COUNT, "jitter": COUNT, "seed": SEED}),
    "ke.data.RotationPretext": Entry(),
    "ke.data.few_label_subset": Entry(
        base=lambda: {"x": _X, "y": _Y, "fraction": 0.5},
        args={"fraction": FRACTION, "seed": SEED_INT}),
    "ke.data.group_classes": Entry(base=lambda: {"y": _Y, "groups": [[0, 1], [2]]}),
    "ke.data.load_digits": Entry(
        args={"image_size": SIZE, "channels": SIZE, "test_fraction": FRACTION,
              "seed": SEED_INT}),
    "ke.data.load_tfds": Entry(
        base=lambda: {"name": "cifar10"},
        args={"name": CHOICE, "split": KEY, "data_dir": Arg("path", ("none",))},
        run_accepted=False),
    "ke.data.symmetric_label_noise": Entry(
        base=lambda: {"y": _Y, "fraction": 0.5, "num_classes": 3},
        args={"fraction": FRACTION0, "num_classes": SIZE, "seed": SEED_INT}),
    # curriculum
    "ke.curriculum.CurriculumDataset": Entry(
        base=lambda: {"x": _X, "y": _Y, "scores": np.linspace(0, 1, 12),
                      "pacing": ke.curriculum.pacing.linear(10), "batch_size": 4},
        args={"pacing": Arg("callable"), "batch_size": SIZE, "ordering": CHOICE,
              "total_steps": Arg("int", ("none",)), "seed": SEED, "id_key": KEY}),
    "ke.curriculum.rarity_scores": Entry(
        base=lambda: {"tokens": np.array([[1, 2, 0], [2, 2, 3]])},
        args={"padding_id": Arg("int", ("none", "zero", "negative", "huge")),
              "reduction": CHOICE},
        probe=lambda scores: [np.asarray(scores)]),
    "ke.curriculum.teacher_scores": Entry(
        base=lambda: {"teacher": _mlp(), "x": _X, "y": _Y},
        args={"teacher": _MODEL_ARG, "kind": CHOICE, "batch_size": SIZE},
        probe=lambda scores: [np.asarray(scores)]),
    "ke.curriculum.pacing.float64_scope": Entry(),  # a backend helper pacing imports
    "ke.curriculum.pacing.PacingFunction": Entry(
        base=_PACING_BASE, args={"total_steps": SIZE}),
    "ke.curriculum.pacing.ExponentialPacing": Entry(
        base=_PACING_BASE,
        args={"total_steps": SIZE, "start_fraction": FRACTION, "increase": POSITIVE,
              "step_length": SIZE},
        probe=_probe_pacing),
    "ke.curriculum.pacing.fixed_exponential": Entry(
        base=_PACING_BASE,
        args={"total_steps": SIZE, "start_fraction": FRACTION, "increase": POSITIVE,
              "step_length": SIZE},
        probe=_probe_pacing),
    "ke.curriculum.pacing.varied_exponential": Entry(
        base=lambda: {"total_steps": 10, "step_lengths": (2, 3)},
        args={"total_steps": SIZE, "step_lengths": Arg("sizes"),
              "start_fraction": FRACTION, "increase": POSITIVE},
        probe=_probe_pacing),
    "ke.curriculum.pacing.WuPacing": Entry(
        base=_PACING_BASE, args={**_PACING, "kind": CHOICE}, probe=_probe_pacing),
    **{f"ke.curriculum.pacing.{name}": Entry(base=_PACING_BASE, args=_PACING,
                                            probe=_probe_pacing)
       for name in ("exponential", "linear", "logarithmic", "quadratic", "root", "step")},
    # distribute
    "keras_efficient.distribute.strategy.StrategyChoice": Entry(),  # a record returned by choose_strategy
    "keras_efficient.distribute.settings.TrainingSettings": Entry(
        base=lambda: {"device_type": "CPU", "jit_compile": False, "steps_per_execution": 1,
                      "dtype_policy": "float32", "drop_remainder": False, "num_replicas": 2},
        args={"device_type": CHOICE, "steps_per_execution": SIZE, "dtype_policy": CHOICE,
              "num_replicas": SIZE},
        probe=lambda settings: [np.asarray(settings.check_batch_size(8))]),
    "ke.distribute.choose_strategy": Entry(args={"kind": CHOICE}, run_accepted=False),
    "ke.distribute.describe": Entry(args={"kind": CHOICE}, run_accepted=False),
    "ke.distribute.get_strategy": Entry(args={"kind": CHOICE}, run_accepted=False),
    "ke.distribute.fit": Entry(
        base=lambda: {"model": _mlp(), "dataset": tf.data.Dataset.from_tensor_slices(
            (_X, _Y)).batch(4)},
        args={"epochs": SIZE, "steps_per_epoch": Arg("int", ("none",)),
              "shard_policy": CHOICE},
        run_accepted=False, refuses_jax=True),
    "ke.distribute.format_description": Entry(),  # formats describe()'s dict
    "ke.distribute.get_distribution": Entry(),  # no argument
    "ke.distribute.is_chief": Entry(run_accepted=False),
    "ke.distribute.task_info": Entry(run_accepted=False),
    "keras_efficient.distribute.multi_worker.patch_keras_for_multi_worker": Entry(run_accepted=False),
    "ke.distribute.jit_compile_for": Entry(run_accepted=False),
    "keras_efficient.distribute.xla.jit_compile_for_device": Entry(
        base=lambda: {"device_type": "CPU"}, args={"device_type": CHOICE}),
    "ke.distribute.recommended_settings": Entry(run_accepted=False),
    "ke.distribute.shard_dataset": Entry(
        base=lambda: {"dataset": None}, args={"policy": CHOICE}, run_accepted=False),
    # recipes.bert
    "ke.recipes.bert.BertEncoderHandles": Entry(),  # a record in BERT_ENCODERS
    "ke.recipes.bert.BertRunResult": Entry(),  # a record returned by the runs
    "ke.recipes.bert.compare_pretrained_vs_shuffled": Entry(
        base=lambda: {"encoder_size": "bert-small"},
        args={"encoder_size": CHOICE, "epochs": SIZE, "batch_size": SIZE,
              "sequence_length": SIZE, "take": Arg("int", ("none",)),
              "steps_per_execution": SIZE, "log": Arg("callable")},
        run_accepted=False),
    "ke.recipes.bert.format_table": Entry(),  # formats BertRunResult records
    "ke.recipes.bert.get_bert_model": Entry(
        base=lambda: {"encoder_size": "bert-small"},
        args={"encoder_size": CHOICE, "learning_rate": POSITIVE, "num_classes": SIZE,
              "hidden_units": Arg("sizes"), "dropout": FRACTION0, "seed": SEED,
              "steps_per_execution": SIZE},
        run_accepted=False),
    "ke.recipes.bert.load_ag_news": Entry(
        base=lambda: {"preprocessor": None, "split": "train"},
        args={"split": KEY, "batch_size": SIZE, "seed": SEED,
              "take": Arg("int", ("none",)), "data_dir": Arg("path", ("none",))},
        run_accepted=False),
    "ke.recipes.bert.load_bert_backbone": Entry(
        base=lambda: {"handle": "bert_tiny_en_uncased"},
        args={"handle": KEY, "dropout": FRACTION0}, run_accepted=False),
    "ke.recipes.bert.load_bert_preprocessor": Entry(
        base=lambda: {"handle": "bert_tiny_en_uncased"},
        args={"handle": KEY, "sequence_length": SIZE}, run_accepted=False),
    "ke.recipes.bert.pretrain_masked_lm": Entry(
        base=lambda: {"backbone_or_preset": "unused_preset", "texts": ["a b"]},
        args={"sequence_length": SIZE, "mask_selection_rate": FRACTION,
              "mask_selection_length": Arg("int", ("none",)), "epochs": SIZE,
              "batch_size": SIZE, "learning_rate": POSITIVE,
              "steps_per_epoch": Arg("int", ("none",)), "seed": SEED},
        run_accepted=False),
    "ke.recipes.bert.run_config": Entry(
        base=lambda: {"config": None, "out_dir": "unused_out_dir"},
        args={"out_dir": Arg("path")}, run_accepted=False),
    "ke.recipes.bert.shuffle_weights": Entry(
        base=lambda: {"model": _mlp()}, args={"seed": SEED}),
    "ke.testing.smoke_environment": Entry(
        args={"num_examples": SIZE}, call=lambda context: context.__enter__()),
    "ke.recipes.bert.tfhub_to_keras_hub_name": Entry(
        base=lambda: {"name": "layer_0/kernel:0"}, args={"name": KEY}),
    "ke.testing.write_tiny_encoder": Entry(
        base=lambda: {"directory": os.path.join(tempfile.gettempdir(), "ke_unused_encoder")},
        args={"directory": Arg("path"), "seed": SEED_INT}, run_accepted=False),
    # meta-learning
    "ke.layers.CosineClassifier": Entry(
        base=lambda: {"units": 3}, args={"units": SIZE, "scale": F("none")},
        probe=_probe_layer((2, 4))),
    "ke.losses.ContrastiveLoss": Entry(
        args={"margin": F("zero")}, probe=_probe_loss([1.0, 0.0], [0.5, 0.25])),
    "ke.losses.TripletLoss": Entry(
        args={"margin": F("zero"), "mining": CHOICE, "distance_metric": CHOICE},
        probe=_probe_loss([0, 0, 1, 1], np.eye(4, 2))),
    "ke.models.MAML": Entry(
        base=lambda: {"model": _mlp(1, 1)},
        args={"model": _MODEL_ARG, "inner_learning_rate": POSITIVE, "inner_steps": SIZE},
        probe=_fit_maml_one_step),
    "ke.models.Reptile": Entry(
        base=lambda: {"model": _mlp(1, 1)},
        args={"model": _MODEL_ARG, "inner_learning_rate": POSITIVE, "inner_steps": SIZE,
              "meta_step_size": FRACTION},
        probe=_fit_maml_one_step),
    "ke.models.PrototypicalNetwork": Entry(
        base=lambda: {"encoder": _mlp()},
        args={"encoder": _MODEL_ARG, "distance": CHOICE, "n_way": Arg("int", ("none",))},
        probe=_probe_episodic),
    "ke.models.MatchingNetwork": Entry(
        base=lambda: {"encoder": _mlp(), "full_context_embeddings": True},
        args={"encoder": _MODEL_ARG, "processing_steps": SIZE,
              "n_way": Arg("int", ("none",))},
        probe=_probe_episodic),
    "ke.models.RelationNetwork": Entry(
        base=lambda: {"encoder": _mlp()},
        args={"encoder": _MODEL_ARG, "relation_module": Arg("callable", ("none",)),
              "n_way": Arg("int", ("none",))},
        probe=_probe_episodic),
    "ke.models.SiameseNetwork": Entry(
        base=lambda: {"encoder": _mlp()}, args={"encoder": _MODEL_ARG},
        probe=lambda model: [np.asarray(model((_X[:2], _X[2:4])))]),
    "ke.models.TransferBaseline": Entry(
        base=lambda: {"encoder": _mlp(), "steps": 2},
        args={"encoder": _MODEL_ARG, "classifier": CHOICE, "steps": SIZE,
              "learning_rate": POSITIVE, "momentum": FRACTION0, "weight_decay": F("zero"),
              "scale": F("none"), "seed": SEED},
        probe=lambda baseline: [baseline(*_episode())]),
    "ke.models.evaluate_episodes": Entry(
        base=lambda: {"model_or_fn": lambda sx, sy, qx: np.zeros(qx.shape[:2] + (2,)),
                      "episodes": [(_episode(), np.zeros((1, 2), "int64"))],
                      "num_episodes": 1},
        args={"model_or_fn": Arg("callable"), "num_episodes": SIZE},
        probe=lambda accuracy: [accuracy.mean, accuracy.confidence_interval]),
    "ke.models.pretraining_classifier": Entry(
        base=lambda: {"encoder": _mlp(4, 4), "num_classes": 3},
        args={"encoder": _MODEL_ARG, "num_classes": SIZE, "classifier": CHOICE},
        probe=lambda model: [np.asarray(model(_X[:2]))]),
    "ke.data.contrastive_pairs": Entry(
        base=lambda: {"x": _X, "y": _Y, "num_pairs": 4},
        args={"num_pairs": SIZE, "seed": SEED},
        probe=lambda pairs: [np.asarray(t) for t in keras.tree.flatten(pairs)]),
    "ke.data.episode_dataset": Entry(
        base=lambda: {"x": _X, "y": _Y, "n_way": 2, "n_shot": 1, "n_query": 1,
                      "num_episodes": 2, "seed": 0},
        args={"n_way": SIZE, "n_shot": SIZE, "n_query": SIZE, "meta_batch_size": SIZE,
              "num_episodes": Arg("int", ("none",)), "seed": SEED},
        probe=_first_element),
    "ke.data.omniglot_classes": Entry(  # downloads Omniglot from TFDS
        args={"split": CHOICE, "image_size": SIZE, "data_dir": Arg("path", ("none",))},
        run_accepted=False),
    "ke.data.rotate_classes": Entry(),  # arrays in, arrays out: no scalar argument
    "ke.data.rotated_digits": Entry(
        args={"split": CHOICE, "test_digits": Arg("sizes", ("zero",)), "image_size": SIZE},
        probe=lambda xy: list(xy)),
    "ke.data.sinusoid_episodes": Entry(
        base=lambda: {"n_shot": 2, "n_query": 2, "meta_batch_size": 2, "num_episodes": 2,
                      "seed": 0},
        args={"n_shot": SIZE, "n_query": SIZE, "meta_batch_size": SIZE,
              "num_episodes": Arg("int", ("none",)), "seed": SEED},
        probe=_first_element),
    # federated
    "ke.federated.ClientUpdate": Entry(
        base=_FEDERATED_BASE,
        args={"model_fn": Arg("callable"), "local_epochs": SIZE,
              "batch_size": Arg("int", ("none",)), "proximal_mu": F("zero")},
        probe=_probe_client_update),
    "ke.federated.FedAvg": Entry(
        base=_FEDERATED_BASE,
        args={"model_fn": Arg("callable"), "local_epochs": SIZE,
              "batch_size": Arg("int", ("none",)), "clients_per_round": FRACTION,
              "proximal_mu": F("zero"), "clipping_norm": F("none"),
              "noise_multiplier": F("zero"), "seed": SEED_INT},
        probe=_probe_federated),
    "ke.federated.FedSGD": Entry(
        base=_FEDERATED_BASE,
        args={"model_fn": Arg("callable"), "clients_per_round": FRACTION,
              "clipping_norm": F("none"), "noise_multiplier": F("zero"), "seed": SEED_INT},
        probe=_probe_federated),
    "ke.federated.DecentralizedSGD": Entry(
        base=_FEDERATED_BASE,
        args={"model_fn": Arg("callable"), "topology": CHOICE, "local_epochs": COUNT,
              "batch_size": Arg("int", ("none",)), "seed": SEED_INT},
        probe=_probe_federated),
    "ke.federated.FederatedHistory": Entry(),  # a record returned by `fit`
    "ke.federated.Partition": Entry(
        base=lambda: {"indices": [[0, 2], [1]], "num_examples": 3},
        args={"num_examples": SIZE}, probe=lambda partition: [partition.sizes]),
    "ke.federated.check_mixing_matrix": Entry(
        base=lambda: {"mixing": _MIXING}, args={"atol": F("zero")},
        probe=lambda mixing: [mixing]),
    "ke.federated.complete_graph": Entry(
        base=lambda: {"num_nodes": 3}, args={"num_nodes": SIZE}),
    "ke.federated.ring_graph": Entry(
        base=lambda: {"num_nodes": 3}, args={"num_nodes": SIZE}),
    "ke.federated.torus_graph": Entry(
        base=lambda: {"rows": 2, "cols": 3}, args={"rows": SIZE, "cols": SIZE}),
    "ke.federated.random_regular_graph": Entry(
        base=lambda: {"num_nodes": 4, "degree": 2},
        args={"num_nodes": SIZE, "degree": SIZE, "seed": SEED, "max_attempts": SIZE}),
    # Arrays in, arrays out: no scalar argument.
    "ke.federated.consensus_distance": Entry(),
    "ke.federated.metropolis_hastings_weights": Entry(),
    "ke.federated.mix": Entry(),
    "ke.federated.spectral_gap": Entry(),
    "ke.federated.weighted_average": Entry(),
    "ke.federated.iid_partition": Entry(
        base=lambda: {"labels": _Y, "num_clients": 2},
        args={"num_clients": SIZE, "seed": SEED}, probe=lambda partition: [partition.sizes]),
    "ke.federated.shard_partition": Entry(
        base=lambda: {"labels": _Y, "num_clients": 2},
        args={"num_clients": SIZE, "shards_per_client": SIZE, "seed": SEED},
        probe=lambda partition: [partition.sizes]),
    "ke.federated.dirichlet_partition": Entry(
        base=lambda: {"labels": _Y, "num_clients": 2, "alpha": 1.0},
        args={"num_clients": SIZE, "alpha": POSITIVE, "min_size": SIZE, "seed": SEED,
              "max_attempts": SIZE},
        probe=lambda partition: [partition.sizes]),
    "ke.federated.quantity_skew_partition": Entry(
        base=lambda: {"labels": _Y, "num_clients": 2},
        args={"num_clients": SIZE, "alpha": POSITIVE, "seed": SEED},
        probe=lambda partition: [partition.sizes]),
    # Flower: the accepted runs would start Ray; only the bad values are tried.
    **({} if flower is None else {
    "ke.federated.flower.client_app": Entry(),  # the FedAvg and the data: no scalar argument
    "ke.federated.flower.server_app": Entry(
        base=lambda: {"fedavg": ke.federated.FedSGD(_compiled_mlp, "sgd"), "rounds": 1,
                      "num_clients": 2},
        args={"rounds": SIZE, "num_clients": SIZE}, run_accepted=False),
    "ke.federated.flower.run_simulation": Entry(
        base=lambda: {"fedavg": ke.federated.FedSGD(_compiled_mlp, "sgd"),
                      "client_data": _CLIENTS, "rounds": 1},
        args={"rounds": SIZE}, run_accepted=False),
    # Helpers the Flower module imports from `ke.federated`'s own modules.
    "ke.federated.flower.check_client_data": Entry(),
    "ke.federated.flower.client_rng": Entry(),
    }),
    # vae, temperature schedules, in-context prompting
    "ke.models.VAE": Entry(
        base=lambda: {"encoder": _mlp(4, 4), "decoder": _mlp(2, 4), "latent_dim": 2},
        args={"encoder": _MODEL_ARG, "decoder": _MODEL_ARG, "latent_dim": SIZE,
              "beta": F("zero"), "likelihood": CHOICE, "kl_warmup_steps": COUNT,
              "free_bits": F("zero"), "seed": SEED},
        probe=lambda model: _fit_one_step(model, _X[:4])),
    "ke.schedules.Annealing": Entry(
        base=lambda: {"initial_value": 2.0, "final_value": 1.0, "annealing_steps": 10},
        args={"initial_value": POSITIVE, "final_value": POSITIVE, "annealing_steps": SIZE,
              "mode": CHOICE},
        probe=_probe_schedule),
    "ke.recipes.in_context.FewShotPrompter": Entry(
        base=lambda: {"causal_lm": _CAUSAL_LM, "template": "{input}:{label}", "k": 1,
                      "tokenizer": lambda text: [1]},
        # `template` needs `{input}` and `{label}` slots: every family is invalid.
        args={"template": CHOICE, "k": COUNT, "example_selection": CHOICE,
              "tokenizer": Arg("callable"), "embed": Arg("callable", ("none",)),
              "batch_size": SIZE, "seed": SEED}),
    "ke.recipes.in_context.k_shot_curve": Entry(
        base=lambda: {"make_prompter": lambda k, seed: None, "pool_inputs": ["a"],
                      "pool_labels": [" x"], "test_inputs": ["a"], "test_labels": [" x"]},
        args={"make_prompter": Arg("callable"), "ks": Arg("sizes", ("zero",)),
              "draws": SIZE, "confidence": FRACTION},
        run_accepted=False),
}


# --- enumeration ------------------------------------------------------------
def public_callables():
    """{public name: object} for every public class and function of the namespaces.

    Constants and helpers imported from elsewhere (keras, `keras_efficient.utils`)
    are skipped; an object exported twice (`ke.callbacks.BackupAndRestore` is
    `ke.distribute.BackupAndRestore`) is listed under each name.
    """
    found = {}
    for prefix, namespace in NAMESPACES.items():
        for name, value in vars(namespace).items():
            module = getattr(value, "__module__", "") or ""
            if (name.startswith("_") or inspect.ismodule(value) or not callable(value)
                    or not module.startswith("keras_efficient.")
                    or module == "keras_efficient.utils"):
                continue
            found[f"{prefix}.{name}"] = value
    return {**found, **ALSO_CHECKED}


def _entries():
    """(public name, object, entry) once per object: the first name in TABLE."""
    seen = {}
    for name, value in public_callables().items():
        if name in TABLE and id(value) not in seen:
            seen[id(value)] = (name, value, TABLE[name])
    return list(seen.values())


def _cases():
    for name, value, entry in _entries():
        for arg, spec in entry.args.items():
            yield pytest.param(name, value, entry, arg, spec, id=f"{name}-{arg}")


# --- running one case -------------------------------------------------------
OUTCOMES = ("clear error", "accepted", "silent NaN", "crash", "vague error")


def _finite(outputs):
    for output in outputs:
        array = np.asarray(output)
        if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
            return False
    return True


def run_case(value, entry, arg, bad_value):
    """Call `value` with `arg=bad_value` over valid base arguments; classify it."""
    kwargs = {**entry.base(), arg: bad_value}
    try:
        result = value(**kwargs)
        if entry.call is not None:
            result = entry.call(result)
        outputs = entry.probe(result) if entry.probe is not None else []
    except (ValueError, TypeError) as error:
        message = str(error)
        named = f"`{arg}`" in message or f"{arg}=" in message
        return ("clear error" if named else "vague error"), message
    except Exception as error:  # noqa: BLE001 -- classified and reported
        return "crash", f"{type(error).__name__}: {error}"
    return ("accepted" if _finite(outputs) else "silent NaN"), ""


def _expected(spec, family):
    return "accepted" if family in spec.ok else "clear error"


def check_argument(value, entry, arg, spec):
    """Every family of `arg`: (family, expected, outcome, detail) per case run."""
    results = []
    if entry.refuses_jax and keras.backend.backend() == "jax":
        return results
    for family, bad_value in FAMILIES[spec.kind].items():
        expected = _expected(spec, family)
        if expected == "accepted" and (not entry.run_accepted or (
                entry.tensorflow_only and keras.backend.backend() != "tensorflow")):
            continue
        outcome, detail = run_case(value, entry, arg, bad_value)
        results.append((family, bad_value, expected, outcome, detail))
    return results


# --- tests ------------------------------------------------------------------
def test_api_validation__every_public_callable_has_a_table_entry():
    names = public_callables()
    covered = {id(value) for name, value in names.items() if name in TABLE}
    missing = sorted(name for name, value in names.items() if id(value) not in covered)
    assert not missing, "\n".join(
        f"no bad-input table entry for {name} (add it to TABLE in {__file__})"
        for name in missing)
    stale = sorted(set(TABLE) - set(names))
    assert not stale, f"TABLE entries that are not public callables: {stale}"


def test_api_validation__table_names_real_arguments():
    for name, value, entry in _entries():
        parameters = inspect.signature(value).parameters
        for arg in entry.args:
            assert arg in parameters, f"{name} has no argument `{arg}`"


@pytest.mark.parametrize("name, value, entry, arg, spec", list(_cases()))
def test_api_validation__bad_value_gets_a_clear_error(name, value, entry, arg, spec):
    keras.utils.set_random_seed(0)
    wrong = [
        f"{name}({arg}={bad_value!r}) [{family}]: expected {expected}, got {outcome}"
        f"{': ' + detail[:300] if detail else ''}"
        for family, bad_value, expected, outcome, detail in check_argument(
            value, entry, arg, spec)
        if outcome != expected
    ]
    assert not wrong, "\n".join(wrong)


# --- the validators themselves ----------------------------------------------
@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(
    value=st.floats(allow_nan=True, allow_infinity=True),
    low=st.one_of(st.none(), st.floats(-10, 10)),
    high=st.one_of(st.none(), st.floats(-10, 10)),
    allow_inf=st.booleans(),
)
def test_validate_number__accepts_exactly_the_finite_values_in_range(
        value, low, high, allow_inf):
    finite = abs(value) <= utils.MAX_FLOAT32  # False for NaN
    inside = (not math.isnan(value) and (low is None or value >= low)
              and (high is None or value <= high) and (allow_inf or finite))
    if inside:
        assert utils.validate_number("x", value, low, high, allow_inf=allow_inf) == value
        return
    with pytest.raises(ValueError) as error:
        utils.validate_number("x", value, low, high, allow_inf=allow_inf)
    assert "argument `x`" in str(error.value) and f"x={value!r}" in str(error.value)


@pytest.mark.parametrize("value", [NAN, INF, -INF])
def test_validate_number__names_range_and_value_for_non_finite(value):
    with pytest.raises(ValueError, match=r"`rate`. Expected a finite float value in \[0, 1\)."
                                         rf" Received: rate={value!r}"):
        utils.validate_number("rate", value, 0, 1, high_inclusive=False)


def test_validate_number__allows_nan_only_when_asked():
    assert math.isnan(utils.validate_number("x", NAN, 0, 1, allow_nan=True))
    assert utils.validate_number("x", INF, 0, allow_inf=True) == INF


@pytest.mark.parametrize("value, error", [(0, ValueError), (2**31, ValueError),
                                          (2.0, TypeError), (True, TypeError)])
def test_validate_size__rejects_non_sizes(value, error):
    with pytest.raises(error, match="`steps`"):
        utils.validate_size("steps", value)


def test_validate_seed__range_and_none():
    assert utils.validate_seed("seed", None) is None
    assert utils.validate_seed("seed", np.int64(2**32 - 1)) == 2**32 - 1
    for bad in (-1, 2**32, 0.5):
        with pytest.raises((ValueError, TypeError), match="`seed`"):
            utils.validate_seed("seed", bad)
    with pytest.raises(TypeError, match="`seed`"):
        utils.validate_seed("seed", None, allow_none=False)


def test_validate_path__str_and_pathlike(tmp_path):
    assert utils.validate_path("backup_dir", tmp_path) == str(tmp_path)
    with pytest.raises(TypeError, match=r"`backup_dir`.*Received: backup_dir=\["):
        utils.validate_path("backup_dir", [str(tmp_path)])
    with pytest.raises(ValueError, match="`backup_dir`"):
        utils.validate_path("backup_dir", "")


def test_validate_callable__names_argument():
    assert utils.validate_callable("loss", None, allow_none=True) is None
    with pytest.raises(TypeError, match="`loss`. Expected a callable or None"):
        utils.validate_callable("loss", "mse", allow_none=True)


def test_validate_choice__unhashable_value():
    with pytest.raises(ValueError, match=r"`mode`.*Received: mode=\['max'\]"):
        utils.validate_choice("mode", ["max"], {"min", "max"})


# --- data-level bad input at the entry points ----------------------------------
_PROBS = np.array([[0.2, 0.3, 0.5]] * 4, "float32")
_LABELS = np.array([-1, 3, 1, 2])


def _smoothed_reference(label, e=0.1):
    log_p = np.log(_PROBS[0].astype("float64"))
    return -((1 - e) * log_p[label] + e * log_p.mean())


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.function with XLA")
def test_sparse_categorical_crossentropy__out_of_range_labels_give_nan_eager_and_xla():
    loss = ke.losses.SparseCategoricalCrossentropy(label_smoothing=0.1, reduction=None)
    expected = [NAN, NAN, _smoothed_reference(1), _smoothed_reference(2)]
    compiled = tf.function(lambda y, p: loss(y, p), jit_compile=True)
    for values in (loss(_LABELS, _PROBS), compiled(_LABELS, _PROBS)):
        np.testing.assert_allclose(np.asarray(values), expected, rtol=1e-5)


def test_sparse_categorical_crossentropy__out_of_range_labels_give_nan_on_jax():
    import subprocess
    import sys

    script = (
        "import json, jax, numpy as np, keras_efficient as ke\n"
        "loss = ke.losses.SparseCategoricalCrossentropy(label_smoothing=0.1, reduction=None)\n"
        "print(json.dumps(np.asarray(jax.jit(loss)(np.array([-1, 3, 1]),"
        " np.full((3, 3), 1 / 3, 'float32'))).tolist()))\n")
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", script], check=False, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    values = json.loads(result.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(values, [NAN, NAN, np.log(3)], rtol=1e-5)


def test_sparse_categorical_crossentropy__nan_inputs_propagate_per_example():
    probs = _PROBS.copy()
    probs[0, 0] = NAN
    values = np.asarray(ke.losses.SparseCategoricalCrossentropy(reduction=None)(
        np.array([0, 1, 1, 2]), probs))
    assert np.isnan(values[0]) and np.all(np.isfinite(values[1:]))


def test_random_resized_crop__wrong_rank_is_a_clear_error():
    with pytest.raises(ValueError, match=r"rank 4 .*input_shape=\(2, 4\)"):
        ke.layers.RandomResizedCrop()(np.ones((2, 4), "float32"))


def test_curriculum_dataset__empty_data_is_a_clear_error():
    with pytest.raises(ValueError, match="argument `x`. Expected at least one example"):
        ke.curriculum.CurriculumDataset(np.zeros((0, 4)), np.zeros(0), scores=np.zeros(0),
                                        pacing=ke.curriculum.pacing.linear(10))


def test_mix_up__mismatched_batch_sizes_and_labels_out_of_range():
    mixup = ke.data.MixUp(num_classes=3, seed=0)
    images = np.ones((4, 8, 8, 3), "float32")
    with pytest.raises(ValueError, match="argument `labels`. Expected one label per image"):
        mixup(images, np.array([0, 1, 2]))
    for labels in ([0, 1, 2, 3], [0, 1, -1, 2]):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"`labels`.*\[0, 3\)"):
            mixup(images, np.array(labels))


def test_knn_accuracy__mismatched_lengths_are_a_clear_error():
    with pytest.raises(ValueError, match="argument `y_train`"):
        ke.callbacks.KNNAccuracy(_X, _Y[:5], _X, _Y)


def test_few_label_subset__mismatched_lengths_are_a_clear_error():
    with pytest.raises(ValueError, match="one example per label"):
        ke.data.few_label_subset(_X, _Y[:5], 0.5)


# --- `python tests/test_api_validation.py`: the README's reliability figure --
def summarize(verbose=False):
    """Run every case; print how many ended in each outcome class."""
    counts = collections.Counter()
    wrong = []
    for name, value, entry in _entries():
        for arg, spec in entry.args.items():
            if verbose:
                print(name, arg, flush=True)
            for family, bad_value, expected, outcome, detail in check_argument(
                    value, entry, arg, spec):
                counts[outcome] += 1
                if outcome != expected:
                    wrong.append(f"{name}({arg}={bad_value!r}): {outcome} {detail[:200]}")
    print("\n".join(wrong))
    print(f"{sum(counts.values())} cases over {len(_entries())} public callables: "
          + ", ".join(f"{counts[outcome]} {outcome}" for outcome in OUTCOMES)
          + f"; {len(wrong)} not as expected")


if __name__ == "__main__":
    import socket
    import sys

    def _offline(*args):
        raise OSError("network access is disabled while measuring")

    socket.socket.connect = _offline  # as in tests/conftest.py: nothing downloads
    summarize(verbose="-v" in sys.argv)
