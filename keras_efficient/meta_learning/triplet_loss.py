"""Triplet loss with online mining: semi-hard (FaceNet), batch-hard and batch-all."""

import keras
from keras import ops

from keras_efficient import backend
from keras_efficient.meta_learning.distances import cosine_similarities
from keras_efficient.meta_learning.distances import safe_sqrt
from keras_efficient.meta_learning.distances import squared_euclidean_distances
from keras_efficient.utils import register
from keras_efficient.utils import validate_choice
from keras_efficient.utils import validate_number

MININGS = ("semi_hard", "batch_hard", "batch_all")
DISTANCE_METRICS = ("L2", "squared-L2", "angular")


def _num_replicas():
    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def pairwise_distances(embeddings, distance_metric="L2"):
    """The `(batch_size, batch_size)` distance matrix of TF Addons' triplet losses.

    "L2" is the Euclidean distance, "squared-L2" its square, "angular" is
    `1 - cos`; a callable maps the embeddings to the matrix itself. The
    diagonal is exactly 0, and the Euclidean distance has a zero (not NaN)
    gradient where two embeddings coincide.
    """
    if callable(distance_metric):
        return distance_metric(embeddings)
    off_diagonal = 1.0 - ops.eye(ops.shape(embeddings)[0], dtype=embeddings.dtype)
    if distance_metric == "angular":
        distances = ops.maximum(1.0 - cosine_similarities(embeddings, embeddings), 0.0)
        return distances * off_diagonal
    squared = squared_euclidean_distances(embeddings, embeddings) * off_diagonal
    if distance_metric == "squared-L2":
        return squared
    return safe_sqrt(squared)


def triplet_loss(labels, embeddings, margin=1.0, mining="semi_hard", distance_metric="L2"):
    """The triplet loss of one batch, with the negatives (and positives) mined in it.

    With `d` the pairwise distances, positives `p != a` sharing the anchor's
    label and negatives `n` not sharing it:

    - "semi_hard" (FaceNet, as TF Addons' `triplet_semihard_loss` computes it):
      for every anchor-positive pair, the closest negative farther than the
      positive (`d_an > d_ap`), or if there is none the farthest negative; the
      loss is `sum max(margin + d_ap - d_an, 0) / #pairs` over all pairs.
    - "batch_hard" (Hermans et al. 2017, as TF Addons' `triplet_hard_loss`):
      per anchor the farthest positive and the closest negative,
      `mean_a max(margin + max_p d_ap - min_n d_an, 0)`.
    - "batch_all" (Hermans et al. 2017, "BA≠0"): every valid triplet,
      `max(margin + d_ap - d_an, 0)` averaged over the triplets where it is
      positive (averaging over all triplets lets the many easy ones dilute it).

    Edge cases as TF Addons: an anchor without negatives uses 0 as the
    farthest negative (semi-hard) and the farthest sample as the closest
    negative (batch-hard); an anchor without positives uses 0 as the farthest
    positive (batch-hard). A batch with no anchor-positive pair (or no active
    triplet) gives 0 (TF Addons' semi-hard loss returns NaN there).

    Computed in float32 whatever the embeddings' dtype. Inside a `tf.distribute`
    replica context the embeddings and labels of all replicas are gathered
    first, so the triplets are mined in the global batch, as on one device.

    Args:
        labels: integer class labels, `(batch_size,)` or `(batch_size, 1)`.
        embeddings: `(batch_size, dim)`.
        margin: the margin `m`.
        mining: "semi_hard", "batch_hard" or "batch_all".
        distance_metric: "L2", "squared-L2", "angular" or a callable.

    Returns:
        A float32 scalar.
    """
    embeddings = backend.all_gather(ops.cast(embeddings, "float32"))
    labels = backend.all_gather(ops.reshape(ops.cast(labels, "int32"), (-1,)))
    distances = pairwise_distances(embeddings, distance_metric)
    same = labels[:, None] == labels[None, :]
    negative = ops.logical_not(same)
    positive = ops.logical_and(same, ops.logical_not(ops.eye(ops.shape(labels)[0], dtype="bool")))
    if mining == "batch_hard":
        hardest_positive = ops.max(ops.where(positive, distances, 0.0), axis=1)
        row_max = ops.max(distances, axis=1, keepdims=True)
        hardest_negative = ops.min(ops.where(negative, distances, row_max), axis=1)
        return ops.mean(ops.relu(margin + hardest_positive - hardest_negative))
    # [anchor, positive, negative] triplets.
    d_ap = distances[:, :, None]
    d_an = distances[:, None, :]
    if mining == "batch_all":
        losses = ops.relu(margin + d_ap - d_an)
        valid = ops.logical_and(positive[:, :, None], negative[:, None, :])
        losses = ops.where(valid, losses, 0.0)
        active = ops.sum(ops.cast(losses > 0.0, "float32"))
        return ops.divide_no_nan(ops.sum(losses), active)
    farther = ops.logical_and(negative[:, None, :], d_an > d_ap)
    row_max = ops.max(distances)
    semi_hard = ops.min(ops.where(farther, d_an, row_max), axis=2)
    farthest_negative = ops.max(ops.where(negative, distances, 0.0), axis=1, keepdims=True)
    negatives = ops.where(ops.any(farther, axis=2), semi_hard, farthest_negative)
    losses = ops.where(positive, ops.relu(margin + distances - negatives), 0.0)
    return ops.divide_no_nan(ops.sum(losses), ops.sum(ops.cast(positive, "float32")))


