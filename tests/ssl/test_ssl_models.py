import math

import keras
import numpy as np
import pytest

import keras_efficient as ke
from keras_efficient import testing
from keras_efficient.ssl.byol import target_decay_at
from keras_efficient.ssl.embeddings import embedding_std

SHAPE = (8, 8, 1)
RNG = np.random.default_rng(0)
IMAGES = RNG.random((8,) + SHAPE).astype("float32")
# Fixed views make training deterministic, so replicas and XLA can be compared exactly.
VIEWS = {"view_a": IMAGES, "view_b": np.clip(IMAGES + 0.1 * RNG.normal(size=IMAGES.shape),
                                             0, 1).astype("float32")}


def _encoder():
    return keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(),
                             keras.layers.Dense(8, activation="relu")])


def _augmenter():
    return ke.layers.SimCLRAugmentation.from_preset("digits", seed=3)


MAKERS = {
    "SimCLR": lambda: ke.models.SimCLR(_encoder(), ke.layers.ProjectionHead((8,), 4),
                                       _augmenter(), temperature=0.5),
    "BYOL": lambda: ke.models.BYOL(_encoder(), ke.layers.ProjectionHead((8,), 4),
                                   ke.layers.ProjectionHead((8,), 4), _augmenter(),
                                   target_decay=0.9),
    "SimSiam": lambda: ke.models.SimSiam(_encoder(), ke.layers.ProjectionHead((8,), 4),
                                         ke.layers.ProjectionHead((4,), 4), _augmenter()),
}


def _sgd():
    return {"optimizer": keras.optimizers.SGD(learning_rate=0.01)}


# SimSiam shares SimCLR's step (XLA and mixed precision are checked there) and
# adds only a predictor and a loss: its `jit` and `bfloat16` runs are left out
# to keep the suite fast.
HARNESS_CASES = [(name, check) for name in sorted(MAKERS) for check in testing.MODEL_CHECKS
                 if name != "SimSiam" or check in ("config", "saving", "replicas")]


@pytest.mark.parametrize("name, check", HARNESS_CASES)
def test_ssl_models__harness_on_given_views(name, check):
    testing.check_model(MAKERS[name], _sgd, VIEWS, checks=[check])


def test_ssl_models__harness_with_augmentation_in_the_step():
    # Random views drawn in the train step, on two replicas (finite results only).
    testing.check_model(MAKERS["SimCLR"], _sgd, IMAGES, checks=["replicas"],
                        random_in_training=True)


def test_simclr__loss_is_nt_xent_of_the_projections():
    model = MAKERS["SimCLR"]()
    model.compile(**_sgd())
    logs = model.test_on_batch(VIEWS, return_dict=True)
    z = model.projection_head(model.encoder(np.concatenate(list(VIEWS.values()))))
    z_a, z_b = np.split(keras.ops.convert_to_numpy(z), 2)
    np.testing.assert_allclose(logs["loss"], float(ke.losses.NTXent(0.5)(z_a, z_b)), rtol=1e-5)
    np.testing.assert_allclose(logs["embedding_std"], float(embedding_std(z_a)), rtol=1e-5)


def test_embedding_std__equals_numpy_and_is_zero_for_collapse():
    z = RNG.normal(size=(16, 5))
    normalized = z / np.linalg.norm(z, axis=1, keepdims=True)
    np.testing.assert_allclose(float(embedding_std(z.astype("float32"))),
                               normalized.std(axis=0).mean(), rtol=1e-5)
    assert float(embedding_std(np.ones((16, 5), "float32"))) < 1e-6


def test_byol__target_is_moving_average_of_online_and_gets_no_gradient():
    model = MAKERS["BYOL"]()
    model.compile(**_sgd())
    model.build((None,) + SHAPE)
    target_names = {v.path for v in model.target_encoder.weights
                    + model.target_projection_head.weights}
    assert not target_names & {v.path for v in model.trainable_variables}
    model.train_on_batch(VIEWS)  # first step: the target starts as a copy of the online net
    old_target = [np.array(t) for t, _ in model._target_pairs()]
    model.train_on_batch(VIEWS)
    decay = float(target_decay_at(1, 0.9, float(model.total_decay_steps)))
    assert decay == pytest.approx(0.9)  # no fit: decay_steps unknown, the base decay
    for (target, online), old in zip(model._target_pairs(), old_target):
        np.testing.assert_allclose(np.array(target), decay * old + (1 - decay) * np.array(online),
                                   atol=1e-6)
    assert any(np.abs(np.array(o) - np.array(t)).max() > 1e-4 for t, o in model._target_pairs())


def test_byol__decay_follows_cosine_to_one_over_fit():
    base, total = 0.9, 6
    for step in range(total + 2):
        expected = 1 - (1 - base) * (math.cos(math.pi * min(step / total, 1)) + 1) / 2
        assert float(target_decay_at(step, base, total)) == pytest.approx(expected, abs=1e-6)
    model = MAKERS["BYOL"]()
    model.compile(**_sgd())
    model.fit(VIEWS, batch_size=4, epochs=3, verbose=0)
    assert float(model.total_decay_steps) == total
    assert float(model.current_target_decay(total)) == pytest.approx(1.0)


def test_ssl_models__fit_logs_loss_and_collapse_metric_and_encoder_transfers():
    model = MAKERS["SimSiam"]()
    model.compile(optimizer="adam")
    history = model.fit(IMAGES, batch_size=4, epochs=2, verbose=0)
    assert sorted(history.history) == ["embedding_std", "loss"]
    assert all(np.isfinite(history.history["embedding_std"]))
    features = model.encoder.predict(IMAGES, verbose=0)
    np.testing.assert_allclose(model.predict(IMAGES, verbose=0), features, atol=1e-6)
    assert features.shape == (8, 8)


def test_ssl_models__labelled_datasets_are_accepted_and_labels_ignored():
    model = MAKERS["SimCLR"]()
    model.compile(optimizer="adam")
    history = model.fit(IMAGES, np.arange(8), batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    # On fixed views the labels change nothing.
    without = model.evaluate(VIEWS, batch_size=8, verbose=0, return_dict=True)
    labelled = model.evaluate(VIEWS, np.arange(8), batch_size=8, verbose=0, return_dict=True)
    assert labelled == without


@pytest.mark.parametrize("temperature", [0.0, -0.5])
def test_simclr__rejects_non_positive_temperature(temperature):
    with pytest.raises(ValueError, match="argument `temperature`"):
        ke.models.SimCLR(_encoder(), temperature=temperature)


def test_byol__rejects_decay_outside_unit_interval():
    with pytest.raises(ValueError, match="argument `target_decay`"):
        ke.models.BYOL(_encoder(), target_decay=1.5)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_ssl_models__reject_views_of_different_shapes(name):
    model = MAKERS[name]()
    model.compile(optimizer="adam")
    views = {"view_a": IMAGES, "view_b": IMAGES[:, :6, :6]}
    with pytest.raises(ValueError, match="`view_a` and `view_b` must have the same shape"):
        model.fit(views, batch_size=4, verbose=0)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_ssl_models__reject_encoder_without_vector_output(name):
    encoder = keras.Sequential([keras.Input(SHAPE), keras.layers.Conv2D(4, 3)])
    model = type(MAKERS[name]())(encoder)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"`encoder` must map each image to a vector"):
        model.fit(IMAGES, batch_size=4, verbose=0)


def test_ssl_models__reject_non_layer_encoder():
    with pytest.raises(TypeError, match="argument `encoder`"):
        ke.models.SimCLR(lambda x: x)
