"""BYOL's regression loss: 2 - 2 cos(target projection, online prediction)."""

import keras

from keras_efficient.ssl.embeddings import check_pair_shapes
from keras_efficient.ssl.embeddings import stopped_cosine_similarity
from keras_efficient.utils import register


@register("keras_efficient.losses.BYOLLoss")
class BYOLLoss(keras.losses.Loss):
    """BYOL loss: the squared distance of L2-normalized vectors, `2 - 2 cos(z, p)`.

    The online network's prediction `p` regresses the target network's
    projection `z` of the other view. The target gets no gradient (it is
    updated as an moving average of the online network, not by the optimizer),
    so `y_true` passes through a stop-gradient. Computed in float32.

    Args:
        reduction: Keras loss reduction (default: mean over the batch).
        name: optional name.

    Call arguments:
        y_true: target projections `z`, `(batch_size, dim)`.
        y_pred: online predictions `p`, `(batch_size, dim)`.
        sample_weight: optional `(batch_size,)` weights.

    Returns:
        The reduced loss in [0, 4], float32.

    Example:

    >>> import numpy as np
    >>> z = np.array([[1.0, 0.0]], "float32")
    >>> float(BYOLLoss()(z, np.array([[0.0, 3.0]], "float32")))
    2.0

    Reference:
        Grill et al., "Bootstrap Your Own Latent: A New Approach to
        Self-Supervised Learning", NeurIPS 2020 (https://arxiv.org/abs/2006.07733),
        eq. 2.
    """

    def __init__(self, reduction="sum_over_batch_size", name="byol_loss"):
        super().__init__(name=name, reduction=reduction)

    def call(self, y_true, y_pred):
        y_true, y_pred = check_pair_shapes(y_true, y_pred)
        return 2.0 - 2.0 * stopped_cosine_similarity(y_true, y_pred)
