"""The 3x3 grid of patches that the context pretext tasks (relative patch
position, jigsaw) cut from every image of a batch."""

import tensorflow as tf

from keras_efficient.utils import random_generator
from keras_efficient.utils import validate_size

#: Cells are numbered row by row, 0 (top left) to 8 (bottom right); 4 is the centre.
GRID_SIZE = 3
CENTRE_CELL = 4


class PatchGrid:
    """Square patches on a 3x3 grid placed at a random position in each image.

    Grid cells are `patch_size + gap` pixels apart, and every patch moves by up
    to `jitter` pixels in each direction inside its cell, so that a network
    cannot solve the pretext task from continuing edges or texture across patch
    borders (Doersch et al., Noroozi & Favaro). The grid, with its jitter
    margin, needs `3 * patch_size + 2 * gap + 2 * jitter` pixels per side; its
    position in a larger image is drawn per image. A `tf.data` helper: it uses
    `tf` ops and draws from a `tf.random.Generator` whose state advances on
    every call.

    Args:
        patch_size: side of a patch in pixels, >= 1.
        gap: pixels between neighbouring patches, >= 0.
        jitter: the largest shift of a patch inside its cell, >= 0.
        seed: optional integer; the same seed gives the same sequence of draws.
    """

    def __init__(self, patch_size, gap=0, jitter=0, seed=None):
        self.patch_size = validate_size("patch_size", patch_size)
        self.gap = validate_size("gap", gap, low=0)
        self.jitter = validate_size("jitter", jitter, low=0)
        self.generator = random_generator(seed)
        self.seed = seed

    @property
    def extent(self):
        """Pixels per side that the grid, gaps and jitter margin take up."""
        return GRID_SIZE * self.patch_size + (GRID_SIZE - 1) * self.gap + 2 * self.jitter

    def check_images(self, images, transform_name):
        """`images` as a tensor; raises if it is not a batch the grid fits in."""
        images = tf.convert_to_tensor(images)
        if images.shape.rank != 4:
            raise ValueError(
                f"{transform_name} expects a batch of images (batch_size, height, "
                f"width, channels). Received: images.shape={tuple(images.shape)}"
            )
        height, width = images.shape[1], images.shape[2]
        if any(side is not None and side < self.extent for side in (height, width)):
            raise ValueError(
                "Invalid value received for argument `patch_size`. A 3x3 grid of "
                f"patch_size={self.patch_size} with gap={self.gap} and "
                f"jitter={self.jitter} needs images of at least {self.extent} x "
                f"{self.extent} pixels. Received: images.shape={tuple(images.shape)}"
            )
        return images

    def patches(self, images, cells, seed):
        """Cut patches from `images` `(batch_size, height, width, channels)`.

        Args:
            images: the batch.
            cells: int32 `(batch_size, num_patches)` grid cells (0-8) per image.
            seed: a stateless seed, shape `(2,)`.

        Returns:
            `(batch_size, num_patches, patch_size, patch_size, channels)`: patch
            `k` of image `b` comes from cell `cells[b, k]` of that image's grid.
        """
        batch_size = tf.shape(images)[0]
        num_patches = tf.shape(cells)[1]
        origin_seed, jitter_seed = tf.unstack(tf.random.experimental.stateless_split(seed))
        free = tf.shape(images)[1:3] - self.extent  # room to move the grid, per axis
        origin = tf.cast(
            tf.random.stateless_uniform([batch_size, 1, 2], origin_seed)
            * tf.cast(free + 1, tf.float32),
            tf.int32,
        )
        shift = tf.random.stateless_uniform(
            [batch_size, num_patches, 2], jitter_seed, 0, 2 * self.jitter + 1, tf.int32
        )
        cell_position = tf.stack([cells // GRID_SIZE, cells % GRID_SIZE], axis=-1)
        corner = origin + cell_position * (self.patch_size + self.gap) + shift
        offsets = tf.range(self.patch_size)
        rows = corner[..., 0, None] + offsets  # (batch_size, num_patches, patch_size)
        columns = corner[..., 1, None] + offsets
        # Two batched gathers (rows, then columns): no per-image loop.
        strips = tf.gather(images, rows, axis=1, batch_dims=1)
        return tf.gather(strips, columns, axis=3, batch_dims=2)

    def __repr__(self):
        return f"patch_size={self.patch_size}, gap={self.gap}, jitter={self.jitter}, seed={self.seed}"
