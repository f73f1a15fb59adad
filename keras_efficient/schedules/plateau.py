"""Reduce-on-plateau that also works when the optimizer holds a schedule.

Keras's `ReduceLROnPlateau` assigns a new float to `optimizer.learning_rate`, which
an optimizer built with a `LearningRateSchedule` refuses (TypeError). Here the
schedule is wrapped once, at the start of training, in a `ScaledSchedule` whose
scale is a variable; a plateau multiplies that scale, so the schedule keeps its
shape (warm-up, cosine, steps) at a lower level.
"""

import keras
import numpy as np
from keras import ops

from keras_efficient import backend
from keras_efficient.backend import keras_compat
from keras_efficient.utils import export
from keras_efficient.utils import register
from keras_efficient.utils import validate_choice
from keras_efficient.utils import validate_key
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_size

_SCHEDULES = keras.optimizers.schedules


@register("keras_efficient.schedules.ScaledSchedule")
class ScaledSchedule(_SCHEDULES.LearningRateSchedule):
    """A learning-rate schedule multiplied by a settable scale.

        lr(step) = scale * schedule(step)

    `scale` is a non-trainable float32 Keras variable, read at every step, so
    assigning it changes the rate of an already compiled train step.
    `ke.callbacks.ReduceLROnPlateau` uses it to reduce a scheduled rate; its
    config stores the current scale, so a saved model resumes at the reduced rate.

    Args:
        schedule: the `LearningRateSchedule` to scale.
        scale: the initial scale, a float >= 0.
        name: name of the schedule.

    Call arguments:
        step: the optimizer step.

    Returns:
        The float32 learning rate at `step`.

    Example:

    >>> import keras, keras_efficient as ke
    >>> schedule = ke.schedules.ScaledSchedule(
    ...     keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5), scale=0.1)
    >>> round(float(schedule(10)), 6)
    0.005
    """

    def __init__(self, schedule, scale=1.0, name="ScaledSchedule"):
        super().__init__()
        if not isinstance(schedule, _SCHEDULES.LearningRateSchedule):
            raise TypeError(
                "Invalid type received for argument `schedule`. Expected a "
                "`keras.optimizers.schedules.LearningRateSchedule`. "
                f"Received: schedule={schedule!r} of type {type(schedule).__name__}"
            )
        self.schedule = schedule
        self.scale = keras.Variable(
            float(validate_number("scale", scale, 0)), dtype="float32", trainable=False,
            name="learning_rate_scale")
        self.name = name

    def __call__(self, step):
        with keras.name_scope(self.name):
            return ops.cast(self.schedule(step), "float32") * ops.convert_to_tensor(self.scale)

    def get_config(self):
        return {
            "schedule": _SCHEDULES.serialize(self.schedule),
            "scale": float(ops.convert_to_numpy(self.scale)),
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedule"] = _SCHEDULES.deserialize(config["schedule"])
        return cls(**config)


@export("keras_efficient.callbacks.ReduceLROnPlateau")
class ReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
    """Reduce the learning rate when a metric stops improving, also with a schedule.

    Keras's `ReduceLROnPlateau` (same arguments, same plateau logic: it is
    subclassed), extended to optimizers whose learning rate is a
    `LearningRateSchedule`, which Keras's refuses. At the start of training such
    a schedule is wrapped in a `ScaledSchedule` (once; the train function is
    rebuilt so it reads the scale), and a reduction multiplies the scale so that
    the rate at the current step becomes `max(lr * factor, min_lr)`. The schedule
    keeps its shape after a reduction, one level lower; `min_lr` bounds the rate
    at the moment of a reduction, a decaying schedule may go below it later. With
    a float learning rate it behaves exactly like Keras's.

    Args:
        monitor: quantity to monitor, e.g. `"val_loss"`.
        factor: factor by which the rate is reduced, in (0, 1).
        patience: epochs without improvement before a reduction.
        verbose: 1 prints a message at each reduction.
        mode: `"auto"`, `"min"` or `"max"`.
        min_delta: smallest change that counts as an improvement.
        cooldown: epochs to wait after a reduction before counting again.
        min_lr: lower bound on the rate set by a reduction.

    Example:

    ```python
    schedule = ke.schedules.WarmUp(keras.optimizers.schedules.CosineDecay(0.1, 10_000),
                                   warmup_steps=500)
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mse")
    model.fit(x, y, validation_split=0.1, epochs=50,
              callbacks=[ke.callbacks.ReduceLROnPlateau(factor=0.5, patience=3)])
    ```
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0, **kwargs):
        # Keras only warns on an unknown mode and falls back to "auto".
        validate_choice("mode", mode, ("auto", "min", "max"))
        validate_number("factor", factor, 0, 1, low_inclusive=False, high_inclusive=False)
        validate_size("patience", patience, low=0)
        validate_size("cooldown", cooldown, low=0)
        validate_number("min_lr", min_lr, 0)
        validate_number("min_delta", min_delta, 0)
        # Keras would fail at the end of the first epoch on a non-string monitor.
        validate_key("monitor", monitor)
        super().__init__(monitor=monitor, factor=factor, patience=patience, verbose=verbose,
                         mode=mode, min_delta=min_delta, cooldown=cooldown, min_lr=min_lr,
                         **kwargs)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        wrapped = False
        for optimizer in self._optimizers():
            schedule = keras_compat.learning_rate_object(optimizer)
            if (isinstance(schedule, _SCHEDULES.LearningRateSchedule)
                    and not isinstance(schedule, ScaledSchedule)):
                with backend.variable_scope(self.model):
                    optimizer.learning_rate = ScaledSchedule(schedule)
                wrapped = True
        if wrapped:
            # A train function traced before (an earlier `fit`) holds the old schedule.
            self.model.make_train_function(force=True)

    def _optimizers(self):
        optimizer = self.model.optimizer
        return list(getattr(optimizer, "optimizers", [optimizer]))

    def _reduce_optimizer_lr(self, optimizer, epoch, name=""):
        schedule = keras_compat.learning_rate_object(optimizer)
        if not isinstance(schedule, ScaledSchedule):
            return super()._reduce_optimizer_lr(optimizer, epoch, name)
        old_lr = float(ops.convert_to_numpy(optimizer.learning_rate))
        if old_lr <= np.float32(self.min_lr):
            return False
        new_lr = max(old_lr * self.factor, self.min_lr)
        schedule.scale.assign(float(ops.convert_to_numpy(schedule.scale)) * new_lr / old_lr)
        if keras.backend.backend() == "jax":
            # A jitted JAX step holds the scale as a constant (it is no optimizer
            # variable, so not in the step's state): trace a step that reads it.
            self.model.make_train_function(force=True)
        if self.verbose > 0:
            keras_compat.print_msg(
                f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing the scheduled "
                f"{name} learning rate to {new_lr} (scale "
                f"{float(ops.convert_to_numpy(schedule.scale)):.4g}).")
        return True
