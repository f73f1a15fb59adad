"""The training loop the SimCLR, BYOL and SimSiam models share."""

import keras
from keras import ops

from keras_efficient import backend
from keras_efficient.ssl.augmentation import SimCLRAugmentation
from keras_efficient.ssl.embeddings import check_pair_shapes
from keras_efficient.ssl.embeddings import embedding_std
from keras_efficient.utils import from_config_with_layers

VIEW_KEYS = ("view_a", "view_b")


class SelfSupervisedModel(backend.StatefulSteps, keras.Model):
    """Base of the two-view self-supervised models: views in, loss out, encoder kept.

    `fit` takes unlabeled images (labels, if the dataset has them, are ignored).
    Each batch becomes two views: augmented twice with `augmenter` in the train
    step, or taken as given when the input is a dict `{"view_a": ..., "view_b":
    ...}` (for example from `dataset.map(augmenter.two_views)`) or, as in
    keras-io's SimSiam and SimCLR examples, a `(view_1, view_2)` tuple of two
    image batches of the same shape (`tf.data.Dataset.zip((views_1,
    views_2))`). Each view goes through the networks on its own (BatchNorm
    statistics per view).

    Logged metrics: `loss` and `embedding_std`, the per-dimension standard
    deviation of the L2-normalized projections averaged over dimensions, which
    falls towards 0 when the representation collapses (healthy: about
    `1 / sqrt(dim)`).

    Calling the model returns the encoder's representations, so `predict` gives
    features; `model.encoder` is the network to reuse downstream.

    Subclasses implement `_build_heads(input_shape, representation_shape)` and
    `_pair_loss(view_a, view_b, training) -> (loss, projections)`, with `loss`
    reduced by a Keras loss (so already divided by the replica count).
    """

    # The config entries that hold layers, deserialized by `from_config`; a
    # subclass that serializes more layers adds their keys.
    _config_layers = ("encoder", "augmenter")

    def __init__(self, encoder, augmenter=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(encoder, keras.layers.Layer):
            raise TypeError(
                "Invalid type received for argument `encoder`. Expected a Keras layer or "
                f"model mapping images to vectors. Received: encoder of type "
                f"{type(encoder).__name__}"
            )
        self.encoder = encoder
        self.augmenter = augmenter if augmenter is not None else SimCLRAugmentation()
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.std_tracker = keras.metrics.Mean(name="embedding_std")

    @property
    def metrics(self):
        return [self.loss_tracker, self.std_tracker]

    def build(self, input_shape):
        if isinstance(input_shape, dict):
            input_shape = input_shape[VIEW_KEYS[0]]
        elif input_shape and isinstance(input_shape[0], (tuple, list)):
            # JAX's trainer builds from `fit`'s x before the step: keras-io's
            # `(view_1, view_2)` pair, checked as the step checks it.
            views = _views_or_images((tuple(keras.KerasTensor(shape) for shape in input_shape),))
            input_shape = views[VIEW_KEYS[0]].shape
        input_shape = tuple(input_shape)
        if not self.encoder.built:
            self.encoder.build(input_shape)
        representation_shape = tuple(self.encoder.compute_output_shape(input_shape))
        if len(representation_shape) != 2:
            raise ValueError(
                "The `encoder` must map each image to a vector, output shape (batch_size, "
                f"dim); add pooling or Flatten. Received: encoder output shape "
                f"{representation_shape} for input shape {input_shape}"
            )
        self._build_heads(input_shape, representation_shape)
        self.built = True

    def call(self, inputs, training=False):
        if isinstance(inputs, dict):
            inputs = inputs[VIEW_KEYS[0]]
        return self.encoder(inputs, training=training)

    def _views(self, x):
        if isinstance(x, dict):
            if set(x) != set(VIEW_KEYS):
                raise ValueError(
                    f"Expected images or a dict with keys {list(VIEW_KEYS)} as input. "
                    f"Received: a dict with keys {sorted(x)}"
                )
            view_a, view_b = x[VIEW_KEYS[0]], x[VIEW_KEYS[1]]
            check_pair_shapes(view_a, view_b, names=VIEW_KEYS, rank=len(view_a.shape))
            return view_a, view_b
        return self.augmenter(x, training=True), self.augmenter(x, training=True)

    @staticmethod
    def _through(networks, view_a, view_b, training):
        """The `networks` in turn on each view.

        Two passes rather than one over the concatenated views: BatchNorm
        statistics stay per view, as in the SimSiam and keras-io
        implementations, and two passes were not slower (the method card has
        the measurement, `keras-efficient bench ssl_simclr_step`).
        """
        outputs = []
        for view in (view_a, view_b):
            for network in networks:
                view = network(view, training=training)
            outputs.append(view)
        return outputs

    def _step(self, data, training):
        x = _views_or_images(data)
        if not self.built:
            # Without a strategy `fit` defers building to the first trace of the
            # train function, and this step never calls `self`: build here.
            images = x[VIEW_KEYS[0]] if isinstance(x, dict) else x
            self.build((None,) + tuple(images.shape[1:]))
        view_a, view_b = self._views(x)
        replicas = backend.replicas_in_sync()

        def scaled_loss():
            loss, projections = self._pair_loss(view_a, view_b, training=training)
            if training and self.losses:
                # Regularization losses, pre-divided by the replica count like `loss`.
                loss = loss + ops.sum(self.losses) / replicas
            scaled = self.optimizer.scale_loss(loss) if training else loss
            return scaled, (loss, projections)

        if training:
            # One step on both backends; `backend` takes the gradients.
            variables = self.trainable_variables
            _, (loss, projections), gradients = backend.value_and_gradients(
                scaled_loss, variables)
            backend.apply_gradients(self.optimizer, gradients, variables)
            self._after_update()
        else:
            _, (loss, projections) = scaled_loss()
        self.loss_tracker.update_state(loss * replicas)
        self.std_tracker.update_state(embedding_std(projections))
        return {metric.name: metric.result() for metric in self.metrics}

    def stateful_train_step(self, data):
        return self._step(data, training=True)

    def stateful_test_step(self, data):
        return self._step(data, training=False)

    def _after_update(self):
        """Hook run after each optimizer step (BYOL updates its target here)."""

    def get_config(self):
        config = super().get_config()
        config.update(encoder=keras.saving.serialize_keras_object(self.encoder),
                      augmenter=keras.saving.serialize_keras_object(self.augmenter))
        return config

    @classmethod
    def from_config(cls, config):
        return from_config_with_layers(cls, config, *cls._config_layers)


def _is_image_batch(x):
    return not isinstance(x, (dict, tuple, list)) and len(getattr(x, "shape", ())) >= 3


def _views_or_images(data):
    """`fit`'s batch as images, or as a `{"view_a", "view_b"}` dict of given views.

    A `(view_1, view_2)` pair of same-shape image batches (keras-io's zipped
    datasets) is two views; a second element of another shape is a label.
    """
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    pair = x if isinstance(x, (tuple, list)) else (x, y)
    if (len(pair) == 2 and all(_is_image_batch(view) for view in pair)
            and tuple(pair[0].shape) == tuple(pair[1].shape)):
        return dict(zip(VIEW_KEYS, pair))
    if not isinstance(x, (tuple, list)):
        return x
    shapes = keras.tree.map_structure(lambda t: tuple(getattr(t, "shape", ())), x)
    raise ValueError(
        "Expected a batch of images `(batch_size, height, width, channels)` (optionally "
        "with labels, which are ignored), a `(view_1, view_2)` tuple of two image batches "
        f"of the same shape, or a dict with keys {list(VIEW_KEYS)}. Received: x of "
        f"shape(s) {shapes}"
    )
