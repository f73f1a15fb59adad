"""DropBlock2D against the paper's algorithm, written here in float64 numpy."""

import keras
import numpy as np
import pytest

from keras_efficient import testing
from keras_efficient.layers import DropBlock2D


def _gamma(rate, block, height, width):
    # Ghiasi et al. eq. 1 with keep_prob = 1 - rate, for an H x W map.
    return rate / block**2 * height * width / ((height - block + 1) * (width - block + 1))


def _expected_drop_fraction(rate, block, height, width):
    """Mean over pixels of P(covered by >= 1 block), seeds in the valid region."""

    def coverers(size):
        # Number of valid block starts s in [0, size - block] with s <= i < s + block.
        index = np.arange(size)
        return np.minimum(index, size - block) - np.maximum(index - block + 1, 0) + 1

    counts = np.outer(coverers(height), coverers(width)).astype(np.float64)
    return float(np.mean(1.0 - (1.0 - _gamma(rate, block, height, width)) ** counts))


def _covered_by_zero_blocks(zeros, block):
    """Pixels of a 2D boolean map in some all-zero block (`b` or `(b_h, b_w)`) inside it."""
    block_height, block_width = (block, block) if isinstance(block, int) else block
    height, width = zeros.shape
    covered = np.zeros_like(zeros)
    for row in range(height - block_height + 1):
        for col in range(width - block_width + 1):
            if zeros[row:row + block_height, col:col + block_width].all():
                covered[row:row + block_height, col:col + block_width] = True
    return covered


def _zeros_of_dropped_ones(rate, block, shape, data_format, seed):
    """Training output == 0 on ones of `shape` = (N, H, W, C), channels last."""
    if data_format == "channels_first":
        shape = (shape[0], shape[3], shape[1], shape[2])
    layer = DropBlock2D(rate, block, data_format=data_format, seed=seed)
    outputs = keras.ops.convert_to_numpy(layer(np.ones(shape, "float32"), training=True))
    if data_format == "channels_first":
        outputs = np.transpose(outputs, (0, 2, 3, 1))
    return outputs == 0


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_drop_block_2d__drop_fraction_matches_rate(data_format):
    rate, block, height, width = 0.1, 5, 48, 80
    dropped = np.mean(_zeros_of_dropped_ones(rate, block, (4, height, width, 8), data_format, 3))
    expected = _expected_drop_fraction(rate, block, height, width)
    # 32 maps of 48 x 80, blocks of 25 pixels: ~2,500 blocks, std ~0.002.
    assert abs(dropped - expected) < 0.008, (dropped, expected)
    assert abs(dropped - rate) < 0.02, dropped


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_drop_block_2d__drops_whole_blocks_on_non_square_maps(data_format):
    block = 3
    zeros = _zeros_of_dropped_ones(0.25, block, (3, 9, 14, 4), data_format, 5)
    assert zeros.any() and not zeros.all()
    for example in range(zeros.shape[0]):
        for channel in range(zeros.shape[-1]):
            zero_map = zeros[example, :, :, channel]
            np.testing.assert_array_equal(_covered_by_zero_blocks(zero_map, block), zero_map)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_drop_block_2d__non_square_blocks_on_non_square_maps(data_format):
    """The paper's Algorithm 1 with b_h x b_w blocks whose seeds lie in the valid region."""
    block, (height, width) = (3, 5), (9, 14)
    shape = (8, height, width, 4) if data_format == "channels_last" else (8, 4, height, width)
    layer = DropBlock2D(0.2, block, seed=3, data_format=data_format)
    out = keras.ops.convert_to_numpy(layer(np.ones(shape, "float32"), training=True))
    if data_format == "channels_first":
        out = np.transpose(out, (0, 2, 3, 1))
    zeros = out == 0
    assert zeros.any()
    for n in range(zeros.shape[0]):
        for c in range(zeros.shape[3]):
            z = zeros[n, :, :, c]
            # Every zero lies in a whole 3 x 5 zero block inside the map.
            np.testing.assert_array_equal(_covered_by_zero_blocks(z, block), z)
    # Kept units are rescaled by count / count_ones (float64 reference).
    keep = ~zeros
    np.testing.assert_allclose(out[keep], keep.size / np.float64(keep.sum()), rtol=1e-6)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_drop_block_2d__block_as_tall_as_the_map(data_format):
    # On a 5 x 12 map a block of 5 fits only in the one valid row: every drop
    # is a full-height stripe, in the height axis of either data format.
    zeros = _zeros_of_dropped_ones(0.3, 5, (8, 5, 12, 2), data_format, 2)
    assert zeros.any()
    np.testing.assert_array_equal(zeros, np.repeat(zeros[:, :1], 5, axis=1))


