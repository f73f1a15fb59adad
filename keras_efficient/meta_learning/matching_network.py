"""Matching networks: a query's label distribution is attention over the support set."""

import keras
import numpy as np
from keras import ops

from keras_efficient.meta_learning.distances import cosine_similarities
from keras_efficient.meta_learning.episodic_model import EpisodicModel
from keras_efficient.meta_learning.episodic_model import check_episode
from keras_efficient.meta_learning.episodic_model import mask_absent_labels
from keras_efficient.utils import register
from keras_efficient.utils import validate_size


@register("keras_efficient.models.MatchingNetwork")
class MatchingNetwork(EpisodicModel):
    """Matching network: `P(y = k | q, S) = sum_i a(q, x_i) [y_i = k]`, with the
    attention `a` a softmax over the support set of cosine similarities.

    `a(q, x_i) = exp(cos(f(q), g(x_i))) / sum_j exp(cos(f(q), g(x_j)))`, so
    the attention of a query sums to 1 over the support set and the label
    probabilities sum to 1 over the labels. The model outputs their logarithm,
    which are logits (softmax gives the probabilities back), so the default
    crossentropy `compile` loss is the paper's `-log P(y | q, S)`.

    Without full-context embeddings `f = g = encoder`. With
    `full_context_embeddings=True`, as in the paper: `g(x_i)` adds to the
    encoder's embedding the two directions of a bidirectional LSTM run over
    the episode's support set (in its given order), and `f(q)` is the
    attention LSTM, which reads the support set `processing_steps` times:
    `h_k, c_k = LSTM(f'(q), [h_{k-1}, r_{k-1}], c_{k-1})`, `h_k += f'(q)`,
    `r_k = sum_i softmax(h_k . g(x_i)) g(x_i)` (state starting at zeros).

    Args:
        encoder: a Keras layer or model mapping items to embeddings (feature
            maps are flattened).
        full_context_embeddings: whether to use the paper's full-context
            embeddings (FCE). Defaults to False.
        processing_steps: the attention LSTM's number of reads of the support
            set, with FCE (the paper's `K`, for which it gives no value).
            Defaults to 2.
        n_way: the number of labels of the output; default: the support-set
            size, with labels absent from the support set masked (see
            `EpisodicModel`).
        **kwargs: `keras.Model` arguments.

    Call arguments:
        inputs: an episode batch `(support_x, support_y, query_x)`.
        training: passed to the encoder.

    Returns:
        Query log-probabilities `(meta_batch, query_size, num_labels)`, float32.

    Example:

    >>> import keras, numpy as np
    >>> encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8)])
    >>> model = MatchingNetwork(encoder, n_way=2)
    >>> episode = (np.random.rand(3, 4, 4), np.tile([0, 0, 1, 1], (3, 1)),
    ...            np.random.rand(3, 6, 4))
    >>> attention = model.support_attention(episode)  # (3, 6, 4), rows sum to 1
    >>> bool(np.allclose(np.sum(attention, axis=-1), 1.0, atol=1e-6))
    True

    Reference:
        Vinyals, Blundell, Lillicrap, Kavukcuoglu, Wierstra, "Matching Networks
        for One Shot Learning", NeurIPS 2016 (https://arxiv.org/abs/1606.04080),
        eq. 1-2 and appendix A.2.
    """

    def __init__(self, encoder, full_context_embeddings=False, processing_steps=2, n_way=None,
                 **kwargs):
        super().__init__(encoder, n_way=n_way, **kwargs)
        if not isinstance(full_context_embeddings, bool):
            raise TypeError("Invalid type received for argument `full_context_embeddings`. "
                            f"Expected a bool. Received: {full_context_embeddings!r}")
        self.full_context_embeddings = full_context_embeddings
        self.processing_steps = validate_size("processing_steps", processing_steps)
        self.support_context = None
        self.query_reader = None

    def _build_heads(self, embedding_shape):
        if not self.full_context_embeddings:
            return
        dim = int(np.prod(embedding_shape[1:]))
        self.support_context = keras.layers.Bidirectional(
            keras.layers.LSTM(dim, return_sequences=True), merge_mode="sum",
            name="support_context")
        self.support_context.build((None, None, dim))
        # The LSTM sees [f'(q), r] as input and h as state: its gates are linear in
        # [f'(q), h, r], the paper's LSTM on the concatenated state [h, r].
        self.query_reader = keras.layers.LSTMCell(dim, name="query_reader")
        self.query_reader.build((None, 2 * dim))

    def support_attention(self, inputs, training=False):
        """The attention `a(q, x_i)` of every query over its episode's support set.

        Returns:
            `(meta_batch, query_size, support_size)`, each row summing to 1.
        """
        support_x, _, query_x = check_episode(inputs)
        if not self.built:
            self.build(tuple(tuple(x.shape) for x in inputs))
        support, query = self._contextual(*self.embed_episode(support_x, query_x, training))
        return ops.softmax(cosine_similarities(query, support), axis=-1)

    def _contextual(self, support, query):
        if not self.full_context_embeddings:
            return support, query
        # The LSTMs compute in the policy's dtype; the attention in float32.
        support = support + ops.cast(self.support_context(support), "float32")
        dim = support.shape[-1]
        flat_query = ops.reshape(query, (-1, dim))
        hidden = ops.zeros_like(flat_query)
        cell_state = ops.zeros_like(flat_query)
        readout = ops.zeros_like(query)
        for _ in range(self.processing_steps):
            step_input = ops.concatenate([flat_query, ops.reshape(readout, (-1, dim))], axis=-1)
            hidden, (_, cell_state) = self.query_reader(step_input, [hidden, cell_state])
            hidden = ops.cast(hidden, "float32") + flat_query
            cell_state = ops.cast(cell_state, "float32")
            episode_hidden = ops.reshape(hidden, ops.shape(query))
            weights = ops.softmax(ops.matmul(episode_hidden, ops.swapaxes(support, 1, 2)), axis=-1)
            readout = ops.matmul(weights, support)
        return support, episode_hidden

    def _scores(self, support, support_one_hot, query, training):
        support, query = self._contextual(support, query)
        attention = ops.softmax(cosine_similarities(query, support), axis=-1)
        probabilities = ops.matmul(attention, ops.cast(support_one_hot, attention.dtype))
        # log(0) of an absent label would make the gradient of `where` NaN: take
        # the log of 1 there and mask it afterwards.
        present = ops.sum(support_one_hot, axis=1, keepdims=True) > 0
        log_probabilities = ops.log(ops.where(present, probabilities, 1.0))
        return mask_absent_labels(log_probabilities, support_one_hot)

    def get_config(self):
        config = super().get_config()
        config.update(full_context_embeddings=self.full_context_embeddings,
                      processing_steps=self.processing_steps)
        return config
