"""BYOL: an online network predicts a slowly moving target network's projection."""

import math

import keras
from keras import ops

from keras_efficient.ssl.byol_loss import BYOLLoss
from keras_efficient.ssl.projection_head import ProjectionHead
from keras_efficient.ssl.self_supervised_model import SelfSupervisedModel
from keras_efficient.utils import register
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_size


def _target_copy(layer):
    """A fresh, unconnected copy of `layer` (same config, new weights) named `target_*`."""
    config = keras.saving.serialize_keras_object(layer)
    config["config"]["name"] = f"target_{layer.name}"
    copy = keras.saving.deserialize_keras_object(config)
    copy.trainable = False
    return copy


def target_decay_at(step, base_decay, decay_steps):
    """BYOL's decay `1 - (1 - base) (cos(pi k / K) + 1) / 2`: base at k=0, 1 at k=K.

    `decay_steps` 0 (unknown) keeps the decay at `base_decay`.
    """
    step = ops.cast(step, "float32")
    decay_steps = ops.cast(decay_steps, "float32")
    progress = ops.where(decay_steps > 0,
                         ops.minimum(step / ops.maximum(decay_steps, 1.0), 1.0), 0.0)
    return 1.0 - (1.0 - base_decay) * (ops.cos(math.pi * progress) + 1.0) / 2.0


@register("keras_efficient.models.BYOL")
class BYOL(SelfSupervisedModel):
    """Bootstrap Your Own Latent: predict a moving-average target's view of the image.

    The online network (encoder `f`, projector `g`, predictor `q`) predicts the
    projection that the target network (copies of `f` and `g`) gives the other
    view: `L = BYOLLoss(z'_b, q(z_a)) + BYOLLoss(z'_a, q(z_b))` (the paper's
    symmetrized sum). Only the online network is trained (the target's layers
    are not trainable and get no gradient); after every optimizer step the
    target moves towards it: `target <- tau * target + (1 - tau) * online`, with
    `tau` rising from `target_decay` to 1 along a cosine over training.

    The moving average covers all float weights, BatchNorm statistics included;
    since the target's layers are frozen, its BatchNorm uses those averaged
    statistics rather than batch statistics (the paper's target uses batch
    statistics).

    Args:
        encoder: a Keras layer/model mapping images to vectors `(batch_size, dim)`.
        projection_head: the projector `g`; default `ProjectionHead((256,), 128)`.
        predictor: the predictor `q`; default `ProjectionHead((256,), 128)` (the
            paper: 4096 -> 256 for both).
        augmenter: the view generator; default `SimCLRAugmentation()`.
        target_decay: base decay `tau_base` in [0, 1] (paper: 0.996).
        decay_steps: steps `K` of the cosine from `tau_base` to 1; `None` takes
            the steps of each `fit` call (epochs x steps per epoch, counted from
            the optimizer's current step), or keeps `tau_base` when `fit` cannot
            tell the number of steps.
        **kwargs: `keras.Model` arguments.

    Call arguments:
        inputs: images; returns the online encoder's representations.

    Returns:
        Representations `(batch_size, dim)` when called.

    Example:

    >>> import keras, numpy as np, keras_efficient as ke
    >>> encoder = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
    ...                             keras.layers.Dense(16)])
    >>> model = BYOL(encoder, augmenter=ke.layers.SimCLRAugmentation.from_preset("digits"))
    >>> model.compile(optimizer="adam")
    >>> history = model.fit(np.random.rand(32, 8, 8, 1), batch_size=16, verbose=0)

    Reference:
        Grill et al., "Bootstrap Your Own Latent: A New Approach to
        Self-Supervised Learning", NeurIPS 2020 (https://arxiv.org/abs/2006.07733),
        section 3.2 and appendix J.
    """

    _config_layers = (*SelfSupervisedModel._config_layers, "projection_head", "predictor")

    def __init__(self, encoder, projection_head=None, predictor=None, augmenter=None,
                 target_decay=0.996, decay_steps=None, **kwargs):
        super().__init__(encoder, augmenter, **kwargs)
        self.target_decay = validate_number("target_decay", target_decay, 0, 1)
        if decay_steps is not None:
            validate_size("decay_steps", decay_steps)
        self.decay_steps = decay_steps
        self.projection_head = projection_head if projection_head is not None \
            else ProjectionHead((256,), 128)
        self.predictor = predictor if predictor is not None else ProjectionHead((256,), 128)
        self.target_encoder = _target_copy(self.encoder)
        self.target_projection_head = _target_copy(self.projection_head)
        self.regression_loss = BYOLLoss()
        self.total_decay_steps = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(decay_steps or 0),
            trainable=False, name="total_decay_steps")
        self.target_initialized = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="target_initialized")

    def _build_heads(self, input_shape, representation_shape):
        if not self.target_encoder.built:
            self.target_encoder.build(input_shape)
        projection_shape = self.projection_head.compute_output_shape(representation_shape)
        for head, shape in ((self.projection_head, representation_shape),
                            (self.target_projection_head, representation_shape),
                            (self.predictor, projection_shape)):
            if not head.built:
                head.build(shape)

    def _target_pairs(self):
        online = self.encoder.weights + self.projection_head.weights
        target = self.target_encoder.weights + self.target_projection_head.weights
        # Float weights only: seed-generator states are integers.
        return [(t, o) for t, o in zip(target, online) if "float" in str(o.dtype)]

    def _initialize_target(self):
        # The target starts as a copy of the online network. Copied at the first
        # step, not in `build`: `fit` may build the model while tracing its train
        # function, where the new variables' values cannot be read yet.
        # A select rather than a conditional holding the writes: JAX's
        # conditionals cannot write variables.
        initialized = self.target_initialized > 0
        for target, online in self._target_pairs():
            target.assign(ops.where(initialized, target.value, online.value))
        self.target_initialized.assign(1.0)

    def _pair_loss(self, view_a, view_b, training):
        self._initialize_target()
        z_a, z_b = self._through([self.encoder, self.projection_head], view_a, view_b,
                                 training)
        p_a, p_b = self._through([self.predictor], z_a, z_b, training)
        t_a, t_b = self._through([self.target_encoder, self.target_projection_head],
                                 view_a, view_b, training)
        t_a, t_b = ops.stop_gradient(t_a), ops.stop_gradient(t_b)
        loss = self.regression_loss(t_b, p_a) + self.regression_loss(t_a, p_b)
        return loss, z_a

    def current_target_decay(self, step=None):
        """The decay `tau` of optimizer step `step` (default: the step just taken)."""
        step = self.optimizer.iterations - 1 if step is None else step
        return target_decay_at(step, self.target_decay, self.total_decay_steps)

    def _after_update(self):
        decay = self.current_target_decay()
        for target, online in self._target_pairs():
            target.assign(decay * target + (1.0 - decay) * online)

    def fit(self, *args, **kwargs):
        if self.decay_steps is None:
            kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + [_DecayStepsOfFit()]
        return super().fit(*args, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(projection_head=keras.saving.serialize_keras_object(self.projection_head),
                      predictor=keras.saving.serialize_keras_object(self.predictor),
                      target_decay=self.target_decay, decay_steps=self.decay_steps)
        return config


class _DecayStepsOfFit(keras.callbacks.Callback):
    """Sets BYOL's cosine length to the end of this `fit` call, when it is known."""

    def on_train_begin(self, logs=None):
        steps, epochs = self.params.get("steps"), self.params.get("epochs")
        if steps:
            done = int(self.model.optimizer.iterations.numpy())
            self.model.total_decay_steps.assign(float(done + steps * epochs))