def test_drop_block_2d__rescales_by_count_over_count_ones():
    x = np.random.default_rng(0).normal(size=(2, 20, 30, 3)).astype("float32")
    layer = DropBlock2D(0.2, 3, seed=7)
    outputs = keras.ops.convert_to_numpy(layer(x, training=True)).astype(np.float64)
    keep = outputs != 0
    scale = keep.size / keep.sum()
    np.testing.assert_allclose(outputs[keep], x[keep] * scale, rtol=1e-6)
    # On constant inputs the mean is kept exactly.
    ones = keras.ops.convert_to_numpy(layer(np.ones_like(x), training=True))
    np.testing.assert_allclose(np.mean(ones, dtype=np.float64), 1.0, rtol=1e-6)


def test_drop_block_2d__identity_at_inference():
    x = np.random.default_rng(1).normal(size=(2, 10, 10, 3)).astype("float32")
    layer = DropBlock2D(0.5, 3, seed=0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    model = keras.Sequential([keras.Input((10, 10, 3)), layer])
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)


def test_drop_block_2d__warmup_grows_the_rate_linearly():
    rate, warmup_steps = 0.4, 4
    layer = DropBlock2D(rate, block_size=1, warmup_steps=warmup_steps, seed=11)
    x = np.ones((16, 32, 32, 8), "float32")
    for step in range(6):
        dropped = np.mean(keras.ops.convert_to_numpy(layer(x, training=True)) == 0)
        # block_size 1 is dropout: the dropped fraction is the current rate.
        expected = rate * min(step / warmup_steps, 1.0)
        assert abs(dropped - expected) < 0.01, (step, dropped, expected)
        assert float(layer.step.numpy()) == min(step + 1, warmup_steps)
    # Inference neither drops nor counts.
    layer(x, training=False)
    assert float(layer.step.numpy()) == warmup_steps


def test_drop_block_2d__warmup_counts_steps_once_on_two_replicas():
    x = np.ones((4, 8, 8, 2), "float32")
    with testing.two_replica_strategy().scope():
        model = keras.Sequential([keras.Input((8, 8, 2)), DropBlock2D(0.2, 3, warmup_steps=10),
                                  keras.layers.Conv2D(1, 1)])
        model.compile(optimizer="sgd", loss="mse")
    model.fit(x, np.zeros((4, 8, 8, 1)), batch_size=4, epochs=3, verbose=0)
    assert float(model.layers[0].step.numpy()) == 3.0


@pytest.mark.parametrize(
    "kwargs, argument",
    [({"rate": 1.0}, "rate"), ({"rate": -0.1}, "rate"), ({"block_size": 0}, "block_size"),
     ({"warmup_steps": -1}, "warmup_steps")],
)
def test_drop_block_2d__rejects_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"argument `{argument}`"):
        DropBlock2D(**kwargs)


@pytest.mark.parametrize(
    "data_format, shape",
    [("channels_last", (2, 11, 6, 3)), ("channels_first", (2, 3, 6, 11))],
)
def test_drop_block_2d__rejects_blocks_larger_than_the_map(data_format, shape):
    DropBlock2D(block_size=6, data_format=data_format).build(shape)
    with pytest.raises(ValueError, match="argument `block_size`.*\\[1, 6\\]"):
        DropBlock2D(block_size=7, data_format=data_format).build(shape)


_X = np.random.default_rng(2).normal(size=(4, 8, 8, 3)).astype("float32")


@pytest.mark.parametrize("check", testing.LAYER_CHECKS)
def test_drop_block_2d__harness(check):
    testing.check_layer(DropBlock2D, {"rate": 0.2, "block_size": 3, "warmup_steps": 2,
                                      "seed": 1}, _X, checks=[check], random_in_training=True)
