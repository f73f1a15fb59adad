"""The cosine-similarity classifier of Baseline++ (Chen et al. 2019)."""

import keras
from keras import ops

from keras_efficient.ssl.embeddings import l2_normalize
from keras_efficient.utils import register
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_size

# Chen et al.'s code: a fixed scale of 2 for up to 200 classes, 10 above.
_SCALE_CLASSES, _SMALL_SCALE, _LARGE_SCALE = 200, 2.0, 10.0


def default_cosine_scale(units):
    """The fixed scale of Chen et al.'s code: 2 for up to 200 classes, else 10."""
    return _SMALL_SCALE if units <= _SCALE_CLASSES else _LARGE_SCALE


@register("keras_efficient.layers.CosineClassifier")
class CosineClassifier(keras.layers.Layer):
    """Logits proportional to the cosine similarity between input and class weights.

    `logits_k = scale * cos(x, w_k)`: every class has a weight vector and the
    logit is the scaled cosine of the angle to it, which reduces the
    intra-class variation of the features (Baseline++ in Chen et al. 2019).
    Without a bias.

    Args:
        units: the number of classes.
        scale: the fixed scale of the cosines; default (None) as in Chen et
            al.'s code, 2 for up to 200 classes and 10 for more.
        kernel_initializer: initializer of the `(dim, units)` class weights.
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        inputs: features `(batch_size, dim)`.

    Returns:
        Logits `(batch_size, units)`, in `[-scale, scale]`.

    Example:

    >>> import numpy as np
    >>> layer = CosineClassifier(3, scale=10.0)
    >>> logits = layer(np.random.rand(4, 8).astype("float32"))
    >>> bool(np.all(np.abs(logits) <= 10.0 + 1e-5))
    True

    Reference:
        Chen, Liu, Kira, Wang, Huang, "A Closer Look at Few-shot
        Classification", ICLR 2019 (https://arxiv.org/abs/1904.04232), section 3.2.
    """

    def __init__(self, units, scale=None, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = validate_size("units", units)
        if scale is not None:
            validate_number("scale", scale, 0, low_inclusive=False)
        self.scale = scale
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], self.units),
                                      initializer=self.kernel_initializer)

    def call(self, inputs):
        scale = self.scale if self.scale is not None else default_cosine_scale(self.units)
        kernel = ops.cast(self.kernel, self.compute_dtype)
        # The class weights are the kernel's columns: normalize them along `dim`.
        class_weights = l2_normalize(ops.transpose(kernel))
        return scale * ops.matmul(l2_normalize(inputs), ops.transpose(class_weights))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, scale=self.scale,
                      kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config
