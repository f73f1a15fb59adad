"""Downstream evaluation of a pre-trained encoder: linear probe and fine-tuning."""

import keras

from keras_efficient.utils import export
from keras_efficient.utils import validate_size


def _classifier(encoder, num_classes, train_encoder, name, initial_head=None):
    validate_size("num_classes", num_classes, low=2)
    if not isinstance(encoder, keras.layers.Layer):
        raise TypeError(
            "Invalid type received for argument `encoder`. Expected a built Keras model. "
            f"Received: encoder of type {type(encoder).__name__}"
        )
    if not encoder.built or not hasattr(encoder, "input_shape"):
        raise ValueError(
            "The `encoder` must be a built Keras model with a known input shape (e.g. "
            "`model.encoder` after pre-training). Received: an unbuilt "
            f"{type(encoder).__name__}"
        )
    # On TensorFlow, `layer.trainable = value` is skipped when `layer.trainable`
    # already equals `value` (TF's trackable `__setattr__` short-circuits), even if
    # sublayers differ: a fresh wrapper around an encoder frozen by an earlier
    # linear probe (e.g. `vae.mean_encoder()`) would stay frozen. Setting the
    # opposite first makes both assignments reach every sublayer.
    encoder.trainable = not train_encoder
    encoder.trainable = train_encoder
    inputs = keras.Input(encoder.input_shape[1:])
    # A frozen encoder also keeps its BatchNorm statistics (inference mode).
    features = encoder(inputs, training=None if train_encoder else False)
    head = keras.layers.Dense(num_classes, name="classifier")
    logits = head(features)
    if initial_head is not None:
        head.set_weights(initial_head.get_weights())
    return keras.Model(inputs, logits, name=name)


@export("keras_efficient.models.linear_probe")
def linear_probe(encoder, num_classes):
    """A linear classifier on the frozen `encoder`: the standard SSL evaluation.

    The encoder's weights are frozen (`encoder.trainable = False`, BatchNorm in
    inference mode) and only a `Dense(num_classes)` on its representation is
    trained, so the accuracy measures the representation itself.

    Args:
        encoder: a built Keras model mapping images to vectors (`model.encoder`).
        num_classes: number of classes, >= 2.

    Returns:
        An uncompiled `keras.Model` from images to logits. Compile it with
        `from_logits=True`; the linear probe tolerates large learning rates.

    Example:

    >>> import keras
    >>> encoder = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
    ...                             keras.layers.Dense(16)])
    >>> probe = linear_probe(encoder, num_classes=10)
    >>> len(probe.trainable_weights)
    2

    Reference:
        Chen et al., SimCLR, ICML 2020, section 4 ("linear evaluation protocol").
    """
    return _classifier(encoder, num_classes, False, "linear_probe")


@export("keras_efficient.models.fine_tuning_classifier")
def fine_tuning_classifier(encoder, num_classes, initial_head=None):
    """A linear classifier on the *trainable* `encoder`, for fine-tuning with few labels.

    Everything is trained (`encoder.trainable = True`). Use a learning rate
    lower than for a model trained from scratch, so the pre-trained
    representation is refined rather than overwritten; SimCLR fine-tunes on 1%
    and 10% of ImageNet's labels this way. Starting the classifier from a
    trained linear probe (`initial_head`) instead of random weights keeps the
    first, large gradients of a random head from distorting the features
    ("LP-FT", Kumar et al., ICLR 2022).

    Args:
        encoder: a built Keras model mapping images to vectors (`model.encoder`).
        num_classes: number of classes, >= 2.
        initial_head: optional `Dense(num_classes)` layer whose weights start the
            classifier, e.g. `probe.get_layer("classifier")` of a `linear_probe`.

    Returns:
        An uncompiled `keras.Model` from images to logits.

    Example:

    >>> import keras
    >>> encoder = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
    ...                             keras.layers.Dense(16)])
    >>> len(fine_tuning_classifier(encoder, num_classes=10).trainable_weights)
    4

    Reference:
        Chen et al., SimCLR, ICML 2020, section 4 and appendix B.5; Kumar et al.,
        "Fine-Tuning can Distort Pretrained Features and Underperform
        Out-of-Distribution", ICLR 2022 (LP-FT).
    """
    return _classifier(encoder, num_classes, True, "fine_tuning_classifier", initial_head)
