"""SimSiam's loss: negative cosine similarity with a stop-gradient on the target."""

import keras

from keras_efficient.ssl.embeddings import check_pair_shapes
from keras_efficient.ssl.embeddings import stopped_cosine_similarity
from keras_efficient.utils import register


@register("keras_efficient.losses.SimSiamLoss")
class SimSiamLoss(keras.losses.Loss):
    """SimSiam loss `D(p, stopgrad(z)) = -cos(p, z)`.

    The prediction `p` of one view regresses the projection `z` of the other,
    and `z` is treated as a constant: the stop-gradient is what keeps SimSiam
    from collapsing (the paper's Fig. 2). Computed in float32. `SimSiam` applies
    it symmetrically: `D(p1, z2) / 2 + D(p2, z1) / 2`.

    Args:
        reduction: Keras loss reduction (default: mean over the batch).
        name: optional name.

    Call arguments:
        y_true: projections `z` (no gradient flows into them), `(batch_size, dim)`.
        y_pred: predictions `p`, `(batch_size, dim)`.
        sample_weight: optional `(batch_size,)` weights.

    Returns:
        The reduced loss in [-1, 1], float32.

    Example:

    >>> import numpy as np
    >>> z = np.array([[1.0, 1.0]], "float32")
    >>> round(float(SimSiamLoss()(z, 2 * z)), 4)
    -1.0

    Reference:
        Chen and He, "Exploring Simple Siamese Representation Learning", CVPR
        2021 (https://arxiv.org/abs/2011.10566), eq. 1 and 3.
    """

    def __init__(self, reduction="sum_over_batch_size", name="simsiam_loss"):
        super().__init__(name=name, reduction=reduction)

    def call(self, y_true, y_pred):
        y_true, y_pred = check_pair_shapes(y_true, y_pred)
        return -stopped_cosine_similarity(y_true, y_pred)
