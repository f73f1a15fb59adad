"""Random resized crop (Inception-style), vectorized over the batch."""

import math

import keras

from keras_efficient.backend import keras_compat
from keras_efficient.backend.data_layer import DataLayer
from keras_efficient.backend.data_layer import DynamicBackend
from keras_efficient.utils import register
from keras_efficient.utils import validate_choice
from keras_efficient.utils import validate_range
from keras_efficient.utils import validate_seed


def _interpolation_matrix(start, length, size, backend=None):
    """`(batch, size, size)` bilinear weights resizing `[start, start + length)` to `size`.

    Output pixel i samples the input at `start + (i + 1/2) * length / size - 1/2`
    (pixel centres aligned, as `tf.image.resize`), clamped to the image: the
    weight of input pixel y is the triangle `max(0, 1 - |y - source|)`.
    `backend`: the layer's `self.backend` (default: Keras's backend).
    """
    backend = DynamicBackend() if backend is None else backend
    positions = backend.cast(backend.numpy.arange(size), "float32")
    step = length / backend.cast(size, "float32")
    source = start[:, None] + (positions[None, :] + 0.5) * step[:, None] - 0.5
    source = backend.numpy.clip(source, 0.0, backend.cast(size, "float32") - 1.0)
    return backend.nn.relu(1.0 - backend.numpy.abs(positions[None, None, :] - source[:, :, None]))


@register("keras_efficient.layers.RandomResizedCrop")
class RandomResizedCrop(DataLayer):
    """Crop a random area and aspect ratio of each image, resized to the input size.

    The crop of SimCLR's augmentation (and Inception's training): per image, an
    area fraction `s ~ U(scale)` and a log-uniform aspect ratio `r ~ ratio` give
    a crop of `sqrt(s r) W` by `sqrt(s / r) H` pixels at a uniform position,
    resized back to `H x W` with bilinear interpolation. Every image of the batch
    gets its own crop, computed as two batched bilinear interpolation matrices
    applied with one `einsum` (no per-image loop, no `ImageProjectiveTransform`,
    which XLA cannot compile), so it runs in `tf.data` (with TensorFlow ops on
    every backend, as Keras's preprocessing layers), inside a model and under
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
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        # Checked here, not in `build`: in `tf.data` on JAX, Keras builds with no shape.
        if len(images.shape) != 4:
            raise ValueError(
                f"RandomResizedCrop expects a batch of images, rank 4 ({self.data_format}). "
                f"Received: input_shape={tuple(images.shape)}")
        if not training:
            return images
        # `self.backend` is TensorFlow inside `tf.data`, Keras's backend elsewhere.
        backend = self.backend
        seed = keras_compat.seed_generator(self)
        height_axis = 1 if self.data_format == "channels_last" else 2
        shape = backend.shape(images)
        batch_size = shape[0]
        height = backend.cast(shape[height_axis], "float32")
        width = backend.cast(shape[height_axis + 1], "float32")

        area = backend.random.uniform((batch_size,), *self.scale, seed=seed)
        log_ratio = backend.random.uniform((batch_size,), *[math.log(r) for r in self.ratio],
                                           seed=seed)
        ratio = backend.numpy.exp(log_ratio)
        crop_width = backend.numpy.minimum(backend.numpy.sqrt(area * ratio), 1.0) * width
        crop_height = backend.numpy.minimum(backend.numpy.sqrt(area / ratio), 1.0) * height
        offsets = backend.random.uniform((2, batch_size), seed=seed)
        left = offsets[0] * (width - crop_width)
        top = offsets[1] * (height - crop_height)

        rows = _interpolation_matrix(top, crop_height, shape[height_axis], backend)
        columns = _interpolation_matrix(left, crop_width, shape[height_axis + 1], backend)
        equation = "bih,bjw,bhwc->bijc" if self.data_format == "channels_last" \
            else "bih,bjw,bchw->bcij"
        cropped = backend.numpy.einsum(equation, rows, columns, backend.cast(images, "float32"))
        return backend.cast(cropped, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(scale=list(self.scale), ratio=list(self.ratio), seed=self.seed,
                      data_format=self.data_format)
        return config
