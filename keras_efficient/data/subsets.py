"""Label subsets: few-label splits and class grouping."""

import numpy as np

from keras_efficient.utils import export
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_seed
from keras_efficient.utils import validate_size


@export("keras_efficient.data.few_label_subset")
def few_label_subset(x, y, fraction, seed=0, return_indices=False):
    """A stratified subset holding `fraction` of the labels, at least one per class.

    Used to measure fine-tuning with few labels (the 1% / 10% splits of SimCLR).
    Each class keeps `max(1, round(fraction * count))` examples, drawn without
    replacement with `seed`.

    Args:
        x: array (or dict of arrays) with the examples along the first axis.
        y: integer labels, shape `(n,)`.
        fraction: share of each class to keep, in (0, 1].
        seed: seed of the draw.
        return_indices: also return the chosen indices (sorted).

    Returns:
        `(x_subset, y_subset)`, or `(x_subset, y_subset, indices)`.

    Example:

    >>> x = np.arange(20).reshape(20, 1); y = np.repeat([0, 1], 10)
    >>> x_few, y_few = few_label_subset(x, y, 0.2)
    >>> np.bincount(y_few).tolist()
    [2, 2]
    """
    validate_number("fraction", fraction, 0, 1, low_inclusive=False)
    validate_seed("seed", seed, allow_none=False)
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"Expected integer labels of shape (n,); received shape {y.shape}.")
    lengths = {len(v) for v in (x.values() if isinstance(x, dict) else [x])}
    if lengths != {len(y)}:
        raise ValueError(f"Expected `x` with one example per label ({len(y)}) along its "
                         f"first axis. Received: lengths {sorted(lengths)}")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        count = max(1, round(fraction * len(members)))
        chosen.append(rng.choice(members, size=count, replace=False))
    indices = np.sort(np.concatenate(chosen))
    x_subset = {k: np.asarray(v)[indices] for k, v in x.items()} if isinstance(x, dict) \
        else np.asarray(x)[indices]
    if return_indices:
        return x_subset, y[indices], indices
    return x_subset, y[indices]


@export("keras_efficient.data.group_classes")
def group_classes(y, groups):
    """Relabel classes into superclasses: class `c` becomes the index of its group.

    Args:
        y: integer labels.
        groups: a sequence of sequences of class ids, e.g. `[[0, 1, 2, 3, 4],
            [5, 6, 7, 8, 9]]`; every label in `y` must be in exactly one group.

    Returns:
        int32 superclass labels of the shape of `y`.

    Example:

    >>> group_classes([0, 7, 4, 9], [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]).tolist()
    [0, 1, 0, 1]
    """
    mapping = {}
    for group_index, group in enumerate(groups):
        for label in group:
            if label in mapping:
                raise ValueError(
                    f"Invalid value received for argument `groups`: class {label} is in "
                    f"groups {mapping[label]} and {group_index}. Received: groups={groups!r}"
                )
            mapping[label] = group_index
    y = np.asarray(y)
    missing = sorted(set(np.unique(y).tolist()) - set(mapping))
    if missing:
        raise ValueError(
            f"Invalid value received for argument `groups`: labels {missing} are in no "
            f"group. Received: groups={groups!r}"
        )
    lookup = np.vectorize(mapping.__getitem__, otypes=[np.int32])
    return lookup(y) if y.size else y.astype("int32")


@export("keras_efficient.data.symmetric_label_noise")
def symmetric_label_noise(y, fraction, num_classes, seed=0):
    """Flip a share of the labels, each to a uniformly drawn *other* class.

    Symmetric noise as in the SAM paper's label-noise experiments: every label
    is flipped with probability `fraction`, and a flipped label takes each of
    the other `num_classes - 1` classes with equal probability.

    Args:
        y: integer labels, shape `(n,)`.
        fraction: probability of flipping a label, in [0, 1].
        num_classes: number of classes, >= 2.
        seed: seed of the draw.

    Returns:
        `(noisy_labels, flipped)`: labels of `y`'s dtype and a boolean mask.

    Example:

    >>> noisy, flipped = symmetric_label_noise(np.zeros(1000, "int32"), 0.2, 10)
    >>> bool(np.all(noisy[flipped] != 0)), bool(np.all(noisy[~flipped] == 0))
    (True, True)
    """
    validate_number("fraction", fraction, 0, 1)
    validate_size("num_classes", num_classes, low=2)
    validate_seed("seed", seed, allow_none=False)
    y = np.asarray(y)
    if y.ndim != 1 or not np.all((y >= 0) & (y < num_classes)):
        raise ValueError(f"Expected integer labels of shape (n,) in [0, {num_classes}). "
                         f"Received: y.shape={y.shape} with labels {np.unique(y).tolist()}")
    rng = np.random.default_rng(seed)
    flipped = rng.random(len(y)) < fraction
    offsets = rng.integers(1, num_classes, size=len(y))
    return np.where(flipped, (y + offsets) % num_classes, y).astype(y.dtype), flipped
