"""The embedded dataset: scikit-learn's bundled 8x8 handwritten digits."""

import dataclasses

import numpy as np

from keras_efficient.utils import export
from keras_efficient.utils import validate_choice
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_seed
from keras_efficient.utils import validate_size


@export("keras_efficient.data.Digits")
@dataclasses.dataclass
class Digits:
    """Train/test split of the digits as float32 images in [0, 1].

    Attributes:
        x_train, x_test: images of shape `(n, size, size, channels)`.
        y_train, y_test: int32 labels in [0, 10).
        num_classes: 10.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int = 10


@export("keras_efficient.data.load_digits")
def load_digits(image_size=8, channels=1, test_fraction=0.25, seed=0):
    """Load scikit-learn's 1,797 bundled digits, offline, with a seeded split.

    The split is stratified, so every class has the same share in train and
    test, and depends only on `seed`.

    Args:
        image_size: side of the returned images, in [8, 512]; 8 is the
            original, larger values upscale once here with bilinear resizing (not per epoch).
        channels: 1 (grayscale) or 3 (the gray value repeated, for colour
            augmentations and ImageNet-style models).
        test_fraction: share of the data held out for testing, in (0, 1).
        seed: seed of the split.

    Returns:
        A `Digits` with float32 images in [0, 1] and int32 labels.

    Example:

    >>> data = load_digits(image_size=16)
    >>> data.x_train.shape
    (1347, 16, 16, 1)
    """
    # Upsampled beyond 512 pixels the 1,797 digits would take gigabytes.
    validate_size("image_size", image_size, low=8, high=512)
    validate_number("test_fraction", test_fraction, 0, 1, low_inclusive=False,
                    high_inclusive=False)
    validate_choice("channels", channels, (1, 3))
    validate_seed("seed", seed, allow_none=False)
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    images = (bunch.images / 16.0).astype("float32")[..., None]
    labels = bunch.target.astype("int32")
    if image_size != 8:
        import tensorflow as tf

        images = tf.image.resize(images, (image_size, image_size)).numpy()
        images = np.clip(images, 0.0, 1.0)
    if channels == 3:
        images = np.repeat(images, 3, axis=-1)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )
    return Digits(x_train, y_train, x_test, y_test)
