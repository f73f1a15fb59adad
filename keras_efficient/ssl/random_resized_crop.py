"""Random resized crop (Inception-style), vectorized over the batch."""

import math

import keras
from keras import ops

from keras_efficient.utils import register
from keras_efficient.utils import validate_choice
from keras_efficient.utils import validate_range
from keras_efficient.utils import validate_seed


def _interpolation_matrix(start, length, size):
    """`(batch, size, size)` bilinear weights resizing `[start, start + length)` to `size`.

    Output pixel i samples the input at `start + (i + 1/2) * length / size - 1/2`
    (pixel centres aligned, as `tf.image.resize`), clamped to the image: the
    weight of input pixel y is the triangle `max(0, 1 - |y - source|)`.
    """
    positions = ops.cast(ops.arange(size), "float32")
    step = length / ops.cast(size, "float32")
    source = start[:, None] + (positions[None, :] + 0.5) * step[:, None] - 0.5
    source = ops.clip(source, 0.0, ops.cast(size, "float32") - 1.0)
    return ops.relu(1.0 - ops.abs(positions[None, None, :] - source[:, :, None]))


@register
class RandomResizedCrop(keras.layers.Layer):
    """Crop a random area and aspect ratio of each image, resized to the input size.

    The crop of SimCLR's augmentation (and Inception's training): per image, an
    area fraction `s ~ U(scale)` and a log-uniform aspect ratio `r ~ ratio` give
    a crop of `sqrt(s r) W` by `sqrt(s / r) H` pixels at a uniform position,
    resized back to `H x W` with bilinear interpolation. Every image of the batch
    gets its own crop, computed as two batched bilinear interpolation matrices
    applied with one `einsum` (no per-image loop, no `ImageProjectiveTransform`,
    which XLA cannot compile), so it runs in `tf.data`, inside a model and under
    `jit_compile=True` alike.
    Keras's `RandomCrop` crops every image of a batch at the same place, and
    `RandomZoom` keeps the aspect ratio, so neither gives this augmentation.

    Deviation from torchvision: a crop that does not fit (large `s r`) is
    clipped to the image instead of redrawn up to ten times.

    Args:
        scale: range of the crop's area as a fraction of the image, in (0, 1].
        ratio: range of the crop's aspect ratio (width / height), > 0.
        seed: seed of the random crops.
        data_format: `"channels_last"` or `"channels_first"` (default: Keras's).

    Call arguments:
        images: `(batch_size, height, width, channels)` (or channels first).
        training: crops only when True; otherwise returns `images`.

    Returns:
        Images of the input's shape.

    Example:

    >>> import numpy as np
    >>> crop = RandomResizedCrop(scale=(0.5, 1.0), seed=1)
    >>> tuple(crop(np.ones((2, 8, 8, 3), "float32"), training=True).shape)
    (2, 8, 8, 3)

    Reference:
        Szegedy et al., "Going Deeper with Convolutions", CVPR 2015; Chen et al.,
        SimCLR, ICML 2020, appendix A.
    """

    def __init__(self, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), seed=None, data_format=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.scale = validate_range("scale", scale, 0, 1)
        self.ratio = validate_range("ratio", ratio, 0)
        self.seed = validate_seed("seed", seed)
        self.data_format = validate_choice(
            "data_format", keras.config.image_data_format() if data_format is None else data_format,
            ("channels_last", "channels_first"))
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        # Nothing to create: the only state is the seed generator's.
        if len(input_shape) != 4:
            raise ValueError(
                f"RandomResizedCrop expects a batch of images, rank 4 ({self.data_format}). "
                f"Received: input_shape={input_shape}")

    def call(self, images, training=True):
        if not training:
            return images
        height_axis = 1 if self.data_format == "channels_last" else 2
        batch_size = ops.shape(images)[0]
        height = ops.cast(ops.shape(images)[height_axis], "float32")
        width = ops.cast(ops.shape(images)[height_axis + 1], "float32")

        area = keras.random.uniform((batch_size,), *self.scale, seed=self.seed_generator)
        log_ratio = keras.random.uniform((batch_size,), *[math.log(r) for r in self.ratio],
                                         seed=self.seed_generator)
        ratio = ops.exp(log_ratio)
        crop_width = ops.minimum(ops.sqrt(area * ratio), 1.0) * width
        crop_height = ops.minimum(ops.sqrt(area / ratio), 1.0) * height
        offsets = keras.random.uniform((2, batch_size), seed=self.seed_generator)
        left = offsets[0] * (width - crop_width)
        top = offsets[1] * (height - crop_height)

        rows = _interpolation_matrix(top, crop_height, ops.shape(images)[height_axis])
        columns = _interpolation_matrix(left, crop_width, ops.shape(images)[height_axis + 1])
        equation = "bih,bjw,bhwc->bijc" if self.data_format == "channels_last" \
            else "bih,bjw,bchw->bcij"
        cropped = ops.einsum(equation, rows, columns, ops.cast(images, "float32"))
        return ops.cast(cropped, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(scale=list(self.scale), ratio=list(self.ratio), seed=self.seed,
                      data_format=self.data_format)
        return config
