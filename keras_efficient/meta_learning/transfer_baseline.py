"""The transfer-learning baseline of few-shot classification: pre-train a classifier
on the meta-train classes, then fit a new head on each episode's support set."""

import functools

import keras
import numpy as np
from keras import ops

from keras_efficient.backend import compiled
from keras_efficient.meta_learning.cosine_classifier import CosineClassifier
from keras_efficient.meta_learning.cosine_classifier import default_cosine_scale
from keras_efficient.meta_learning.episodic_model import check_episode
from keras_efficient.meta_learning.siamese_network import check_encoder
from keras_efficient.ssl.embeddings import l2_normalize
from keras_efficient.utils import export
from keras_efficient.utils import validate_choice
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_seed
from keras_efficient.utils import validate_size

CLASSIFIERS = ("linear", "cosine")


@export("keras_efficient.models.pretraining_classifier")
def pretraining_classifier(encoder, num_classes, classifier="linear", name="pretraining"):
    """The encoder with a head over the meta-train classes, to pre-train with `fit`.

    Args:
        encoder: a Keras layer or model mapping items to feature vectors.
        num_classes: the number of meta-train classes.
        classifier: "linear" (Baseline: a `Dense` layer) or "cosine"
            (Baseline++: a `CosineClassifier`).
        name: the model's name.

    Returns:
        An uncompiled `keras.Sequential` that outputs logits.
    """
    check_encoder(encoder)
    validate_size("num_classes", num_classes, 2)
    validate_choice("classifier", classifier, CLASSIFIERS)
    head = (keras.layers.Dense(num_classes, name="classifier") if classifier == "linear"
            else CosineClassifier(num_classes, name="classifier"))
    return keras.Sequential([encoder, head], name=name)


def head_logits(features, kernel, bias, classifier, scale):
    """Logits of per-episode heads: `features @ kernel + bias` (linear) or
    `scale * cos(features, kernel columns)` (cosine).

    Args:
        features: `(episodes, items, dim)`.
        kernel: `(episodes, dim, labels)`.
        bias: `(episodes, labels)`, ignored by the cosine head.
        classifier: "linear" or "cosine".
        scale: the cosine head's scale.
    """
    if classifier == "cosine":
        class_weights = ops.swapaxes(l2_normalize(ops.swapaxes(kernel, 1, 2)), 1, 2)
        return scale * ops.matmul(l2_normalize(features), class_weights)
    return ops.matmul(features, kernel) + bias[:, None, :]


def fine_tune_heads(features, labels, kernel, bias, *, classifier="linear", steps=100,
                    learning_rate=0.1, momentum=0.9, weight_decay=1e-3, scale=2.0):
    """Train one softmax head per episode on its support features, all at once.

    Full-batch gradient descent with momentum on the mean crossentropy of each
    episode's support set plus `weight_decay / 2 * ||kernel||^2`, with the
    closed-form gradient of softmax regression (linear head:
    `X^T (softmax - Y) / n`; cosine head: the same through the normalization of
    the class weights), so the episodes of a batch train independently in a
    few vectorized ops on any backend, with no per-episode `fit`.

    Args:
        features: support features `(episodes, items, dim)`, float32.
        labels: one-hot support labels `(episodes, items, labels)`, float32.
        kernel, bias: initial head weights, `(episodes, dim, labels)` and
            `(episodes, labels)`.
        classifier: "linear" or "cosine" (no bias).
        steps, learning_rate, momentum, weight_decay: the optimizer.
        scale: the cosine head's scale.

    Returns:
        The trained `(kernel, bias)`.
    """
    num_items = ops.cast(ops.shape(features)[1], "float32")
    normalized = l2_normalize(features)
    kernel, bias = ops.convert_to_tensor(kernel), ops.convert_to_tensor(bias)

    def step(_, state):
        kernel, bias, kernel_velocity, bias_velocity = state
        logits = head_logits(features, kernel, bias, classifier, scale)
        logit_gradient = (ops.softmax(logits, axis=-1) - labels) / num_items
        if classifier == "cosine":
            norms = ops.sqrt(ops.sum(ops.square(kernel), axis=1, keepdims=True))
            directions = kernel / norms
            direction_gradient = scale * ops.matmul(ops.swapaxes(normalized, 1, 2),
                                                    logit_gradient)
            radial = ops.sum(directions * direction_gradient, axis=1, keepdims=True)
            kernel_gradient = (direction_gradient - directions * radial) / norms
            bias_gradient = ops.zeros_like(bias)
        else:
            kernel_gradient = ops.matmul(ops.swapaxes(features, 1, 2), logit_gradient)
            bias_gradient = ops.sum(logit_gradient, axis=1)
        kernel_velocity = momentum * kernel_velocity + kernel_gradient + weight_decay * kernel
        bias_velocity = momentum * bias_velocity + bias_gradient
        return (kernel - learning_rate * kernel_velocity, bias - learning_rate * bias_velocity,
                kernel_velocity, bias_velocity)

    # A loop, not unrolled: compiled, 100 unrolled steps took seconds to trace.
    kernel, bias, _, _ = ops.fori_loop(
        0, steps, step, (kernel, bias, ops.zeros_like(kernel), ops.zeros_like(bias)))
    return kernel, bias


