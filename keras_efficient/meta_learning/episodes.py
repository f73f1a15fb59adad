"""N-way K-shot episodes as `tf.data` pipelines, and the task sources that feed them.

Every dataset here yields `((support_x, support_y, query_x), query_y)` with a leading
meta-batch axis and static shapes, so `model.fit(dataset)` trains a few-shot model
directly, also on TPU (`drop_remainder` batching):

- `support_x`: `[meta_batch_size, n_way * n_shot, ...]`
- `support_y`: `[meta_batch_size, n_way * n_shot]` (int32 labels in `[0, n_way)`)
- `query_x`: `[meta_batch_size, n_way * n_query, ...]`
- `query_y`: `[meta_batch_size, n_way * n_query]` (int32 labels in `[0, n_way)`)

Support and query items are ordered class by class (label 0 first); the labels are
re-drawn for every episode (the classes are sampled in random order), so a model
cannot memorize a class-to-label mapping.
"""

import numpy as np

from keras_efficient.utils import export
from keras_efficient.utils import validate_choice
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_seed
from keras_efficient.utils import validate_size

#: Rotations that make new classes (Vinyals et al. 2016; Finn et al. 2017).
_ROTATIONS = 4


def _episode_seed(seed, index):
    """A stateless-op seed for episode `index`: episodes are reproducible one by one."""
    import tensorflow as tf

    return tf.stack([tf.constant(seed, tf.int64), tf.cast(index, tf.int64)])


def _validated_seed(seed):
    if seed is None:
        return int(np.random.default_rng().integers(2**31 - 1))
    return validate_seed("seed", seed)


