import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_efficient as ke
from keras_efficient.ssl.jigsaw_pretext import maximal_hamming_permutations

RNG = np.random.default_rng(0)
# Continuous random pixels: every patch occurs at exactly one place in its image.
EXACT_IMAGES = RNG.random((64, 9, 9, 2)).astype("float32")  # a 3x3 grid of 3-pixel cells
LARGE_IMAGES = RNG.random((16, 20, 17, 1)).astype("float32")
# (row, column) of the 8 neighbours, row by row without the centre (1, 1).
NEIGHBOUR_POSITIONS = [(r, c) for r in range(3) for c in range(3) if (r, c) != (1, 1)]
NUM_PERMUTATIONS = 30


def cell(images, row, column, size=3):
    return images[:, row * size:(row + 1) * size, column * size:(column + 1) * size]


def locate(image, patch):
    """(row, column) of the one place where `patch` occurs in `image`."""
    size = patch.shape[0]
    found = [(y, x) for y in range(image.shape[0] - size + 1)
             for x in range(image.shape[1] - size + 1)
             if np.array_equal(image[y:y + size, x:x + size], patch)]
    assert len(found) == 1, found
    return np.array(found[0])


def hamming(a, b):
    return np.count_nonzero(a[:, None, :] != b[None, :, :], axis=-1)


def assert_trains(model, dataset):
    """The pretext batches train an ordinary classifier to a finite loss."""
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(dataset, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"][-1])


def min_pairwise_hamming(permutations):
    distances = hamming(permutations, permutations)
    np.fill_diagonal(distances, permutations.shape[1] + 1)
    return distances.min()


# Relative patch position.

def test_relative_patch__patches_equal_numpy_slices_at_the_labelled_position():
    (centre, neighbour), labels = ke.data.RelativePatchPretext(patch_size=3, seed=1)(
        EXACT_IMAGES)
    labels = np.asarray(labels)
    assert labels.dtype == np.int32 and set(labels) == set(range(8))
    np.testing.assert_array_equal(np.asarray(centre), cell(EXACT_IMAGES, 1, 1))
    for image, patch, label in zip(EXACT_IMAGES, np.asarray(neighbour), labels):
        row, column = NEIGHBOUR_POSITIONS[label]
        np.testing.assert_array_equal(patch, cell(image[None], row, column)[0])


def test_relative_patch__gap_and_jitter_place_the_neighbour_one_cell_away():
    patch_size, gap, jitter = 3, 2, 1
    (centre, neighbour), labels = ke.data.RelativePatchPretext(
        patch_size, gap=gap, jitter=jitter, seed=2)(LARGE_IMAGES)
    stride, extent = patch_size + gap, 3 * patch_size + 2 * gap + 2 * jitter
    for image, centre_patch, neighbour_patch, label in zip(
            LARGE_IMAGES, np.asarray(centre), np.asarray(neighbour), np.asarray(labels)):
        centre_at = locate(image, centre_patch)
        # grid origin in [0, side - extent], centre cell one stride in, jitter in [0, 2j]
        assert np.all(centre_at >= stride)
        assert np.all(centre_at <= np.array(image.shape[:2]) - extent + stride + 2 * jitter)
        offset = locate(image, neighbour_patch) - centre_at
        expected = (np.array(NEIGHBOUR_POSITIONS[label]) - 1) * stride
        assert np.all(np.abs(offset - expected) <= 2 * jitter), (offset, expected)


def test_relative_patch__seeded_draws_repeat_and_advance_per_call():
    first, second = (ke.data.RelativePatchPretext(3, jitter=1, seed=5) for _ in range(2))
    images = RNG.random((8, 12, 12, 1)).astype("float32")
    call_1, call_2 = first(images), first(images)
    for a, b in zip(tf.nest.flatten(call_1), tf.nest.flatten(second(images))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(call_1[1]), np.asarray(call_2[1]))


def test_relative_patch__maps_over_labelled_tf_data_and_trains_a_classifier():
    dataset = (tf.data.Dataset.from_tensor_slices((EXACT_IMAGES, np.arange(64)))
               .batch(16).map(ke.data.RelativePatchPretext(3, seed=0)))
    (centre, neighbour), labels = next(iter(dataset))
    assert centre.shape == neighbour.shape == (16, 3, 3, 2) and labels.dtype == tf.int32
    encoder = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(8)])
    inputs = [keras.Input((3, 3, 2)), keras.Input((3, 3, 2))]
    logits = keras.layers.Dense(8)(
        keras.layers.Concatenate()([encoder(patch) for patch in inputs]))
    model = keras.Model(inputs, logits)
    assert_trains(model, dataset)


def test_relative_patch__rejects_bad_arguments():
    with pytest.raises(ValueError, match="argument `patch_size`"):
        ke.data.RelativePatchPretext(patch_size=0)
    with pytest.raises(ValueError, match="argument `gap`"):
        ke.data.RelativePatchPretext(3, gap=-1)
    with pytest.raises(TypeError, match="argument `jitter`"):
        ke.data.RelativePatchPretext(3, jitter=1.5)
    with pytest.raises(ValueError, match="argument `patch_size`.*at least 11 x 11"):
        ke.data.RelativePatchPretext(3, gap=1)(np.zeros((2, 10, 12, 1), "float32"))
    with pytest.raises(ValueError, match="batch of images"):
        ke.data.RelativePatchPretext(3)(np.zeros((9, 9, 1), "float32"))


