"""Distances between sets of embeddings, shared by the metric-based few-shot methods."""

from keras import ops

from keras_efficient.ssl.embeddings import l2_normalize


def squared_euclidean_distances(a, b):
    """`||a_i - b_j||^2` for every pair of rows, clipped at 0 against round-off.

    Args:
        a: `(..., n, dim)`.
        b: `(..., m, dim)`, with the same leading dimensions as `a`.

    Returns:
        `(..., n, m)`.
    """
    # The expansion ||a||^2 - 2 a.b + ||b||^2 is one matmul: no (n, m, dim) tensor.
    squared_a = ops.sum(ops.square(a), axis=-1)[..., :, None]
    squared_b = ops.sum(ops.square(b), axis=-1)[..., None, :]
    cross = ops.matmul(a, ops.swapaxes(b, -1, -2))
    return ops.maximum(squared_a - 2.0 * cross + squared_b, 0.0)


def safe_sqrt(squared):
    """`sqrt` of non-negative values with a zero (not infinite) gradient at 0."""
    positive = squared > 0.0
    return ops.sqrt(ops.where(positive, squared, 1.0)) * ops.cast(positive, squared.dtype)


def cosine_similarities(a, b):
    """`cos(a_i, b_j)` for every pair of rows (0 for a zero row).

    Args:
        a: `(..., n, dim)`.
        b: `(..., m, dim)`, with the same leading dimensions as `a`.

    Returns:
        `(..., n, m)`.
    """
    return ops.matmul(l2_normalize(a), ops.swapaxes(l2_normalize(b), -1, -2))
