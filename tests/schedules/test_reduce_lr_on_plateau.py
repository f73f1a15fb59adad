import contextlib

import keras
import numpy as np
import pytest

from keras_efficient import testing
from keras_efficient.callbacks import ReduceLROnPlateau
from keras_efficient.schedules import ScaledSchedule
from keras_efficient.schedules import WarmUp

# A metric that improves, then stalls: with patience=2, reductions at the ends of
# epochs 3 and 6 (0-based; epoch 4 improves and restarts the count).
PLATEAU = [3.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0]


def _exponential():
    return keras.optimizers.schedules.ExponentialDecay(0.2, decay_steps=1, decay_rate=0.9)


def _fit_and_read_rates(learning_rate, callback, warm_epochs=0, strategy=None, epochs=None):
    """Learning rate each SGD step used, read back from the weights: a bias-free
    Dense on ones with an absolute error to a far target (gradient 1), so a step
    moves w by -lr. One step per epoch; `warm_epochs` of an earlier fit trace the train function
    before the callback is added."""
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(
            1, use_bias=False, kernel_initializer="zeros")])
        model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss="mae")
    kernels = [0.0]
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: kernels.append(
        float(model.layers[0].kernel.numpy()[0, 0])))
    x, y = np.ones((4, 1)), np.full((4, 1), -100.0)
    if warm_epochs:
        model.fit(x, y, batch_size=4, epochs=warm_epochs, verbose=0, callbacks=[record])

    def plateau_metric(epoch, logs):
        logs["plateau_metric"] = PLATEAU[epoch]

    callbacks = [record, keras.callbacks.LambdaCallback(on_epoch_end=plateau_metric), callback]
    history = model.fit(x, y, batch_size=4, epochs=epochs or len(PLATEAU), verbose=0,
                        callbacks=callbacks)
    return -np.diff(kernels), history, model


def _plateau_kwargs(**overrides):
    return {"monitor": "plateau_metric", "mode": "min", "factor": 0.5, "patience": 2,
            **overrides}


def test_reduce_lr_on_plateau__float_rate_like_keras():
    ours, our_history, _ = _fit_and_read_rates(0.1, ReduceLROnPlateau(**_plateau_kwargs()))
    theirs, their_history, _ = _fit_and_read_rates(
        0.1, keras.callbacks.ReduceLROnPlateau(**_plateau_kwargs()))
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    np.testing.assert_allclose(our_history.history["learning_rate"],
                               their_history.history["learning_rate"], rtol=1e-6)
    np.testing.assert_allclose(ours, [0.1] * 4 + [0.05] * 3 + [0.025] * 2,
                               rtol=1e-6)


def test_reduce_lr_on_plateau__scheduled_rate_multiplied_by_factor(tmp_path):
    with pytest.raises(TypeError, match="not settable"):  # what Keras's callback does
        _fit_and_read_rates(_exponential(), keras.callbacks.ReduceLROnPlateau(
            **_plateau_kwargs()))
    used, history, model = _fit_and_read_rates(
        _exponential(), ReduceLROnPlateau(**_plateau_kwargs()), warm_epochs=1)
    steps = np.arange(1, len(PLATEAU) + 1)  # one step taken by the earlier fit
    scale = np.array([1.0] * 4 + [0.5] * 3 + [0.25] * 2)
    np.testing.assert_allclose(used[1:], scale * 0.2 * 0.9 ** steps, rtol=1e-5)
    # The logged rate is the scheduled rate after each epoch's step, before any reduction.
    np.testing.assert_allclose(history.history["learning_rate"],
                               scale * 0.2 * 0.9 ** (steps + 1), rtol=1e-5)
    assert isinstance(model.optimizer._learning_rate, ScaledSchedule)
    # A saved model resumes at the reduced rate (also reduced after the last epoch).
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(float(reloaded.optimizer.learning_rate),
                               0.125 * 0.2 * 0.9 ** (len(PLATEAU) + 1), rtol=1e-5)


def test_reduce_lr_on_plateau__scheduled_rate_on_two_replicas():
    # Up to the first reduction (fit under a strategy is slow per epoch).
    used, _, _ = _fit_and_read_rates(_exponential(), ReduceLROnPlateau(**_plateau_kwargs()),
                                     strategy=testing.two_replica_strategy(), epochs=5)
    np.testing.assert_allclose(used, np.array([1, 1, 1, 1, 0.5]) * 0.2 * 0.9 ** np.arange(5),
                               rtol=1e-5)


def test_reduce_lr_on_plateau__min_lr_bounds_a_scheduled_reduction():
    schedule = WarmUp(0.1, warmup_steps=0)
    used, _, _ = _fit_and_read_rates(schedule, ReduceLROnPlateau(
        **_plateau_kwargs(min_lr=0.03)))
    np.testing.assert_allclose(used, [0.1] * 4 + [0.05] * 3 + [0.03] * 2, rtol=1e-5)


def _scaled_kwargs():
    return {"schedule": _exponential(), "scale": 0.5}


@pytest.mark.parametrize("check", testing.SCHEDULE_CHECKS)
def test_scaled_schedule__harness(check):
    testing.check_schedule(ScaledSchedule, _scaled_kwargs, [0, 1, 5, 20],
                           reference=lambda step: 0.5 * 0.2 * 0.9 ** step, checks=[check],
                           rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"factor": 1.0}, ValueError, r"argument `factor`. Expected a float value in \(0, 1\)"),
        ({"factor": 0.0}, ValueError, "argument `factor`"),
        ({"patience": -1}, ValueError, "argument `patience`"),
        ({"cooldown": -1}, ValueError, "argument `cooldown`"),
        ({"min_lr": -1.0}, ValueError, "argument `min_lr`"),
        ({"mode": "minimum"}, ValueError, "argument `mode`. Expected one of"),
    ],
)
def test_reduce_lr_on_plateau__bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        ReduceLROnPlateau(**kwargs)


def test_scaled_schedule__bad_arguments():
    with pytest.raises(TypeError, match="argument `schedule`"):
        ScaledSchedule(0.1)
    with pytest.raises(ValueError, match="argument `scale`"):
        ScaledSchedule(_exponential(), scale=-1.0)
