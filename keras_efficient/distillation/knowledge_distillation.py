"""Hinton's soft-target distillation loss, scaled by the squared temperature."""

import keras
from keras import ops

from keras_efficient.schedules.step_counter import ScheduledTemperature
from keras_efficient.schedules.step_counter import serialize_scheduled
from keras_efficient.schedules.step_counter import validate_scheduled
from keras_efficient.utils import register


def knowledge_distillation(teacher_logits, student_logits, temperature=4.0):
    """Per-example soft-target loss `T^2 * CE(softmax(t / T), softmax(s / T))`.

    The teacher's side is under `stop_gradient`: only the student learns. The
    `T^2` factor keeps the gradient's size about constant when `T` changes
    (Hinton et al., 2015, section 2). Computed in float32 whatever the inputs'
    dtype.

    Args:
        teacher_logits: teacher logits, shape `(batch_size, num_classes)`.
        student_logits: student logits of the same shape.
        temperature: the softmax temperature `T > 0`; a float or a scalar tensor
            (an annealed temperature).

    Returns:
        float32 tensor of shape `(batch_size,)`.
    """
    teacher_logits = ops.stop_gradient(ops.cast(teacher_logits, "float32"))
    student_logits = ops.cast(student_logits, "float32")
    soft_targets = ops.softmax(teacher_logits / temperature, axis=-1)
    crossentropy = keras.losses.categorical_crossentropy(
        soft_targets, student_logits / temperature, from_logits=True
    )
    return crossentropy * ops.square(ops.cast(temperature, "float32"))


@register("keras_efficient.losses.KnowledgeDistillation")
class KnowledgeDistillation(ScheduledTemperature, keras.losses.Loss):
    """Knowledge distillation: crossentropy between softened teacher and student.

    Both sets of logits are divided by a temperature `T` before the softmax, so
    the student sees the teacher's "dark knowledge" (how much it prefers one
    wrong class over another); the loss is multiplied by `T^2` so its gradient
    keeps the scale of a hard-label loss. It is the crossentropy of the paper,
    not the KL divergence: the two differ by the teacher's entropy, a constant
    with the same gradients.

    Args:
        temperature: float `T > 0`. Defaults to 4.0. Or a schedule
            (`ke.schedules.Annealing`) evaluated at `loss.step` (set it to a step
            counter; `ke.models.Distiller` anneals its own temperature).
        reduction: Keras loss reduction. Defaults to `"sum_over_batch_size"`.
        name: name of the loss.
        dtype: dtype of the loss computation (float32 by default).

    Call arguments:
        y_true: the teacher's logits, `(batch_size, num_classes)`.
        y_pred: the student's logits, `(batch_size, num_classes)`.
        sample_weight: optional per-example weights.

    Returns:
        The reduced loss (a scalar with the default reduction).

    Example:

    >>> import numpy as np
    >>> loss = KnowledgeDistillation(temperature=2.0)
    >>> teacher = np.array([[2.0, 0.0, -1.0]], "float32")
    >>> round(float(loss(teacher, teacher)), 4)  # T^2 * entropy of softmax(t / T)
    3.6238

    Reference:
        Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network",
        NIPS Deep Learning Workshop 2014. https://arxiv.org/abs/1503.02531
    """

    def __init__(self, temperature=4.0, reduction="sum_over_batch_size",
                 name="knowledge_distillation", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.temperature = validate_scheduled("temperature", temperature)

    def call(self, y_true, y_pred):
        return knowledge_distillation(y_true, y_pred, self.current_temperature())

    def get_config(self):
        return {**super().get_config(), "temperature": serialize_scheduled(self.temperature)}
