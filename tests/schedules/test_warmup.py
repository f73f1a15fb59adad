import math

import keras
import numpy as np
import pytest

from keras_efficient import testing
from keras_efficient.schedules import StepDecay
from keras_efficient.schedules import WarmUp

COSINE = keras.optimizers.schedules.CosineDecay


def _cosine(step, initial, decay_steps):
    return initial * 0.5 * (1 + math.cos(math.pi * min(step, decay_steps) / decay_steps))


def _linear_warmup_then_cosine(step, warmup=10, start=0.01, peak=0.1, decay_steps=50):
    # Goyal et al. gradual warm-up to the schedule's first rate, then the schedule
    # from its own step 0.
    if step < warmup:
        return start + (peak - start) * step / warmup
    return _cosine(step - warmup, peak, decay_steps)


def _cosine_warmup_kwargs():
    return {"schedule": COSINE(0.1, decay_steps=50), "warmup_steps": 10,
            "initial_learning_rate": 0.01}


STEPS = [0, 1, 5, 9, 10, 11, 30, 59, 60, 80]


def test_warm_up__linear_into_cosine_closed_form():
    schedule = WarmUp(**_cosine_warmup_kwargs())
    values = [float(schedule(step)) for step in range(80)]
    np.testing.assert_allclose(values, [_linear_warmup_then_cosine(s) for s in range(80)],
                               rtol=1e-6, atol=1e-8)
    assert np.all(np.diff(values[:11]) > 0)  # rises to the peak, no jump at the join


def test_warm_up__constant_then_step_decay_closed_form():
    schedule = WarmUp(StepDecay(0.2, decay_rate=0.1, step_size=5), warmup_steps=4,
                      mode="constant", initial_learning_rate=0.02)
    expected = [0.02] * 4 + [0.2 * 0.1 ** ((step - 4) // 5) for step in range(4, 20)]
    np.testing.assert_allclose([float(schedule(step)) for step in range(20)], expected,
                               rtol=1e-6)


def test_warm_up__float_schedule_and_no_warmup():
    ramp = WarmUp(0.3, warmup_steps=3)
    np.testing.assert_allclose([float(ramp(step)) for step in range(6)],
                               [0.0, 0.1, 0.2, 0.3, 0.3, 0.3], rtol=1e-6)
    cosine = COSINE(0.1, decay_steps=50)
    identity = WarmUp(cosine, warmup_steps=0)
    np.testing.assert_allclose([float(identity(step)) for step in STEPS],
                               [float(cosine(step)) for step in STEPS], rtol=1e-7)


def test_warm_up__drives_the_optimizer():
    # The rate used by each SGD step, read back from the weights: the loss is the
    # mean prediction of a bias-free Dense on ones, so every step moves w by -lr.
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(
        1, use_bias=False, kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(WarmUp(**_cosine_warmup_kwargs())),
                  loss=lambda y_true, y_pred: keras.ops.mean(y_pred))
    kernels = []
    # `callback.model`, not `model`: on JAX it syncs the weights of the running fit.
    callback = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: kernels.append(
            float(callback.model.layers[0].kernel.numpy()[0, 0])))
    model.fit(np.ones((15, 1)), np.zeros((15, 1)), batch_size=1, epochs=1, verbose=0,
              callbacks=[callback])
    used = -np.diff([0.0] + kernels)
    np.testing.assert_allclose(used, [_linear_warmup_then_cosine(s) for s in range(15)],
                               rtol=1e-5)


@pytest.mark.parametrize("check", testing.SCHEDULE_CHECKS)
def test_warm_up__harness(check):
    testing.check_schedule(WarmUp, _cosine_warmup_kwargs, STEPS,
                           reference=_linear_warmup_then_cosine, checks=[check])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"warmup_steps": -1}, ValueError, "argument `warmup_steps`. Expected an integer >= 0"),
        ({"warmup_steps": 2.5}, TypeError, "argument `warmup_steps`"),
        ({"mode": "cosine"}, ValueError, "argument `mode`. Expected one of"),
        ({"initial_learning_rate": -1.0}, ValueError, "argument `initial_learning_rate`"),
        ({"mode": "constant", "initial_learning_rate": 0.0}, ValueError,
         "argument `initial_learning_rate`. Expected a float value > 0"),
        ({"schedule": -0.1}, ValueError, "argument `schedule`"),
        ({"schedule": "cosine"}, TypeError, "argument `schedule`"),
    ],
)
def test_warm_up__bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        WarmUp(**{"schedule": 0.1, "warmup_steps": 5, **kwargs})