@functools.cache
def _compiled_fine_tune_heads(classifier, steps, learning_rate, momentum, weight_decay):
    """`fine_tune_heads` with these settings as one compiled function, shared by every
    `TransferBaseline` that uses them. Eagerly, dispatching the small ops of the 100
    steps cost 13 s of the 15 s that 600 demo episodes took."""
    return compiled(functools.partial(
        fine_tune_heads, classifier=classifier, steps=steps, learning_rate=learning_rate,
        momentum=momentum, weight_decay=weight_decay))


@export("keras_efficient.models.TransferBaseline")
class TransferBaseline:
    """Baseline and Baseline++ of "A Closer Look at Few-shot Classification".

    The encoder is pre-trained as an ordinary classifier over the meta-train
    classes (`pretraining_classifier` + `fit`); for each test episode it stays
    frozen and a new head is trained on the support set's features: a linear
    softmax classifier (Baseline) or a cosine classifier (Baseline++), then
    the queries are classified. Calling the object on an episode batch does
    the fine-tuning and returns the query logits, so it can be passed to
    `evaluate_episodes` like a model.

    Departures from the paper, stated: the heads are trained full-batch
    (`fine_tune_heads`) rather than with mini-batches of 4 and dampened
    momentum; the heads start from normal weights of standard deviation
    `1 / sqrt(dim)`.

    Args:
        encoder: the pre-trained encoder (items to feature vectors).
        classifier: "linear" (Baseline, default) or "cosine" (Baseline++).
        steps: gradient steps on each support set. Defaults to 100.
        learning_rate: step size. Defaults to 0.1.
        momentum: heavy-ball momentum. Defaults to 0.9.
        weight_decay: L2 penalty on the head's weights. Defaults to 1e-3 (the
            paper's).
        scale: the cosine head's scale; default as `CosineClassifier`.
        seed: seed of the heads' initial weights.

    Call arguments:
        support_x, support_y, query_x: an episode batch (numpy or tensors),
            labels in `[0, n_way)`.

    Returns:
        Query logits `(meta_batch, query_size, n_way)`, a numpy array.

    Example:

    >>> import keras, numpy as np
    >>> encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8)])
    >>> baseline = TransferBaseline(encoder, classifier="cosine", seed=0)
    >>> support_x, query_x = np.random.rand(2, 4, 4), np.random.rand(2, 6, 4)
    >>> baseline(support_x, np.tile([0, 0, 1, 1], (2, 1)), query_x).shape
    (2, 6, 2)

    Reference:
        Chen, Liu, Kira, Wang, Huang, "A Closer Look at Few-shot
        Classification", ICLR 2019 (https://arxiv.org/abs/1904.04232), section 3.
    """

    def __init__(self, encoder, classifier="linear", steps=100, learning_rate=0.1, momentum=0.9,
                 weight_decay=1e-3, scale=None, seed=None):
        self.encoder = check_encoder(encoder)
        self.classifier = validate_choice("classifier", classifier, CLASSIFIERS)
        self.steps = validate_size("steps", steps)
        self.learning_rate = validate_number("learning_rate", learning_rate, 0,
                                             low_inclusive=False)
        self.momentum = validate_number("momentum", momentum, 0, 1, high_inclusive=False)
        self.weight_decay = validate_number("weight_decay", weight_decay, 0)
        if scale is not None:
            validate_number("scale", scale, 0, low_inclusive=False)
        self.scale = scale
        self._rng = np.random.default_rng(validate_seed("seed", seed))
        self._fine_tune_heads = _compiled_fine_tune_heads(
            self.classifier, self.steps, self.learning_rate, self.momentum, self.weight_decay)

    def features(self, items):
        """Encoder features of `(episodes, items, ...)`: `(episodes, items, dim)`."""
        items = np.asarray(items)
        flat = items.reshape((-1,) + items.shape[2:])
        features = keras.ops.convert_to_numpy(self.encoder(flat, training=False))
        return np.asarray(features, np.float32).reshape(items.shape[:2] + (-1,))

    def __call__(self, support_x, support_y, query_x):
        support_x, support_y, query_x = (
            np.asarray(keras.ops.convert_to_numpy(x))
            for x in check_episode((support_x, support_y, query_x)))
        num_labels = int(support_y.max()) + 1
        # One encoder pass over support and query items.
        features = self.features(np.concatenate([support_x, query_x], axis=1))
        support, query = features[:, :support_x.shape[1]], features[:, support_x.shape[1]:]
        # Unit-scale columns (PyTorch's Linear init, the paper's): the cosine head's
        # gradient grows as 1 / ||w_k||, so tiny initial weights would make it jump.
        dim = support.shape[-1]
        kernel = self._rng.normal(0.0, 1.0 / np.sqrt(dim), (len(support), dim, num_labels))
        bias = np.zeros((len(support), num_labels))
        scale = self.scale if self.scale is not None else default_cosine_scale(num_labels)
        one_hot = np.eye(num_labels, dtype="float32")[support_y]
        kernel, bias = self._fine_tune_heads(
            support, one_hot, kernel.astype("float32"), bias.astype("float32"),
            scale=np.asarray(scale, "float32"))
        logits = head_logits(query, kernel, bias, self.classifier, scale)
        return np.asarray(keras.ops.convert_to_numpy(logits))
