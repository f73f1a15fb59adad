"""ProgressiveResizing and SequenceLengthWarmup: the size schedule against its
closed form, the pipeline transform against a single direct resize or slice,
and one trace (with static shapes) per distinct size."""

import contextlib
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_efficient import testing
from keras_efficient.callbacks import ProgressiveResizing
from keras_efficient.callbacks import SequenceLengthWarmup

RNG = np.random.default_rng(0)
IMAGES = RNG.random((32, 16, 16, 1)).astype("float32")
TOKENS = RNG.integers(1, 20, (32, 24))
LABELS = RNG.integers(0, 3, 32)


def resizing_reference(step, total, full, s0, delay, finetune, increment):
    f = step / total
    if f >= 1 - finetune:
        return full
    scale = s0 if f < delay else s0 + (1 - s0) * (f - delay) / (1 - finetune - delay)
    return min(full, max(increment, increment * math.floor(scale * full / increment)))


def warmup_reference(step, warmup, full, start, increment):
    if step >= warmup:
        return full
    raw = start + (full - start) * step / warmup
    return min(full, max(start, increment * math.floor(raw / increment)))


def count_traces(model):
    """Record the input shape each time the train step is traced."""
    shapes = []
    original = model.train_step

    def train_step(*args):  # `(data)` on TensorFlow, `(state, data)` on JAX
        shapes.append(tuple(args[-1][0].shape))
        return original(*args)

    model.train_step = train_step
    return shapes


def conv_model():
    model = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Conv2D(4, 3),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


@pytest.mark.parametrize("s0, delay, finetune, increment", [
    (0.5, 0.0, 0.5, 4), (0.25, 0.3, 0.2, 2), (0.5, 0.5, 0.5, 8), (0.3, 0.0, 0.0, 1)])
def test_progressive_resizing__sizes_match_closed_form(s0, delay, finetune, increment):
    resizing = ProgressiveResizing(40, s0, delay, finetune, increment)
    resizing.apply(tf.data.Dataset.from_tensor_slices((IMAGES, LABELS)).batch(8))
    expected = [resizing_reference(t, 40, 16, s0, delay, finetune, increment)
                for t in range(40)]
    assert [resizing.size_at(t) for t in range(40)] == [(side, side) for side in expected]
    assert resizing.size_at(1000) == (16, 16)


def test_progressive_resizing__resizes_once_from_the_source():
    source = (IMAGES * 255).astype("uint8")
    resizing = ProgressiveResizing(4, initial_scale=0.5, delay_fraction=0.0,
                                   finetune_fraction=0.5, size_increment=4)
    data = resizing.apply(tf.data.Dataset.from_tensor_slices((source, LABELS)).batch(8))
    batches = list(data.take(4).as_numpy_iterator())
    for step, (images, labels) in enumerate(batches):
        side = resizing.size_at(step)[0]
        rows = source[8 * step: 8 * step + 8]
        expected = rows.astype("float32") if side == 16 else tf.image.resize(
            rows, (side, side), "bilinear", antialias=True).numpy()
        np.testing.assert_allclose(images, expected, atol=1e-5)
        np.testing.assert_array_equal(labels, LABELS[8 * step: 8 * step + 8])
    assert [b[0].shape[1] for b in batches] == [8, 12, 16, 16]


def test_progressive_resizing__per_example_mode_batches_after_resizing():
    resizing = ProgressiveResizing(4, 0.5, 0.0, 0.5, 4, target_size=16)
    data = resizing.apply(tf.data.Dataset.from_tensor_slices((IMAGES, LABELS)), batch_size=8)
    shapes = [images.shape for images, _ in data.take(3).as_numpy_iterator()]
    assert shapes == [(8, 8, 8, 1), (8, 12, 12, 1), (8, 16, 16, 1)]


def test_progressive_resizing__one_static_trace_per_size_kept_across_fits():
    resizing = ProgressiveResizing(12, 0.5, 0.0, 0.5, 4)
    data = resizing.apply(tf.data.Dataset.from_tensor_slices((IMAGES, LABELS)).batch(8))
    model = conv_model()
    traces = count_traces(model)
    model.fit(data, epochs=3, steps_per_epoch=4, verbose=0, callbacks=[resizing])
    distinct = sorted({resizing.size_at(t) for t in range(12)})
    assert sorted(shape[1:3] for shape in traces) == distinct == [(8, 8), (12, 12), (16, 16)]
    model.fit(data, epochs=3, steps_per_epoch=4, verbose=0, callbacks=[resizing])
    assert len(traces) == 3  # same model and optimizer: the functions are kept
    model.fit(IMAGES, LABELS, batch_size=8, verbose=0)  # the model is plain again


