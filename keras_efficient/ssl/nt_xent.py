"""NT-Xent, the normalized temperature-scaled cross-entropy of SimCLR."""

import keras
from keras import ops

from keras_efficient import backend
from keras_efficient.schedules.step_counter import ScheduledTemperature
from keras_efficient.schedules.step_counter import serialize_scheduled
from keras_efficient.schedules.step_counter import validate_scheduled
from keras_efficient.ssl.embeddings import check_pair_shapes
from keras_efficient.ssl.embeddings import l2_normalize
from keras_efficient.utils import register

# Subtracted from the self-similarity logits: exp(-1e9) is 0, the mask has no
# backward cost (unlike `where`), and the math is always float32, where 1e9 is
# representable (it would be inf in float16).
_SELF_MASK_VALUE = 1e9


def _global_batch(z_a, z_b):
    """Both views of every replica's batch, and where this replica's rows start.

    The other replicas' embeddings act as negatives *and* receive the gradient
    they cause (`backend.all_gather` has a correct backward pass).
    """
    all_a, all_b = backend.all_gather([z_a, z_b])
    return all_a, all_b, backend.replica_offset(z_a)


def nt_xent(z_a, z_b, temperature=0.5):
    """Per-pair NT-Xent loss of two views' projections.

    Each of the 2N embeddings is an anchor; its positive is the other view of
    the same image and its negatives are the 2N - 2 remaining embeddings of
    both views. For anchor i with positive j:
    `l(i, j) = -log(exp(s_ij / t) / sum_{k != i} exp(s_ik / t))`, with `s` the
    cosine similarity. Returned per pair: `(l(a_n, b_n) + l(b_n, a_n)) / 2`, so
    the mean over pairs is the SimCLR loss (the mean over the 2N anchors).

    Computed in float32 whatever the inputs' dtype. Inside a `tf.distribute`
    replica context the other replicas' embeddings are gathered and used as
    negatives (N is then the global batch); the returned values are this
    replica's pairs only.

    Args:
        z_a, z_b: projections of the two views, shape `(batch_size, dim)`.
        temperature: the softmax temperature `t`.

    Returns:
        float32 tensor of shape `(batch_size,)`.
    """
    z_a = l2_normalize(ops.cast(z_a, "float32"))
    z_b = l2_normalize(ops.cast(z_b, "float32"))
    all_a, all_b, offset = _global_batch(z_a, z_b)
    local_size = ops.shape(z_a)[0]
    global_size = ops.shape(all_a)[0]

    # Four (n, N) blocks instead of one (2n, 2N) matrix with a (2n, 2N) mask:
    # only the same-view blocks hold self-similarities, and on one device the
    # b-anchor cross block is the transpose of the a-anchor one (3 matmuls, not 4).
    # 1/t is applied to the anchors, not to the logits.
    anchors_a = z_a * (1.0 / temperature)
    anchors_b = z_b * (1.0 / temperature)
    cross_a = ops.matmul(anchors_a, ops.transpose(all_b))
    if all_a is z_a:
        cross_b_logsumexp = ops.logsumexp(cross_a, axis=0)
    else:
        cross_b_logsumexp = ops.logsumexp(ops.matmul(anchors_b, ops.transpose(all_a)), axis=1)
    # Anchor i of this replica is candidate `offset + i` of its own view.
    self_mask = _SELF_MASK_VALUE * ops.one_hot(ops.arange(local_size) + offset, global_size)
    same_a = ops.matmul(anchors_a, ops.transpose(all_a)) - self_mask
    same_b = ops.matmul(anchors_b, ops.transpose(all_b)) - self_mask

    # -log softmax at the positive = logsumexp over candidates - positive logit;
    # both anchors of a pair share the positive logit s(a_i, b_i) / t.
    denominator_a = ops.logaddexp(ops.logsumexp(cross_a, axis=1), ops.logsumexp(same_a, axis=1))
    denominator_b = ops.logaddexp(cross_b_logsumexp, ops.logsumexp(same_b, axis=1))
    positive = ops.sum(anchors_a * z_b, axis=1)
    return 0.5 * (denominator_a + denominator_b) - positive


@register("keras_efficient.losses.NTXent")
class NTXent(ScheduledTemperature, keras.losses.Loss):
    """NT-Xent (normalized temperature-scaled cross-entropy), SimCLR's loss.

    Every embedding of the 2N in a batch of N pairs is an anchor with one
    positive (the other view of its image) and 2N - 2 negatives (all other
    embeddings of both views). The loss is the mean over the 2N anchors of
    `-log(exp(sim(z_i, z_j) / t) / sum_{k != i} exp(sim(z_i, z_k) / t))`, with
    cosine similarity `sim`, exactly as the SimCLR paper defines it (keras-cv's
    `SimCLRLoss` returns twice this; keras-io's example uses only the N - 1
    cross-view negatives).

    Similarities and the softmax are computed in float32 also for float16 or
    bfloat16 inputs (the self-similarity mask is a float32 constant that half
    precision could not hold), so half-precision inputs give finite losses.

    Under a `tf.distribute` strategy (called inside `strategy.run`, as `fit`
    does) the embeddings of all replicas are gathered and serve as negatives, so
    R replicas of batch N compute the loss of the global batch R * N, with the
    gradient flowing back to the replica that produced each embedding: loss and
    gradients equal one device's on the same global batch.

    Args:
        temperature: softmax temperature `t`, > 0. SimCLR uses 0.5 for CIFAR-10
            (batch 512-1024) and 0.1 for large batches on ImageNet. Or a
            schedule (`ke.schedules.Annealing`) evaluated at `loss.step`, which
            `ke.models.SimCLR` sets to its step counter.
        reduction: Keras loss reduction; the default gives the mean over anchors.
        name: optional name.

    Call arguments:
        y_true: projections of the first views, `(batch_size, dim)`.
        y_pred: projections of the second views, `(batch_size, dim)`.
        sample_weight: optional per-pair weights, `(batch_size,)`.

    Returns:
        The reduced loss, float32.

    Example:

    >>> import numpy as np
    >>> z_a = np.random.default_rng(0).normal(size=(4, 8)).astype("float32")
    >>> loss = NTXent(temperature=0.5)
    >>> float(loss(z_a, z_a)) < float(loss(z_a, -z_a))
    True

    Reference:
        Chen et al., "A Simple Framework for Contrastive Learning of Visual
        Representations", ICML 2020 (https://arxiv.org/abs/2002.05709), eq. 1.
    """

    def __init__(self, temperature=0.5, reduction="sum_over_batch_size", name="nt_xent"):
        super().__init__(name=name, reduction=reduction)
        self.temperature = validate_scheduled("temperature", temperature)

    def call(self, y_true, y_pred):
        y_true, y_pred = check_pair_shapes(y_true, y_pred)
        return nt_xent(y_true, y_pred, self.current_temperature())

    def get_config(self):
        config = super().get_config()
        config["temperature"] = serialize_scheduled(self.temperature)
        return config

