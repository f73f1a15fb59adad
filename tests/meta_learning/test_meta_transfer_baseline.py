"""The transfer baseline (Chen et al. 2019): head fine-tuning against finite differences,
the cosine classifier against its formula, and the whole baseline on separable episodes."""

import functools

import keras
import numpy as np
import pytest

from keras_efficient import testing
from keras_efficient.layers import CosineClassifier
from keras_efficient.meta_learning.transfer_baseline import fine_tune_heads
from keras_efficient.models import TransferBaseline
from keras_efficient.models import pretraining_classifier


def _objective(features, one_hot, kernel, bias, classifier, scale, weight_decay):
    """Mean support crossentropy + weight_decay / 2 ||kernel||^2, one episode, float64."""
    if classifier == "cosine":
        unit = features / np.linalg.norm(features, axis=1, keepdims=True)
        logits = scale * unit @ (kernel / np.linalg.norm(kernel, axis=0, keepdims=True))
    else:
        logits = features @ kernel + bias
    logits = logits - logits.max(axis=1, keepdims=True)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -np.mean(np.sum(one_hot * log_softmax, axis=1)) + 0.5 * weight_decay * np.sum(kernel**2)


def _objective_of_kernel(head, bias, classifier, kernel):
    return _objective(*head, kernel, bias, classifier, 3.0, 0.01)


def _objective_of_bias(head, kernel, classifier, bias):
    return _objective(*head, kernel, bias, classifier, 3.0, 0.01)


def _numeric_gradient(function, value, step=1e-6):
    gradient = np.zeros_like(value)
    for index in np.ndindex(value.shape):
        shift = np.zeros_like(value)
        shift[index] = step
        gradient[index] = (function(value + shift) - function(value - shift)) / (2 * step)
    return gradient


@pytest.mark.parametrize("classifier", ["linear", "cosine"])
def test_fine_tune_heads__one_step_is_gradient_descent_on_the_objective(classifier):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(2, 6, 4))
    one_hot = np.eye(3)[rng.integers(0, 3, (2, 6))]
    kernel, bias = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 3))
    kernel_1, bias_1 = fine_tune_heads(
        features.astype("float32"), one_hot.astype("float32"), kernel.astype("float32"),
        bias.astype("float32"), classifier=classifier, steps=1, learning_rate=0.5,
        momentum=0.0, weight_decay=0.01, scale=3.0)
    for e in range(2):
        head = (features[e], one_hot[e])
        kernel_gradient = _numeric_gradient(
            functools.partial(_objective_of_kernel, head, bias[e], classifier), kernel[e])
        np.testing.assert_allclose(np.asarray(kernel_1[e]), kernel[e] - 0.5 * kernel_gradient,
                                   atol=2e-5)
        bias_gradient = _numeric_gradient(
            functools.partial(_objective_of_bias, head, kernel[e], classifier), bias[e])
        np.testing.assert_allclose(np.asarray(bias_1[e]), bias[e] - 0.5 * bias_gradient,
                                   atol=2e-5)


@pytest.mark.parametrize("classifier", ["linear", "cosine"])
def test_transfer_baseline__classifies_separable_episodes(classifier):
    rng = np.random.default_rng(1)
    centers = 5 * rng.normal(size=(4, 3, 4))
    support_y = np.tile([0, 0, 1, 1, 2, 2], (4, 1))
    support_x = np.stack([centers[b][support_y[b]] for b in range(4)]) \
        + 0.1 * rng.normal(size=(4, 6, 4))
    query_x = np.stack([centers[b][[2, 1, 0]] for b in range(4)])
    baseline = TransferBaseline(keras.layers.Identity(), classifier=classifier, seed=0)
    logits = baseline(support_x.astype("float32"), support_y, query_x.astype("float32"))
    assert logits.shape == (4, 3, 3)
    np.testing.assert_array_equal(np.argmax(logits, axis=-1), np.tile([2, 1, 0], (4, 1)))


def test_pretraining_classifier__linear_and_cosine_heads():
    encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    assert isinstance(pretraining_classifier(encoder, 5).layers[-1], keras.layers.Dense)
    cosine = pretraining_classifier(encoder, 5, classifier="cosine")
    assert isinstance(cosine.layers[-1], CosineClassifier) and cosine.output_shape == (None, 5)


def test_cosine_classifier__logits_are_scaled_cosines():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3)).astype("float32")
    layer = CosineClassifier(5)
    logits = np.asarray(layer(x))
    kernel = np.asarray(layer.kernel, np.float64)
    unit_x = x / np.linalg.norm(x, axis=1, keepdims=True)
    # Chen et al.'s fixed scale for up to 200 classes is 2.
    np.testing.assert_allclose(logits, 2.0 * unit_x @ (kernel / np.linalg.norm(kernel, axis=0)),
                               rtol=1e-5, atol=1e-6)
    assert CosineClassifier(201).get_config()["scale"] is None
    assert float(np.max(np.abs(CosineClassifier(201)(x)))) <= 10.0 + 1e-5


@pytest.mark.parametrize("check", testing.LAYER_CHECKS)
def test_cosine_classifier__harness(check):
    x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    testing.check_layer(CosineClassifier, {"units": 3, "scale": 5.0}, x, checks=[check])


def test_transfer_baseline__bad_arguments_name_them():
    with pytest.raises(ValueError, match="argument `classifier`"):
        TransferBaseline(keras.layers.Identity(), classifier="svm")
    with pytest.raises(ValueError, match="argument `steps`"):
        TransferBaseline(keras.layers.Identity(), steps=0)
    with pytest.raises(ValueError, match="argument `momentum`"):
        TransferBaseline(keras.layers.Identity(), momentum=1.0)
    with pytest.raises(TypeError, match="argument `encoder`"):
        TransferBaseline(None)
    with pytest.raises(ValueError, match="argument `num_classes`"):
        pretraining_classifier(keras.layers.Identity(), 1)
    with pytest.raises(ValueError, match="argument `scale`"):
        CosineClassifier(3, scale=0.0)
