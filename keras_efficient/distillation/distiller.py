"""Knowledge distillation as a `keras.Model`: `fit` trains a student on a frozen teacher."""

import keras

from keras_efficient.distillation import base
from keras_efficient.distillation.knowledge_distillation import KnowledgeDistillation
from keras_efficient.schedules import step_counter
from keras_efficient.utils import register
from keras_efficient.utils import validate_number


@register
class Distiller(base.RestoresCompile, keras.Model):
    """Train a student on `alpha * KD + (1 - alpha) * CE` from a frozen teacher.

    `fit(x, y)` trains the student on the soft-target loss of
    `KnowledgeDistillation` against the teacher's logits (teacher called with
    `training=False`, frozen, under `stop_gradient`) plus the loss given to
    `compile` on the labels; the student's regularization losses are added
    unweighted. Calling the distiller calls the student, so the compiled
    metrics are the student's, and `.student` is the model to export.
    `distillation_loss` and `student_loss` are reported next to `loss`.

    Not `keras.distillation.Distiller`: in Keras 3.15 that one drops sample
    weights and the student's regularization losses, reports its sub-losses
    divided by the replica count under a strategy, and has a fixed temperature.

    Args:
        teacher: a trained `keras.Model` returning logits.
        student: a `keras.Model` returning logits of the same shape.
        temperature: float `T > 0`, or a
            `keras.optimizers.schedules.LearningRateSchedule` giving `T` at each
            optimizer step (temperature annealing, e.g.
            `ke.schedules.Annealing(8.0, 2.0, steps)`), counted by the model's
            `steps_trained` weight (saved with it). Defaults to 4.0.
        alpha: weight of the distillation term, in [0, 1]. Defaults to 0.9.
        **kwargs: base `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: the student's inputs.
        training: passed to the student.

    Returns:
        The student's logits.

    Example:

    >>> import numpy as np
    >>> x, y = np.random.rand(32, 8).astype("float32"), np.arange(32) % 3
    >>> teacher = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
    >>> student = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
    >>> distiller = Distiller(teacher, student, temperature=4.0, alpha=0.9)
    >>> distiller.compile(optimizer="adam", metrics=["accuracy"],
    ...                   loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> history = distiller.fit(x, y, epochs=1, verbose=0)
    >>> sorted(history.history)
    ['accuracy', 'distillation_loss', 'loss', 'student_loss']

    Reference:
        Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network",
        2015. https://arxiv.org/abs/1503.02531
    """

    def __init__(self, teacher, student, temperature=4.0, alpha=0.9, **kwargs):
        super().__init__(**kwargs)
        self.teacher = base.validate_model("teacher", teacher)
        self.student = base.validate_model("student", student)
        self.temperature = step_counter.validate_scheduled("temperature", temperature)
        self.steps_trained = (step_counter.add_step_counter(self)
                              if step_counter.is_scheduled(self.temperature) else None)
        self.alpha = validate_number("alpha", alpha, 0, 1)
        self._check_logits(teacher, student)
        self.teacher.trainable = False
        # Applied to logits already divided by T (T may be a tensor when annealed).
        self._soft_targets = KnowledgeDistillation(temperature=1.0)
        self.distillation_loss_tracker = keras.metrics.Mean(name="distillation_loss")
        self.student_loss_tracker = keras.metrics.Mean(name="student_loss")

    def _check_logits(self, teacher, student):
        """Teacher and student must give logits over the same classes."""
        teacher_size, student_size = base.output_size(teacher), base.output_size(student)
        # Subclassed models have no symbolic outputs: the loss's shapes check them.
        if None not in (teacher_size, student_size) and teacher_size != student_size:
            raise ValueError(
                f"Invalid value received for argument `student`. Expected logits of the "
                f"teacher's size {teacher_size}. Received: a student with {student_size}."
            )

    def compile(self, optimizer="rmsprop", loss=None, **kwargs):
        if loss is None and self.alpha < 1:
            raise ValueError(
                "Invalid value received for argument `loss`. Expected the student's loss "
                f"on the labels (for the (1 - alpha) term, alpha={self.alpha}). "
                "Received: loss=None"
            )
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def build(self, input_shape):
        for model in (self.teacher, self.student):
            if not model.built:
                model.build(input_shape)

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def teacher_logits(self, x):
        """The frozen teacher's logits, inference mode."""
        return self.teacher(x, training=False)

    def student_loss(self, y, y_pred, sample_weight=None):
        """The supervised term: the compiled loss on the labels."""
        return self._compile_loss(y, y_pred, sample_weight)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        temperature = step_counter.value_at(self.temperature, self.steps_trained)
        step_counter.count_step(self.steps_trained, training)
        # Softened in float32: bfloat16 logits divided by T lose the small differences.
        teacher_logits, student_logits = (
            keras.ops.cast(logits, "float32") for logits in (self.teacher_logits(x), y_pred))
        distillation = self._soft_targets(
            teacher_logits / temperature, student_logits / temperature, sample_weight
        ) * temperature**2
        if self.alpha < 1:
            student = self.student_loss(y, y_pred, sample_weight)
        else:  # pure distillation: labels may be absent (an unlabeled transfer set)
            student = keras.ops.zeros(())
        base.track(self.distillation_loss_tracker, distillation)
        base.track(self.student_loss_tracker, student)
        return (self.alpha * distillation + (1 - self.alpha) * student
                + base.regularization_loss(self))

    def get_config(self):
        return {
            **super().get_config(),
            "teacher": keras.saving.serialize_keras_object(self.teacher),
            "student": keras.saving.serialize_keras_object(self.student),
            "temperature": step_counter.serialize_scheduled(self.temperature),
            "alpha": self.alpha,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in ("teacher", "student"):
            config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)
