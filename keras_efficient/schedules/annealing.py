"""Annealing of a scalar between two values: a softmax temperature, a loss weight."""

import math

import keras
from keras import ops

from keras_efficient.utils import register
from keras_efficient.utils import validate_choice
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_size

MODES = ("constant", "linear", "cosine", "exponential")


@register("keras_efficient.schedules.Annealing")
class Annealing(keras.optimizers.schedules.LearningRateSchedule):
    """A value annealed from `initial_value` to `final_value` over `annealing_steps`.

    With `p = min(step / annealing_steps, 1)`:

    - `"constant"`: `initial_value` at every step (`final_value` unused);
    - `"linear"`: `initial + (final - initial) * p`;
    - `"cosine"`: `final + (initial - final) * (1 + cos(pi * p)) / 2`;
    - `"exponential"`: `initial * (final / initial) ** p` (geometric; both > 0).

    After `annealing_steps` the value stays at `final_value`. A
    `LearningRateSchedule`, so an optimizer takes it too; the losses and
    models of this package take it in place of a float temperature
    (`ke.losses.NTXent`, `KnowledgeDistillation`, `SubclassAuxiliaryLoss`,
    `ke.models.SimCLR`, `Distiller`, `SubclassTeacher`, `SubclassDistiller`),
    evaluated once per optimizer step.

    Args:
        initial_value: the value at step 0, a float > 0.
        final_value: the value from step `annealing_steps` on, a float > 0.
        annealing_steps: length of the annealing in steps, an integer >= 1.
        mode: one of `"constant"`, `"linear"`, `"cosine"`, `"exponential"`.
            Defaults to `"linear"`.
        name: name of the schedule.

    Call arguments:
        step: the step (an integer scalar).

    Returns:
        The float32 value at `step`.

    Example:

    >>> schedule = Annealing(8.0, 2.0, annealing_steps=100, mode="exponential")
    >>> [round(float(schedule(step)), 3) for step in (0, 50, 100, 1000)]
    [8.0, 4.0, 2.0, 2.0]

    Reference:
        Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network",
        2015 (the temperature as a knob); Jang, Gu, Poole, "Categorical
        Reparameterization with Gumbel-Softmax", ICLR 2017 (exponential
        temperature annealing).
    """

    def __init__(self, initial_value, final_value, annealing_steps, mode="linear", name=None):
        super().__init__()
        self.initial_value = validate_number("initial_value", initial_value, 0,
                                             low_inclusive=False)
        self.final_value = validate_number("final_value", final_value, 0, low_inclusive=False)
        self.annealing_steps = validate_size("annealing_steps", annealing_steps)
        self.mode = validate_choice("mode", mode, MODES)
        self.name = name

    def __call__(self, step):
        initial, final = self.initial_value, self.final_value
        if self.mode == "constant":
            return ops.convert_to_tensor(initial, "float32")
        progress = ops.minimum(ops.cast(step, "float32") / self.annealing_steps, 1.0)
        if self.mode == "linear":
            return initial + (final - initial) * progress
        if self.mode == "cosine":
            return final + (initial - final) * 0.5 * (1.0 + ops.cos(math.pi * progress))
        return initial * ops.exp(math.log(final / initial) * progress)

    def get_config(self):
        return {"initial_value": self.initial_value, "final_value": self.final_value,
                "annealing_steps": self.annealing_steps, "mode": self.mode, "name": self.name}
