"""ExampleStatistics against a numpy reference: an identity model trained with
learning rate 0 predicts exactly its input, so feeding each example different
logits in each epoch scripts what the model predicts at every presentation."""

import contextlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_efficient import testing
from keras_efficient.callbacks import ExampleStatistics

N, K, EPOCHS, BATCH = 24, 3, 6, 8
RNG = np.random.default_rng(0)
LABELS = RNG.integers(0, K, N)
LOGITS = RNG.normal(size=(EPOCHS, N, K)).astype("float32")  # per epoch, per example
ORDERS = [RNG.permutation(N) for _ in range(EPOCHS)]  # presentation order per epoch


def scripted_data():
    ids = np.concatenate(ORDERS)
    epoch = np.repeat(np.arange(EPOCHS), N)
    features = {"inputs": LOGITS[epoch, ids], "example_id": ids}
    return tf.data.Dataset.from_tensor_slices((features, LABELS[ids])).batch(BATCH)


def reference():
    """Mean loss, first-learned epoch and forgetting events (Toneva et al.), float64."""
    logits = LOGITS.astype("float64")
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    losses = -log_probs[:, np.arange(N), LABELS]  # (epochs, N)
    correct = logits.argmax(-1) == LABELS  # (epochs, N); one presentation per epoch
    first = np.array([np.flatnonzero(c)[0] if c.any() else np.inf for c in correct.T])
    forgetting = np.sum(correct[:-1] & ~correct[1:], axis=0).astype("float64")
    forgetting[~correct.any(0)] = np.inf
    return losses.mean(0), first, forgetting


def identity_model():
    model = keras.Sequential([keras.Input((K,)),
                              keras.layers.Dense(K, use_bias=False, kernel_initializer="identity")])
    return model


def compile_kwargs():
    return {"optimizer": keras.optimizers.SGD(0.0),
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "metrics": ["accuracy"]}


def fit_with_statistics(strategy=None, jit_compile=False, **stats_kwargs):
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = identity_model()
        model.compile(jit_compile=jit_compile, **compile_kwargs())
    if strategy:
        # Keras builds the compiled loss and metrics from the raw batch before any
        # callback runs when a strategy is used: build them on plain data first.
        model.evaluate(LOGITS[0, :2], LABELS[:2], verbose=0)
    stats = ExampleStatistics(N, **stats_kwargs)
    model.fit(scripted_data(), epochs=EPOCHS, steps_per_epoch=N // BATCH, verbose=0,
              callbacks=[stats])
    return model, stats


def assert_matches_reference(stats):
    mean_loss, first, forgetting = reference()
    np.testing.assert_array_equal(stats.presentations, np.full(N, EPOCHS))
    np.testing.assert_allclose(stats.mean_loss, mean_loss, rtol=1e-5)
    np.testing.assert_array_equal(stats.first_learned_epoch, first)
    np.testing.assert_array_equal(stats.forgetting_events, forgetting)


@pytest.mark.tensorflow_only("ExampleStatistics writes its tables inside the train step")
def test_example_statistics__match_numpy_reference():
    _, stats = fit_with_statistics()
    assert_matches_reference(stats)
    # The script has forgetting events, never-learned examples and learned ones.
    _, first, forgetting = reference()
    assert np.isinf(first).any() and (forgetting[np.isfinite(forgetting)] > 0).any()


@pytest.mark.tensorflow_only("ExampleStatistics writes its tables inside the train step")
def test_example_statistics__same_under_jit_compile():
    _, stats = fit_with_statistics(jit_compile=True)
    assert_matches_reference(stats)


@pytest.mark.tensorflow_only("ExampleStatistics writes its tables inside the train step")
def test_example_statistics__same_on_two_replicas():
    _, stats = fit_with_statistics(testing.two_replica_strategy())
    assert_matches_reference(stats)


@pytest.mark.tensorflow_only("ExampleStatistics writes its tables inside the train step")
def test_example_statistics__explicit_loss_and_one_hot_labels():
    model = identity_model()
    model.compile(keras.optimizers.SGD(0.0), "categorical_crossentropy")
    stats = ExampleStatistics(N, loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    data = scripted_data().map(lambda x, y: (x, tf.one_hot(y, K)))
    model.fit(data, epochs=EPOCHS, steps_per_epoch=N // BATCH, verbose=0, callbacks=[stats])
    assert_matches_reference(stats)


@pytest.mark.tensorflow_only("ExampleStatistics writes its tables inside the train step")
def test_example_statistics__model_is_unhooked_after_fit_and_reset_clears():
    model, stats = fit_with_statistics()
    history = model.fit(LOGITS[0], LABELS, batch_size=BATCH, verbose=0)  # plain data again
    assert np.isfinite(history.history["loss"]).all()
    stats.reset()
    np.testing.assert_array_equal(stats.presentations, np.zeros(N))
    assert np.isinf(stats.first_learned_epoch).all()


@pytest.mark.tensorflow_only("ExampleStatistics writes its tables inside the train step")
def test_example_statistics__config_round_trip():
    stats = ExampleStatistics(10, loss=keras.losses.CategoricalCrossentropy(from_logits=True),
                              id_key="uid")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(stats))
    assert isinstance(clone, ExampleStatistics)
    assert clone.get_config() == stats.get_config()


@pytest.mark.tensorflow_only("ExampleStatistics writes its tables inside the train step")
def test_example_statistics__rejects_batches_without_ids():
    model = identity_model()
    model.compile(**compile_kwargs())
    with pytest.raises(ValueError, match="carry example ids.*'example_id'"):
        model.fit(LOGITS[0], LABELS, verbose=0, callbacks=[ExampleStatistics(N)])


@pytest.mark.tensorflow_only("ExampleStatistics writes its tables inside the train step")
def test_example_statistics__rejects_bad_arguments():
    with pytest.raises(ValueError, match="argument `num_examples`"):
        ExampleStatistics(0)
    with pytest.raises(TypeError, match="argument `loss`"):
        ExampleStatistics(5, loss=3)
    with pytest.raises(RuntimeError, match="recorded nothing"):
        _ = ExampleStatistics(5).mean_loss


@pytest.mark.skipif(keras.backend.backend() == "tensorflow", reason="the JAX backend's error")
def test_example_statistics__on_jax_names_the_alternative():
    with pytest.raises(NotImplementedError, match="TensorFlow backend only.*teacher_scores"):
        ExampleStatistics(N)