@register("keras_efficient.losses.TripletLoss")
class TripletLoss(keras.losses.Loss):
    """Triplet loss with online semi-hard, batch-hard or batch-all mining.

    Pulls embeddings of the same class together and pushes other classes at
    least `margin` farther away, choosing the triplets inside each batch
    (`triplet_loss` gives the formulas). With the defaults it computes what
    `tfa.losses.TripletSemiHardLoss(margin)` computed (TF Addons is gone with
    Keras 3), and `mining="batch_hard"` what `tfa.losses.TripletHardLoss(margin)`
    did: replace `tfa.losses.TripletSemiHardLoss(margin=m, distance_metric=d)`
    by `TripletLoss(margin=m, distance_metric=d)`. Batches need several
    examples per class (Hermans et al. sample P classes x K examples).

    Under a `tf.distribute` strategy the replicas' embeddings are gathered, so
    the loss and its gradients equal one device's on the same global batch.

    Args:
        margin: the margin `m >= 0`. Defaults to 1.0 (TF Addons' default).
        mining: "semi_hard" (FaceNet; default), "batch_hard" or "batch_all".
        distance_metric: "L2" (Euclidean; default), "squared-L2", "angular"
            (`1 - cos`), or a callable mapping `(batch_size, dim)` embeddings to
            a `(batch_size, batch_size)` distance matrix (register it with
            `keras.saving.register_keras_serializable` to save the loss).
        reduction: Keras loss reduction; the loss is already a scalar.
        name: optional name.

    Call arguments:
        y_true: integer labels, `(batch_size,)` or `(batch_size, 1)`.
        y_pred: embeddings, `(batch_size, dim)`, usually L2-normalized.

    Returns:
        The scalar loss, float32.

    Example:

    >>> import numpy as np
    >>> labels = np.array([0, 0, 1, 1])
    >>> embeddings = np.array([[0., 0.], [0., .1], [1., 0.], [1., .1]], "float32")
    >>> round(float(TripletLoss(margin=1.0)(labels, embeddings)), 4)
    0.1
    >>> float(TripletLoss(margin=0.5)(labels, embeddings))  # every negative beyond the margin
    0.0

    Reference:
        Schroff, Kalenichenko, Philbin, "FaceNet: A Unified Embedding for Face
        Recognition and Clustering", CVPR 2015 (https://arxiv.org/abs/1503.03832).
        Hermans, Beyer, Leibe, "In Defense of the Triplet Loss for Person
        Re-Identification", 2017 (https://arxiv.org/abs/1703.07737).
    """

    def __init__(self, margin=1.0, mining="semi_hard", distance_metric="L2",
                 reduction="sum_over_batch_size", name="triplet_loss"):
        super().__init__(name=name, reduction=reduction)
        self.margin = validate_number("margin", margin, 0)
        self.mining = validate_choice("mining", mining, MININGS)
        if not callable(distance_metric):
            validate_choice("distance_metric", distance_metric, DISTANCE_METRICS)
        self.distance_metric = distance_metric

    def call(self, y_true, y_pred):
        if len(y_pred.shape) != 2:
            raise ValueError(
                "Expected `y_pred` (the embeddings) of shape (batch_size, dim). "
                f"Received: y_pred.shape={tuple(y_pred.shape)}"
            )
        loss = triplet_loss(y_true, y_pred, self.margin, self.mining, self.distance_metric)
        # Every replica computes the global batch's loss, and the replicas' gradients
        # are summed: divide by their number, which Keras does for a batch mean but
        # not for a loss that is already a scalar.
        return loss / _num_replicas()

    def get_config(self):
        config = super().get_config()
        config.update(margin=self.margin, mining=self.mining,
                      distance_metric=keras.saving.serialize_keras_object(self.distance_metric))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["distance_metric"] = keras.saving.deserialize_keras_object(
            config["distance_metric"])
        return cls(**config)
