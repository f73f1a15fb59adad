"""NT-Xent, the normalized temperature-scaled cross-entropy of SimCLR."""

import keras
from keras import ops

from keras_efficient.ssl.embeddings import check_pair_shapes
from keras_efficient.ssl.embeddings import l2_normalize
from keras_efficient.utils import register
from keras_efficient.utils import validate_number

# Replaces the self-similarity logit. Finite (no inf - inf in the softmax) and
# only ever used in float32, where it is representable (in float16 it is -inf).
_MASKED_LOGIT = -1e9


def _replica_context():
    """The TF replica context when running inside `strategy.run` on several replicas."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def _global_batch(z_a, z_b):
    """Both views of every replica's batch, and where this replica's rows start.

    `all_gather` has a correct backward pass: the gradient flowing into the
    gathered tensor is summed over replicas and sliced back to each replica's
    rows, so the other replicas' embeddings act as negatives *and* receive the
    gradient they cause.
    """
    context = _replica_context()
    if context is None:
        return z_a, z_b, 0
    import tensorflow as tf

    all_a, all_b = context.all_gather([z_a, z_b], axis=0)
    # Replicas may hold different batch sizes (the last batch of an epoch).
    sizes = context.all_gather(tf.shape(z_a)[:1], axis=0)
    offset = ops.sum(sizes[: context.replica_id_in_sync_group])
    return all_a, all_b, offset


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

    # (2n, dim) anchors of this replica against (2N, dim) candidates of all;
    # 1/t is applied to the anchors, not to the (2n, 2N) logits.
    anchors = ops.concatenate([z_a, z_b], axis=0) * (1.0 / temperature)
    candidates = ops.concatenate([all_a, all_b], axis=0)
    logits = ops.matmul(anchors, ops.transpose(candidates))

    # Anchor row r is candidate `self_index[r]`; its positive sits N further on
    # (view a -> view b) or N earlier (view b -> view a).
    local_rows = ops.arange(local_size) + offset
    self_index = ops.concatenate([local_rows, local_rows + global_size], axis=0)
    positive_index = ops.concatenate([local_rows + global_size, local_rows], axis=0)
    columns = ops.arange(2 * global_size)
    is_self = ops.expand_dims(self_index, 1) == ops.expand_dims(columns, 0)
    logits = ops.where(is_self, _MASKED_LOGIT, logits)

    # A fused softmax cross-entropy: -log softmax(logits)[positive] per anchor.
    per_anchor = ops.sparse_categorical_crossentropy(positive_index, logits, from_logits=True)
    return 0.5 * (per_anchor[:local_size] + per_anchor[local_size:])


@register
class NTXent(keras.losses.Loss):
    """NT-Xent (normalized temperature-scaled cross-entropy), SimCLR's loss.

    Every embedding of the 2N in a batch of N pairs is an anchor with one
    positive (the other view of its image) and 2N - 2 negatives (all other
    embeddings of both views). The loss is the mean over the 2N anchors of
    `-log(exp(sim(z_i, z_j) / t) / sum_{k != i} exp(sim(z_i, z_k) / t))`, with
    cosine similarity `sim`, exactly as the SimCLR paper defines it (keras-cv's
    `SimCLRLoss` returns twice this; keras-io's example uses only the N - 1
    cross-view negatives).

    Similarities and the softmax are computed in float32 also for float16 or
    bfloat16 inputs, and the self-similarity is removed with `where` rather than
    a huge additive constant, so half-precision inputs give finite losses.

    Under a `tf.distribute` strategy (called inside `strategy.run`, as `fit`
    does) the embeddings of all replicas are gathered and serve as negatives, so
    R replicas of batch N compute the loss of the global batch R * N, with the
    gradient flowing back to the replica that produced each embedding: loss and
    gradients equal one device's on the same global batch.

    Args:
        temperature: softmax temperature `t`, > 0. SimCLR uses 0.5 for CIFAR-10
            (batch 512-1024) and 0.1 for large batches on ImageNet.
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
        self.temperature = validate_number("temperature", temperature, 0,
                                           low_inclusive=False)

    def call(self, y_true, y_pred):
        check_pair_shapes(y_true, y_pred)
        return nt_xent(y_true, y_pred, self.temperature)

    def get_config(self):
        config = super().get_config()
        config["temperature"] = self.temperature
        return config

