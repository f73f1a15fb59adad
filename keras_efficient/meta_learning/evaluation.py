"""Few-shot evaluation as the papers report it: mean accuracy over test episodes
with a 95% confidence interval."""

import dataclasses

import keras
import numpy as np

from keras_efficient.utils import export
from keras_efficient.utils import validate_size

#: The normal quantile of a two-sided 95% interval.
Z_95 = 1.96


@dataclasses.dataclass
class EpisodeAccuracy:
    """Accuracy over test episodes.

    Attributes:
        mean: mean of the per-episode query accuracies, in [0, 1].
        confidence_interval: half-width of the 95% confidence interval of the
            mean, `1.96 * std / sqrt(n)` (population std over the `n`
            episodes, as in the ProtoNets and "A Closer Look" evaluation code).
        accuracies: the per-episode accuracies, `(n,)`.
    """

    mean: float
    confidence_interval: float
    accuracies: np.ndarray

    def __str__(self):
        return f"{100 * self.mean:.2f} ± {100 * self.confidence_interval:.2f} %"


def confidence_interval_95(accuracies):
    """Half-width of the normal 95% confidence interval of the mean of `accuracies`."""
    accuracies = np.asarray(accuracies, np.float64)
    return float(Z_95 * np.std(accuracies) / np.sqrt(len(accuracies)))


@export("keras_efficient.models.evaluate_episodes")
def evaluate_episodes(model_or_fn, episodes, num_episodes=600):
    """Mean query accuracy over `num_episodes` test episodes, with its 95% CI.

    Each episode's accuracy is the share of its queries whose highest score is
    the true label; the result is their mean over episodes and the half-width
    of its 95% confidence interval, `1.96 * std / sqrt(num_episodes)`, the
    "mean ± CI over 600 test episodes" the few-shot papers report.

    Args:
        model_or_fn: a Keras model called on `(support_x, support_y, query_x)`
            (a `PrototypicalNetwork`, ...), run with `predict_on_batch`; or a
            function `fn(support_x, support_y, query_x)` returning scores (for
            example `TransferBaseline`, or MAML's adaptation); scores have shape
            `(meta_batch, query_size, num_labels)`.
        episodes: an iterable of `((support_x, support_y, query_x), query_y)`
            meta-batches, such as `episode_dataset(..., num_episodes=n,
            seed=s)` (seeded, so every method sees the same episodes).
        num_episodes: how many episodes to evaluate (the first ones; the
            papers use 600).

    Returns:
        An `EpisodeAccuracy` (`str()` gives "mean ± CI %").

    Example:

    >>> import numpy as np
    >>> def nearest_support(support_x, support_y, query_x):
    ...     distances = np.sum((query_x[:, :, None] - support_x[:, None]) ** 2, axis=-1)
    ...     return -distances  # labels equal support positions here
    >>> support_x = np.eye(3)[None].repeat(4, axis=0)
    >>> episodes = [((support_x, np.tile([0, 1, 2], (4, 1)), support_x + 0.1),
    ...              np.tile([0, 1, 2], (4, 1)))]
    >>> print(evaluate_episodes(nearest_support, episodes, num_episodes=4))
    100.00 ± 0.00 %

    Reference:
        Snell et al. 2017, section 3.1; Chen et al., "A Closer Look at
        Few-shot Classification", ICLR 2019, section 4.1.
    """
    validate_size("num_episodes", num_episodes)
    if isinstance(model_or_fn, keras.Model):
        def predict(*inputs):
            return model_or_fn.predict_on_batch(inputs)
    elif callable(model_or_fn):
        predict = model_or_fn
    else:
        raise TypeError(
            "Invalid type received for argument `model_or_fn`. Expected a Keras model or a "
            "function (support_x, support_y, query_x) -> scores. Received: "
            f"{type(model_or_fn).__name__}")
    accuracies = []
    for (support_x, support_y, query_x), query_y in episodes:
        # tf.data yields TensorFlow tensors, which a model on another backend cannot take.
        support_x, support_y, query_x = (np.asarray(x) for x in (support_x, support_y, query_x))
        scores = np.asarray(keras.ops.convert_to_numpy(predict(support_x, support_y, query_x)))
        query_y = np.asarray(query_y)
        if scores.shape[:2] != query_y.shape:
            raise ValueError(
                "Expected scores of shape (meta_batch, query_size, num_labels) matching the "
                f"query labels {query_y.shape}. Received: scores of shape {scores.shape}")
        accuracies.extend(np.mean(np.argmax(scores, axis=-1) == query_y, axis=1))
        if len(accuracies) >= num_episodes:
            break
    if len(accuracies) < num_episodes:
        raise ValueError(
            f"Invalid value received for argument `num_episodes`. `episodes` yielded only "
            f"{len(accuracies)} episodes. Received: num_episodes={num_episodes}")
    accuracies = np.asarray(accuracies[:num_episodes], np.float64)
    return EpisodeAccuracy(float(np.mean(accuracies)), confidence_interval_95(accuracies),
                           accuracies)
