"""SimCLR's augmentation recipe as one batched, seeded Keras layer."""

import warnings

import keras

from keras_efficient.backend import keras_compat
from keras_efficient.backend.data_layer import DataLayer
from keras_efficient.ssl.random_resized_crop import RandomResizedCrop
from keras_efficient.utils import register
from keras_efficient.utils import validate_choice
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_range
from keras_efficient.utils import validate_seed
from keras_efficient.utils import validate_size

# A blur wider than this is no augmentation any more (SimCLR: 10% of the side).
MAX_BLUR_KERNEL_SIZE = 255

#: Presets: SimCLR's CIFAR-10 and ImageNet recipes (appendix A and B.9 of the
#: paper) and a gentler one for the 8x8 / 16x16 digits, where a crop of 8% of
#: the area leaves a pixel or two and a flipped digit is a different digit.
PRESETS = {
    "digits": {"scale": (0.4, 1.0), "flip": False, "jitter_strength": 0.5,
               "jitter_probability": 0.8, "grayscale_probability": 0.0,
               "blur_probability": 0.0},
    "cifar": {"scale": (0.08, 1.0), "flip": True, "jitter_strength": 0.5,
              "jitter_probability": 0.8, "grayscale_probability": 0.2, "blur_probability": 0.0},
    "imagenet": {"scale": (0.08, 1.0), "flip": True, "jitter_strength": 1.0,
                 "jitter_probability": 0.8, "grayscale_probability": 0.2,
                 "blur_probability": 0.5},
}


def _saturation_factor(strength):
    # Keras's RandomSaturation draws f and scales saturation by f / (1 - f);
    # SimCLR scales it by U[1 - 0.8 s, 1 + 0.8 s]: map those multipliers to f.
    low, high = max(0.0, 1 - 0.8 * strength), 1 + 0.8 * strength
    return (low / (1 + low), high / (1 + high))


