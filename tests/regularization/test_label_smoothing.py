import keras
import numpy as np
import pytest

from keras_efficient import testing
from keras_efficient.losses import SparseCategoricalCrossentropy

NUM_CLASSES = 5
RNG = np.random.default_rng(0)
LOGITS = RNG.normal(scale=2.0, size=(8, NUM_CLASSES)).astype("float32")
PROBS = keras.ops.convert_to_numpy(keras.ops.softmax(LOGITS))
LABELS = RNG.integers(0, NUM_CLASSES, size=8).astype("int32")


def _smoothed_crossentropy(labels, y_pred, epsilon, from_logits, weights=None):
    """The smoothed-target crossentropy in float64, straight from the definition:
    target q = (1 - e) onehot + e / K, loss = -sum_k q_k log p_k."""
    y_pred = np.asarray(y_pred, np.float64)
    if from_logits:
        shifted = y_pred - y_pred.max(-1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    else:
        log_p = np.log(y_pred / y_pred.sum(-1, keepdims=True))
    targets = (1 - epsilon) * np.eye(y_pred.shape[-1])[np.asarray(labels).reshape(-1)]
    targets += epsilon / y_pred.shape[-1]
    losses = -(targets * log_p).sum(-1)
    weights = np.ones_like(losses) if weights is None else weights
    return (losses * weights).sum() / len(losses)


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.4, 1.0])
def test_sparse_categorical_crossentropy__equals_keras_categorical_on_one_hot(
        from_logits, epsilon):
    y_pred = LOGITS if from_logits else PROBS
    ours = SparseCategoricalCrossentropy(from_logits=from_logits, label_smoothing=epsilon)
    keras_loss = keras.losses.CategoricalCrossentropy(from_logits=from_logits,
                                                      label_smoothing=epsilon)
    one_hot = np.eye(NUM_CLASSES, dtype="float32")[LABELS]
    np.testing.assert_allclose(float(ours(LABELS, y_pred)), float(keras_loss(one_hot, y_pred)),
                               rtol=0, atol=1e-6)
    np.testing.assert_allclose(float(ours(LABELS, y_pred)),
                               _smoothed_crossentropy(LABELS, y_pred, epsilon, from_logits),
                               rtol=0, atol=1e-6)


def test_sparse_categorical_crossentropy__per_example_and_weighted():
    loss = SparseCategoricalCrossentropy(from_logits=True, label_smoothing=0.2, reduction=None)
    per_example = keras.ops.convert_to_numpy(loss(LABELS[:, None], LOGITS))
    expected = [_smoothed_crossentropy(LABELS[i:i + 1], LOGITS[i:i + 1], 0.2, True)
                for i in range(len(LABELS))]
    np.testing.assert_allclose(per_example, expected, atol=1e-6)
    weights = RNG.uniform(size=len(LABELS))
    weighted = SparseCategoricalCrossentropy(from_logits=True, label_smoothing=0.2)
    np.testing.assert_allclose(float(weighted(LABELS, LOGITS, sample_weight=weights)),
                               _smoothed_crossentropy(LABELS, LOGITS, 0.2, True, weights),
                               atol=1e-6)


def test_sparse_categorical_crossentropy__class_axis_first():
    # (batch, classes, positions): classes on axis 1, labels (batch, positions).
    logits = RNG.normal(size=(2, NUM_CLASSES, 3)).astype("float32")
    labels = RNG.integers(0, NUM_CLASSES, size=(2, 3))
    loss = SparseCategoricalCrossentropy(from_logits=True, label_smoothing=0.1, axis=1)
    expected = _smoothed_crossentropy(labels.reshape(-1),
                                      np.moveaxis(logits, 1, -1).reshape(-1, NUM_CLASSES),
                                      0.1, True)
    np.testing.assert_allclose(float(loss(labels, logits)), expected, atol=1e-6)


def test_sparse_categorical_crossentropy__ignore_class_like_keras():
    labels = LABELS.copy()
    labels[[1, 4]] = -1
    ours = SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)
    np.testing.assert_allclose(float(ours(labels, LOGITS)), float(keras_loss(labels, LOGITS)),
                               atol=1e-6)
    # With smoothing: zero loss on ignored entries, the mean over the valid ones.
    smoothed = SparseCategoricalCrossentropy(from_logits=True, label_smoothing=0.1,
                                             ignore_class=-1)
    valid = labels != -1
    expected = _smoothed_crossentropy(labels[valid], LOGITS[valid], 0.1, True)
    np.testing.assert_allclose(float(smoothed(labels, LOGITS)), expected, atol=1e-6)
    per_example = SparseCategoricalCrossentropy(from_logits=True, label_smoothing=0.1,
                                                ignore_class=-1, reduction=None)
    values = keras.ops.convert_to_numpy(per_example(labels, LOGITS))
    np.testing.assert_array_equal(values[~valid], 0.0)


def test_sparse_categorical_crossentropy__float32_under_mixed_precision():
    logits = keras.ops.cast(LOGITS, "bfloat16")
    with testing.dtype_policy("mixed_bfloat16"):
        value = SparseCategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(
            LABELS, logits)
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    rounded = keras.ops.convert_to_numpy(keras.ops.cast(logits, "float32"))
    np.testing.assert_allclose(float(value), _smoothed_crossentropy(LABELS, rounded, 0.1, True),
                               atol=1e-6)


def test_sparse_categorical_crossentropy__softmax_head_in_evaluate():
    # Probabilities from a softmax layer inside a compiled graph, the common head.
    model = keras.Sequential([keras.Input((NUM_CLASSES,)),
                              keras.layers.Dense(NUM_CLASSES, activation="softmax")])
    model.compile(loss=SparseCategoricalCrossentropy(label_smoothing=0.1))
    probs = model.predict(LOGITS, verbose=0)
    np.testing.assert_allclose(model.evaluate(LOGITS, LABELS, batch_size=8, verbose=0),
                               _smoothed_crossentropy(LABELS, probs, 0.1, False), atol=1e-5)


@pytest.mark.parametrize("check", testing.LOSS_CHECKS)
def test_sparse_categorical_crossentropy__harness(check):
    testing.check_loss(
        SparseCategoricalCrossentropy,
        {"from_logits": True, "label_smoothing": 0.1},
        LABELS,
        LOGITS,
        reference=lambda y, p: _smoothed_crossentropy(y, p, 0.1, True),
        checks=[check],
        atol=1e-6,
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"label_smoothing": 1.5}, r"argument `label_smoothing`. Expected a float value in \[0, 1\]"),
        ({"label_smoothing": -0.1}, r"argument `label_smoothing`"),
        ({"ignore_class": 1.5}, r"argument `ignore_class`"),
    ],
)
def test_sparse_categorical_crossentropy__bad_arguments(kwargs, match):
    error = TypeError if "ignore_class" in kwargs else ValueError
    with pytest.raises(error, match=match):
        SparseCategoricalCrossentropy(**kwargs)
