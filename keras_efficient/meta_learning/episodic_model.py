"""The base of the metric-based few-shot classifiers: an episode in, query scores out."""

import keras
import numpy as np
from keras import ops

from keras_efficient.meta_learning.siamese_network import check_encoder
from keras_efficient.utils import RestoresCompile
from keras_efficient.utils import from_config_with_layers
from keras_efficient.utils import validate_size

# The score of a label that has no support example: exp(-1e9) is 0 in float32, so
# no softmax, crossentropy or argmax sees it.
ABSENT_CLASS_LOGIT = -1e9


class EpisodicModel(RestoresCompile, keras.Model):
    """A few-shot classifier trained with `fit` on episodes.

    Called on an episode batch `(support_x, support_y, query_x)` (the format of
    `episode_dataset`: `support_x` `(meta_batch, n_way * n_shot, ...)`,
    `support_y` `(meta_batch, n_way * n_shot)` integer labels in `[0, n_way)`,
    `query_x` `(meta_batch, n_query_total, ...)`), it scores every query
    against every label: `(meta_batch, n_query_total, num_labels)`. The
    support and query items of all episodes go through the encoder in one
    pass; the scores are computed per episode in float32.

    `num_labels` is `n_way` when given, else the support-set size (the most
    labels an episode can hold, so one model serves every N-way K-shot
    setting): labels without a support example then score
    `ABSENT_CLASS_LOGIT` and no softmax, crossentropy or argmax sees them.

    Subclasses implement `_build_heads(embedding_shape)` and
    `_scores(support, support_one_hot, query, training)`, and say with
    `flatten_embeddings` whether they need vectors.
    """

    flatten_embeddings = True

    def __init__(self, encoder, n_way=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder = check_encoder(encoder)
        if n_way is not None:
            validate_size("n_way", n_way)
        self.n_way = n_way

    def compile(self, optimizer="adam", loss=None, **kwargs):
        """`keras.Model.compile` with the method's loss as the default `loss`."""
        super().compile(optimizer=optimizer, loss=self.default_loss() if loss is None else loss,
                        **kwargs)

    def default_loss(self):
        """Crossentropy on the query scores, which are logits."""
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def build(self, input_shape):
        check_episode_shapes(input_shape)
        support_shape = input_shape[0]
        item_shape = (None,) + tuple(support_shape[2:])
        if not self.encoder.built:
            self.encoder.build(item_shape)
        self._build_heads(tuple(self.encoder.compute_output_shape(item_shape)))
        self.built = True

    def _build_heads(self, embedding_shape):
        """Build the layers after the encoder, given its output shape."""

    def call(self, inputs, training=False):
        support_x, support_y, query_x = check_episode(inputs)
        support, query = self.embed_episode(support_x, query_x, training)
        num_labels = self.n_way or dimension(support_x, 1)
        support_one_hot = ops.one_hot(ops.cast(support_y, "int32"), num_labels)
        return self._scores(support, support_one_hot, query, training)

    def embed_episode(self, support_x, query_x, training=False):
        """Embeddings of the support and query items, per episode, float32.

        Returns:
            `support` `(meta_batch, support_size, ...)` and `query`
            `(meta_batch, query_size, ...)`, with one axis `dim` when
            `flatten_embeddings`, else the encoder's output shape.
        """
        support_size, query_size = dimension(support_x, 1), dimension(query_x, 1)
        item_shape = tuple(support_x.shape[2:])
        items = ops.concatenate([ops.reshape(support_x, (-1,) + item_shape),
                                 ops.reshape(query_x, (-1,) + item_shape)], axis=0)
        embeddings = ops.cast(self.encoder(items, training=training), "float32")
        embedding_shape = tuple(embeddings.shape[1:])
        if self.flatten_embeddings:
            embedding_shape = (int(np.prod(embedding_shape)),)
        num_support = ops.shape(support_x)[0] * support_size
        support = ops.reshape(embeddings[:num_support], (-1, support_size) + embedding_shape)
        query = ops.reshape(embeddings[num_support:], (-1, query_size) + embedding_shape)
        return support, query

    def _scores(self, support, support_one_hot, query, training):
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        support_shape, _, query_shape = input_shape
        return (support_shape[0], query_shape[1], self.n_way or support_shape[1])

    def get_config(self):
        config = super().get_config()
        config.update(encoder=keras.saving.serialize_keras_object(self.encoder),
                      n_way=self.n_way)
        return config

    @classmethod
    def from_config(cls, config):
        return from_config_with_layers(cls, config, "encoder", "relation_module")


def dimension(x, axis):
    """The size of `x` along `axis`: static where known, else a tensor (Keras's
    `predict` relaxes the support and query sizes after it sees a second one)."""
    return x.shape[axis] if x.shape[axis] is not None else ops.shape(x)[axis]


def mask_absent_labels(scores, support_one_hot, absent_score=ABSENT_CLASS_LOGIT):
    """`scores` `(meta_batch, queries, labels)` with `absent_score` for labels
    that have no support example in the episode."""
    present = ops.sum(support_one_hot, axis=1, keepdims=True) > 0
    return ops.where(present, scores, absent_score)


def class_sums(support, support_one_hot):
    """Per-episode sums of the support embeddings of each label and their counts.

    Args:
        support: `(meta_batch, support_size, dim)`.
        support_one_hot: `(meta_batch, support_size, labels)`.

    Returns:
        sums `(meta_batch, labels, dim)` and counts `(meta_batch, labels, 1)`.
    """
    one_hot = ops.swapaxes(ops.cast(support_one_hot, support.dtype), 1, 2)
    return ops.matmul(one_hot, support), ops.sum(one_hot, axis=2, keepdims=True)


def check_episode(inputs):
    """`(support_x, support_y, query_x)` after checking their shapes agree."""
    if not isinstance(inputs, (list, tuple)) or len(inputs) != 3:
        raise ValueError(
            "Expected an episode batch `(support_x, support_y, query_x)` as input (the "
            f"first element of `episode_dataset`'s elements). Received: {type(inputs).__name__}"
            + (f" of length {len(inputs)}" if isinstance(inputs, (list, tuple)) else ""))
    check_episode_shapes(tuple(tuple(x.shape) for x in inputs))
    return inputs


def check_episode_shapes(shapes):
    """Raise a `ValueError` unless `shapes` are those of `(support_x, support_y, query_x)`."""
    if not isinstance(shapes, (list, tuple)) or len(shapes) != 3:
        raise ValueError(
            "Expected an episode batch `(support_x, support_y, query_x)` as input (the "
            f"first element of `episode_dataset`'s elements). Received shapes: {shapes}")
    support_x, support_y, query_x = (tuple(shape) for shape in shapes)
    if len(support_x) < 3 or len(support_y) != 2 or len(query_x) < 3:
        raise ValueError(
            "Expected `support_x` (meta_batch, support_size, ...), `support_y` (meta_batch, "
            "support_size) and `query_x` (meta_batch, query_size, ...). Received: "
            f"support_x.shape={support_x}, support_y.shape={support_y}, "
            f"query_x.shape={query_x}")
    if None not in (support_x[1], support_y[1]) and support_x[1] != support_y[1]:
        raise ValueError(
            "`support_x` and `support_y` must hold the same number of support items. "
            f"Received: support_x.shape={support_x}, support_y.shape={support_y}")
    if support_x[2:] != query_x[2:]:
        raise ValueError(
            "Support and query items must have the same shape. Received: "
            f"support_x.shape={support_x}, query_x.shape={query_x}")
    if support_x[1] == 0 or query_x[1] == 0:
        raise ValueError(
            "Expected at least one support and one query item per episode. Received: "
            f"support_x.shape={support_x}, query_x.shape={query_x}")
