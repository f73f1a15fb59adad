"""The subclass head of subclass distillation: `num_subclasses` logits, grouped by class."""

import keras
from keras import ops

from keras_efficient.utils import register
from keras_efficient.utils import validate_size


def validate_subclasses(num_classes, num_subclasses):
    """Check `num_classes >= 1` and `num_subclasses` a multiple of it; return both."""
    validate_size("num_classes", num_classes)
    validate_size("num_subclasses", num_subclasses, low=num_classes)
    if num_subclasses % num_classes:
        raise ValueError(
            "Invalid value received for argument `num_subclasses`. Expected the total "
            f"number of subclasses, a multiple of num_classes={num_classes} (num_classes "
            f"x subclasses per class). Received: num_subclasses={num_subclasses}"
        )
    return num_classes, num_subclasses


def class_logits_from_subclass_logits(subclass_logits, num_classes):
    """Class logits: logsumexp over each class's subclass logits.

    Subclasses are contiguous: class `c` owns subclasses `c * s ... c * s + s - 1`
    with `s = num_subclasses // num_classes`. `softmax` of the result equals the
    sum of `softmax(subclass_logits)` over each class's subclasses, computed in
    log space for stability. float32 whatever the input dtype.

    Args:
        subclass_logits: `(batch_size, num_subclasses)`.
        num_classes: number of classes `c`; must divide `num_subclasses`.

    Returns:
        float32 tensor `(batch_size, num_classes)`.
    """
    num_subclasses = subclass_logits.shape[-1]
    validate_subclasses(num_classes, num_subclasses)
    grouped = ops.reshape(
        ops.cast(subclass_logits, "float32"),
        (-1, num_classes, num_subclasses // num_classes),
    )
    return ops.logsumexp(grouped, axis=-1)


@register("keras_efficient.layers.SubclassHead")
class SubclassHead(keras.layers.Layer):
    """A dense head with `num_subclasses` logits, `num_subclasses // num_classes` per class.

    The teacher of subclass distillation classifies into subclasses it invents:
    its class logit is the logsumexp of its class's subclass logits (the class
    probability is the sum of the subclass probabilities), so the ordinary
    crossentropy on classes trains it while the subclass split is left free
    (and spread by `SubclassAuxiliaryLoss`).

    Args:
        num_classes: number of classes `c >= 1`.
        num_subclasses: total number of subclasses `c * s`, a multiple of
            `num_classes`.
        kernel_initializer, bias_initializer: of the dense projection.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: features, `(batch_size, dim)`.

    Returns:
        Subclass logits `(batch_size, num_subclasses)`; `class_logits(...)` maps
        them to `(batch_size, num_classes)`.

    Example:

    >>> import numpy as np
    >>> head = SubclassHead(num_classes=2, num_subclasses=10)
    >>> subclass_logits = head(np.ones((4, 16), "float32"))
    >>> tuple(subclass_logits.shape), tuple(head.class_logits(subclass_logits).shape)
    ((4, 10), (4, 2))

    Reference:
        Muller, Kornblith, Hinton, "Subclass Distillation", 2020, section 3.
        https://arxiv.org/abs/2002.03936
    """

    def __init__(self, num_classes, num_subclasses, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.num_subclasses = validate_subclasses(num_classes, num_subclasses)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.dense = keras.layers.Dense(
            num_subclasses,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
            name="subclass_logits",
        )

    @property
    def subclasses_per_class(self):
        return self.num_subclasses // self.num_classes

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, inputs):
        return self.dense(inputs)

    def class_logits(self, subclass_logits):
        """Class logits (float32) of this head's subclass logits."""
        return class_logits_from_subclass_logits(subclass_logits, self.num_classes)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.num_subclasses)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "num_subclasses": self.num_subclasses,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }
