"""SimSiam: Siamese pre-training without negatives, momentum encoder or large batches."""

import keras

from keras_efficient.ssl.projection_head import ProjectionHead
from keras_efficient.ssl.self_supervised_model import SelfSupervisedModel
from keras_efficient.ssl.simsiam_loss import SimSiamLoss
from keras_efficient.utils import register


@register("keras_efficient.models.SimSiam")
class SimSiam(SelfSupervisedModel):
    """SimSiam: predict one view's projection from the other's, with a stop-gradient.

    Both views go through the encoder `f` and projector `g` (`z = g(f(x))`),
    and a predictor `h` maps one view's `z` to the other's:
    `L = D(h(z1), stopgrad(z2)) / 2 + D(h(z2), stopgrad(z1)) / 2` with
    `D = -cos` (`SimSiamLoss`). The stop-gradient prevents collapse; watch the
    logged `embedding_std` (it falls to 0 when the outputs collapse).

    Differs from keras-io's `SimSiam(encoder, predictor)` on purpose (the
    projector is a separate argument here): keras-io's encoder already ends in
    the projector, so write `SimSiam(encoder, projection_head=
    keras.layers.Identity(), predictor=predictor)`.

    Args:
        encoder: a Keras layer/model mapping images to vectors `(batch_size, dim)`.
        projection_head: the projector `g`; default
            `ProjectionHead((256,), 128, output_batch_norm=True)` (the paper's
            projector has BatchNorm on its output too).
        predictor: the predictor `h`; default `ProjectionHead((64,), 128)`, a
            bottleneck (the paper: 2048 -> 512 -> 2048).
        augmenter: the view generator; default `SimCLRAugmentation()`.
        **kwargs: `keras.Model` arguments.

    Call arguments:
        inputs: images; returns the encoder's representations.

    Returns:
        Representations `(batch_size, dim)` when called.

    Example:

    >>> import keras, numpy as np, keras_efficient as ke
    >>> encoder = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
    ...                             keras.layers.Dense(16)])
    >>> model = SimSiam(encoder, augmenter=ke.layers.SimCLRAugmentation.from_preset("digits"))
    >>> model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    >>> history = model.fit(np.random.rand(32, 8, 8, 1), batch_size=16, verbose=0)

    Reference:
        Chen and He, "Exploring Simple Siamese Representation Learning", CVPR
        2021 (https://arxiv.org/abs/2011.10566).
    """

    _config_layers = (*SelfSupervisedModel._config_layers, "projection_head", "predictor")

    def __init__(self, encoder, projection_head=None, predictor=None, augmenter=None,
                 **kwargs):
        super().__init__(encoder, augmenter, **kwargs)
        self.projection_head = projection_head if projection_head is not None \
            else ProjectionHead((256,), 128, output_batch_norm=True)
        self.predictor = predictor if predictor is not None else ProjectionHead((64,), 128)
        self.similarity_loss = SimSiamLoss()

    def _build_heads(self, input_shape, representation_shape):
        if not self.projection_head.built:
            self.projection_head.build(representation_shape)
        projection_shape = self.projection_head.compute_output_shape(representation_shape)
        if not self.predictor.built:
            self.predictor.build(projection_shape)

    def _pair_loss(self, view_a, view_b, training):
        z_a, z_b = self._through([self.encoder, self.projection_head], view_a, view_b,
                                 training)
        p_a, p_b = self._through([self.predictor], z_a, z_b, training)
        loss = 0.5 * self.similarity_loss(z_b, p_a) + 0.5 * self.similarity_loss(z_a, p_b)
        return loss, z_a

    def get_config(self):
        config = super().get_config()
        config.update(projection_head=keras.saving.serialize_keras_object(self.projection_head),
                      predictor=keras.saving.serialize_keras_object(self.predictor))
        return config