# Jigsaw.

def test_jigsaw_permutations__are_distinct_permutations_far_apart():
    permutations = maximal_hamming_permutations(NUM_PERMUTATIONS, seed=0)
    assert permutations.shape == (NUM_PERMUTATIONS, 9)
    np.testing.assert_array_equal(np.sort(permutations, axis=1),
                                  np.tile(np.arange(9), (NUM_PERMUTATIONS, 1)))
    all_permutations = np.array(list(itertools.permutations(range(9))), np.int8)
    rng = np.random.default_rng(0)
    random_minimum = max(
        min_pairwise_hamming(all_permutations[rng.choice(len(all_permutations),
                                                         NUM_PERMUTATIONS, replace=False)])
        for _ in range(20))
    assert min_pairwise_hamming(permutations) > random_minimum


def test_jigsaw_permutations__each_is_the_farthest_from_those_chosen_before():
    permutations = maximal_hamming_permutations(NUM_PERMUTATIONS, seed=0)
    all_permutations = np.array(list(itertools.permutations(range(9))), np.int8)
    greedy_distances = []
    for k in range(1, NUM_PERMUTATIONS):
        farthest = hamming(all_permutations, permutations[:k]).min(axis=1).max()
        chosen = hamming(permutations[k:k + 1], permutations[:k]).min()
        assert chosen == farthest, k
        greedy_distances.append(chosen)
    # The set's minimum pairwise distance is the last (smallest) greedy distance.
    assert min_pairwise_hamming(permutations) == min(greedy_distances) == greedy_distances[-1]


def test_jigsaw_permutations__depend_on_the_seed_only():
    np.testing.assert_array_equal(maximal_hamming_permutations(5, seed=3),
                                  maximal_hamming_permutations(5, seed=3))
    assert not np.array_equal(maximal_hamming_permutations(5, seed=3),
                              maximal_hamming_permutations(5, seed=4))
    np.testing.assert_array_equal(
        ke.data.JigsawPretext(3, num_permutations=5).permutations,
        maximal_hamming_permutations(5, seed=0))


def test_jigsaw__tiles_are_the_grid_cells_in_the_labelled_permutation():
    pretext = ke.data.JigsawPretext(3, num_permutations=NUM_PERMUTATIONS, seed=1)
    tiles, labels = pretext(EXACT_IMAGES)
    tiles, labels = np.asarray(tiles), np.asarray(labels)
    assert labels.dtype == np.int32 and labels.min() >= 0
    assert labels.max() < NUM_PERMUTATIONS and len(set(labels)) > 10
    original = np.stack([cell(EXACT_IMAGES, r, c) for r in range(3) for c in range(3)], 1)
    for image_tiles, image_original, label in zip(tiles, original, labels):
        # the same nine tiles, reordered by the labelled permutation
        np.testing.assert_array_equal(image_tiles, image_original[pretext.permutations[label]])


def test_jigsaw__gap_and_jitter_keep_each_tile_in_its_cell():
    patch_size, gap, jitter = 3, 2, 1
    pretext = ke.data.JigsawPretext(patch_size, gap=gap, jitter=jitter,
                                    num_permutations=NUM_PERMUTATIONS, seed=2)
    tiles, labels = pretext(LARGE_IMAGES)
    stride = patch_size + gap
    for image, image_tiles, label in zip(LARGE_IMAGES, np.asarray(tiles), np.asarray(labels)):
        corners = np.array([locate(image, tile) for tile in image_tiles])
        cells = pretext.permutations[label]
        grid = np.stack([cells // 3, cells % 3], axis=1) * stride
        origin = corners[cells == 0][0]  # top-left tile: grid origin + its jitter
        assert np.all(np.abs(corners - origin - grid) <= 2 * jitter)


def test_jigsaw__seeded_and_trains_a_classifier_over_tf_data():
    images = EXACT_IMAGES[:32]
    first, second = (ke.data.JigsawPretext(3, jitter=0, num_permutations=10, seed=7)
                     for _ in range(2))
    for a, b in zip(first(images), second(images)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    dataset = (tf.data.Dataset.from_tensor_slices((images, np.arange(32)))
               .batch(16).map(first))
    tiles, labels = next(iter(dataset))
    assert tiles.shape == (16, 9, 3, 3, 2) and labels.dtype == tf.int32
    encoder = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(4)])
    model = keras.Sequential([keras.Input((9, 3, 3, 2)),
                              keras.layers.TimeDistributed(encoder),
                              keras.layers.Flatten(), keras.layers.Dense(10)])
    assert_trains(model, dataset)


def test_jigsaw__rejects_bad_arguments():
    with pytest.raises(ValueError, match="argument `num_permutations`.*in \\[2, 1000\\]"):
        ke.data.JigsawPretext(3, num_permutations=1)
    with pytest.raises(ValueError, match="argument `num_permutations`"):
        ke.data.JigsawPretext(3, num_permutations=1001)
    with pytest.raises(TypeError, match="argument `seed`"):
        ke.data.JigsawPretext(3, seed=1.0)
    with pytest.raises(ValueError, match="argument `patch_size`"):
        ke.data.JigsawPretext(4, num_permutations=5)(np.zeros((2, 9, 9, 1), "float32"))
