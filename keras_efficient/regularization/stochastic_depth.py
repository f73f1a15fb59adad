"""Stochastic depth: residual blocks dropped at random while training.

References:
- Huang, Sun, Liu, Sedra, Weinberger. "Deep Networks with Stochastic Depth."
  ECCV 2016. https://arxiv.org/abs/1603.09382 (batch-level gate, linear decay,
  branch scaled by its survival probability at inference).
- Larsson, Maire, Shakhnarovich. "FractalNet." ICLR 2017, and timm's
  `drop_path`: the per-example gate ("drop path").
"""

import keras

from keras_efficient import backend
from keras_efficient.utils import export
from keras_efficient.utils import register
from keras_efficient.utils import validate_choice
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_seed
from keras_efficient.utils import validate_size


@export("keras_efficient.layers.stochastic_depth_survival")
def stochastic_depth_survival(block_index, num_blocks, final_survival=0.5):
    """Survival probability of block `block_index` of `num_blocks` (linear decay).

    With `l = block_index` and `L = num_blocks`, `p_l = 1 - l / L * (1 - p_L)`:
    close to one for the first block, `p_L` for the last (Huang et al. 2016,
    eq. 4, which names them `l` and `L`; the book's chapter 6).

    Args:
        block_index: `l`, the block's index, 1-based, in `[1, num_blocks]`
            (0 gives 1.0: the input).
        num_blocks: `L`, the number of residual blocks, >= 1.
        final_survival: `p_L`, the survival probability of the last block, in (0, 1].

    Returns:
        A Python float in `[p_L, 1]`.

    Example:

    >>> [round(stochastic_depth_survival(index, 4), 3) for index in range(1, 5)]
    [0.875, 0.75, 0.625, 0.5]
    """
    validate_size("num_blocks", num_blocks)
    validate_number("block_index", block_index, 0, num_blocks, integer=True)
    validate_number("final_survival", final_survival, 0, 1, low_inclusive=False)
    return 1.0 - block_index / num_blocks * (1.0 - final_survival)


def _conditionals_are_slow():
    """True while tracing for XLA on a machine without GPUs.

    XLA:CPU runs a conditional holding a residual block much slower than the
    block itself (the method card, `stochastic_depth.md`, has the measurement),
    so there the gate is a product: no speedup, but no slowdown either.
    """
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return (tf.__internal__.get_enclosing_xla_context() is not None
            and not tf.config.list_logical_devices("GPU"))


@register("keras_efficient.layers.StochasticDepth")
class StochasticDepth(keras.layers.Wrapper):
    """Wraps a residual branch `f`: `x + b * f(x)` with `b ~ Bernoulli(p)` in training.

    `mode="batch"` (Huang et al. 2016): one draw per training step decides for
    the whole batch. A dropped block is **not computed**: the gate is a
    conditional (`keras.ops.cond`), so neither its forward pass nor its
    backward pass runs, its weights get a zero gradient and its BatchNorm
    statistics stay put. That is where the training speedup of stochastic
    depth comes from; multiplying the branch by zero costs
    the full network. Exception: under XLA (`jit_compile=True`) on a machine
    without GPUs, where a conditional runs much slower than its contents (see
    the method card), the gate is such a product (zero gradient when dropped, but the branch runs
    and its BatchNorm statistics update). Keras's default on CPU is no XLA.

    `mode="sample"` ("drop path"): one draw per example, applied as a mask;
    regularizes the same way but computes every block.

    Scaling follows the paper: training adds the branch unscaled when kept, and
    inference runs the full network with the branch scaled by `p`, so the
    inference output equals the expected training output `x + p * f(x)`
    (for a branch that is deterministic given its weights). The activation
    after the sum (the ResNet's post-addition ReLU) belongs outside this layer.

    Differs from keras-cv's `StochasticDepth(rate)([shortcut, residual])` on
    purpose (it computes the branch even when dropped): passing keras-cv's
    `rate` raises an error saying what to write.

    Args:
        block: the residual branch, a `keras.layers.Layer` (typically a
            `keras.Sequential`) whose output has the shape of its input.
            Saved with the layer (under the config key `"layer"`, as every
            `keras.layers.Wrapper`).
        survival_probability: `p`, the probability that the block is kept, in
            (0, 1]. `stochastic_depth_survival(block_index, num_blocks, p_L)` gives the linear
            decay of the paper.
        mode: `"batch"` (one gate per step; dropped blocks are skipped) or
            `"sample"` (one gate per example).
        seed: optional integer seed of this layer's own `SeedGenerator`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a tensor, the block's input `x`.
        training: Python bool or scalar boolean tensor; gates only in training.

    Returns:
        A tensor shaped like `inputs`.

    Example:

    >>> import keras, numpy as np
    >>> import keras_efficient as ke
    >>> branch = keras.Sequential([keras.layers.Conv2D(8, 3, padding="same"),
    ...                            keras.layers.BatchNormalization()])
    >>> layer = ke.layers.StochasticDepth(branch, survival_probability=0.8, seed=0)
    >>> layer(np.ones((2, 6, 6, 8), "float32"), training=True).shape
    (2, 6, 6, 8)

    Reference:
        Huang et al., "Deep Networks with Stochastic Depth", ECCV 2016.
    """

    def __init__(self, block=None, survival_probability=0.5, mode="batch", seed=None,
                 **kwargs):
        if "rate" in kwargs or block is None or isinstance(block, (int, float)):
            # keras-cv's `StochasticDepth(rate)([shortcut, residual])` computes the
            # branch before the gate; this layer wraps it so it can skip it.
            raise TypeError(
                "Invalid value received for argument `block`. keras-cv's "
                "`StochasticDepth(rate)([shortcut, residual])` is written here as "
                "`StochasticDepth(branch, survival_probability=1 - rate)(shortcut)`, "
                "wrapping the residual branch (a layer) so a dropped branch is not "
                f"computed. Received: block={block!r}, rate={kwargs.get('rate')!r}")
        if not isinstance(block, keras.layers.Layer):
            raise TypeError("Invalid type received for argument `block`. Expected a Keras "
                            f"layer or model. Received: block={block!r}")
        super().__init__(block, **kwargs)
        self.survival_probability = validate_number(
            "survival_probability", survival_probability, 0, 1, low_inclusive=False
        )
        self.mode = validate_choice("mode", mode, ("batch", "sample"))
        validate_seed("seed", seed)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    @property
    def block(self):
        return self.layer

    def call(self, inputs, training=None):
        if not training:
            scale = keras.ops.cast(self.survival_probability, inputs.dtype)
            return inputs + scale * self.block(inputs, training=False)
        if self.survival_probability == 1.0:
            return inputs + self.block(inputs, training=True)
        if self.mode == "sample":
            shape = (keras.ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        else:
            shape = ()
        keep = keras.random.uniform(shape, seed=self.seed_generator) < self.survival_probability
        if self.mode == "batch" and not _conditionals_are_slow():
            # A conditional, not a product: the dropped branch runs neither
            # forward nor backward (zero gradient, BatchNorm does not update).
            return backend.cond(
                keep, lambda: inputs + self.block(inputs, training=True), lambda: inputs,
                self.block.non_trainable_variables,
            )
        return inputs + keras.ops.cast(keep, inputs.dtype) * self.block(inputs, training=True)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "survival_probability": self.survival_probability,
                "mode": self.mode,
                "seed": self.seed,
            }
        )
        return config
