import keras
import numpy as np
import pytest

import keras_efficient as ke
from keras_efficient.ssl.knn_accuracy import knn_accuracy

RNG = np.random.default_rng(0)


def reference_knn(train, train_labels, test, test_labels, k):
    correct = 0
    for vector, label in zip(test, test_labels):
        cosine = [vector @ t / (np.linalg.norm(vector) * np.linalg.norm(t)) for t in train]
        nearest = np.argsort(-np.asarray(cosine), kind="stable")[:k]
        counts = np.bincount(train_labels[nearest], minlength=10)
        correct += int(np.argmax(counts) == label)
    return correct / len(test)


@pytest.mark.parametrize("k", [1, 5])
def test_knn_accuracy__equals_brute_force_reference(k):
    train, test = RNG.normal(size=(40, 6)), RNG.normal(size=(15, 6))
    train_labels, test_labels = RNG.integers(0, 3, 40), RNG.integers(0, 3, 15)
    assert knn_accuracy(train, train_labels, test, test_labels, k) == pytest.approx(
        reference_knn(train, train_labels, test, test_labels, k))


def test_knn_accuracy_callback__logs_accuracy_of_the_encoder():
    encoder = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                keras.layers.Dense(8)])
    model = ke.models.SimCLR(encoder, ke.layers.ProjectionHead((8,), 4),
                             ke.layers.SimCLRAugmentation.from_preset("digits", seed=1))
    model.compile(optimizer="adam")
    x = RNG.random((16, 8, 8, 1)).astype("float32")
    y = np.arange(16) % 2
    callback = ke.callbacks.KNNAccuracy(x[:8], y[:8], x[8:], y[8:], k=3, every=2)
    history = model.fit(x, batch_size=16, epochs=2, verbose=0, callbacks=[callback])
    features = encoder.predict(x, verbose=0)
    expected = knn_accuracy(features[:8], y[:8], features[8:], y[8:], 3)
    assert history.history["knn_accuracy"] == [expected]


def test_linear_probe__trains_only_the_linear_layer_and_fine_tuning_everything():
    encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3),
                                keras.layers.BatchNormalization()])
    probe = ke.models.linear_probe(encoder, 5)
    assert [w.path for w in probe.trainable_weights] == ["classifier/kernel", "classifier/bias"]
    probe.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [np.array(w) for w in encoder.weights]
    probe.fit(RNG.normal(size=(8, 4)), np.arange(8) % 5, verbose=0)
    for old, new in zip(before, encoder.weights):
        np.testing.assert_array_equal(old, np.array(new))  # BatchNorm statistics too
    tuned = ke.models.fine_tuning_classifier(encoder, 5, initial_head=probe.get_layer("classifier"))
    assert len(tuned.trainable_weights) == len(encoder.trainable_weights) + 2 == 6
    x = RNG.normal(size=(4, 4))
    np.testing.assert_allclose(tuned.predict(x, verbose=0), probe.predict(x, verbose=0), atol=1e-5)


def test_linear_probe__rejects_bad_arguments():
    encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="argument `num_classes`"):
        ke.models.linear_probe(encoder, 1)
    with pytest.raises(ValueError, match="argument `k`"):
        ke.callbacks.KNNAccuracy(None, [0], None, [0], k=0)
    with pytest.raises(ValueError, match="argument `batch_size`"):
        ke.callbacks.KNNAccuracy(None, [0], None, [0], batch_size=0)
    with pytest.raises(TypeError, match="argument `encoder`"):
        ke.models.linear_probe("encoder", 3)


@pytest.mark.parametrize("train, train_labels, test", [
    (np.ones((4, 3)), [0, 1, 0, 1], np.ones((2, 4))),  # feature sizes differ
    (np.ones((4, 3)), [0, 1, 0], np.ones((2, 3))),  # one label short
    (np.ones(4), [0, 1, 0, 1], np.ones(2)),  # not (n, dim)
    (np.ones((4, 3)), [0, -1, 0, 1], np.ones((2, 3))),  # negative label
])
def test_knn_accuracy__rejects_mismatched_shapes_and_negative_labels(train, train_labels, test):
    with pytest.raises(ValueError, match="Expected `train_features` .n >= 1, dim."):
        knn_accuracy(train, train_labels, test, [0, 1], k=1)
