"""What MixUp and CutMix share: soft labels (one-hot and smoothed), one Beta(a, a)
draw and one partner permutation per batch, a seed state that advances per call,
and the label mix y = lam * y_i + (1 - lam) * y_partner(i).

These are `tf.data` batch transforms (they run in the input pipeline, where
TensorFlow ops are the ops that exist), so they use `tf` directly.

Why not wrap `keras.layers.MixUp` / `keras.layers.CutMix` (Keras 3.15): they take
one-hot labels only (integer labels, the common case, fail), have no label
smoothing, and draw a mixing weight per example rather than one per batch. Keras's
CutMix also samples its Beta parameter from `factor` instead of taking alpha,
keeps the whole box inside the image (the paper draws the box centre uniformly and
clips the box), and mixes labels by the area of the unrounded box rather than the
pixels actually pasted. See each class's docstring.
"""

import tensorflow as tf

from keras_efficient.utils import random_generator
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_size


def soft_labels(labels, num_classes=None, label_smoothing=0.0):
    """Float32 targets (1 - e) * onehot + e / K from integer or one-hot labels.

    Args:
        labels: integer class ids of shape `(batch_size,)` or `(batch_size, 1)`,
            or float one-hot / probability targets of shape `(batch_size, K)`.
        num_classes: K; required for integer labels, checked against one-hot ones.
        label_smoothing: e in [0, 1].

    Returns:
        A float32 tensor of shape `(batch_size, K)` whose rows sum to one.
    """
    labels = tf.convert_to_tensor(labels)
    if labels.dtype.is_integer:
        if num_classes is None:
            raise ValueError(
                "Integer labels need the number of classes: pass `num_classes` "
                f"(an integer >= 2). Received labels of shape {labels.shape} and "
                "num_classes=None"
            )
        if labels.shape.rank == 2 and labels.shape[-1] == 1:
            labels = tf.squeeze(labels, -1)
        if labels.shape.rank != 1:
            raise ValueError(
                "Integer labels must have shape (batch_size,) or (batch_size, 1). "
                f"Received: labels.shape={labels.shape}"
            )
        # tf.one_hot turns an out-of-range id into a zero row: a silent wrong target.
        message = ("Invalid value received for argument `labels`. Expected class ids in "
                   f"[0, {num_classes})")
        with tf.control_dependencies([
                tf.debugging.assert_non_negative(labels, message=message),
                tf.debugging.assert_less(labels, tf.cast(num_classes, labels.dtype),
                                         message=message)]):
            targets = tf.one_hot(labels, num_classes, dtype=tf.float32)
    else:
        if labels.shape.rank != 2:
            raise ValueError(
                "Float labels must be one-hot or probabilities of shape "
                f"(batch_size, num_classes). Received: labels.shape={labels.shape}"
            )
        if num_classes is not None and labels.shape[-1] not in (None, num_classes):
            raise ValueError(
                f"One-hot labels have {labels.shape[-1]} classes but "
                f"num_classes={num_classes}"
            )
        targets = tf.cast(labels, tf.float32)
    if label_smoothing:
        count = tf.cast(tf.shape(targets)[-1], tf.float32)
        targets = (1.0 - label_smoothing) * targets + label_smoothing / count
    return targets


class BatchMixer:
    """Base class of MixUp and CutMix: mixes each example of a batch with a
    shuffled partner and its label by the same proportion.

    Subclasses implement `mix_images(images, partner_images, lam, seed)`, which
    returns the mixed images and the proportion of each image that is still its
    own (CutMix corrects lam to the pasted area).

    Args:
        alpha: the Beta(alpha, alpha) parameter, > 0.
        num_classes: number of classes; required for integer labels.
        label_smoothing: e in [0, 1], folded into the mixed targets.
        seed: optional integer; two mixers with the same seed draw the same
            sequence, and each call draws anew.
    """

    def __init__(self, alpha, num_classes=None, label_smoothing=0.0, seed=None):
        self.alpha = float(validate_number("alpha", alpha, 0, low_inclusive=False))
        if num_classes is not None:
            validate_size("num_classes", num_classes, low=2)
        self.num_classes = num_classes
        self.label_smoothing = float(validate_number("label_smoothing", label_smoothing, 0, 1))
        self._generator = random_generator(seed)
        self.seed = seed

    def __call__(self, images, labels):
        """Mix a batch.

        Args:
            images: a batch of images, `(batch_size, ...)`.
            labels: integer labels `(batch_size,)` / `(batch_size, 1)` or one-hot
                labels `(batch_size, num_classes)`.

        Returns:
            `(mixed_images, mixed_labels)`, the labels float32
            `(batch_size, num_classes)` with rows that sum to one.
        """
        images = tf.convert_to_tensor(images)
        targets = soft_labels(labels, self.num_classes, self.label_smoothing)
        seeds = self._generator.make_seeds(3)
        partner = tf.random.experimental.stateless_shuffle(
            tf.range(tf.shape(images)[0]), seed=seeds[:, 0]
        )
        lam = self._sample_beta(seeds[:, 1])
        mixed_images, lam = self.mix_images(images, tf.gather(images, partner), lam,
                                            seeds[:, 2])
        if not images.shape[:1].is_compatible_with(targets.shape[:1]):
            raise ValueError("Invalid value received for argument `labels`. Expected one label "
                             f"per image ({images.shape[0]}). Received: {targets.shape[0]}")
        lam = tf.cast(lam, tf.float32)
        mixed_labels = lam * targets + (1.0 - lam) * tf.gather(targets, partner)
        return mixed_images, mixed_labels

    def _sample_beta(self, seed):
        # Beta(a, a) = X / (X + Y) with X, Y ~ Gamma(a); float64 so that small
        # alphas do not underflow both draws to zero.
        draws = tf.random.stateless_gamma([2], seed=seed, alpha=self.alpha, dtype=tf.float64)
        return tf.cast(draws[0] / (draws[0] + draws[1]), tf.float32)

    def mix_images(self, images, partner_images, lam, seed):
        """Return `(mixed_images, lam)`: the images mixed with their partners and
        the fraction of each image that is still its own. `seed` is a stateless
        seed (shape `(2,)`) for any further draws."""
        raise NotImplementedError

    def __repr__(self):
        return (f"{type(self).__name__}(alpha={self.alpha}, num_classes={self.num_classes}, "
                f"label_smoothing={self.label_smoothing}, seed={self.seed})")
