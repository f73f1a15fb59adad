"""DropBlock: dropout of contiguous square regions of convolutional feature maps.

Reference: Ghiasi, Lin, Le. "DropBlock: A regularization method for
convolutional networks." NeurIPS 2018. https://arxiv.org/abs/1810.12890
"""

import keras

from keras_efficient.utils import register
from keras_efficient.utils import validate_choice
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_seed
from keras_efficient.utils import validate_size


@register("keras_efficient.layers.DropBlock2D")
class DropBlock2D(keras.layers.Layer):
    """Drops `block_size x block_size` blocks of each feature map in training.

    Algorithm 1 of the paper, per example and per channel: sample block seeds
    `M ~ Bernoulli(gamma)` only where a whole `b_h x b_w` block fits inside the
    map (the `(H - b_h + 1) x (W - b_w + 1)` valid region, rows and columns
    kept apart so non-square maps and blocks are right), grow every seed into
    a block of zeros, multiply, and rescale by `count(M) / count_ones(M)` over
    the whole tensor so the mean activation is kept. `gamma` turns the drop
    rate into a seed rate so that, blocks overlaps aside, a fraction `rate` of
    the units is dropped:

    `gamma = rate / (b_h * b_w) * (H * W) / ((H - b_h + 1) * (W - b_w + 1))`

    (the paper's eq. 1 with `keep_prob = 1 - rate`, written for `H != W`).
    Overlapping blocks make the dropped fraction slightly smaller than `rate`
    (0.095 instead of 0.1 for `b` = 3 to 7). At inference the layer is the
    identity.

    The paper anneals the rate linearly from 0 ("scheduled DropBlock"):
    with `warmup_steps > 0` the rate at the `k`-th training call is
    `rate * min(k / warmup_steps, 1)`, `k` counting from 0, kept in a
    non-trainable step counter that is saved with the layer and counted once per
    step across replicas.

    The arguments `(rate, block_size, seed)` are keras-cv's `DropBlock2D`, in
    its positional order and meaning; `warmup_steps` and `data_format` (ours
    only) are keyword-only, so a keras-cv call cannot turn its seed into a
    warm-up.

    Args:
        rate: fraction of units to drop, `1 - keep_prob`, in [0, 1).
        block_size: size of the dropped blocks: an int `b` (squares) or a
            tuple `(b_h, b_w)`, each >= 1 and at most the feature map's height
            and width (checked at build). `b = 1` is dropout.
        seed: optional integer seed of this layer's own `SeedGenerator`.
        warmup_steps: number of training steps over which the rate grows
            linearly from 0 to `rate`; 0 for no warm-up. Keyword-only.
        data_format: `"channels_last"` (`(N, H, W, C)`) or `"channels_first"`
            (`(N, C, H, W)`); defaults to `keras.config.image_data_format()`.
            Keyword-only.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a 4D tensor in `data_format`.
        training: Python bool or boolean tensor; drops only in training.

    Returns:
        A tensor shaped like `inputs`.

    Example:

    >>> import numpy as np
    >>> import keras_efficient as ke
    >>> layer = ke.layers.DropBlock2D(rate=0.1, block_size=3, seed=0)
    >>> x = np.ones((2, 16, 16, 4), "float32")
    >>> bool((layer(x, training=False) == x).all())
    True
    >>> layer(x, training=True).shape
    (2, 16, 16, 4)

    Reference:
        Ghiasi et al., "DropBlock: A regularization method for convolutional
        networks", NeurIPS 2018.
    """

    def __init__(self, rate=0.1, block_size=7, seed=None, *, warmup_steps=0, data_format=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.rate = validate_number("rate", rate, 0, 1, high_inclusive=False)
        self.block_size = _validate_block_size(block_size)
        self._block_height, self._block_width = (
            (self.block_size, self.block_size) if isinstance(self.block_size, int)
            else self.block_size)
        self.warmup_steps = validate_size("warmup_steps", warmup_steps, low=0)
        self.data_format = validate_choice(
            "data_format", keras.config.image_data_format() if data_format is None else data_format,
            ("channels_last", "channels_first"),
        )
        validate_seed("seed", seed)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def _spatial_axes(self):
        return (1, 2) if self.data_format == "channels_last" else (2, 3)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"DropBlock2D expects 4D inputs ({self.data_format}). "
                f"Received: input_shape={input_shape}"
            )
        for axis, block, side in zip(self._spatial_axes(),
                                     (self._block_height, self._block_width),
                                     ("height", "width")):
            size = input_shape[axis]
            if size is not None and block > size:
                raise ValueError(
                    f"Invalid value received for argument `block_size`. Expected a block "
                    f"{side} in [1, {size}] for feature maps of shape "
                    f"{input_shape} ({self.data_format}). Received: "
                    f"block_size={self.block_size}"
                )
        if self.warmup_steps > 0:
            # Counted once per step on any number of replicas, like
            # `optimizer.iterations`; float32 so mixed precision leaves it alone.
            self.step = self.add_weight(
                name="step",
                shape=(),
                initializer="zeros",
                trainable=False,
                autocast=False,
                aggregation="only_first_replica",
            )

    def _current_rate(self):
        if self.warmup_steps == 0:
            return keras.ops.convert_to_tensor(self.rate, "float32")
        # Read (a new tensor) before the increment.
        rate = self.rate * self.step / float(self.warmup_steps)
        self.step.assign(keras.ops.minimum(self.step + 1.0, float(self.warmup_steps)))
        return rate

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        rate = self._current_rate()
        block_height, block_width = self._block_height, self._block_width
        shape = keras.ops.shape(inputs)
        row_axis, col_axis = self._spatial_axes()
        height = keras.ops.cast(shape[row_axis], "float32")
        width = keras.ops.cast(shape[col_axis], "float32")
        valid_rows = height - block_height + 1
        valid_cols = width - block_width + 1
        gamma = rate / (block_height * block_width) * height * width / (valid_rows * valid_cols)

        # Seeds only where a whole block fits: the block's top-left corner lies
        # in the (H - b_h + 1) x (W - b_w + 1) region.
        seed_shape = list(shape)
        seed_shape[row_axis] = shape[row_axis] - block_height + 1
        seed_shape[col_axis] = shape[col_axis] - block_width + 1
        noise = keras.random.uniform(tuple(seed_shape), seed=self.seed_generator)
        seeds = keras.ops.cast(noise < gamma, "float32")
        # Grow each seed into a b_h x b_w block: pad by b - 1 on both sides of
        # each axis, then a stride-1 max pool maps output (i, j) to the seeds in
        # [i - b_h + 1, i] x [j - b_w + 1, j].
        padding = [[0, 0]] * 4
        padding[row_axis] = [block_height - 1, block_height - 1]
        padding[col_axis] = [block_width - 1, block_width - 1]
        dropped = keras.ops.max_pool(
            keras.ops.pad(seeds, padding),
            pool_size=(block_height, block_width),
            strides=1,
            padding="valid",
            data_format=self.data_format,
        )
        keep = 1.0 - dropped
        count = keras.ops.cast(keras.ops.size(keep), "float32")
        scale = count / keras.ops.maximum(keras.ops.sum(keep), 1.0)
        return inputs * keras.ops.cast(keep * scale, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "rate": self.rate,
                "block_size": self.block_size,
                "warmup_steps": self.warmup_steps,
                "data_format": self.data_format,
                "seed": self.seed,
            }
        )
        return config


def _validate_block_size(block_size):
    """`block_size` as an int `b` or a tuple `(b_h, b_w)`, each >= 1 (keras-cv's forms)."""
    if isinstance(block_size, (tuple, list)):
        if len(block_size) != 2:
            raise ValueError(
                "Invalid value received for argument `block_size`. Expected an integer "
                f">= 1 or a tuple (height, width) of two. Received: block_size={block_size}"
            )
        return tuple(int(validate_size("block_size", size)) for size in block_size)
    return int(validate_size("block_size", block_size))
