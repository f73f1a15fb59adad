"""Jigsaw puzzles (Noroozi & Favaro, 2016): a pretext task as a batch transform
for `tf.data`, with the maximal-Hamming-distance permutation set."""

import functools
import itertools

import numpy as np
import tensorflow as tf

from keras_efficient.ssl.patch_grid import GRID_SIZE
from keras_efficient.ssl.patch_grid import PatchGrid
from keras_efficient.utils import export
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_seed

NUM_TILES = GRID_SIZE * GRID_SIZE
MAX_PERMUTATIONS = 1000


@functools.lru_cache(maxsize=8)
def maximal_hamming_permutations(num_permutations, seed=0):
    """A set of permutations of the 9 tiles that are far apart from each other.

    Greedy farthest-point selection over all 9! permutations, as the paper's
    Algorithm 1: start from a random permutation (drawn with `seed`), then
    repeatedly add the permutation farthest from the ones chosen so far. The
    paper's criterion is the average Hamming distance to the chosen set; here
    the *minimum* distance comes first (so that no two puzzles differ in only a
    few tiles, which makes labels ambiguous) and the average breaks ties, then
    the lowest index: deterministic given `seed`.

    Args:
        num_permutations: how many permutations, in [2, 1000].
        seed: integer seed for the first permutation.

    Returns:
        A read-only int32 array `(num_permutations, 9)`; row `i` is permutation `i`.
    """
    validate_number("num_permutations", num_permutations, 2, MAX_PERMUTATIONS, integer=True)
    validate_seed("seed", seed)
    candidates = np.array(list(itertools.permutations(range(NUM_TILES))), dtype=np.int8)
    chosen = [int(np.random.default_rng(seed).integers(len(candidates)))]
    min_distance = np.full(len(candidates), NUM_TILES + 1, dtype=np.int64)
    total_distance = np.zeros(len(candidates), dtype=np.int64)
    for _ in range(num_permutations - 1):
        distance = np.count_nonzero(candidates != candidates[chosen[-1]], axis=1)
        np.minimum(min_distance, distance, out=min_distance)
        total_distance += distance
        # Total distances stay below (NUM_TILES + 1) * num_permutations, so the
        # minimum decides and the total only breaks ties; chosen rows score lowest.
        score = min_distance * (NUM_TILES + 1) * num_permutations + total_distance
        chosen.append(int(np.argmax(score)))
    permutations = candidates[chosen].astype(np.int32)
    permutations.flags.writeable = False
    return permutations


@export("keras_efficient.data.JigsawPretext")
class JigsawPretext:
    """Turn a batch of unlabeled images into jigsaw puzzles to classify.

    Every image is cut into a 3x3 grid of tiles, which are shuffled by one
    permutation (drawn uniformly per image) out of a fixed set chosen with
    maximal Hamming distance (`maximal_hamming_permutations`); the label is the
    permutation's index. Solving the puzzle needs the network to recognise
    object parts and how they fit together. Train a classifier with
    `num_permutations` outputs on the result, a shared encoder applied to each
    tile (the paper's context-free network, for example
    `Dense(num_permutations)(Flatten()(TimeDistributed(encoder)(tiles)))`), then
    reuse the encoder.

    Args:
        patch_size: side of a tile in pixels, >= 1.
        gap: pixels between neighbouring tiles, >= 0 (the paper: 11 pixels, a
            64-pixel tile cropped from each 75-pixel cell).
        jitter: the largest random shift of each tile in each direction, >= 0.
            Gap and jitter stop the network from matching edges that continue
            across tile borders.
        num_permutations: the number of puzzles (classes), in [2, 1000]; the
            paper uses 1000 (100 works nearly as well and is faster to build).
        seed: optional integer; two transforms with the same seed use the same
            permutation set and draw the same sequence, and every call (every
            batch) draws anew. Without a seed the permutation set is the one of
            seed 0, so models stay comparable.

    Call arguments:
        images: a batch `(batch_size, height, width, channels)` with
            `height, width >= 3 * patch_size + 2 * gap + 2 * jitter`; a second
            argument (labels) is ignored, so the transform maps over labelled
            datasets too.

    Returns:
        `(tiles, labels)`: `(batch_size, 9, patch_size, patch_size, channels)`
        tiles, where tile `i` of image `b` is grid cell
        `permutations[labels[b], i]` (cells numbered row by row), and int32
        labels in `[0, num_permutations)`.

    Example:

    >>> import numpy as np, tensorflow as tf
    >>> images = np.random.rand(8, 12, 12, 1).astype("float32")
    >>> pretext = JigsawPretext(patch_size=4, num_permutations=10, seed=0)
    >>> dataset = tf.data.Dataset.from_tensor_slices(images).batch(4).map(pretext)
    >>> tiles, labels = next(iter(dataset))
    >>> tuple(tiles.shape), tuple(labels.shape), pretext.permutations.shape
    ((4, 9, 4, 4, 1), (4,), (10, 9))

    Reference:
        Noroozi, Favaro, "Unsupervised Learning of Visual Representations by
        Solving Jigsaw Puzzles", ECCV 2016 (https://arxiv.org/abs/1603.09246).
    """

    def __init__(self, patch_size, gap=0, jitter=0, num_permutations=100, seed=None):
        self.grid = PatchGrid(patch_size, gap=gap, jitter=jitter, seed=seed)
        # Checked before the cached function, which needs a hashable argument.
        validate_number("num_permutations", num_permutations, 2, MAX_PERMUTATIONS, integer=True)
        self.permutations = maximal_hamming_permutations(
            num_permutations, 0 if seed is None else seed
        )

    def __call__(self, images, labels=None):
        images = self.grid.check_images(images, "JigsawPretext")
        label_seed, grid_seed = tf.unstack(self.grid.generator.make_seeds(2), axis=1)
        labels = tf.random.stateless_uniform(
            [tf.shape(images)[0]], label_seed, 0, len(self.permutations), tf.int32
        )
        cells = tf.gather(tf.constant(self.permutations), labels)
        return self.grid.patches(images, cells, grid_seed), labels

    def __repr__(self):
        return (f"JigsawPretext({self.grid!r}, "
                f"num_permutations={len(self.permutations)})")
