"""MixUp as a `tf.data` batch transform (Zhang et al., 2018)."""

import tensorflow as tf

from keras_efficient.regularization.batch_mixing import BatchMixer
from keras_efficient.utils import export


@export("keras_efficient.data.MixUp")
class MixUp(BatchMixer):
    """MixUp: train on convex combinations of example pairs and their labels.

    For a batch, draws one lam ~ Beta(alpha, alpha) and a random partner j(i) for
    every example i (a shuffle of the batch), and returns

        x_i' = lam * x_i + (1 - lam) * x_j(i)
        y_i' = lam * y_i + (1 - lam) * y_j(i),

    with y the (optionally smoothed) one-hot labels, so rows of y' sum to one.
    Use it with `dataset.batch(...).map(MixUp(...))` and a crossentropy that takes
    soft targets (`keras.losses.CategoricalCrossentropy`).

    One lam per batch, as in the paper's reference code. Keras's `MixUp` layer is
    not wrapped because it draws a lam per example, rejects integer labels and
    has no label smoothing.

    Args:
        alpha: the Beta(alpha, alpha) parameter, > 0. The paper uses 0.2 on
            ImageNet (0.1-0.4 work); larger values mix more.
        num_classes: number of classes; required for integer labels.
        label_smoothing: e in [0, 1]; targets are (1 - e) onehot + e / K before
            mixing (mixing smoothed targets equals smoothing mixed ones).
        seed: optional integer. Two `MixUp`s with the same seed produce the same
            sequence of draws; every call (every batch) draws anew.

    Call arguments:
        images: `(batch_size, ...)` images; integer images are cast to float32.
        labels: integer `(batch_size,)` / `(batch_size, 1)` or one-hot
            `(batch_size, num_classes)` labels.

    Returns:
        `(images, labels)`: mixed images and float32 `(batch_size, num_classes)`
        targets.

    Example:

    >>> import numpy as np, tensorflow as tf, keras_efficient as ke
    >>> images = np.random.rand(8, 8, 8, 1).astype("float32")
    >>> labels = np.arange(8) % 3
    >>> dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    >>> dataset = dataset.map(ke.data.MixUp(alpha=0.2, num_classes=3, seed=1))
    >>> x, y = next(iter(dataset))
    >>> tuple(y.shape), bool(np.allclose(y.numpy().sum(-1), 1.0))
    ((4, 3), True)

    Reference:
        Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018.
        https://arxiv.org/abs/1710.09412
    """

    def __init__(self, alpha=0.2, num_classes=None, label_smoothing=0.0, seed=None):
        super().__init__(alpha, num_classes=num_classes, label_smoothing=label_smoothing,
                         seed=seed)

    def mix_images(self, images, partner_images, lam, seed):
        if not images.dtype.is_floating:
            # A weighted average of pixels is not an integer: uint8 images become float32.
            images = tf.cast(images, tf.float32)
            partner_images = tf.cast(partner_images, tf.float32)
        lam = tf.cast(lam, images.dtype)
        return lam * images + (1 - lam) * partner_images, lam
