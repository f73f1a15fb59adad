"""Values that change per optimizer step inside a model's loss: the model counts its steps."""

import keras
from keras import ops

from keras_efficient.utils import validate_number

_Schedule = keras.optimizers.schedules.LearningRateSchedule


def add_step_counter(model):
    """Add `steps_trained`, a non-trainable int32 weight counting training steps, to `model`.

    Why not `optimizer.iterations`: on JAX, `compute_loss` runs in a stateless
    scope holding the model's variables but not the optimizer's, so reading
    the optimizer's step there fails. The model's own weight is in that scope
    on both backends, is saved in `.keras` files (a schedule resumes where it
    was), and under a `tf.distribute` strategy keeps the first replica's
    increment (one per global step). Advance it with `count_step`.
    """
    return model.add_weight(shape=(), dtype="int32", initializer="zeros", trainable=False,
                            aggregation="only_first_replica", name="steps_trained")


def is_scheduled(value):
    return isinstance(value, _Schedule)


def link_step_counter(model, loss):
    """Give `model` a step counter for `loss.step` if the loss's temperature is scheduled.

    Returns the counter, or None for a float temperature (no weight added).
    """
    if not is_scheduled(loss.temperature):
        return None
    loss.step = add_step_counter(model)
    return loss.step


def count_step(counter, training):
    """Advance a step counter (if any) by one in a training call (not in evaluation)."""
    if training and counter is not None:
        counter.assign_add(ops.ones((), "int32"))


def validate_scheduled(name, value):
    """A float > 0, or a `LearningRateSchedule` (or its config) giving one per step."""
    if isinstance(value, dict):
        value = keras.optimizers.schedules.deserialize(value)
    if isinstance(value, _Schedule):
        return value
    return validate_number(name, value, 0, low_inclusive=False)


def serialize_scheduled(value):
    """A float as it is, a schedule as its Keras config (for `get_config`)."""
    if isinstance(value, _Schedule):
        return keras.optimizers.schedules.serialize(value)
    return value


def value_at(value, step):
    """A float as it is; a schedule evaluated at `step`, as a float32 scalar."""
    if isinstance(value, _Schedule):
        return ops.cast(value(step), "float32")
    return value


class ScheduledTemperature:
    """Mixin for losses whose `temperature` may be a schedule.

    A schedule is evaluated at `self.step`, the step counter of the model that
    owns the loss (`SimCLR`, `Distiller`, `SubclassTeacher` set it; for a loss
    given to `compile`, set `loss.step = model.optimizer.iterations` on the
    TensorFlow backend). A float temperature needs no step.
    """

    step = None

    def current_temperature(self):
        if isinstance(self.temperature, _Schedule) and self.step is None:
            raise ValueError(
                f"`{type(self).__name__}` has a temperature schedule but no step to "
                "evaluate it at. Use it inside a model that sets `loss.step` (SimCLR, "
                "Distiller, SubclassTeacher), or set `loss.step` to a step counter such as "
                "`model.optimizer.iterations`."
            )
        return value_at(self.temperature, self.step)
