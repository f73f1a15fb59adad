"""Prototypical networks: classify a query by its distance to the class means."""

from keras import ops

from keras_efficient.meta_learning.distances import cosine_similarities
from keras_efficient.meta_learning.distances import squared_euclidean_distances
from keras_efficient.meta_learning.episodic_model import EpisodicModel
from keras_efficient.meta_learning.episodic_model import class_sums
from keras_efficient.meta_learning.episodic_model import mask_absent_labels
from keras_efficient.utils import register
from keras_efficient.utils import validate_choice

DISTANCES = ("squared_euclidean", "cosine")


@register("keras_efficient.models.PrototypicalNetwork")
class PrototypicalNetwork(EpisodicModel):
    """Prototypical network: the logits of a query are its negative squared
    distances to the class prototypes, the means of the support embeddings.

    For each episode, `c_k = mean_{i: y_i = k} f(x_i)` over the support set,
    and a query `q` gets logits `-||f(q) - c_k||^2` (`distance=
    "squared_euclidean"`, the paper's choice: a Bregman divergence, so the
    class mean is the right prototype), or `cos(f(q), c_k)` (`"cosine"`, which
    the paper found worse). Trained with `fit` on episodes with crossentropy
    on the queries (the default `compile` loss). The model is its encoder:
    nothing is learned besides it, and it can classify any N-way K-shot
    episode after training.

    Args:
        encoder: a Keras layer or model mapping items to embeddings (feature
            maps are flattened).
        distance: "squared_euclidean" (default) or "cosine".
        n_way: the number of labels of the output; default: the support-set
            size, with labels absent from the support set masked (see
            `EpisodicModel`).
        **kwargs: `keras.Model` arguments.

    Call arguments:
        inputs: an episode batch `(support_x, support_y, query_x)`.
        training: passed to the encoder.

    Returns:
        Query logits `(meta_batch, query_size, num_labels)`, float32.

    Example:

    >>> import keras, numpy as np
    >>> encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8)])
    >>> model = PrototypicalNetwork(encoder, n_way=2)
    >>> model.compile(optimizer="adam", metrics=["accuracy"])
    >>> support_x, query_x = np.random.rand(3, 4, 4), np.random.rand(3, 6, 4)
    >>> support_y = np.tile([0, 0, 1, 1], (3, 1))
    >>> query_y = np.tile([0, 0, 0, 1, 1, 1], (3, 1))
    >>> history = model.fit((support_x, support_y, query_x), query_y, verbose=0)
    >>> model.predict((support_x, support_y, query_x), verbose=0).shape
    (3, 6, 2)

    Reference:
        Snell, Swersky, Zemel, "Prototypical Networks for Few-shot Learning",
        NeurIPS 2017 (https://arxiv.org/abs/1703.05175), eq. 1-2.
    """

    def __init__(self, encoder, distance="squared_euclidean", n_way=None, **kwargs):
        super().__init__(encoder, n_way=n_way, **kwargs)
        self.distance = validate_choice("distance", distance, DISTANCES)

    def _scores(self, support, support_one_hot, query, training):
        sums, counts = class_sums(support, support_one_hot)
        prototypes = sums / ops.maximum(counts, 1.0)
        if self.distance == "cosine":
            logits = cosine_similarities(query, prototypes)
        else:
            logits = -squared_euclidean_distances(query, prototypes)
        return mask_absent_labels(logits, support_one_hot)

    def get_config(self):
        config = super().get_config()
        config["distance"] = self.distance
        return config
