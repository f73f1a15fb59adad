"""The `in_context` demo experiment, end to end with a few training sequences."""

import numpy as np
import pytest

from keras_efficient.demo import base
from keras_efficient.demo.experiments import in_context


def test_function_sequences__labels_follow_one_mapping_per_sequence():
    tokens = in_context.function_sequences(np.random.default_rng(0), 50)
    x, y = tokens[:, ::2], tokens[:, 1::2] - in_context.INPUTS
    assert x.max() < in_context.INPUTS and 0 <= y.min() and y.max() < in_context.LABELS
    for row_x, row_y in zip(x, y):
        seen = {}
        for a, b in zip(row_x, row_y):
            assert seen.setdefault(a, b) == b  # the same input always maps to the same label


def test_in_context_experiment__variants_report_accuracy_and_ideal(monkeypatch):
    monkeypatch.setattr(in_context, "_TRAINED", {})
    monkeypatch.setattr(in_context, "QUICK_TRAIN_SEQUENCES", 64)
    monkeypatch.setattr(in_context, "NEW_FUNCTIONS", 1)
    experiment = base.registered_experiments()["in_context"]
    assert list(experiment.variants) == [f"k{k}" for k in in_context.KS]
    context = base.ExperimentContext(data=None, seed=0, epochs=1,  # no digits
                                     settings=base.RunSettings(quick=True))
    for name, k in (("k0", 0), ("k6", 6)):
        result = experiment.variants[name](context)
        assert 0.0 <= result.test_accuracy <= 1.0
        assert result.extra["perfect_in_context"] == pytest.approx(
            k / in_context.INPUTS + (1 - k / in_context.INPUTS) / in_context.LABELS)
    assert len(in_context._TRAINED) == 1  # trained once, shared by the variants
