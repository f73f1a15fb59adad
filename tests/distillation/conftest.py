"""Float64 numpy references of the distillation formulas, written from the papers
(Hinton et al. 2015, Eq. 2 with the T^2 factor; Muller et al. 2020, Eq. 3 and the
official colab's normalization), shared by the tests of this folder."""

import types

import numpy as np
import pytest


def log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def softmax(z):
    return np.exp(log_softmax(z))


def logsumexp(z, axis=-1):
    peak = z.max(axis=axis, keepdims=True)
    return np.squeeze(peak, axis) + np.log(np.exp(z - peak).sum(axis=axis))


def knowledge_distillation(teacher_logits, student_logits, temperature):
    """T^2 * mean_i sum_k -softmax(t_i / T)_k log softmax(s_i / T)_k."""
    t = np.asarray(teacher_logits, np.float64) / temperature
    s = np.asarray(student_logits, np.float64) / temperature
    return temperature**2 * np.mean(-(softmax(t) * log_softmax(s)).sum(axis=-1))


def subclass_auxiliary_loss(subclass_logits, temperature, epsilon=1e-9):
    """mean_i logsumexp_j(z_i . z_j) - 1/T - log n, z = standardized logits / sqrt(T S)."""
    z = np.asarray(subclass_logits, np.float64)
    n, num_subclasses = z.shape
    centered = z - z.mean(axis=1, keepdims=True)
    std = np.sqrt((centered**2).mean(axis=1, keepdims=True) + epsilon)
    normalized = centered / std / np.sqrt(temperature * num_subclasses)
    return np.mean(logsumexp(normalized @ normalized.T)) - 1.0 / temperature - np.log(n)


def class_logits(subclass_logits, num_classes):
    z = np.asarray(subclass_logits, np.float64)
    return logsumexp(z.reshape(len(z), num_classes, -1), axis=-1)


def crossentropy(labels, logits):
    labels = np.asarray(labels).astype(int)
    return -np.mean(log_softmax(np.asarray(logits, np.float64))[np.arange(len(labels)), labels])


@pytest.fixture
def ref():
    return types.SimpleNamespace(
        softmax=softmax,
        knowledge_distillation=knowledge_distillation,
        subclass_auxiliary_loss=subclass_auxiliary_loss,
        class_logits=class_logits,
        crossentropy=crossentropy,
    )
