"""Subclass distillation: a student learns the teacher's invented subclasses."""

from keras_efficient.distillation import base
from keras_efficient.distillation.distiller import Distiller
from keras_efficient.distillation.subclass_teacher import SubclassTeacher
from keras_efficient.schedules import step_counter
from keras_efficient.utils import register
from keras_efficient.utils import validate_number


@register("keras_efficient.models.SubclassDistiller")
class SubclassDistiller(base.SubclassOutputs, Distiller):
    """Distil a `SubclassTeacher`'s subclass logits into a student with as many.

    With few classes the teacher's soft class labels carry little information;
    its subclass logits carry more. `fit(x, y)` with integer class labels trains
    the student on `alpha * T^2 * CE(softmax(t / T), softmax(s / T))` over the
    teacher's and student's subclass logits plus `(1 - alpha) * CE(y, student's
    class logits)`, where the student's class logits are the per-class
    logsumexp of its subclass logits. The teacher is frozen and called with
    `training=False`. `compile` takes no `loss`; the compiled metrics and
    `predict` see the student's class probabilities. `.student` is the model to
    export (a `SubclassTeacher` student's `predict` gives class probabilities).

    Args:
        teacher: a trained `SubclassTeacher`.
        student: a `keras.Model` returning `teacher.num_subclasses` subclass
            logits, e.g. a smaller `SubclassTeacher` (only its network is used)
            or a model ending in a `SubclassHead`.
        alpha: weight of the distillation term, in [0, 1]. Defaults to 0.5.
        temperature: float `T > 0` or a
            `keras.optimizers.schedules.LearningRateSchedule` of the optimizer
            step (annealing). Defaults to 4.0.
        **kwargs: base `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: the student's inputs.
        training: passed to the student.

    Returns:
        The student's subclass logits; `predict` returns its class probabilities.

    Example:

    >>> import numpy as np
    >>> x, y = np.random.rand(32, 8).astype("float32"), np.arange(32) % 2
    >>> def network(width):
    ...     return keras.Sequential([keras.Input((8,)), keras.layers.Dense(width, "relu")])
    >>> teacher = SubclassTeacher(network(32), num_classes=2, num_subclasses=10)
    >>> student = SubclassTeacher(network(4), num_classes=2, num_subclasses=10)
    >>> distiller = SubclassDistiller(teacher, student, alpha=0.5, temperature=4.0)
    >>> distiller.compile(optimizer="adam", metrics=["accuracy"])
    >>> history = distiller.fit(x, y, epochs=1, verbose=0)
    >>> distiller.predict(x, verbose=0).shape
    (32, 2)

    Reference:
        Muller, Kornblith, Hinton, "Subclass Distillation", 2020, section 3.
        https://arxiv.org/abs/2002.03936
    """

    _student_loss_compiled = False

    def __init__(self, teacher, student, alpha=0.5, temperature=4.0, **kwargs):
        if not isinstance(teacher, SubclassTeacher):
            raise TypeError(
                "Invalid type received for argument `teacher`. Expected a "
                f"`SubclassTeacher`. Received: teacher of type {type(teacher).__name__}"
            )
        # Checked here: `Distiller` reads None as "keras-io's compile form decides".
        validate_number("alpha", alpha, 0, 1)
        step_counter.validate_scheduled("temperature", temperature)
        super().__init__(teacher, student, temperature=temperature, alpha=alpha, **kwargs)

    @property
    def num_classes(self):
        return self.teacher.num_classes

    def _check_logits(self, teacher, student):
        subclasses = getattr(student, "num_subclasses", None) or base.output_size(student)
        if subclasses is not None:
            self._check_subclasses(subclasses)

    def _check_subclasses(self, student_subclasses):
        if student_subclasses != self.teacher.num_subclasses:
            raise ValueError(
                "Invalid value received for argument `student`. Expected "
                f"{self.teacher.num_subclasses} subclass logits, the teacher's "
                f"num_subclasses. Received: a student with {student_subclasses}."
            )

    def student_loss(self, y, y_pred, sample_weight=None):
        self._check_subclasses(y_pred.shape[-1])
        return self.class_crossentropy(y, y_pred, sample_weight)