def _batched(episodes, meta_batch_size, num_episodes):
    import tensorflow as tf

    validate_size("meta_batch_size", meta_batch_size)
    if num_episodes is None:
        indices = tf.data.Dataset.counter()
    else:
        validate_size("num_episodes", num_episodes, meta_batch_size)
        indices = tf.data.Dataset.range(num_episodes)
    dataset = indices.map(episodes, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.batch(meta_batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


@export("keras_efficient.data.episode_dataset")
def episode_dataset(x, y, n_way, n_shot, n_query, meta_batch_size=1, num_episodes=None,
                    seed=None):
    """Sample N-way K-shot classification episodes from labelled arrays.

    Each episode draws `n_way` distinct classes of `y` (in random order: the order
    gives the labels 0..n_way-1), then `n_shot + n_query` distinct items of each
    class: the first `n_shot` form the support set, the rest the query set.
    Episode `i` depends only on `(seed, i)`, so a seeded dataset is the same on
    every iteration (a fixed test set of episodes, as the papers report) and the
    same on every machine. Class-disjoint meta-train and meta-test sets come from
    calling this on arrays of disjoint classes (see `rotated_digits` and
    `omniglot_classes`).

    Args:
        x: array of items, shape `(num_items, ...)`.
        y: integer class ids, shape `(num_items,)`; any ids (not necessarily 0..C-1).
        n_way: classes per episode, in `[1, number of classes]`.
        n_shot: support items per class, at least 1.
        n_query: query items per class, at least 1; `n_shot + n_query` must not
            exceed the smallest class.
        meta_batch_size: episodes per dataset element.
        num_episodes: episodes in the dataset (a multiple of `meta_batch_size` is
            used, the remainder dropped); None for an endless dataset (give `fit`
            a `steps_per_epoch`).
        seed: non-negative integer; None draws one.

    Returns:
        A `tf.data.Dataset` of `((support_x, support_y, query_x), query_y)`
        (shapes in the module docstring).

    Example:

    >>> import numpy as np
    >>> x = np.random.rand(60, 8, 8, 1).astype("float32")
    >>> y = np.repeat(np.arange(6), 10)
    >>> dataset = episode_dataset(x, y, n_way=3, n_shot=2, n_query=4,
    ...                           meta_batch_size=2, num_episodes=4, seed=0)
    >>> (support_x, support_y, query_x), query_y = next(iter(dataset))
    >>> tuple(support_x.shape), tuple(query_y.shape)
    ((2, 6, 8, 8, 1), (2, 12))
    """
    import tensorflow as tf

    x = np.asarray(x)
    y = np.asarray(y)
    if y.ndim != 1 or len(x) != len(y):
        raise ValueError(
            "Invalid value received for arguments `x` and `y`. Expected `y` of shape "
            f"(num_items,) with one label per item of `x`. Received: x.shape={x.shape}, "
            f"y.shape={y.shape}"
        )
    classes, counts = np.unique(y, return_counts=True)
    validate_number("n_way", n_way, 1, len(classes), integer=True)
    # Each class must give n_shot + n_query distinct items.
    validate_number("n_query", n_query, 1, int(counts.min()) - 1, integer=True)
    validate_number("n_shot", n_shot, 1, int(counts.min()) - n_query, integer=True)
    seed = _validated_seed(seed)

    # Items grouped by class, padded to the largest class; `counts` masks the padding.
    per_class = int(counts.max())
    order = np.argsort(y, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slots = np.arange(len(y)) - np.repeat(starts, counts)
    grouped = np.zeros((len(classes), per_class) + x.shape[1:], x.dtype)
    grouped[np.repeat(np.arange(len(classes)), counts), slots] = x[order]
    grouped = tf.constant(grouped)
    counts = tf.constant(counts, tf.int32)
    items_per_class = n_shot + n_query

    def episode(index):
        class_seed, item_seed = tf.unstack(
            tf.random.experimental.stateless_split(_episode_seed(seed, index), 2)
        )
        chosen = tf.argsort(tf.random.stateless_uniform([len(classes)], class_seed))[:n_way]
        # Distinct items per class: the smallest random keys among the real slots.
        keys = tf.random.stateless_uniform([n_way, per_class], item_seed)
        padding = tf.range(per_class)[None, :] >= tf.gather(counts, chosen)[:, None]
        keys = tf.where(padding, 2.0, keys)
        picked = tf.argsort(keys, axis=1)[:, :items_per_class]
        items = tf.gather(tf.gather(grouped, chosen), picked, batch_dims=1)
        labels = tf.broadcast_to(tf.range(n_way, dtype=tf.int32)[:, None],
                                 [n_way, items_per_class])
        flat = (-1,) + x.shape[1:]
        support_x = tf.reshape(items[:, :n_shot], flat)
        query_x = tf.reshape(items[:, n_shot:], flat)
        support_y = tf.reshape(labels[:, :n_shot], [-1])
        query_y = tf.reshape(labels[:, n_shot:], [-1])
        return (support_x, support_y, query_x), query_y

    return _batched(episode, meta_batch_size, num_episodes)


@export("keras_efficient.data.rotate_classes")
def rotate_classes(x, y):
    """Make four classes of every class by rotating its images 0, 90, 180 and 270°.

    The augmentation of Omniglot in Vinyals et al. (2016) and Finn et al. (2017):
    a rotated character is a new class. Class `c` rotated by `r * 90°` becomes
    class `4 * c + r`.

    Args:
        x: images `(num_items, height, width, channels)` with height == width.
        y: integer class ids `(num_items,)`.

    Returns:
        `(x_rotated, y_rotated)` with four times as many items.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 4 or x.shape[1] != x.shape[2]:
        raise ValueError(
            "Invalid value received for argument `x`. Expected square images of shape "
            f"(num_items, size, size, channels). Received: x.shape={x.shape}"
        )
    rotated = [np.rot90(x, r, axes=(1, 2)) for r in range(_ROTATIONS)]
    labels = [_ROTATIONS * y + r for r in range(_ROTATIONS)]
    return np.concatenate(rotated), np.concatenate(labels).astype("int32")


@export("keras_efficient.data.rotated_digits")
def rotated_digits(split="train", test_digits=(6, 7, 8, 9), image_size=8):
    """The offline few-shot benchmark: the digits with each rotation a separate class.

    The ten digits of `keras_efficient.data.load_digits` (all 1,797 images, about
    180 per digit) rotated by 0/90/180/270° give 40 classes. Meta-train and meta-test
    are class-disjoint by digit: all four rotations of a digit fall on the same
    side, and 6 and 9 (rotations of each other) are held out together by default.

    Args:
        split: "train" (the digits not in `test_digits`, 24 classes by default) or
            "test" (the rotations of `test_digits`, 16 classes by default).
        test_digits: digits held out for meta-testing.
        image_size: image side (8 is the original).

    Returns:
        `(x, y)`: float32 images `(num_items, image_size, image_size, 1)` in [0, 1]
        and int32 class ids (`4 * digit + rotation`), for `episode_dataset`.

    Example:

    >>> x, y = rotated_digits("test")
    >>> len(set(y.tolist()))
    16
    """
    validate_choice("split", split, ("train", "test"))
    test_digits = tuple(test_digits)
    for digit in test_digits:
        validate_number("test_digits", digit, 0, 9, integer=True)
    if not 0 < len(set(test_digits)) < 10:
        raise ValueError(
            "Invalid value received for argument `test_digits`. Expected between 1 and "
            f"9 distinct digits in [0, 9]. Received: test_digits={test_digits}"
        )
    from keras_efficient.data.digits import load_digits

    digits = load_digits(image_size=image_size)
    x = np.concatenate([digits.x_train, digits.x_test])
    y = np.concatenate([digits.y_train, digits.y_test])
    keep = np.isin(y, test_digits) == (split == "test")
    return rotate_classes(x[keep], y[keep])


@export("keras_efficient.data.omniglot_classes")
def omniglot_classes(split="train", image_size=28, rotations=True, data_dir=None,
                     download=True):
    """Omniglot characters from TFDS as arrays, for `episode_dataset`.

    "train" is the background set (964 characters of 30 alphabets), "test" the
    evaluation set (659 characters of 20 other alphabets): class-disjoint, as in
    Lake et al. (2015). Images are converted to gray, resized to `image_size`
    (28 in Vinyals et al. and Finn et al.) and scaled so that ink is 1 and paper 0.
    With `rotations`, each character rotated by 90°, 180° and 270° is a new class.

    Args:
        split: "train" (background alphabets) or "test" (evaluation alphabets).
        image_size: side of the resized images.
        rotations: add the rotated classes (four times the classes).
        data_dir, download: passed to `keras_efficient.data.load_tfds`.

    Returns:
        `(x, y)`: float32 images `(num_items, image_size, image_size, 1)` and int32
        class ids.
    """
    import tensorflow as tf

    from keras_efficient.data.tfds import load_tfds

    validate_choice("split", split, ("train", "test"))
    validate_size("image_size", image_size)

    def preprocess(image, alphabet, label):
        del alphabet
        gray = tf.image.rgb_to_grayscale(tf.cast(image, tf.float32) / 255.0)
        return 1.0 - tf.image.resize(gray, (image_size, image_size), antialias=True), label

    dataset = load_tfds("omniglot", split, data_dir=data_dir, download=download)
    images, labels = [], []
    for image, label in dataset.map(preprocess).batch(1024).as_numpy_iterator():
        images.append(image)
        labels.append(label)
    x = np.clip(np.concatenate(images), 0.0, 1.0).astype("float32")
    y = np.concatenate(labels).astype("int32")
    return rotate_classes(x, y) if rotations else (x, y)


@export("keras_efficient.data.sinusoid_episodes")
def sinusoid_episodes(n_shot=10, n_query=10, meta_batch_size=25, num_episodes=None,
                      seed=None):
    """MAML's sinusoid regression tasks (Finn et al. 2017, section 5.1).

    A task is `y = amplitude * sin(x - phase)` with amplitude uniform in [0.1, 5],
    phase uniform in [0, pi] and inputs uniform in [-5, 5]; its support set has
    `n_shot` points and its query set `n_query` other points of the same curve.

    Args:
        n_shot: support points per task (K), at least 1.
        n_query: query points per task, at least 1.
        meta_batch_size: tasks per dataset element.
        num_episodes: tasks in the dataset; None for an endless dataset.
        seed: non-negative integer; None draws one.

    Returns:
        A `tf.data.Dataset` of `((support_x, support_y, query_x), query_y)` with
        `support_x` `[meta_batch_size, n_shot, 1]`, `support_y`
        `[meta_batch_size, n_shot]`, `query_x` `[meta_batch_size, n_query, 1]`,
        `query_y` `[meta_batch_size, n_query]`, all float32.

    Example:

    >>> dataset = sinusoid_episodes(n_shot=5, n_query=5, meta_batch_size=4, seed=0)
    >>> (support_x, support_y, query_x), query_y = next(iter(dataset))
    >>> tuple(support_x.shape), tuple(support_y.shape)
    ((4, 5, 1), (4, 5))
    """
    import tensorflow as tf

    validate_size("n_shot", n_shot)
    validate_size("n_query", n_query)
    seed = _validated_seed(seed)

    def episode(index):
        task_seed, input_seed = tf.unstack(
            tf.random.experimental.stateless_split(_episode_seed(seed, index), 2)
        )
        amplitude, phase = tf.unstack(tf.random.stateless_uniform(
            [2], task_seed, minval=[0.1, 0.0], maxval=[5.0, np.pi]))
        inputs = tf.random.stateless_uniform([n_shot + n_query, 1], input_seed, -5.0, 5.0)
        targets = amplitude * tf.sin(inputs[:, 0] - phase)
        return (inputs[:n_shot], targets[:n_shot], inputs[n_shot:]), targets[n_shot:]

    return _batched(episode, meta_batch_size, num_episodes)
