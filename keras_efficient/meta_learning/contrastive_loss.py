"""The contrastive loss of siamese networks (Hadsell, Chopra, LeCun 2006)."""

import keras
from keras import ops

from keras_efficient.utils import register
from keras_efficient.utils import validate_number


@register("keras_efficient.losses.ContrastiveLoss")
class ContrastiveLoss(keras.losses.Loss):
    """Contrastive loss on the distances of pairs: pull similar pairs together,
    push dissimilar pairs at least `margin` apart.

    Per pair with distance `d` and label `y` (1: similar, 0: dissimilar):
    `y * d^2 + (1 - y) * max(margin - d, 0)^2`, averaged over the pairs. This
    is `tfa.losses.ContrastiveLoss(margin)` (same argument, same labels, same
    numbers); Hadsell et al. write it with factors 1/2 and the opposite label
    convention (their `Y = 0` for similar pairs), which scales the loss by 1/2.

    Computed in float32 whatever the inputs' dtype.

    Args:
        margin: the margin `m >= 0` dissimilar pairs are pushed beyond.
            Defaults to 1.0.
        reduction: Keras loss reduction; the default averages over the pairs.
        name: optional name.

    Call arguments:
        y_true: 1 for similar pairs, 0 for dissimilar ones, `(batch_size,)`.
        y_pred: the pairs' distances, `(batch_size,)` (for example the output
            of `SiameseNetwork`).

    Returns:
        The reduced loss, float32.

    Example:

    >>> import numpy as np
    >>> loss = ContrastiveLoss(margin=1.0)
    >>> float(loss(np.array([1.0, 0.0]), np.array([0.5, 0.25])))  # (0.25 + 0.5625) / 2
    0.40625

    Reference:
        Hadsell, Chopra, LeCun, "Dimensionality Reduction by Learning an
        Invariant Mapping", CVPR 2006, eq. 4.
    """

    def __init__(self, margin=1.0, reduction="sum_over_batch_size", name="contrastive_loss"):
        super().__init__(name=name, reduction=reduction)
        self.margin = validate_number("margin", margin, 0)

    def call(self, y_true, y_pred):
        distances = ops.cast(y_pred, "float32")
        similar = ops.reshape(ops.cast(y_true, "float32"), ops.shape(distances))
        dissimilar_term = ops.square(ops.relu(self.margin - distances))
        return similar * ops.square(distances) + (1.0 - similar) * dissimilar_term

    def get_config(self):
        config = super().get_config()
        config["margin"] = self.margin
        return config
