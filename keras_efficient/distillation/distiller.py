"""Knowledge distillation as a `keras.Model`: `fit` trains a student on a frozen teacher."""

import keras

from keras_efficient.backend import keras_compat
from keras_efficient.distillation import base
from keras_efficient.distillation.knowledge_distillation import KnowledgeDistillation
from keras_efficient.schedules import step_counter
from keras_efficient.utils import RestoresCompile
from keras_efficient.utils import from_config_with_layers
from keras_efficient.utils import register
from keras_efficient.utils import validate_number

_DEFAULT_TEMPERATURE = 4.0
_DEFAULT_ALPHA = 0.9


@register("keras_efficient.models.Distiller")
class Distiller(RestoresCompile, keras.Model):
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

    keras-io's "Knowledge Distillation" example also works unchanged:
    `Distiller(student=student, teacher=teacher)` then
    `compile(optimizer, metrics, student_loss_fn=..., distillation_loss_fn=...,
    alpha=0.1, temperature=10)` trains on keras-io's
    `alpha * student_loss + (1 - alpha) * T**2 * distillation_loss_fn(
    softmax(teacher / T), softmax(student / T))`: there, as in keras-io,
    `alpha` weights the *student* loss. The two forms cannot be mixed (an
    `alpha` or `temperature` in both places, or `loss` with `student_loss_fn`,
    is an error saying what to write). Differs from keras-io on purpose: the
    positional order is `(teacher, student)` (keras-io's example passes both
    by keyword), and sample weights reach both losses. Keras's own
    `keras.distillation.Distiller(teacher, student, distillation_losses,
    distillation_loss_weights, student_loss_weight)` arguments get an error
    saying what to write here.

    Args:
        teacher: a trained `keras.Model` returning logits.
        student: a `keras.Model` returning logits of the same shape.
        temperature: float `T > 0`, or a
            `keras.optimizers.schedules.LearningRateSchedule` giving `T` at each
            optimizer step (temperature annealing, e.g.
            `ke.schedules.Annealing(8.0, 2.0, steps)`), counted by the model's
            `steps_trained` weight (saved with it). Defaults to 4.0 (`None`);
            leave it unset to give
            keras-io's `temperature` to `compile` instead.
        alpha: weight of the *distillation* term, in [0, 1]. Defaults to 0.9
            (`None`); leave it unset to give keras-io's `alpha` (the weight of
            the student term) to `compile` instead.
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

    # False where `student_loss` is built in (subclass distillation): `compile`
    # then takes no loss and not keras-io's form.
    _student_loss_compiled = True

    def __init__(self, teacher, student, temperature=None, alpha=None, **kwargs):
        _reject_keras_distiller_arguments(temperature, kwargs)
        super().__init__(**kwargs)
        self.teacher = base.validate_model("teacher", teacher)
        self.student = base.validate_model("student", student)
        # As given, for the config and for telling the two compile forms apart.
        self._constructor_weights = {"temperature": temperature, "alpha": alpha}
        self._use_constructor_weights()
        # keras-io's form (set by `compile`): its student and distillation losses.
        self._keras_io_losses = None
        self.steps_trained = (step_counter.add_step_counter(self)
                              if step_counter.is_scheduled(self.temperature) else None)
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

    def compile(self, optimizer="rmsprop", loss=None, *, student_loss_fn=None,
                distillation_loss_fn=None, alpha=None, temperature=None, **kwargs):
        """Keras's `compile`, or keras-io's form with the four keyword arguments.

        Args:
            optimizer, loss, **kwargs: as `keras.Model.compile`; `loss` is the
                student's loss on the labels.
            student_loss_fn: keras-io's form: the student's loss on the labels
                (instead of `loss`).
            distillation_loss_fn: keras-io's form: a loss on the softened
                probabilities `(softmax(teacher / T), softmax(student / T))`,
                e.g. `keras.losses.KLDivergence()`.
            alpha: keras-io's form: weight of the *student* loss, in [0, 1].
                Defaults to 0.1, as keras-io.
            temperature: keras-io's form: `T > 0`. Defaults to 3, as keras-io.
        """
        keras_io = {name: value for name, value in (
            ("student_loss_fn", student_loss_fn), ("distillation_loss_fn", distillation_loss_fn),
            ("alpha", alpha), ("temperature", temperature)) if value is not None}
        self._keras_io_losses = None
        if keras_io and not self._student_loss_compiled:
            raise TypeError(f"{type(self).__name__}.compile() got an unexpected keyword "
                            f"argument '{next(iter(keras_io))}'")
        if keras_io:
            self._use_keras_io_form(loss, keras_io)
            super().compile(optimizer=optimizer, **kwargs)
            return
        self._use_constructor_weights()
        if loss is None and self.alpha < 1 and self._student_loss_compiled:
            raise ValueError(
                "Invalid value received for argument `loss`. Expected the student's loss "
                f"on the labels (for the (1 - alpha) term, alpha={self.alpha}). "
                "Received: loss=None"
            )
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def _use_constructor_weights(self):
        temperature, alpha = (self._constructor_weights[name] for name in ("temperature", "alpha"))
        self.temperature = step_counter.validate_scheduled(
            "temperature", _DEFAULT_TEMPERATURE if temperature is None else temperature)
        self.alpha = validate_number("alpha", _DEFAULT_ALPHA if alpha is None else alpha, 0, 1)

    def _use_keras_io_form(self, loss, keras_io):
        """Checks keras-io's `compile` arguments and sets its losses and weights."""
        ours = "Distiller(teacher, student, temperature=T, alpha=a).compile(optimizer, loss=...)"
        if loss is not None:
            raise ValueError(
                "Invalid value received for argument `loss`: `student_loss_fn` (keras-io's "
                "form) already gives the student's loss. Pass one of them: "
                f"compile(optimizer, student_loss_fn=..., distillation_loss_fn=...) or {ours}. "
                f"Received: loss={loss!r}, {', '.join(sorted(keras_io))}")
        missing = [name for name in ("student_loss_fn", "distillation_loss_fn")
                   if name not in keras_io]
        if missing:
            raise ValueError(
                f"Invalid value received for argument `{missing[0]}`. keras-io's "
                "`compile(..., student_loss_fn, distillation_loss_fn, alpha, temperature)` "
                "needs both loss functions, and there `alpha` weights the student loss. "
                f"Ours is {ours}, where `alpha` weights the distillation term. "
                f"Received: {missing[0]}=None")
        given_twice = [name for name in ("alpha", "temperature")
                       if self._constructor_weights[name] is not None]
        if given_twice:
            raise ValueError(
                f"Invalid value received for argument `{given_twice[0]}`: keras-io's form "
                "takes `alpha` (the weight of the student loss) and `temperature` in "
                "`compile`, so leave them out of the constructor: "
                "Distiller(teacher=..., student=...).compile(optimizer, metrics, "
                "student_loss_fn, distillation_loss_fn, alpha, temperature). Received: "
                f"{given_twice[0]}={self._constructor_weights[given_twice[0]]!r} in the "
                "constructor and keras-io's loss functions in `compile`")
        keras_io_alpha = validate_number("alpha", keras_io.get("alpha", 0.1), 0, 1)
        self.temperature = step_counter.validate_scheduled(
            "temperature", keras_io.get("temperature", 3))
        self.alpha = 1 - keras_io_alpha  # ours weights the distillation term
        # Loss objects take sample weights and scale for replicas as Keras does;
        # a bare function's third argument would be something else (`from_logits`).
        self._keras_io_losses = tuple(
            _as_loss(keras_io[name]) for name in ("student_loss_fn", "distillation_loss_fn"))
        self._keras_io_compile_config = {
            "student_loss_fn": keras_io["student_loss_fn"],
            "distillation_loss_fn": keras_io["distillation_loss_fn"],
            "alpha": keras_io_alpha,
            "temperature": step_counter.serialize_scheduled(self.temperature),
        }

    def get_compile_config(self):
        config = super().get_compile_config()
        if config is not None and self._keras_io_losses is not None:
            config = {**config, **{
                name: keras.saving.serialize_keras_object(value)
                for name, value in self._keras_io_compile_config.items()}}
        return config

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
        """The supervised term: the compiled loss (or `student_loss_fn`) on the labels."""
        if self._keras_io_losses is not None:
            return self._keras_io_losses[0](y, y_pred, sample_weight)
        return keras_compat.compiled_loss(self)(y, y_pred, sample_weight)

    def distillation_loss(self, teacher_logits, student_logits, temperature, sample_weight=None):
        """The soft-target term, `T^2`-scaled: ours, or keras-io's on probabilities."""
        if self._keras_io_losses is not None:
            return self._keras_io_losses[1](
                keras.ops.softmax(teacher_logits / temperature, axis=-1),
                keras.ops.softmax(student_logits / temperature, axis=-1),
                sample_weight) * temperature**2
        return self._soft_targets(
            teacher_logits / temperature, student_logits / temperature, sample_weight
        ) * temperature**2

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        temperature = step_counter.value_at(self.temperature, self.steps_trained)
        step_counter.count_step(self.steps_trained, training)
        # Softened in float32: bfloat16 logits divided by T lose the small differences.
        teacher_logits, student_logits = (
            keras.ops.cast(logits, "float32") for logits in (self.teacher_logits(x), y_pred))
        distillation = self.distillation_loss(teacher_logits, student_logits, temperature,
                                              sample_weight)
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
            "temperature": step_counter.serialize_scheduled(
                self._constructor_weights["temperature"]),
            "alpha": self._constructor_weights["alpha"],
        }

    @classmethod
    def from_config(cls, config):
        return from_config_with_layers(cls, config, "teacher", "student")


def _as_loss(loss):
    """A `keras.losses.Loss` for a loss object, a bare loss function or its name."""
    loss = keras.losses.get(loss)
    return loss if isinstance(loss, keras.losses.Loss) else keras.losses.LossFunctionWrapper(loss)


def _reject_keras_distiller_arguments(temperature, kwargs):
    """`keras.distillation.Distiller`'s arguments, which mean other things here."""
    given = [name for name in ("distillation_losses", "distillation_loss_weights",
                               "student_loss_weight") if name in kwargs]
    if isinstance(temperature, (keras.distillation.DistillationLoss, list, tuple)):
        given.insert(0, "temperature")
    if given:
        raise TypeError(
            f"Invalid argument `{given[0]}`: this is not `keras.distillation.Distiller`. "
            "Write `Distiller(teacher, student, temperature=T, alpha=a)`, where `T` is "
            "LogitsDistillation's temperature and `a = 1 - student_loss_weight` weights "
            f"the distillation term (logits only). Received: {', '.join(given)}")
