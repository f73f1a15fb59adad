"""Learning-rate warm-up in front of any schedule (Goyal et al., 2017)."""

import numbers

import keras
from keras import ops

from keras_efficient.utils import register
from keras_efficient.utils import validate_choice
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_size

_SCHEDULES = keras.optimizers.schedules


@register("keras_efficient.schedules.WarmUp")
class WarmUp(_SCHEDULES.LearningRateSchedule):
    """Warm-up in front of a learning-rate schedule.

    For the first `warmup_steps` steps the rate is reduced, as in the two options
    of the CNN-tricks lecture (and Goyal et al. 2017, section 2.2):

    - `mode="linear"` (gradual warm-up): rises linearly from
      `initial_learning_rate` at step 0 towards the wrapped schedule's first rate,
      `schedule(0)`, reached at step `warmup_steps`;
    - `mode="constant"`: stays at `initial_learning_rate`.

    From step `warmup_steps` on, the wrapped schedule runs from its own start:
    the rate is `schedule(step - warmup_steps)`. The wrapped schedule is offset,
    so a decay over `decay_steps` keeps its full length after the warm-up and the
    linear ramp meets it without a jump (as Keras's `CosineDecay` warm-up does).
    Total training length is `warmup_steps` plus the wrapped schedule's.

    Args:
        schedule: a `LearningRateSchedule` (`CosineDecay`, `StepDecay`, ...) or a
            float >= 0 (a constant rate).
        warmup_steps: length of the warm-up in optimizer steps, an integer >= 0
            (0: no warm-up).
        mode: `"linear"` or `"constant"`.
        initial_learning_rate: the rate at step 0, a float >= 0; must be > 0 with
            `mode="constant"` (a constant warm-up at 0 would not train).
        name: name of the schedule.

    Call arguments:
        step: the optimizer step (`optimizer.iterations`).

    Returns:
        The float32 learning rate at `step`.

    Example:

    >>> import keras, keras_efficient as ke
    >>> schedule = ke.schedules.WarmUp(
    ...     keras.optimizers.schedules.CosineDecay(0.1, decay_steps=1000),
    ...     warmup_steps=100)
    >>> [round(float(schedule(step)), 4) for step in (0, 50, 100, 600, 1100)]
    [0.0, 0.05, 0.1, 0.05, 0.0]

    Reference:
        Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in
        1 Hour", 2017. https://arxiv.org/abs/1706.02677
    """

    def __init__(self, schedule, warmup_steps, mode="linear", initial_learning_rate=0.0,
                 name="WarmUp"):
        super().__init__()
        if not isinstance(schedule, _SCHEDULES.LearningRateSchedule):
            if not isinstance(schedule, numbers.Real) or isinstance(schedule, bool):
                raise TypeError(
                    "Invalid type received for argument `schedule`. Expected a "
                    "`keras.optimizers.schedules.LearningRateSchedule` or a float. "
                    f"Received: schedule={schedule!r} of type {type(schedule).__name__}"
                )
            schedule = float(validate_number("schedule", schedule, 0))
        self.schedule = schedule
        self.warmup_steps = validate_size("warmup_steps", warmup_steps, low=0)
        self.mode = validate_choice("mode", mode, {"linear", "constant"})
        low_inclusive = mode != "constant" or warmup_steps == 0
        self.initial_learning_rate = float(validate_number(
            "initial_learning_rate", initial_learning_rate, 0, low_inclusive=low_inclusive))
        self.name = name

    def _scheduled(self, step):
        if isinstance(self.schedule, float):
            return ops.convert_to_tensor(self.schedule, "float32")
        return ops.cast(self.schedule(step), "float32")

    def __call__(self, step):
        with keras.name_scope(self.name):
            step = ops.convert_to_tensor(step)
            # The wrapped schedule starts at the end of the warm-up.
            after = self._scheduled(ops.maximum(step - self.warmup_steps, 0))
            if self.warmup_steps == 0:
                return after
            progress = ops.cast(step, "float32") / self.warmup_steps
            if self.mode == "linear":
                target = self._scheduled(ops.zeros_like(step))
                during = self.initial_learning_rate + (target - self.initial_learning_rate) * progress
            else:
                during = ops.full_like(after, self.initial_learning_rate)
            return ops.where(progress < 1.0, during, after)

    def get_config(self):
        schedule = self.schedule
        if not isinstance(schedule, float):
            schedule = _SCHEDULES.serialize(schedule)
        return {
            "schedule": schedule,
            "warmup_steps": self.warmup_steps,
            "mode": self.mode,
            "initial_learning_rate": self.initial_learning_rate,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config["schedule"], dict):
            config["schedule"] = _SCHEDULES.deserialize(config["schedule"])
        return cls(**config)
