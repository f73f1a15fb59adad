"""Relation networks: a learned module scores how well a query matches each class."""

import keras
import numpy as np
from keras import ops

from keras_efficient.meta_learning.episodic_model import EpisodicModel
from keras_efficient.meta_learning.episodic_model import class_sums
from keras_efficient.meta_learning.episodic_model import dimension
from keras_efficient.meta_learning.episodic_model import mask_absent_labels
from keras_efficient.utils import register


def default_relation_module():
    """The relation module for vector embeddings: two dense layers, hidden size 8
    (the paper's fully connected layers), ending in a sigmoid score."""
    return keras.Sequential([keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dense(1, activation="sigmoid")],
                            name="relation_module")


@register("keras_efficient.models.RelationNetwork")
class RelationNetwork(EpisodicModel):
    """Relation network: a learned relation module scores each (class, query) pair.

    The class feature is the sum of the class's support embeddings (the
    paper's choice for K shots); it is concatenated with the query's embedding
    along the last (channel) axis and the relation module `g` maps the pair to
    a relation score `r_{q,k}` in [0, 1]. Training regresses the scores on the
    one-hot labels with the mean squared error (the paper's objective; the
    default `compile` loss is `MeanSquaredError`, fed one-hot targets built
    from the integer query labels, so `fit` takes the episode datasets as they
    are). Labels absent from the support set score 0 (see `EpisodicModel`); their
    zero errors count in the mean, so set `n_way` for the mean over the N labels.

    The encoder may output feature maps (the paper's relation module is
    convolutional): `g` then receives `(..., height, width, 2 * channels)`.

    Args:
        encoder: a Keras layer or model mapping items to embeddings.
        relation_module: a Keras layer or model mapping concatenated pairs to
            one score each, `(pairs, 1)`, ending in a sigmoid as in the paper.
            Defaults to `default_relation_module()` (vector embeddings).
        n_way: the number of labels of the output; default: the support-set
            size (see `EpisodicModel`).
        **kwargs: `keras.Model` arguments.

    Call arguments:
        inputs: an episode batch `(support_x, support_y, query_x)`.
        training: passed to the encoder and the relation module.

    Returns:
        Relation scores `(meta_batch, query_size, num_labels)`, float32.

    Example:

    >>> import keras, numpy as np
    >>> encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8)])
    >>> model = RelationNetwork(encoder, n_way=2)
    >>> model.compile(optimizer="adam", metrics=["accuracy"])
    >>> support_x, query_x = np.random.rand(3, 4, 4), np.random.rand(3, 6, 4)
    >>> support_y = np.tile([0, 0, 1, 1], (3, 1))
    >>> query_y = np.tile([0, 0, 0, 1, 1, 1], (3, 1))
    >>> history = model.fit((support_x, support_y, query_x), query_y, verbose=0)

    Reference:
        Sung, Yang, Zhang, Xiang, Torr, Hospedales, "Learning to Compare:
        Relation Network for Few-Shot Learning", CVPR 2018
        (https://arxiv.org/abs/1711.06025), eq. 1-3.
    """

    flatten_embeddings = False

    def __init__(self, encoder, relation_module=None, n_way=None, **kwargs):
        super().__init__(encoder, n_way=n_way, **kwargs)
        if relation_module is not None and not isinstance(relation_module, keras.layers.Layer):
            raise TypeError(
                "Invalid type received for argument `relation_module`. Expected a Keras "
                "layer or model mapping concatenated (class, query) features to a score. "
                f"Received: relation_module of type {type(relation_module).__name__}")
        self.relation_module = (relation_module if relation_module is not None
                                else default_relation_module())

    def default_loss(self):
        """The paper's mean squared error of the scores against one-hot labels."""
        return keras.losses.MeanSquaredError()

    def _build_heads(self, embedding_shape):
        pair_shape = tuple(embedding_shape[:-1]) + (2 * embedding_shape[-1],)
        if not self.relation_module.built:
            self.relation_module.build(pair_shape)
        output_shape = tuple(self.relation_module.compute_output_shape(pair_shape))
        if output_shape[1:] != (1,):
            raise ValueError(
                "The `relation_module` must map each pair to one score, output shape "
                f"(pairs, 1). Received: output shape {output_shape} for pairs of shape "
                f"{pair_shape}")

    def _scores(self, support, support_one_hot, query, training):
        feature_shape = tuple(support.shape[2:])
        flat_size = int(np.prod(feature_shape))
        flat_support = ops.reshape(support, (-1, dimension(support, 1), flat_size))
        class_features, _ = class_sums(flat_support, support_one_hot)
        num_labels, query_size = dimension(support_one_hot, 2), dimension(query, 1)
        class_features = ops.reshape(class_features, (-1, 1, num_labels) + feature_shape)
        pairs = ops.concatenate(
            [ops.repeat(class_features, query_size, axis=1),
             ops.repeat(ops.expand_dims(query, 2), num_labels, axis=2)], axis=-1)
        pair_shape = feature_shape[:-1] + (2 * feature_shape[-1],)
        scores = self.relation_module(ops.reshape(pairs, (-1,) + pair_shape), training=training)
        scores = ops.reshape(ops.cast(scores, "float32"), (-1, query_size, num_labels))
        return mask_absent_labels(scores, support_one_hot, absent_score=0.0)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # The scores regress on one-hot labels; the metrics still get the integer labels.
        if y is not None:
            y = ops.one_hot(ops.cast(y, "int32"), y_pred.shape[-1])
        return super().compute_loss(x, y, y_pred, sample_weight, training)

    def get_config(self):
        config = super().get_config()
        config["relation_module"] = keras.saving.serialize_keras_object(self.relation_module)
        return config
