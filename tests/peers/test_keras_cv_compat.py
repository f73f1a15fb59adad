"""keras-cv's own tests for DropBlock2D, StochasticDepth and SimCLRLoss, run on ours.

Assertions re-written from keras-cv 0.9's test files; each deliberate
difference is noted where it applies. Where keras-cv is importable the tests
also compare with it directly.
"""

import keras
import numpy as np
import pytest

from keras_efficient import testing
from keras_efficient.layers import DropBlock2D
from keras_efficient.layers import StochasticDepth
from keras_efficient.losses import NTXent

FEATURE_SHAPE = (1, 14, 14, 16)  # keras-cv: (1, 14, 14, 256), fewer channels here


def _uniform(shape, seed=0):
    return np.random.default_rng(seed).uniform(size=shape).astype("float32")


def _count_zeros(x):
    return int(np.sum(keras.ops.convert_to_numpy(x) == 0))


# --- DropBlock2D (keras_cv/src/layers/regularization/dropblock_2d_test.py) ---

@pytest.mark.parametrize("size", [0, -10, (5, -2), (0, 7), (1, 2, 3, 4)])
def test_drop_block_2d__keras_cv_invalid_block_sizes_rejected(size):
    with pytest.raises(ValueError, match="argument `block_size`"):
        DropBlock2D(block_size=size, rate=0.1)


@pytest.mark.parametrize("rate", [1.1, -0.1])
def test_drop_block_2d__keras_cv_invalid_rates_rejected(rate):
    with pytest.raises(ValueError, match="argument `rate`"):
        DropBlock2D(rate=rate, block_size=7)


def test_drop_block_2d__keras_cv_unchanged_in_eval_mode_and_at_rate_zero():
    x = _uniform(FEATURE_SHAPE)
    np.testing.assert_allclose(DropBlock2D(rate=0.1, block_size=7)(x, training=False), x)
    np.testing.assert_allclose(DropBlock2D(rate=0.0, block_size=7)(x, training=True), x)


@pytest.mark.parametrize("batch, block_size", [(1, 7), (4, 7), (1, (7, 10))])
def test_drop_block_2d__keras_cv_partially_zeroed_in_train_mode(batch, block_size):
    x = _uniform((batch,) + FEATURE_SHAPE[1:])
    output = DropBlock2D(rate=0.1, block_size=block_size, seed=1)(x, training=True)
    assert _count_zeros(output) > _count_zeros(x)


def test_drop_block_2d__keras_cv_positional_third_argument_is_the_seed():
    layer = DropBlock2D(0.1, 7, 42)
    assert (layer.seed, layer.warmup_steps) == (42, 0)
    x = _uniform((4, 14, 14, 8))
    # No warm-up: the first training call already drops (keras-cv's meaning).
    assert _count_zeros(layer(x, training=True)) > 0
    # Same seed, same draws.
    np.testing.assert_array_equal(DropBlock2D(0.1, 7, 42)(x, training=True),
                                  DropBlock2D(0.1, 7, seed=42)(x, training=True))
    with pytest.raises(TypeError):
        DropBlock2D(0.1, 7, 42, 10)  # warmup_steps is keyword-only


def test_drop_block_2d__non_square_block_drop_fraction_matches_float64_reference():
    rate, (bh, bw), (height, width) = 0.1, (3, 6), (24, 40)
    gamma = rate / (bh * bw) * height * width / ((height - bh + 1) * (width - bw + 1))

    def coverers(size, block):
        index = np.arange(size)
        return np.minimum(index, size - block) - np.maximum(index - block + 1, 0) + 1

    counts = np.outer(coverers(height, bh), coverers(width, bw)).astype(np.float64)
    expected = float(np.mean(1.0 - (1.0 - gamma) ** counts))
    out = DropBlock2D(rate, (bh, bw), seed=5)(np.ones((8, height, width, 8), "float32"),
                                              training=True)
    dropped = np.mean(keras.ops.convert_to_numpy(out) == 0)
    assert abs(dropped - expected) < 0.01, (dropped, expected)


def test_drop_block_2d__tuple_block_size_config_round_trip():
    layer = DropBlock2D(0.1, (3, 5), 7, warmup_steps=2)
    restored = DropBlock2D.from_config(layer.get_config())
    assert restored.get_config() == layer.get_config()
    assert restored.block_size == (3, 5)


