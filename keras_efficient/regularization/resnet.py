"""A small residual network with stochastic depth and DropBlock built in.

Reference: He, Zhang, Ren, Sun. "Deep Residual Learning for Image Recognition."
CVPR 2016 (the basic block); Huang et al. 2016 (linear decay of survival).
"""

import keras

from keras_efficient.regularization.dropblock import DropBlock2D
from keras_efficient.regularization.stochastic_depth import StochasticDepth
from keras_efficient.regularization.stochastic_depth import stochastic_depth_survival
from keras_efficient.utils import export
from keras_efficient.utils import validate_choice
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_seed
from keras_efficient.utils import validate_size

# Moving statistics that settle within a few hundred steps (PyTorch's default,
# used by the paper's Torch code) rather than Keras's 0.99.
BATCH_NORM_MOMENTUM = 0.9

# Sane upper limits for the sizes (each far above any real use).
MAX_BLOCKS = 1000
MAX_FILTERS = 2**16
MAX_CLASSES = 2**20


def residual_branch(filters, name="branch"):
    """The basic block's branch: conv 3x3, BatchNorm, ReLU, conv 3x3, BatchNorm."""
    return keras.Sequential(
        [
            keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM),
            keras.layers.ReLU(),
            keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM),
        ],
        name=name,
    )


@export("keras_efficient.models.build_resnet")
def build_resnet(
    input_shape,
    num_classes,
    blocks=8,
    filters=64,
    stochastic_depth=None,
    stochastic_depth_mode="batch",
    drop_block_rate=0.0,
    drop_block_size=3,
    seed=None,
    name="resnet",
):
    """A plain ResNet of `blocks` basic blocks at constant width (no downsampling).

    Stem (conv 3x3, BatchNorm with momentum 0.9, ReLU), then `blocks` residual blocks
    `relu(x + f_l(x))`, then global average pooling and a linear classifier
    (logits). Each branch `f_l` is wrapped in `StochasticDepth` with the
    paper's linear decay `p_l = 1 - l / L * (1 - p_L)` when
    `stochastic_depth=p_L` is given; with `stochastic_depth=None` every block
    always runs (the same layers with `p = 1`, so both nets have identical
    weights and compute). `DropBlock2D` follows each block of the second half
    when `drop_block_rate > 0` (the paper applies it to the last groups).

    Args:
        input_shape: image shape `(height, width, channels)`.
        num_classes: number of output logits.
        blocks: number of residual blocks `L`, >= 1.
        filters: channels of the stem and of every block.
        stochastic_depth: `p_L`, the survival probability of the last block, in
            (0, 1], or None for no stochastic depth.
        stochastic_depth_mode: `"batch"` (dropped blocks are skipped) or
            `"sample"` (drop path); see `StochasticDepth`.
        drop_block_rate: DropBlock drop rate in [0, 1); 0 disables it.
        drop_block_size: DropBlock block size.
        seed: optional integer; block `l` seeds its gate with `seed + l` and its
            DropBlock with `seed + blocks + l` (layers sharing a seed would draw
            the same numbers).
        name: the model's name.

    Returns:
        An uncompiled functional `keras.Model` mapping images to logits.

    Example:

    >>> import keras_efficient as ke
    >>> model = ke.models.build_resnet((16, 16, 3), 10, blocks=4, filters=16,
    ...                                stochastic_depth=0.5)
    >>> model.output_shape
    (None, 10)
    """
    # Upper limits: a typo such as 10**6 blocks would otherwise build for hours.
    validate_size("num_classes", num_classes, high=MAX_CLASSES)
    validate_size("blocks", blocks, high=MAX_BLOCKS)
    validate_size("filters", filters, high=MAX_FILTERS)
    validate_size("drop_block_size", drop_block_size)
    validate_seed("seed", seed)
    # Checked here: StochasticDepth would report it as `mode`.
    validate_choice("stochastic_depth_mode", stochastic_depth_mode, ("batch", "sample"))
    final_survival = 1.0 if stochastic_depth is None else stochastic_depth
    validate_number("stochastic_depth", final_survival, 0, 1, low_inclusive=False)
    # Checked here: a negative rate would otherwise silently disable DropBlock.
    validate_number("drop_block_rate", drop_block_rate, 0, 1, high_inclusive=False)
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    for index in range(1, blocks + 1):
        block_seed = None if seed is None else seed + index
        x = StochasticDepth(
            residual_branch(filters, name=f"block{index}_branch"),
            survival_probability=stochastic_depth_survival(index, blocks, final_survival),
            mode=stochastic_depth_mode,
            seed=block_seed,
            name=f"block{index}",
        )(x)
        x = keras.layers.ReLU(name=f"block{index}_relu")(x)
        if drop_block_rate > 0 and index > blocks // 2:
            drop_block_seed = None if seed is None else seed + blocks + index
            x = DropBlock2D(drop_block_rate, drop_block_size, seed=drop_block_seed,
                            name=f"block{index}_dropblock")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)
