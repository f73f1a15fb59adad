import math

import numpy as np
import pytest

from keras_efficient import testing
from keras_efficient.curriculum import pacing
from keras_efficient.curriculum.pacing import ExponentialPacing
from keras_efficient.curriculum.pacing import WuPacing

TOTAL = 200


def wu_reference(kind, t, total, b, a):
    """Wu et al. 2021, Table 2, as fractions of N, clipped at 1 (float64)."""
    x = t / (a * total)
    forms = {
        "linear": lambda: b + (1 - b) * x,
        "quadratic": lambda: b + (1 - b) * x**2,
        "root": lambda: b + (1 - b) * math.sqrt(x),
        "step": lambda: b + math.floor(x),
        "exponential": lambda: b + (1 - b) / (math.exp(10) - 1) * (math.exp(10 * x) - 1),
        "logarithmic": lambda: b + (1 - b) * (1 + 0.1 * math.log(x + math.exp(-10))),
    }
    return min(1.0, forms[kind]())


def hacohen_reference(t, s, inc, lengths):
    """Hacohen & Weinshall: min(1, s·inc^k), k = completed staircase steps."""
    k, edge, index = 0, 0, 0
    while True:
        edge += lengths[min(index, len(lengths) - 1)]
        if t < edge:
            return min(1.0, s * inc**k)
        k, index = k + 1, index + 1


STEPS = [0, 1, 7, 40, 79, 80, 99, 119, 120, 150, 199, 200]


@pytest.mark.parametrize("kind", pacing.WU_KINDS)
def test_wu_pacing__matches_closed_form(kind):
    function = getattr(pacing, kind)(TOTAL, start_fraction=0.1, full_data_fraction=0.6)
    expected = [wu_reference(kind, t, TOTAL, 0.1, 0.6) for t in STEPS]
    np.testing.assert_allclose([float(function(t)) for t in STEPS], expected, rtol=2e-6)
    np.testing.assert_allclose(function.fractions()[STEPS], expected, rtol=1e-12)


@pytest.mark.parametrize("kind", pacing.WU_KINDS)
def test_wu_pacing__in_range_non_decreasing_ends_at_one(kind):
    values = getattr(pacing, kind)(TOTAL, 0.05, 1.0).fractions()
    assert np.all(values > 0) and np.all(values <= 1)
    assert np.all(np.diff(values) >= 0)
    assert values[-1] == 1.0 and values[0] == pytest.approx(0.05)


def test_fixed_exponential__matches_closed_form():
    function = pacing.fixed_exponential(TOTAL, start_fraction=0.04, increase=1.9,
                                        step_length=30)
    expected = [min(1.0, 0.04 * 1.9 ** math.floor(t / 30)) for t in range(TOTAL + 1)]
    np.testing.assert_allclose(function.fractions(), expected, rtol=1e-12)
    np.testing.assert_allclose([float(function(t)) for t in STEPS],
                               [expected[t] for t in STEPS], rtol=2e-6)


def test_varied_exponential__matches_closed_form():
    lengths = [10, 30, 5, 20]
    function = pacing.varied_exponential(TOTAL, lengths, start_fraction=0.05, increase=2.0)
    expected = [hacohen_reference(t, 0.05, 2.0, lengths) for t in range(TOTAL + 1)]
    np.testing.assert_allclose(function.fractions(), expected, rtol=1e-12)
    assert function.fractions()[-1] == 1.0


@pytest.mark.parametrize("check", testing.SCHEDULE_CHECKS)
def test_wu_pacing__harness(check):
    testing.check_schedule(
        WuPacing, {"total_steps": 20, "kind": "root", "start_fraction": 0.2,
                   "full_data_fraction": 0.5},
        steps=[0, 3, 9, 10, 19],
        reference=lambda t: wu_reference("root", t, 20, 0.2, 0.5),
        checks=[check], rtol=2e-6)


@pytest.mark.parametrize("check", testing.SCHEDULE_CHECKS)
def test_exponential_pacing__harness(check):
    testing.check_schedule(
        ExponentialPacing, {"total_steps": 20, "start_fraction": 0.25, "increase": 2.0,
                            "step_length": [2, 3]},
        steps=[0, 1, 2, 4, 5, 7, 8, 19],
        reference=lambda t: hacohen_reference(t, 0.25, 2.0, [2, 3]),
        checks=[check], rtol=2e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"start_fraction": 0.0}, "argument `start_fraction`"),
    ({"start_fraction": 1.5}, "argument `start_fraction`"),
    ({"full_data_fraction": 1.2}, "argument `full_data_fraction`"),
    ({"full_data_fraction": 0.0}, "argument `full_data_fraction`"),
    ({"kind": "cubic"}, "argument `kind`"),
    ({"total_steps": 0}, "argument `total_steps`"),
])
def test_wu_pacing__rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WuPacing(**{"total_steps": 10, **kwargs})


@pytest.mark.parametrize("kwargs, match", [
    ({"increase": 1.0}, "argument `increase`"),
    ({"step_length": 0}, "argument `step_length`"),
    ({"step_length": []}, "argument `step_length`"),
    # 0.04 · 1.9^1 < 1 at step 100: never enables all the data.
    ({"step_length": 60}, "p\\(total_steps\\)=0.076"),
])
def test_exponential_pacing__rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ExponentialPacing(**{"total_steps": 100, **kwargs})
