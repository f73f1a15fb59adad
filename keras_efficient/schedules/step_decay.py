"""Step decay: the learning rate drops by a constant factor every few epochs."""

import keras

from keras_efficient.utils import register
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_size


@register("keras_efficient.schedules.StepDecay")
class StepDecay(keras.optimizers.schedules.ExponentialDecay):
    """Step decay: multiply the learning rate by `decay_rate` every `step_size` epochs.

        lr(step) = initial_learning_rate * decay_rate ** floor(step / (step_size * steps_per_epoch))

    The classic ResNet schedule (e.g. 0.1, divided by 10 every 30 epochs). The
    CNN-tricks lecture writes it per epoch, lr0 * floor(epoch / step), leaving out
    the decay rate; this is the usual form with it. It is Keras's
    `ExponentialDecay` with `staircase=True` and `decay_steps = step_size *
    steps_per_epoch`, stated in epochs.

    Args:
        initial_learning_rate: lr0, a float >= 0.
        decay_rate: the factor applied at each drop, in (0, 1].
        step_size: epochs between drops, an integer >= 1.
        steps_per_epoch: optimizer steps per epoch, an integer >= 1 (the default 1
            counts `step_size` in optimizer steps).
        name: name of the schedule.

    Call arguments:
        step: the optimizer step (`optimizer.iterations`).

    Returns:
        The float32 learning rate at `step`.

    Example:

    >>> import keras_efficient as ke
    >>> schedule = ke.schedules.StepDecay(0.1, decay_rate=0.1, step_size=30,
    ...                                   steps_per_epoch=100)
    >>> [round(float(schedule(step)), 6) for step in (0, 2999, 3000, 6000)]
    [0.1, 0.1, 0.01, 0.001]

    Reference:
        He et al., "Deep Residual Learning for Image Recognition", CVPR 2016.
        https://arxiv.org/abs/1512.03385
    """

    def __init__(self, initial_learning_rate, decay_rate, step_size, steps_per_epoch=1,
                 name="StepDecay"):
        validate_number("initial_learning_rate", initial_learning_rate, 0)
        validate_number("decay_rate", decay_rate, 0, 1, low_inclusive=False)
        validate_size("step_size", step_size)
        validate_size("steps_per_epoch", steps_per_epoch)
        super().__init__(
            float(initial_learning_rate),  # an int would make the rate an int tensor
            decay_steps=step_size * steps_per_epoch,
            decay_rate=float(decay_rate),
            staircase=True,
            name=name,
        )
        self.step_size = step_size
        self.steps_per_epoch = steps_per_epoch

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_rate": self.decay_rate,
            "step_size": self.step_size,
            "steps_per_epoch": self.steps_per_epoch,
            "name": self.name,
        }