def test_drop_block_2d__block_taller_than_the_map_names_height():
    with pytest.raises(ValueError, match="block height in \\[1, 4\\]"):
        DropBlock2D(0.1, (5, 2))(np.ones((1, 4, 8, 1), "float32"), training=True)


# --- StochasticDepth (keras_cv/src/layers/regularization/stochastic_depth_test.py) ---

def test_stochastic_depth__keras_cv_rate_gets_an_error_saying_what_to_write():
    # Deliberate difference: ours wraps the branch so a dropped branch is not computed.
    for call in (lambda: StochasticDepth(rate=0.5), lambda: StochasticDepth(0.5)):
        with pytest.raises(TypeError, match="survival_probability=1 - rate"):
            call()


def test_stochastic_depth__keras_cv_eval_mode_scales_the_branch():
    # keras-cv: StochasticDepth(rate)([x, x], training=False) == x * (1 + (1 - rate)).
    x = _uniform(FEATURE_SHAPE)
    rate = 0.5
    layer = StochasticDepth(keras.layers.Identity(), survival_probability=1 - rate)
    np.testing.assert_allclose(layer(x, training=False), x * (1 + (1 - rate)), rtol=1e-6)


def test_stochastic_depth__keras_cv_training_mode_keeps_or_drops_the_whole_branch():
    x = _uniform(FEATURE_SHAPE)
    layer = StochasticDepth(keras.layers.Identity(), survival_probability=0.5, seed=0)
    for _ in range(4):
        total = float(np.sum(keras.ops.convert_to_numpy(layer(x, training=True))))
        assert min(abs(total - x.sum()), abs(total - 2 * x.sum())) < 1e-3 * x.sum()


# --- SimCLRLoss (keras_cv/src/losses/simclr_loss_test.py) ---

PROJECTIONS_1 = [[1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 4.0, 5.0], [3.0, 4.0, 5.0, 6.0]]
PROJECTIONS_2 = [[6.0, 5.0, 4.0, 3.0], [5.0, 4.0, 3.0, 2.0], [4.0, 3.0, 2.0, 1.0]]


def _nt_xent_float64(z_a, z_b, temperature):
    """SimCLR eq. 1, mean over the 2N anchors, in float64."""
    z = np.concatenate([z_a, z_b]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    logits = z @ z.T / temperature
    np.fill_diagonal(logits, -np.inf)
    n = len(z_a)
    positives = np.concatenate([np.arange(n, 2 * n), np.arange(n)])
    log_softmax = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    return float(-np.mean(log_softmax[np.arange(2 * n), positives]))


def test_nt_xent__keras_cv_output_shapes():
    rng = np.random.default_rng(0)
    z_a, z_b = (rng.uniform(0, 10, (10, 16)).astype("float32") for _ in range(2))
    assert tuple(NTXent(temperature=1)(z_a, z_b).shape) == ()
    assert tuple(NTXent(temperature=1, reduction="none")(z_a, z_b).shape) == (10,)


@pytest.mark.parametrize("temperature", [0.5, 0.1])
def test_nt_xent__keras_cv_python_lists_match_float64_reference(temperature):
    # keras-cv's test feeds Python lists. Its constants (1.0945, 1.1512) are not
    # what keras-cv 0.9.0 itself returns (3.5667, 5.7261); ours is the paper's
    # mean over anchors, half of keras-cv's per-pair sum.
    loss = float(NTXent(temperature=temperature)(PROJECTIONS_1, PROJECTIONS_2))
    expected = _nt_xent_float64(np.array(PROJECTIONS_1), np.array(PROJECTIONS_2), temperature)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


@pytest.mark.parametrize("temperature", [0.5, 0.1])
def test_nt_xent__half_of_keras_cv_simclr_loss(temperature):
    keras_cv = pytest.importorskip("keras_cv")
    theirs = float(keras_cv.losses.SimCLRLoss(temperature=temperature)(PROJECTIONS_1,
                                                                       PROJECTIONS_2))
    ours = float(NTXent(temperature=temperature)(PROJECTIONS_1, PROJECTIONS_2))
    np.testing.assert_allclose(ours, theirs / 2, rtol=1e-5)


@pytest.mark.parametrize("check", testing.LAYER_CHECKS)
def test_drop_block_2d__non_square_block_harness(check):
    testing.check_layer(DropBlock2D, {"rate": 0.1, "block_size": (2, 3), "seed": 1},
                        _uniform((4, 6, 8, 2)), checks=[check], random_in_training=True)
