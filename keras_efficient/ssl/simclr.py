"""SimCLR: contrastive pre-training with NT-Xent."""

import keras

from keras_efficient.schedules import step_counter
from keras_efficient.ssl.nt_xent import NTXent
from keras_efficient.ssl.projection_head import ProjectionHead
from keras_efficient.ssl.self_supervised_model import SelfSupervisedModel
from keras_efficient.utils import register


@register("keras_efficient.models.SimCLR")
class SimCLR(SelfSupervisedModel):
    """SimCLR: pull two views of an image together, push all other images away.

    Every image is augmented twice; the encoder `f` and projection head `g`
    map both views to `z = g(f(x))`, and `NTXent` treats the other view as the
    positive and the 2N - 2 other embeddings of the batch as negatives (all
    replicas' under `tf.distribute`). Train with `model.fit(images)`; use
    `model.encoder` (without the head) downstream.

    Args:
        encoder: a Keras layer/model mapping images to vectors `(batch_size, dim)`.
        projection_head: the head `g`; default `ProjectionHead()` (256 -> 128,
            BatchNorm, as the paper with smaller widths).
        augmenter: the view generator; default `SimCLRAugmentation()` (the
            ImageNet recipe without blur; see `SimCLRAugmentation.from_preset`).
        temperature: NT-Xent temperature, > 0, or a schedule of it per optimizer
            step (`ke.schedules.Annealing`), counted by the model's `steps_trained`.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: images; returns the encoder's representations.

    Returns:
        Representations `(batch_size, dim)` when called.

    Example:

    >>> import keras, numpy as np, keras_efficient as ke
    >>> encoder = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
    ...                             keras.layers.Dense(16)])
    >>> model = SimCLR(encoder, ke.layers.ProjectionHead((16,), 8),
    ...                ke.layers.SimCLRAugmentation.from_preset("digits", seed=1))
    >>> model.compile(optimizer="adam")
    >>> history = model.fit(np.random.rand(32, 8, 8, 1), batch_size=16, verbose=0)
    >>> sorted(history.history)
    ['embedding_std', 'loss']

    Reference:
        Chen et al., "A Simple Framework for Contrastive Learning of Visual
        Representations", ICML 2020 (https://arxiv.org/abs/2002.05709).
    """

    _config_layers = (*SelfSupervisedModel._config_layers, "projection_head")

    def __init__(self, encoder, projection_head=None, augmenter=None, temperature=0.5,
                 **kwargs):
        super().__init__(encoder, augmenter, **kwargs)
        self.contrastive_loss = NTXent(temperature=temperature)
        self.temperature = self.contrastive_loss.temperature
        self.steps_trained = step_counter.link_step_counter(self, self.contrastive_loss)
        self.projection_head = projection_head if projection_head is not None \
            else ProjectionHead()

    def _build_heads(self, input_shape, representation_shape):
        if not self.projection_head.built:
            self.projection_head.build(representation_shape)

    def _pair_loss(self, view_a, view_b, training):
        z_a, z_b = self._through([self.encoder, self.projection_head], view_a, view_b,
                                 training)
        loss = self.contrastive_loss(z_a, z_b)
        step_counter.count_step(self.steps_trained, training)
        return loss, z_a

    def get_config(self):
        config = super().get_config()
        config.update(projection_head=keras.saving.serialize_keras_object(self.projection_head),
                      temperature=step_counter.serialize_scheduled(self.temperature))
        return config
