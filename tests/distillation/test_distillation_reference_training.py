"""Distiller training against an independent run: a float64 numpy softmax-regression
student trained by gradient descent on the teacher's soft targets (Hinton et al.
2015, Eq. 2 with the T^2 factor) and the labels must end with the same weights."""

import keras
import numpy as np
import pytest

from keras_efficient.distillation.distiller import Distiller

RNG = np.random.default_rng(7)
X = RNG.normal(size=(16, 6)).astype("float32")
Y = RNG.integers(0, 3, size=16).astype("int32")
STEPS, LEARNING_RATE = 5, 0.5


def _numpy_student(kernel, bias, teacher_logits, alpha, temperature, ref):
    """`STEPS` full-batch SGD steps of alpha * KD + (1 - alpha) * CE in float64.

    d/ds of T^2 CE(softmax(t/T), softmax(s/T)) is T (softmax(s/T) - softmax(t/T));
    d/ds of CE(y, s) is softmax(s) - onehot(y); both averaged over the batch.
    """
    x = X.astype(np.float64)
    kernel, bias = kernel.astype(np.float64), bias.astype(np.float64)
    soft_targets = ref.softmax(teacher_logits / temperature)
    onehot = np.eye(3)[Y]
    for _ in range(STEPS):
        logits = x @ kernel + bias
        gradient = (alpha * temperature * (ref.softmax(logits / temperature) - soft_targets)
                    + (1 - alpha) * (ref.softmax(logits) - onehot)) / len(x)
        kernel = kernel - LEARNING_RATE * x.T @ gradient
        bias = bias - LEARNING_RATE * gradient.sum(axis=0)
    return kernel, bias


@pytest.mark.parametrize("alpha, temperature", [(0.5, 4.0), (1.0, 2.0)])
def test_distiller__few_steps_equal_a_float64_numpy_student(alpha, temperature, ref):
    keras.utils.set_random_seed(0)
    teacher = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="tanh"),
                                keras.layers.Dense(3)])
    student = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    kernel, bias = (np.asarray(w) for w in student.get_weights())
    teacher_logits = np.asarray(teacher(X), np.float64)
    distiller = Distiller(teacher, student, temperature=temperature, alpha=alpha)
    distiller.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    distiller.fit(X, Y, batch_size=len(X), epochs=STEPS, shuffle=False, verbose=0)
    expected = _numpy_student(kernel, bias, teacher_logits, alpha, temperature, ref)
    for got, want in zip(student.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # The teacher did not move.
    np.testing.assert_allclose(np.asarray(teacher(X)), teacher_logits, rtol=1e-6)
