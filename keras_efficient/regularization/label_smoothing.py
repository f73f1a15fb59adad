"""Sparse categorical crossentropy with label smoothing.

Keras 3.15's `SparseCategoricalCrossentropy` has no `label_smoothing`; its
`CategoricalCrossentropy` has, but needs one-hot labels. This loss takes integer
labels and never builds the smoothed [N, K] target: with the smoothed target
q = (1 - e) onehot(y) + e / K,

    H(q, p) = -(1 - e) log p_y - e * mean_k log p_k,

the "two crossentropies" form of Szegedy et al. (2016), so only the log-probabilities
and one gathered column per example are needed.

Reference:
    Szegedy et al., "Rethinking the Inception Architecture for Computer Vision",
    CVPR 2016, section 7. https://arxiv.org/abs/1512.00567
    Muller et al., "When Does Label Smoothing Help?", NeurIPS 2019.
    https://arxiv.org/abs/1906.02629
"""

import keras
from keras import ops

from keras_efficient.backend import keras_compat
from keras_efficient.utils import register
from keras_efficient.utils import validate_number


def sparse_categorical_crossentropy(
    y_true, y_pred, from_logits=False, label_smoothing=0.0, ignore_class=None, axis=-1
):
    """Crossentropy between integer labels smoothed to (1 - e) onehot + e / K and
    predictions, without materializing the one-hot target.

    Args:
        y_true: integer class ids, shape `y_pred.shape` without `axis` (a trailing
            dimension of 1 is squeezed, as in Keras).
        y_pred: probabilities or logits, classes along `axis`.
        from_logits: whether `y_pred` holds logits.
        label_smoothing: e in [0, 1].
        ignore_class: optional class id whose entries get zero loss and are left
            out of the mean (Keras semantics: the result carries a mask).
        axis: the class axis of `y_pred`.

    Returns:
        The per-example loss, float32 (float64 inputs stay float64). A label
        outside [0, K) other than `ignore_class` gets a NaN loss, on every
        backend and under XLA, so the mistake shows in the reported loss
        (`keras.callbacks.TerminateOnNaN` stops there). An error cannot be raised
        inside a compiled graph; Keras's own sparse crossentropy raises on
        TensorFlow CPU, returns NaN on GPU and a zero loss on JAX.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[axis] == 1:
        y_true = ops.squeeze(y_true, axis=axis)
    if keras.backend.standardize_dtype(y_pred.dtype) in ("float16", "bfloat16"):
        # Log-probabilities of low-precision predictions lose the small classes.
        y_pred = ops.cast(y_pred, "float32")
    y_pred = ops.moveaxis(y_pred, axis, -1)
    labels = ops.cast(y_true, "int32")
    # A label outside [0, K) gets a NaN loss (no error can be raised inside an XLA
    # or JAX graph); a gather with it would fail on CPU and return garbage on GPU.
    in_range = ops.logical_and(ops.greater_equal(labels, 0),
                               ops.less(labels, ops.shape(y_pred)[-1]))
    if ignore_class is not None:
        valid = ops.not_equal(labels, ignore_class)
        in_range = ops.logical_or(in_range, ops.logical_not(valid))
    # Any in-range id keeps the gather valid; the entry is replaced below.
    labels = ops.where(in_range, labels, 0)
    if ignore_class is not None:
        labels = ops.where(valid, labels, 0)

    if from_logits:
        log_probs = ops.log_softmax(y_pred, axis=-1)
    else:
        # Same normalization and clipping as Keras's CategoricalCrossentropy.
        probs = y_pred / ops.sum(y_pred, axis=-1, keepdims=True)
        epsilon = keras.config.epsilon()
        log_probs = ops.log(ops.clip(probs, epsilon, 1.0 - epsilon))

    true_log_prob = ops.take_along_axis(log_probs, ops.expand_dims(labels, -1), axis=-1)
    loss = -(1.0 - label_smoothing) * ops.squeeze(true_log_prob, -1)
    if label_smoothing:
        loss = loss - label_smoothing * ops.mean(log_probs, axis=-1)

    loss = ops.where(in_range, loss, float("nan"))
    if ignore_class is not None:
        loss = ops.where(valid, loss, 0.0)
        keras_compat.set_keras_mask(loss, mask=valid)
    return loss


@register("keras_efficient.losses.SparseCategoricalCrossentropy")
class SparseCategoricalCrossentropy(keras.losses.Loss):
    """Sparse categorical crossentropy with label smoothing.

    Keras's `SparseCategoricalCrossentropy` plus `label_smoothing`, with the
    convention of Keras's `CategoricalCrossentropy`: the target of an example of
    class y is (1 - e) onehot(y) + e / K, which sums to one (the correct class
    gets 1 - e + e / K). The loss is computed from log-probabilities and one
    gathered column, never from an [N, K] one-hot target, and in float32 when the
    predictions are float16 or bfloat16 (mixed precision).

    The positional order is Keras's `SparseCategoricalCrossentropy(from_logits,
    ignore_class, reduction, axis, name, dtype)`; `label_smoothing` (ours only)
    is keyword-only, so a Keras call cannot turn its `ignore_class` into a
    smoothing.

    Args:
        from_logits: whether `y_pred` holds logits (recommended) or probabilities.
        ignore_class: optional integer class id (for example a "void" class in
            segmentation) whose entries get zero loss and are excluded from the
            mean, as in Keras.
        reduction: as in every Keras loss. Defaults to `"sum_over_batch_size"`.
        axis: the class axis of `y_pred`. Defaults to -1.
        name: name of the loss.
        dtype: dtype of the loss computations (default float32).
        label_smoothing: e, a float in [0, 1]. 0 is plain crossentropy; 0.1 is the
            usual value (Szegedy et al. 2016). Keyword-only.

    Call arguments:
        y_true: integer labels, shape `(batch_size,)` or `(batch_size, 1)` (or the
            prediction's shape without the class axis).
        y_pred: `(batch_size, num_classes)` logits or probabilities.
        sample_weight: optional per-example weights.

    Returns:
        The reduced loss (a scalar unless `reduction=None`).

    Example:

    >>> import numpy as np, keras_efficient as ke
    >>> loss = ke.losses.SparseCategoricalCrossentropy(from_logits=True,
    ...                                                  label_smoothing=0.1)
    >>> value = loss(np.array([0, 2]), np.array([[2.0, 0.0, -1.0], [0.0, 1.0, 3.0]]))
    >>> round(float(value), 4)
    0.3365

    Reference:
        Szegedy et al., "Rethinking the Inception Architecture for Computer
        Vision", CVPR 2016. https://arxiv.org/abs/1512.00567
    """

    def __init__(
        self,
        from_logits=False,
        ignore_class=None,
        reduction="sum_over_batch_size",
        axis=-1,
        name="sparse_categorical_crossentropy",
        dtype=None,
        *,
        label_smoothing=0.0,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(validate_number("label_smoothing", label_smoothing, 0, 1))
        if ignore_class is not None:
            # Compared with int32 labels: a wider id overflows on JAX.
            validate_number("ignore_class", ignore_class, -(2**31), 2**31 - 1, integer=True)
        self.ignore_class = ignore_class
        self.axis = validate_number("axis", axis, integer=True)

    def call(self, y_true, y_pred):
        return sparse_categorical_crossentropy(
            y_true,
            y_pred,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
            ignore_class=self.ignore_class,
            axis=self.axis,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing,
                "ignore_class": self.ignore_class,
                "axis": self.axis,
            }
        )
        return config
