"""Rotation prediction (RotNet): a pretext task as a batch transform for `tf.data`."""

from keras_efficient.backend.data_layer import DynamicBackend
from keras_efficient.backend.data_layer import data_backend
from keras_efficient.utils import export


def rotate_90(images, times, backend=None):
    """`images` (batch, height, width, channels) rotated by `times` x 90 degrees
    counter-clockwise (as `np.rot90(images, times, axes=(1, 2))`), with the ops
    of `backend` (default: Keras's backend)."""
    backend = DynamicBackend() if backend is None else backend
    for _ in range(times % 4):
        images = backend.numpy.flip(backend.numpy.transpose(images, (0, 2, 1, 3)), axis=1)
    return images


@export("keras_efficient.data.RotationPretext")
class RotationPretext:
    """Turn a batch of unlabeled images into a 4-way rotation classification batch.

    Every image appears four times, rotated by 0, 90, 180 and 270 degrees, with
    the rotation's index (0-3) as its label: a network that predicts the
    rotation must recognise the object's canonical orientation, which needs
    semantic features. Train any classifier with 4 outputs on the result (for
    example `keras.Sequential([encoder, keras.layers.Dense(4)])` with
    `SparseCategoricalCrossentropy(from_logits=True)`), then reuse the encoder
    with `ke.models.linear_probe` / `fine_tuning_classifier`. All four rotations
    of every image (not one random one) as in the paper, which found that
    better. Inside a `tf.data` map it runs TensorFlow ops on every Keras
    backend, as Keras's preprocessing layers do.

    Call arguments:
        images: a batch `(batch_size, size, size, channels)` of square images
            (channels last); a second argument (labels) is ignored, so the
            transform maps over labelled datasets too.

    Returns:
        `(rotated, rotation_labels)`: `(4 * batch_size, size, size, channels)`
        images (all images at 0 degrees, then all at 90, ...) and int32 labels.

    Example:

    >>> import numpy as np, tensorflow as tf
    >>> images = np.random.rand(8, 16, 16, 1).astype("float32")
    >>> dataset = tf.data.Dataset.from_tensor_slices(images).batch(4).map(RotationPretext())
    >>> [tuple(t.shape) for t in next(iter(dataset))]
    [(16, 16, 16, 1), (16,)]

    Reference:
        Gidaris, Singh, Komodakis, "Unsupervised Representation Learning by
        Predicting Image Rotations", ICLR 2018 (https://arxiv.org/abs/1803.07728).
    """

    def __call__(self, images, labels=None):
        backend = data_backend(images)
        images = backend.convert_to_tensor(images)
        if len(images.shape) != 4 or (None not in images.shape[1:3]
                                      and images.shape[1] != images.shape[2]):
            raise ValueError(
                "RotationPretext expects a batch of square images (batch_size, size, "
                f"size, channels). Received: images.shape={tuple(images.shape)}"
            )
        batch_size = backend.shape(images)[0]
        # Each rotation from the previous one: 3 transposes and flips, not 6.
        rotations = [images]
        for _ in range(3):
            rotations.append(rotate_90(rotations[-1], 1, backend))
        rotated = backend.numpy.concatenate(rotations, axis=0)
        labels = backend.numpy.repeat(backend.numpy.arange(4, dtype="int32"), batch_size)
        return rotated, labels

    def __repr__(self):
        return "RotationPretext()"
