"""The teacher of subclass distillation: a classifier that invents subclasses."""

import keras

from keras_efficient.distillation import base
from keras_efficient.distillation.subclass_auxiliary_loss import SubclassAuxiliaryLoss
from keras_efficient.distillation.subclass_head import SubclassHead
from keras_efficient.schedules import step_counter
from keras_efficient.utils import from_config_with_layers
from keras_efficient.utils import register
from keras_efficient.utils import validate_number


@register("keras_efficient.models.SubclassTeacher")
class SubclassTeacher(base.SubclassOutputs, keras.Model):
    """A backbone with a `SubclassHead`, trained on `CE(classes) + beta * L_aux`.

    The head gives `num_subclasses` logits, `num_subclasses // num_classes` per
    class; the class logits are their per-class logsumexp. `fit(x, y)` with
    integer class labels minimizes the crossentropy on the classes plus `beta`
    times `SubclassAuxiliaryLoss` on the subclass logits, which makes the
    teacher use all of its subclasses; `cross_entropy` and `auxiliary_loss` are
    reported next to `loss`. `compile` takes no `loss` (the crossentropy is
    built in); the compiled metrics and `predict` see the class probabilities,
    while calling the model returns the subclass logits that
    `SubclassDistiller` distils.

    Args:
        backbone: a `keras.Model` (or layer) mapping inputs to features.
        num_classes: number of classes `c`.
        num_subclasses: total number of subclasses, a multiple of `num_classes`.
        beta: weight of the auxiliary loss, >= 0. Defaults to 1.0.
        temperature: temperature `T > 0` of the auxiliary loss, or a schedule of it
            per optimizer step (`ke.schedules.Annealing`), counted by the model's
            `steps_trained`. Defaults to 1.0.
        **kwargs: base `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: the backbone's inputs.
        training: passed to the backbone.

    Returns:
        Subclass logits `(batch_size, num_subclasses)`; `predict` returns class
        probabilities `(batch_size, num_classes)`.

    Example:

    >>> import numpy as np
    >>> x, y = np.random.rand(32, 8).astype("float32"), np.arange(32) % 2
    >>> backbone = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, "relu")])
    >>> teacher = SubclassTeacher(backbone, num_classes=2, num_subclasses=10)
    >>> teacher.compile(optimizer="adam", metrics=["accuracy"])
    >>> history = teacher.fit(x, y, epochs=1, verbose=0)
    >>> teacher.predict(x, verbose=0).shape, tuple(teacher(x).shape)
    ((32, 2), (32, 10))

    Reference:
        Muller, Kornblith, Hinton, "Subclass Distillation", 2020.
        https://arxiv.org/abs/2002.03936
    """

    def __init__(self, backbone, num_classes, num_subclasses, beta=1.0, temperature=1.0,
                 **kwargs):
        trainable = kwargs.pop("trainable", True)
        super().__init__(**kwargs)
        if not isinstance(backbone, keras.layers.Layer):
            raise TypeError(
                "Invalid type received for argument `backbone`. Expected a `keras.Model` "
                f"or layer. Received: backbone={backbone!r} of type {type(backbone).__name__}"
            )
        self.backbone = backbone
        self.head = SubclassHead(num_classes, num_subclasses, name="subclass_head")
        self.num_classes, self.num_subclasses = num_classes, num_subclasses
        self.beta = validate_number("beta", beta, 0)
        self.auxiliary = SubclassAuxiliaryLoss(temperature=temperature)
        self.temperature = self.auxiliary.temperature
        self.steps_trained = step_counter.link_step_counter(self, self.auxiliary)
        self.cross_entropy_tracker = keras.metrics.Mean(name="cross_entropy")
        self.auxiliary_loss_tracker = keras.metrics.Mean(name="auxiliary_loss")
        # Set once the sublayers exist, so a frozen teacher's config freezes them too.
        self.trainable = trainable

    def build(self, input_shape):
        if not self.backbone.built:
            self.backbone.build(input_shape)
        self.head.build(self.backbone.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        return self.head(self.backbone(inputs, training=training))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        cross_entropy = self.class_crossentropy(y, y_pred, sample_weight)
        auxiliary = self.auxiliary(None, y_pred)
        step_counter.count_step(self.steps_trained, training)
        base.track(self.cross_entropy_tracker, cross_entropy)
        base.track(self.auxiliary_loss_tracker, auxiliary)
        return cross_entropy + self.beta * auxiliary + base.regularization_loss(self)

    def get_config(self):
        return {
            **super().get_config(),
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "num_classes": self.num_classes,
            "num_subclasses": self.num_subclasses,
            "beta": self.beta,
            "temperature": step_counter.serialize_scheduled(self.temperature),
        }

    @classmethod
    def from_config(cls, config):
        return from_config_with_layers(cls, config, "backbone")