@register("keras_efficient.layers.SimCLRAugmentation")
class SimCLRAugmentation(DataLayer):
    """The SimCLR augmentation: crop, flip, colour jitter, grayscale, blur.

    Applied independently to every image of a batch (each draws its own crop,
    flip, jitter factors and coin flips) with batched ops, no per-image Python
    loop or `map_fn`, so it runs as a `tf.data` map on batches (with TensorFlow
    ops on every backend, as Keras's preprocessing layers) or inside a model's
    train step. Built from Keras layers: `RandomFlip`, `RandomBrightness`,
    `RandomContrast`, `RandomSaturation`, `RandomHue`, `RandomGrayscale`,
    `RandomGaussianBlur`, and this package's `RandomResizedCrop` (Keras has none
    that draws a crop per image). Not `RandomColorJitter`: in Keras 3.15 a
    `tf.data` call leaves its sub-layers on TensorFlow ops, so a later call on
    the JAX backend (in a model's step) fails.

    The colour jitter of strength `s` is applied with probability
    `jitter_probability` in the fixed order brightness, contrast, saturation,
    hue (SimCLR shuffles the order), with contrast `U[1 - 0.8 s, 1 + 0.8 s]`,
    saturation multiplied by about that range, hue shifted by up to `0.2 s`, and
    brightness *added*: up to `0.4 s` of the value range (Keras's
    `RandomBrightness` is additive; torchvision's multiplies by
    `U[1 - 0.8 s, 1 + 0.8 s]`). Saturation, hue and grayscale need RGB and are
    skipped for single-channel images. Keras's blur draws one sigma in
    `[0.1, 2.0]` per batch (SimCLR: per image).

    Use `SimCLRAugmentation.from_preset("digits" | "cifar" | "imagenet")`.

    Args:
        scale: area range of the random resized crop, in (0, 1].
        flip: random horizontal flips.
        jitter_strength: colour jitter strength `s` in [0, 1.25] (SimCLR: 1.0
            on ImageNet, 0.5 on CIFAR-10).
        jitter_probability: probability of jittering an image.
        grayscale_probability: probability of converting an image to gray.
        blur_probability: probability of a Gaussian blur (0 disables it).
        blur_kernel_size: size of the blur kernel (SimCLR: 10% of the side).
        value_range: range of the pixel values the colour jitter and blur
            assume, `(0, 1)` (the default) or `(0, 255)`. Images outside it
            (e.g. uint8-range pixels with the default) are jittered wrongly,
            so such inputs warn (once; eager, in `tf.data` and in `fit`, not
            under XLA).
        seed: seed of every random draw (each sub-layer derives its own).

    Call arguments:
        images: `(batch_size, height, width, channels)`.
        training: augments when True (the default, for `tf.data`).

    Returns:
        Augmented images of the same shape, float.

    Example:

    >>> import numpy as np
    >>> augment = SimCLRAugmentation.from_preset("cifar", seed=1)
    >>> views = augment.two_views(np.random.rand(4, 32, 32, 3).astype("float32"))
    >>> views["view_a"].shape, views["view_b"].shape
    (TensorShape([4, 32, 32, 3]), TensorShape([4, 32, 32, 3]))

    Reference:
        Chen et al., "A Simple Framework for Contrastive Learning of Visual
        Representations", ICML 2020, appendix A.
    """

    def __init__(self, scale=(0.08, 1.0), flip=True, jitter_strength=1.0,
                 jitter_probability=0.8, grayscale_probability=0.2, blur_probability=0.0,
                 blur_kernel_size=3, value_range=(0, 1), seed=None, **kwargs):
        super().__init__(**kwargs)
        self.scale = validate_range("scale", scale, 0, 1)
        self.flip = bool(flip)
        # Above 1.25 the contrast factor 0.8 * s leaves Keras's [0, 1].
        self.jitter_strength = validate_number("jitter_strength", jitter_strength, 0, 1.25)
        self.jitter_probability = validate_number("jitter_probability", jitter_probability, 0, 1)
        self.grayscale_probability = validate_number(
            "grayscale_probability", grayscale_probability, 0, 1)
        self.blur_probability = validate_number("blur_probability", blur_probability, 0, 1)
        self.blur_kernel_size = validate_size("blur_kernel_size", blur_kernel_size,
                                              high=MAX_BLUR_KERNEL_SIZE)
        if blur_kernel_size % 2 == 0:
            raise ValueError("Invalid value received for argument `blur_kernel_size`. Expected "
                             f"an odd integer. Received: blur_kernel_size={blur_kernel_size}")
        self.value_range = validate_range("value_range", value_range)
        # Validated here: the sub-layers get `seed + offset` and would report that.
        self.seed = validate_seed("seed", seed)

        def sub_seed(offset):
            return None if seed is None else seed + offset

        s = self.jitter_strength
        self.crop = RandomResizedCrop(scale=self.scale, seed=sub_seed(1))
        self.flipper = keras.layers.RandomFlip("horizontal", seed=sub_seed(2))
        # The colour jitter in its order; single-channel images use the first two.
        self.jitter = [
            keras.layers.RandomBrightness(0.4 * s, value_range=self.value_range,
                                          seed=sub_seed(3)),
            keras.layers.RandomContrast(0.8 * s, value_range=self.value_range, seed=sub_seed(7)),
            keras.layers.RandomSaturation(_saturation_factor(s), value_range=self.value_range,
                                          seed=sub_seed(8)),
            keras.layers.RandomHue((0.0, 0.4 * s), value_range=self.value_range,
                                   seed=sub_seed(9)),
        ]
        self.grayscale = keras.layers.RandomGrayscale(grayscale_probability, seed=sub_seed(4))
        self.blur = keras.layers.RandomGaussianBlur(
            factor=(blur_probability, blur_probability), kernel_size=self.blur_kernel_size,
            sigma=(0.1, 2.0), value_range=self.value_range, seed=sub_seed(5))
        self.generator = keras.random.SeedGenerator(sub_seed(6))

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """The recipe `preset` ("digits", "cifar", "imagenet"), updated with `kwargs`."""
        validate_choice("preset", preset, PRESETS)
        return cls(**{**PRESETS[preset], **kwargs})

    def build(self, input_shape):
        for layer in (self.crop, self.flipper, *self.jitter, self.grayscale, self.blur):
            layer.build(input_shape)

    def _with_probability(self, probability, images, transformed):
        # `self.backend` is TensorFlow inside `tf.data`, Keras's backend elsewhere.
        keep = self.backend.random.uniform((self.backend.shape(images)[0], 1, 1, 1),
                                           seed=keras_compat.seed_generator(self))
        return self.backend.numpy.where(keep < probability, transformed, images)

    def call(self, images, training=True):
        images = self.backend.cast(images, self.compute_dtype)
        if not training:
            return images
        self._warn_if_outside_value_range(images)
        rgb = images.shape[-1] == 3
        images = self.crop(images, training=True)
        if self.flip:
            images = self.flipper(images, training=True)
        if self.jitter_strength > 0 and self.jitter_probability > 0:
            jittered = images
            for layer in self.jitter if rgb else self.jitter[:2]:
                jittered = layer(jittered, training=True)
            images = self._with_probability(self.jitter_probability, images, jittered)
        if rgb and self.grayscale_probability > 0:
            images = self.grayscale(images, training=True)
        if self.blur_probability > 0:
            images = self.blur(images, training=True)
        return images

    def _warn_if_outside_value_range(self, images):
        """Warn when the pixels fall outside `value_range`, in eager or traced calls.

        Traced values are read on the host, through `jax.debug.callback` on JAX
        and `tf.py_function` on TensorFlow (in `tf.data` maps, on every backend,
        and `fit`'s step; skipped under XLA, which cannot compile it). Python
        shows the warning once per session, not once per batch.
        """
        low, high = self.backend.numpy.min(images), self.backend.numpy.max(images)
        backend = self.backend.name
        if backend == "jax":
            import jax

            jax.debug.callback(self._check_value_range, low, high)
            return
        if backend == "tensorflow":
            import tensorflow as tf

            if not tf.executing_eagerly():
                if tf.__internal__.get_enclosing_xla_context() is None:
                    tf.py_function(self._check_value_range, [low, high], [])
                return
        self._check_value_range(low, high)

    def _check_value_range(self, low, high):
        if float(low) < self.value_range[0] or float(high) > self.value_range[1]:
            # A fixed text, so Python's warning filter shows it once.
            warnings.warn(
                f"SimCLRAugmentation got images outside its value_range={self.value_range}: "
                "colour jitter and blur assume that range. Pass value_range=(0, 255) for "
                "8-bit pixels or rescale the images.", stacklevel=2)

    def two_views(self, images):
        """Two independent augmentations of `images`, as `fit` input for the SSL models.

        Map it over a batched dataset (`dataset.batch(256).map(augment.two_views)`)
        to augment in the input pipeline instead of in the train step.
        """
        return {"view_a": self(images, training=True), "view_b": self(images, training=True)}

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            scale=list(self.scale), flip=self.flip, jitter_strength=self.jitter_strength,
            jitter_probability=self.jitter_probability,
            grayscale_probability=self.grayscale_probability,
            blur_probability=self.blur_probability, blur_kernel_size=self.blur_kernel_size,
            value_range=list(self.value_range), seed=self.seed,
        )
        return config
