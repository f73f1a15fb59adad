"""Siamese networks: one encoder applied to both items of a pair, trained on their distance."""

import keras
import numpy as np
from keras import ops

from keras_efficient.meta_learning.distances import safe_sqrt
from keras_efficient.utils import export
from keras_efficient.utils import from_config_with_layers
from keras_efficient.utils import register
from keras_efficient.utils import validate_seed
from keras_efficient.utils import validate_size


def check_encoder(encoder):
    """Raise a `TypeError` unless `encoder` is a Keras layer (or model)."""
    if not isinstance(encoder, keras.layers.Layer):
        raise TypeError(
            "Invalid type received for argument `encoder`. Expected a Keras layer or model "
            f"mapping inputs to embeddings. Received: encoder of type {type(encoder).__name__}"
        )
    return encoder


@register("keras_efficient.models.SiameseNetwork")
class SiameseNetwork(keras.Model):
    """A siamese network: the Euclidean distance between two inputs' embeddings.

    Both items of a pair go through the same `encoder` (shared weights, in one
    pass over the concatenated pair), and the model outputs their distance
    `||f(x_a) - f(x_b)||`. Train it with `ContrastiveLoss` on pairs labelled 1
    (same class) or 0 (different classes), e.g. from `contrastive_pairs`; for
    few-shot classification, compare a query with the support examples in the
    learned embedding (`PrototypicalNetwork(siamese.encoder)` classifies by the
    nearest class mean, which for one shot is the nearest support example).

    Args:
        encoder: a Keras layer or model mapping inputs to embeddings
            `(batch_size, dim)` (feature maps are flattened).
        **kwargs: `keras.Model` arguments.

    Call arguments:
        inputs: a pair `(x_a, x_b)` of batches of the same shape.

    Returns:
        Distances `(batch_size,)`, float32.

    Example:

    >>> import keras, numpy as np, keras_efficient as ke
    >>> encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> model = SiameseNetwork(encoder)
    >>> model.compile(optimizer="adam", loss=ke.losses.ContrastiveLoss(margin=1.0))
    >>> x_a, x_b = np.random.rand(8, 4), np.random.rand(8, 4)
    >>> history = model.fit((x_a, x_b), np.array([1, 0] * 4), verbose=0)
    >>> model.predict((x_a, x_b), verbose=0).shape
    (8,)

    Reference:
        Bromley et al., "Signature Verification using a Siamese Time Delay
        Neural Network", NIPS 1993; Hadsell, Chopra, LeCun, "Dimensionality
        Reduction by Learning an Invariant Mapping", CVPR 2006; Koch, Zemel,
        Salakhutdinov, "Siamese Neural Networks for One-shot Image
        Recognition", ICML deep learning workshop 2015.
    """

    def __init__(self, encoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = check_encoder(encoder)

    def build(self, input_shape):
        first_shape = tuple(input_shape[0])
        if not self.encoder.built:
            self.encoder.build(first_shape)
        self.built = True

    def call(self, inputs, training=False):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError("Expected `inputs` to be a pair `(x_a, x_b)`. Received: "
                             f"{type(inputs).__name__}")
        x_a, x_b = inputs
        batch_size = ops.shape(x_a)[0]
        embeddings = self.encoder(ops.concatenate([x_a, x_b], axis=0), training=training)
        embeddings = ops.reshape(ops.cast(embeddings, "float32"), (2, batch_size, -1))
        return safe_sqrt(ops.sum(ops.square(embeddings[0] - embeddings[1]), axis=-1))

    def get_config(self):
        config = super().get_config()
        config["encoder"] = keras.saving.serialize_keras_object(self.encoder)
        return config

    @classmethod
    def from_config(cls, config):
        return from_config_with_layers(cls, config, "encoder")


@export("keras_efficient.data.contrastive_pairs")
def contrastive_pairs(x, y, num_pairs, seed=None):
    """Balanced pairs for a siamese network: half of the same class, half not.

    Args:
        x: items, `(n, ...)`.
        y: integer class labels, `(n,)`, at least two classes.
        num_pairs: how many pairs to draw (even).
        seed: seed of the draw.

    Returns:
        `((x_a, x_b), similar)` with `similar` 1.0 for a same-class pair and
        0.0 otherwise, float32 `(num_pairs,)`; the two kinds alternate.
    """
    validate_size("num_pairs", num_pairs, 2)
    if num_pairs % 2:
        raise ValueError("Invalid value received for argument `num_pairs`. Expected an even "
                         f"integer (half similar, half dissimilar). Received: "
                         f"num_pairs={num_pairs}")
    y = np.asarray(y).reshape(-1)
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError(f"Expected labels `y` of at least two classes. Received: {classes}")
    rng = np.random.default_rng(validate_seed("seed", seed))
    members = {label: np.flatnonzero(y == label) for label in classes}
    first, second = [], []
    for index in range(num_pairs):
        label, other = rng.choice(classes, size=2, replace=False)
        first.append(rng.choice(members[label]))
        second.append(rng.choice(members[label] if index % 2 == 0 else members[other]))
    similar = (np.arange(num_pairs) % 2 == 0).astype("float32")
    return (x[np.array(first)], x[np.array(second)]), similar
