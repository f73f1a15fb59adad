"""Relative patch position (Doersch et al., 2015): a pretext task as a batch
transform for `tf.data`."""

import tensorflow as tf

from keras_efficient.ssl.patch_grid import CENTRE_CELL
from keras_efficient.ssl.patch_grid import PatchGrid
from keras_efficient.utils import export

NUM_NEIGHBOURS = 8


@export("keras_efficient.data.RelativePatchPretext")
class RelativePatchPretext:
    """Turn a batch of unlabeled images into an 8-way "where is this patch?" batch.

    From every image a 3x3 grid of patches is laid out at a random position;
    the centre patch and one of its 8 neighbours (drawn uniformly per image) are
    returned with the neighbour's index as the label. Predicting the position
    of one part of an object relative to another needs the network to recognise
    the parts. Train a two-input classifier with 8 outputs on the result, a
    shared encoder applied to both patches (for example
    `Dense(8)(Concatenate()([encoder(centre), encoder(neighbour)]))` with
    `SparseCategoricalCrossentropy(from_logits=True)`), then reuse the encoder.

    Neighbours are numbered row by row, skipping the centre:

        0 1 2
        3 . 4
        5 6 7

    Args:
        patch_size: side of a patch in pixels, >= 1.
        gap: pixels between neighbouring patches, >= 0 (the paper: half a patch).
        jitter: the largest random shift of each patch in each direction, >= 0
            (the paper: 7 pixels for 96-pixel patches). Gap and jitter stop the
            network from matching edges that continue across patch borders.
        seed: optional integer; two transforms with the same seed draw the same
            sequence, and every call (every batch) draws anew.

    Call arguments:
        images: a batch `(batch_size, height, width, channels)` with
            `height, width >= 3 * patch_size + 2 * gap + 2 * jitter`; a second
            argument (labels) is ignored, so the transform maps over labelled
            datasets too.

    Returns:
        `((centre, neighbour), labels)`: two `(batch_size, patch_size,
        patch_size, channels)` patch batches and int32 labels in 0-7.

    Example:

    >>> import numpy as np, tensorflow as tf
    >>> images = np.random.rand(8, 16, 16, 1).astype("float32")
    >>> pretext = RelativePatchPretext(patch_size=4, gap=1, jitter=1, seed=0)
    >>> dataset = tf.data.Dataset.from_tensor_slices(images).batch(4).map(pretext)
    >>> (centre, neighbour), labels = next(iter(dataset))
    >>> tuple(centre.shape), tuple(neighbour.shape), tuple(labels.shape)
    ((4, 4, 4, 1), (4, 4, 4, 1), (4,))

    Reference:
        Doersch, Gupta, Efros, "Unsupervised Visual Representation Learning by
        Context Prediction", ICCV 2015 (https://arxiv.org/abs/1505.05192).
    """

    def __init__(self, patch_size, gap=0, jitter=0, seed=None):
        self.grid = PatchGrid(patch_size, gap=gap, jitter=jitter, seed=seed)

    def __call__(self, images, labels=None):
        images = self.grid.check_images(images, "RelativePatchPretext")
        label_seed, grid_seed = tf.unstack(self.grid.generator.make_seeds(2), axis=1)
        batch_size = tf.shape(images)[0]
        labels = tf.random.stateless_uniform(
            [batch_size], label_seed, 0, NUM_NEIGHBOURS, tf.int32
        )
        neighbour_cell = labels + tf.cast(labels >= CENTRE_CELL, tf.int32)
        cells = tf.stack([tf.fill([batch_size], CENTRE_CELL), neighbour_cell], axis=1)
        patches = self.grid.patches(images, cells, grid_seed)
        return (patches[:, 0], patches[:, 1]), labels

    def __repr__(self):
        return f"RelativePatchPretext({self.grid!r})"
