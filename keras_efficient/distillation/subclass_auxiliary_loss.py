"""The auxiliary loss that makes a subclass teacher use all of its subclasses."""

import keras
from keras import ops

from keras_efficient import backend
from keras_efficient.schedules.step_counter import ScheduledTemperature
from keras_efficient.schedules.step_counter import serialize_scheduled
from keras_efficient.schedules.step_counter import validate_scheduled
from keras_efficient.utils import register

# The variance epsilon of the paper's official implementation.
_VARIANCE_EPSILON = 1e-9


def subclass_auxiliary_loss(subclass_logits, temperature=1.0):
    """Per-example auxiliary loss of subclass distillation.

    Each example's subclass logits are normalized to zero mean and unit
    (population) variance across the `S` subclasses and scaled by
    `1 / sqrt(T * S)`, giving `z_i` with `z_i . z_i = 1 / T`. Then
    `l_i = logsumexp_j(z_i . z_j) - 1 / T - log n` over the `n` examples of the
    batch, the contrastive loss that treats every other example as a negative:
    its mean over the batch is small when different examples use different
    subclasses. Inside a `tf.distribute` replica context, `j` runs over the
    examples of all replicas (`n` is the global batch); the returned values are
    this replica's examples. Computed in float32 whatever the input dtype.

    Args:
        subclass_logits: `(batch_size, num_subclasses)`.
        temperature: the temperature `T > 0` (float or scalar tensor).

    Returns:
        float32 tensor of shape `(batch_size,)`; its mean is `L_aux`.
    """
    logits = ops.cast(subclass_logits, "float32")
    num_subclasses = logits.shape[-1]
    mean = ops.mean(logits, axis=-1, keepdims=True)
    variance = ops.var(logits, axis=-1, keepdims=True)
    normalized = (logits - mean) * ops.rsqrt(variance + _VARIANCE_EPSILON)
    normalized = normalized / ops.sqrt(temperature * num_subclasses)
    # The gathered rows get the gradient they cause here (`all_gather`'s backward pass).
    everyone = backend.all_gather(normalized)
    similarities = ops.matmul(normalized, ops.transpose(everyone))
    batch_size = ops.cast(ops.shape(everyone)[0], "float32")
    return ops.logsumexp(similarities, axis=-1) - 1.0 / temperature - ops.log(batch_size)


@register("keras_efficient.losses.SubclassAuxiliaryLoss")
class SubclassAuxiliaryLoss(ScheduledTemperature, keras.losses.Loss):
    """Auxiliary loss of a subclass teacher: spread the examples over the subclasses.

    Crossentropy on the classes alone says nothing about how a class's
    probability splits among its subclasses, so a teacher could put everything
    in one subclass. This loss normalizes each example's subclass logits (zero
    mean, unit variance, scaled by `1 / sqrt(T * S)`) and penalizes their
    similarity to the other examples' in the batch, the negative-sampling loss
    of the paper (Eq. 3): `L_aux = mean_i logsumexp_j(z_i . z_j) - 1 / T - log n`.
    The `1 / sqrt(S)` normalization is part of it (some ports drop it, and then
    `T` means something else). Under a `tf.distribute` strategy the other
    replicas' examples are gathered, so the loss is the one of the global batch,
    as in the paper's official implementation.

    Args:
        temperature: float `T > 0`. Defaults to 1.0 (the paper's MNIST value).
            Or a schedule (`ke.schedules.Annealing`) evaluated at `loss.step`,
            which `ke.models.SubclassTeacher` sets to its step counter.
        reduction: Keras loss reduction of the per-example values. Defaults to
            `"sum_over_batch_size"` (their mean, which is `L_aux`).
        name: name of the loss.
        dtype: dtype of the loss computation (float32 by default).

    Call arguments:
        y_true: ignored (pass `None`); the loss is unsupervised.
        y_pred: subclass logits, `(batch_size, num_subclasses)`.

    Returns:
        `L_aux` (a scalar with the default reduction).

    Example:

    >>> import numpy as np
    >>> loss = SubclassAuxiliaryLoss(temperature=1.0)
    >>> same_subclass = np.tile([[9.0, 0.0, 0.0, 0.0]], (4, 1)).astype("float32")
    >>> round(abs(float(loss(None, same_subclass))), 4)  # all alike: 1/T + log n - 1/T - log n
    0.0
    >>> own_subclass = 9.0 * np.eye(4, dtype="float32")  # each example its own subclass
    >>> round(float(loss(None, own_subclass)), 4)
    -0.8036

    Reference:
        Muller, Kornblith, Hinton, "Subclass Distillation", 2020, section 3.
        https://arxiv.org/abs/2002.03936
    """

    def __init__(self, temperature=1.0, reduction="sum_over_batch_size",
                 name="subclass_auxiliary_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.temperature = validate_scheduled("temperature", temperature)

    def __call__(self, y_true, y_pred, sample_weight=None):
        # Unsupervised: `y_true` may be None, which Keras's `Loss` cannot convert.
        return super().__call__(y_pred if y_true is None else y_true, y_pred, sample_weight)

    def call(self, y_true, y_pred):
        del y_true  # unsupervised
        return subclass_auxiliary_loss(y_pred, self.current_temperature())

    def get_config(self):
        return {**super().get_config(), "temperature": serialize_scheduled(self.temperature)}