@pytest.mark.parametrize("runtime", ["jit_compile", "two_replicas"])
def test_progressive_resizing__under_xla_and_two_replicas(runtime):
    resizing = ProgressiveResizing(6, 0.5, 0.0, 0.5, 4)
    data = resizing.apply(tf.data.Dataset.from_tensor_slices((IMAGES, LABELS)).batch(8))
    scope = (testing.two_replica_strategy().scope() if runtime == "two_replicas"
             else contextlib.nullcontext())
    with scope:
        model = conv_model()
        if runtime == "jit_compile":
            model.jit_compile = True
        traces = count_traces(model)
        history = model.fit(data, epochs=2, steps_per_epoch=3, verbose=0, callbacks=[resizing])
    assert np.isfinite(history.history["loss"]).all()
    # Under MirroredStrategy each replica traces the step once per size (JAX's
    # DataParallel traces one program for all devices).
    on_mirrored = runtime == "two_replicas" and keras.backend.backend() == "tensorflow"
    replicas = 2 if on_mirrored else 1
    assert sorted({shape[1:3] for shape in traces}) == [(8, 8), (12, 12), (16, 16)]
    assert len(traces) == 3 * replicas


def test_progressive_resizing__config_round_trip():
    resizing = ProgressiveResizing(100, 0.4, 0.1, 0.3, 8, target_size=(32, 24),
                                   interpolation="area", antialias=False)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(resizing))
    assert isinstance(clone, ProgressiveResizing)
    assert clone.get_config() == resizing.get_config()


@pytest.mark.parametrize("kwargs, match", [
    ({"initial_scale": 0.0}, "argument `initial_scale`"),
    ({"initial_scale": -0.5}, "argument `initial_scale`"),
    ({"initial_scale": 1.5}, "argument `initial_scale`"),
    ({"delay_fraction": 1.0}, "argument `delay_fraction`"),
    ({"delay_fraction": 0.6, "finetune_fraction": 0.5}, r"argument `finetune_fraction`.*0\.4"),
    ({"size_increment": 0}, "argument `size_increment`"),
    ({"target_size": 0}, "argument `target_size`"),
    ({"target_size": (16,)}, "argument `target_size`.*pair"),
    ({"target_size": (16, 16, 1)}, "argument `target_size`.*pair"),
    ({"interpolation": "cubic"}, "argument `interpolation`"),
])
def test_progressive_resizing__rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ProgressiveResizing(**{"total_steps": 10, **kwargs})


def test_progressive_resizing__needs_apply_before_fit():
    with pytest.raises(RuntimeError, match="apply"):
        conv_model().fit(IMAGES, LABELS, verbose=0, callbacks=[ProgressiveResizing(5)])


@pytest.mark.parametrize("warmup, start, increment", [(10, 8, 8), (7, 3, 5), (30, 1, 1)])
def test_sequence_length_warmup__lengths_match_closed_form(warmup, start, increment):
    schedule = SequenceLengthWarmup(warmup, start, increment)
    schedule.apply(tf.data.Dataset.from_tensor_slices((TOKENS, LABELS)).batch(8))
    expected = [warmup_reference(t, warmup, 24, start, increment) for t in range(warmup + 5)]
    assert [schedule.size_at(t)[0] for t in range(warmup + 5)] == expected


def test_sequence_length_warmup__truncates_inputs_and_per_token_targets():
    schedule = SequenceLengthWarmup(4, initial_length=8, length_increment=8)
    targets = TOKENS + 1
    data = schedule.apply(tf.data.Dataset.from_tensor_slices(
        ({"ids": TOKENS, "mask": TOKENS > 5}, (targets, LABELS))).batch(8))
    for step, (x, (y, labels)) in enumerate(data.take(5).as_numpy_iterator()):
        length = warmup_reference(step, 4, 24, 8, 8)
        rows = slice(8 * (step % 4), 8 * (step % 4) + 8)
        np.testing.assert_array_equal(x["ids"], TOKENS[rows, :length])
        np.testing.assert_array_equal(x["mask"], TOKENS[rows, :length] > 5)
        np.testing.assert_array_equal(y, targets[rows, :length])
        np.testing.assert_array_equal(labels, LABELS[rows])


def test_sequence_length_warmup__one_static_trace_per_length():
    schedule = SequenceLengthWarmup(6, initial_length=8, length_increment=8)
    data = schedule.apply(tf.data.Dataset.from_tensor_slices((TOKENS, LABELS)).batch(8))
    model = keras.Sequential([keras.Input((None,), dtype="int32"),
                              keras.layers.Embedding(20, 4),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(3)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    traces = count_traces(model)
    model.fit(data, epochs=2, steps_per_epoch=5, verbose=0, callbacks=[schedule])
    assert sorted(shape[1] for shape in traces) == [8, 16, 24]


def test_sequence_length_warmup__config_and_bad_arguments():
    schedule = SequenceLengthWarmup(50, 16, 4, max_length=64)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert clone.get_config() == schedule.get_config()
    with pytest.raises(ValueError, match="argument `warmup_steps`"):
        SequenceLengthWarmup(0)
    with pytest.raises(ValueError, match="argument `initial_length`"):
        SequenceLengthWarmup(10, initial_length=0)
    with pytest.raises(ValueError, match="argument `max_length`"):
        SequenceLengthWarmup(10, initial_length=16, max_length=8)
