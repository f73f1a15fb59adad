"""k-nearest-neighbour accuracy of the representation, as a callback."""

import keras
import numpy as np

from keras_efficient.utils import export
from keras_efficient.utils import validate_size


def knn_accuracy(train_features, train_labels, test_features, test_labels, k=20):
    """Accuracy of a cosine-similarity k-NN majority vote on `test_features`.

    Each test vector gets the most common label among its `k` most
    cosine-similar training vectors (ties: the smallest label).

    Args:
        train_features, test_features: `(n, dim)` arrays.
        train_labels, test_labels: integer labels `(n,)`.
        k: neighbours per vote, >= 1.

    Returns:
        The accuracy, a float in [0, 1].
    """
    validate_size("k", k)
    train = np.asarray(train_features, np.float32)
    test = np.asarray(test_features, np.float32)
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    if (train.ndim != 2 or test.ndim != 2 or train.shape[1] != test.shape[1]
            or train_labels.shape != train.shape[:1] or test_labels.shape != test.shape[:1]
            or not len(train) or np.min(train_labels) < 0):
        raise ValueError(
            "Expected `train_features` (n >= 1, dim) and `test_features` (m, dim) with "
            "non-negative integer labels (n,) and (m,). Received: train_features.shape="
            f"{train.shape}, train_labels.shape={train_labels.shape}, test_features.shape="
            f"{test.shape}, test_labels.shape={test_labels.shape}"
        )
    train = train / np.maximum(np.linalg.norm(train, axis=1, keepdims=True), 1e-12)
    test = test / np.maximum(np.linalg.norm(test, axis=1, keepdims=True), 1e-12)
    k = min(k, len(train))
    similarity = test @ train.T
    neighbours = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    neighbour_labels = train_labels[neighbours]
    # Only training labels can win a vote.
    num_classes = int(np.max(train_labels)) + 1
    votes = np.zeros((len(test), num_classes), np.int64)
    np.add.at(votes, (np.arange(len(test))[:, None], neighbour_labels), 1)
    return float(np.mean(np.argmax(votes, axis=1) == test_labels))


@export("keras_efficient.callbacks.KNNAccuracy")
class KNNAccuracy(keras.callbacks.Callback):
    """Logs the k-NN accuracy of the representation during self-supervised training.

    At the end of every `every`-th epoch, embeds labelled train and test images
    with the model (for `SimCLR`, `BYOL`, `SimSiam`: the encoder's
    representation) and logs the accuracy of a cosine k-NN vote as
    `knn_accuracy`, a cheap, label-using monitor of representation quality that
    does not touch training (InstDisc / DINO practice).

    Args:
        x_train, y_train: labelled images and integer labels for the neighbours.
        x_test, y_test: labelled images and labels to classify.
        k: neighbours per vote.
        every: evaluate every `every` epochs.
        batch_size: batch size for embedding.

    Example:

    >>> callback = KNNAccuracy(x_train, y_train, x_test, y_test, k=20)  # doctest: +SKIP
    >>> model.fit(unlabelled, epochs=10, callbacks=[callback])  # doctest: +SKIP

    Reference:
        Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance
        Discrimination", CVPR 2018 (k-NN evaluation of representations).
    """

    def __init__(self, x_train, y_train, x_test, y_test, k=20, every=1, batch_size=256):
        super().__init__()
        self.k = validate_size("k", k)
        self.every = validate_size("every", every)
        self.batch_size = validate_size("batch_size", batch_size)
        self.data = (x_train, np.asarray(y_train), x_test, np.asarray(y_test))
        for x, y, name in ((x_train, y_train, "y_train"), (x_test, y_test, "y_test")):
            if x is not None and y is not None and len(x) != len(y):
                raise ValueError(f"Invalid value received for argument `{name}`. Expected one "
                                 f"label per example ({len(x)}). Received: {len(y)} labels")
        self.history = []

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        x_train, y_train, x_test, y_test = self.data
        embed = self.model.predict
        accuracy = knn_accuracy(embed(x_train, batch_size=self.batch_size, verbose=0), y_train,
                                embed(x_test, batch_size=self.batch_size, verbose=0), y_test,
                                self.k)
        self.history.append(accuracy)
        if logs is not None:
            logs["knn_accuracy"] = accuracy
