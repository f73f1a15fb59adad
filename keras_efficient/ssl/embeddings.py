"""Helpers on embedding batches shared by the self-supervised losses and models."""

from keras import ops


def l2_normalize(x, epsilon=1e-12):
    """Rows of `x` scaled to unit L2 norm (zero rows stay zero)."""
    squared_norm = ops.sum(ops.square(x), axis=-1, keepdims=True)
    return x * ops.rsqrt(ops.maximum(squared_norm, epsilon))


def check_pair_shapes(first, second, names=("y_true", "y_pred"), rank=2):
    """Two views' tensors, raising a `ValueError` unless they have the same known shape.

    Array-likes (nested Python lists, NumPy arrays) are converted to tensors,
    as Keras's own losses accept them; the converted pair is returned.
    """
    first, second = ops.convert_to_tensor(first), ops.convert_to_tensor(second)
    what = "(batch_size, dim)" if rank == 2 else f"rank {rank}"
    if len(first.shape) != rank or len(second.shape) != rank:
        raise ValueError(
            f"Expected `{names[0]}` and `{names[1]}` of shape {what}. Received: "
            f"{names[0]}.shape={tuple(first.shape)}, {names[1]}.shape={tuple(second.shape)}"
        )
    known = [(a, b) for a, b in zip(first.shape, second.shape) if a is not None and b is not None]
    if any(a != b for a, b in known):
        raise ValueError(
            f"`{names[0]}` and `{names[1]}` must have the same shape (two views of one "
            f"batch). Received: {names[0]}.shape={tuple(first.shape)}, "
            f"{names[1]}.shape={tuple(second.shape)}"
        )
    return first, second


def embedding_std(embeddings):
    """Collapse monitor: the per-dimension std of L2-normalized embeddings, averaged.

    About `1 / sqrt(dim)` for embeddings spread over the sphere, 0 when every
    input maps to the same point (complete collapse), SimSiam paper, Fig. 2.
    """
    normalized = l2_normalize(ops.cast(embeddings, "float32"))
    return ops.mean(ops.std(normalized, axis=0))


def stopped_cosine_similarity(target, prediction):
    """Row-wise cosine similarity in float32, with no gradient into `target`."""
    target = l2_normalize(ops.stop_gradient(ops.cast(target, "float32")))
    prediction = l2_normalize(ops.cast(prediction, "float32"))
    return ops.sum(target * prediction, axis=-1)
