"""CutMix as a `tf.data` batch transform (Yun et al., 2019)."""

import keras
import tensorflow as tf

from keras_efficient.regularization.batch_mixing import BatchMixer
from keras_efficient.utils import export
from keras_efficient.utils import validate_choice


@export("keras_efficient.data.CutMix")
class CutMix(BatchMixer):
    """CutMix: paste a box from a partner image and mix labels by its area.

    For a batch, draws lam ~ Beta(alpha, alpha), a random partner j(i) for every
    example i, and one box as in the paper's reference code: a centre (c_y, c_x)
    uniform over the pixels, side lengths floor(H sqrt(1 - lam)) and
    floor(W sqrt(1 - lam)), clipped to the image. The box of every image is
    replaced by the same box of its partner, and lam is corrected to the area
    actually kept, lam = 1 - box_area / (H W), so that

        y_i' = lam * y_i + (1 - lam) * y_j(i)

    matches the pixels (a box clipped at the border is smaller than drawn).

    Keras's `CutMix` layer is not wrapped: it rejects integer labels, has no
    label smoothing, draws its Beta parameter from a `factor` range instead of
    taking alpha, draws one box per example always fully inside the image (no
    clipping, so the centre is not uniform), and mixes labels by the unrounded box
    area rather than the pasted pixels.

    Args:
        alpha: the Beta(alpha, alpha) parameter, > 0. The paper uses 1.0 (lam
            uniform on [0, 1]).
        num_classes: number of classes; required for integer labels.
        label_smoothing: e in [0, 1]; targets are (1 - e) onehot + e / K before
            mixing.
        seed: optional integer. Two `CutMix`es with the same seed produce the same
            sequence of draws; every call (every batch) draws anew.
        data_format: `"channels_last"` (`(batch, height, width, channels)`) or
            `"channels_first"`; defaults to `keras.config.image_data_format()`.

    Call arguments:
        images: `(batch_size, height, width, channels)` images (or channels
            first); their dtype is kept.
        labels: integer `(batch_size,)` / `(batch_size, 1)` or one-hot
            `(batch_size, num_classes)` labels.

    Returns:
        `(images, labels)`: images with pasted boxes and float32
        `(batch_size, num_classes)` targets.

    Example:

    >>> import numpy as np, tensorflow as tf, keras_efficient as ke
    >>> images = np.random.rand(8, 16, 16, 3).astype("float32")
    >>> labels = np.arange(8) % 4
    >>> dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    >>> dataset = dataset.map(ke.data.CutMix(alpha=1.0, num_classes=4, seed=1))
    >>> x, y = next(iter(dataset))
    >>> tuple(x.shape), tuple(y.shape)
    ((4, 16, 16, 3), (4, 4))

    Reference:
        Yun et al., "CutMix: Regularization Strategy to Train Strong Classifiers
        with Localizable Features", ICCV 2019. https://arxiv.org/abs/1905.04899
    """

    def __init__(self, alpha=1.0, num_classes=None, label_smoothing=0.0, seed=None,
                 data_format=None):
        super().__init__(alpha, num_classes=num_classes, label_smoothing=label_smoothing,
                         seed=seed)
        self.data_format = validate_choice(
            "data_format", keras.config.image_data_format() if data_format is None else data_format,
            {"channels_last", "channels_first"})

    def mix_images(self, images, partner_images, lam, seed):
        if images.shape.rank != 4:
            # A rank-3 image (mapped before `batch`) would cut along the wrong axes.
            raise ValueError(
                f"CutMix expects batches of images of shape (batch_size, height, width, "
                f"channels) or channels first: map it after `dataset.batch(...)`. "
                f"Received: images.shape={images.shape}"
            )
        spatial_axes = [1, 2] if self.data_format == "channels_last" else [2, 3]
        sizes = tf.gather(tf.shape(images), spatial_axes)  # (height, width)
        # The paper's reference code: centre uniform over the pixels, half-sides of
        # cut // 2 with cut = floor(size * sqrt(1 - lam)), clipped to the image.
        cut = tf.cast(tf.cast(sizes, tf.float32) * tf.sqrt(1.0 - lam), tf.int32)
        centre = tf.cast(tf.random.stateless_uniform([2], seed=seed)
                         * tf.cast(sizes, tf.float32), tf.int32)
        start = tf.clip_by_value(centre - cut // 2, 0, sizes)
        stop = tf.clip_by_value(centre + cut // 2, 0, sizes)
        rows = tf.range(sizes[0])
        cols = tf.range(sizes[1])
        box = (((rows >= start[0]) & (rows < stop[0]))[:, None]
               & ((cols >= start[1]) & (cols < stop[1]))[None, :])
        box = box[None, :, :, None] if self.data_format == "channels_last" else box[None, None]
        mixed = tf.where(box, partner_images, images)
        # lam corrected to the pixels actually kept (a clipped box is smaller).
        area = tf.cast(tf.reduce_prod(stop - start), tf.float32)
        return mixed, 1.0 - area / tf.cast(tf.reduce_prod(sizes), tf.float32)
