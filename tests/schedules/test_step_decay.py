import numpy as np
import pytest

from keras_efficient import testing
from keras_efficient.schedules import StepDecay

KWARGS = {"initial_learning_rate": 0.1, "decay_rate": 0.5, "step_size": 3, "steps_per_epoch": 4}


def _step_decay(step, initial_learning_rate, decay_rate, step_size, steps_per_epoch):
    epoch = step // steps_per_epoch
    return initial_learning_rate * decay_rate ** (epoch // step_size)


def test_step_decay__closed_form():
    schedule = StepDecay(**KWARGS)
    steps = np.arange(0, 60)
    values = [float(schedule(step)) for step in steps]
    np.testing.assert_allclose(values, [_step_decay(s, **KWARGS) for s in steps], rtol=1e-6)
    # The drops happen exactly every step_size epochs of steps_per_epoch steps.
    assert values[11] == pytest.approx(0.1) and values[12] == pytest.approx(0.05)


@pytest.mark.parametrize("check", testing.SCHEDULE_CHECKS)
def test_step_decay__harness(check):
    testing.check_schedule(StepDecay, KWARGS, [0, 1, 11, 12, 13, 23, 24, 100],
                           reference=lambda step: _step_decay(step, **KWARGS), checks=[check])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"initial_learning_rate": -0.1}, ValueError, "argument `initial_learning_rate`"),
        ({"decay_rate": 0.0}, ValueError, r"argument `decay_rate`. Expected a float value in \(0, 1\]"),
        ({"decay_rate": 1.5}, ValueError, "argument `decay_rate`"),
        ({"step_size": 0}, ValueError, "argument `step_size`. Expected an integer >= 1"),
        ({"step_size": 2.5}, TypeError, "argument `step_size`"),
        ({"steps_per_epoch": 0}, ValueError, "argument `steps_per_epoch`"),
    ],
)
def test_step_decay__bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        StepDecay(**{**KWARGS, **kwargs})
