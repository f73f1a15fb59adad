"""Progressive image resizing: train on small images first, full size last."""

import math

import tensorflow as tf

from keras_efficient.curriculum._shape_schedule import ShapeSchedule
from keras_efficient.utils import register
from keras_efficient.utils import validate_choice
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_size

INTERPOLATIONS = ("area", "bicubic", "bilinear", "gaussian", "lanczos3", "lanczos5",
                  "mitchellcubic", "nearest")


@register("keras_efficient.callbacks.ProgressiveResizing",
          "keras_efficient.curriculum.ProgressiveResizing")
class ProgressiveResizing(ShapeSchedule):
    """Trains on downscaled images whose size grows to full size during training.

    A constructed curriculum (the book, after the fast.ai course): small images
    carry the coarse features and make the early steps cheap. At step t, with
    f = t / total_steps, the scale is

    - `initial_scale` while f < `delay_fraction`,
    - 1 once f >= 1 - `finetune_fraction`,
    - linear from `initial_scale` to 1 in between,

    and each side is the scaled side rounded down to a multiple of
    `size_increment` (at least one increment; exactly the full side at scale 1),
    so there are at most about full_side / size_increment distinct sizes.

    Use it twice, on the pipeline and as a callback of the same `fit`:
    `apply(dataset)` resizes every batch once, straight from the source images
    to the step's size (with `batch_size`, every example before batching, so
    decoded images of any size are resized once); the callback switches the
    model to one train function per size, each traced once with the image
    shape static. Images come out as float32. Evaluation data is not touched:
    evaluate at full size.

    Args:
        total_steps: training steps T over which the schedule runs.
        initial_scale: scale of the sides at the start, in (0, 1].
        delay_fraction: fraction of training at `initial_scale`, in [0, 1).
        finetune_fraction: fraction of training at full size at the end, in
            [0, 1]; `delay_fraction + finetune_fraction <= 1`.
        size_increment: sides are multiples of this (>= 1).
        target_size: full size `(height, width)` or an int; default: the
            dataset's static image size.
        interpolation: a `tf.image.resize` method.
        antialias: low-pass filter when downscaling (recommended).

    Example:

    ```python
    resizing = ke.callbacks.ProgressiveResizing(total_steps=epochs * steps,
                                                initial_scale=0.5, finetune_fraction=0.5)
    train = resizing.apply(tf.data.Dataset.from_tensor_slices((x, y)).shuffle(n).batch(64))
    model.fit(train, epochs=epochs, steps_per_epoch=steps, callbacks=[resizing])
    ```

    Defaults follow the Composer method card (initial scale 0.5, delay 0.5,
    fine-tune 0.2, increment 4).

    Reference:
        Howard & Gugger, "Deep Learning for Coders with fastai and PyTorch",
        chapter 7 (progressive resizing); MosaicML Composer, "Progressive
        Image Resizing" method card.
    """

    def __init__(self, total_steps, initial_scale=0.5, delay_fraction=0.5,
                 finetune_fraction=0.2, size_increment=4, target_size=None,
                 interpolation="bilinear", antialias=True):
        super().__init__()
        self.total_steps = validate_size("total_steps", total_steps)
        self.initial_scale = validate_number("initial_scale", initial_scale, 0, 1,
                                             low_inclusive=False)
        self.delay_fraction = validate_number("delay_fraction", delay_fraction, 0, 1,
                                              high_inclusive=False)
        self.finetune_fraction = validate_number("finetune_fraction", finetune_fraction,
                                                 0, 1 - delay_fraction)
        self.size_increment = validate_size("size_increment", size_increment)
        if target_size is not None:
            if not isinstance(target_size, (tuple, list)):
                target_size = (target_size,) * 2
            if len(target_size) != 2:
                raise ValueError("Invalid value received for argument `target_size`. Expected "
                                 "an integer or a pair (height, width). Received: "
                                 f"target_size={target_size!r}")
            target_size = tuple(validate_size("target_size", side)
                                for side in target_size)
        self.target_size = target_size
        self.full_size = target_size
        self.interpolation = validate_choice("interpolation", interpolation, INTERPOLATIONS)
        self.antialias = bool(antialias)

    def scale_at(self, step):
        """The scale of the sides at step `step` (before rounding)."""
        fraction = step / self.total_steps
        if fraction >= 1 - self.finetune_fraction:
            return 1.0
        if fraction < self.delay_fraction:
            return self.initial_scale
        ramp = (fraction - self.delay_fraction) / (
            1 - self.finetune_fraction - self.delay_fraction)
        return self.initial_scale + (1 - self.initial_scale) * ramp

    def _sizes(self, full_size):
        def side(scale, full):
            if scale >= 1:
                return full
            rounded = math.floor(scale * full / self.size_increment) * self.size_increment
            return min(full, max(self.size_increment, rounded))

        return [[side(self.scale_at(t), full) for full in full_size]
                for t in range(self.total_steps + 1)]

    def _full_size_of(self, element_spec, batched):
        if not isinstance(element_spec, tuple):
            raise TypeError("ProgressiveResizing needs a dataset of `(images, labels, ...)` "
                            f"tuples. Received elements: {element_spec}")
        images = element_spec[0]
        shape = images.shape[1:3] if batched else images.shape[0:2]
        if not isinstance(images, tf.TensorSpec) or None in shape:
            raise ValueError("ProgressiveResizing needs the images' full size: pass "
                             f"`target_size`. The dataset's images are {images}")
        return tuple(shape)

    def _transform(self, data, size, batched):
        images, *rest = data
        same = tf.reduce_all(tf.shape(images)[-3:-1] == size)
        images = tf.cond(
            same,
            lambda: tf.cast(images, "float32"),
            lambda: tf.cast(tf.image.resize(images, size, self.interpolation,
                                            antialias=self.antialias), "float32"),
        )
        return (images, *rest)

    def _pin(self, data, size):
        images, *rest = data
        return (tf.ensure_shape(images, [None, *size, images.shape[-1]]), *rest)

    def get_config(self):
        return {"total_steps": self.total_steps, "initial_scale": self.initial_scale,
                "delay_fraction": self.delay_fraction,
                "finetune_fraction": self.finetune_fraction,
                "size_increment": self.size_increment, "target_size": self.target_size,
                "interpolation": self.interpolation, "antialias": self.antialias}
