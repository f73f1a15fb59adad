"""tf_keras's SharpnessAwareMinimization tests, run on ours (assertions re-written).

Deliberate difference: with `num_batch_splits=m` tf_keras sums the m split
gradients, ours averages them (the paper's m-sharpness), so a tf_keras run
with SGD is reproduced with m times its learning rate (checked against
tf_keras itself below).
"""

import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_efficient
from keras_efficient.models import SharpnessAwareMinimization


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(4), keras.layers.Dense(1)])


def _data(n, seed=0):
    x = np.random.default_rng(seed).uniform(size=(n, 2)).astype("float32")
    return x, (x[:, :1] > 0.5).astype("float32")


def _compiled(**kwargs):
    sam = SharpnessAwareMinimization(_model(), **kwargs)
    sam.compile(optimizer=keras.optimizers.Adam(),
                loss=keras.losses.BinaryCrossentropy(from_logits=True))
    return sam


def test_sharpness_aware_minimization__tf_keras_call_equals_inner_model():
    model = _model()
    x = np.random.default_rng(1).uniform(size=(2, 2)).astype("float32")
    np.testing.assert_allclose(SharpnessAwareMinimization(model)(x), model(x))


@pytest.mark.parametrize("num_batch_splits, batch", [(None, 2), (4, 48)])
def test_sharpness_aware_minimization__tf_keras_fit_changes_weights(num_batch_splits, batch):
    sam = _compiled(num_batch_splits=num_batch_splits)
    before = [w.copy() for w in sam.model.get_weights()]
    x, y = _data(batch)
    history = sam.fit(x, y, batch_size=batch, steps_per_epoch=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.allclose(a, b) for a, b in zip(before, sam.model.get_weights()))


@pytest.mark.tensorflow_only("tf.train.Checkpoint")
def test_sharpness_aware_minimization__tf_keras_save_and_checkpoint(tmp_path):
    sam = _compiled()
    x, y = _data(4)
    sam.fit(x, y, verbose=0)
    path = str(tmp_path / "model.keras")
    sam.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path)(x), sam(x), rtol=1e-6)
    # tf.train.Checkpoint restore into a second wrapper (tf_keras's test_checkpoint_sam).
    other = SharpnessAwareMinimization(_model(seed=5))
    save_path = tf.train.Checkpoint(sam).save(str(tmp_path / "ckpt"))
    tf.train.Checkpoint(other).restore(save_path)
    np.testing.assert_allclose(other(x), sam(x), rtol=1e-6)


@pytest.mark.tensorflow_only("loads the export with tf.saved_model")
def test_sharpness_aware_minimization__export_serves_the_same_outputs(tmp_path):
    sam = _compiled()
    x, y = _data(8)
    sam.fit(x, y, verbose=0)
    path = str(tmp_path / "exported")
    sam.export(path, verbose=False)
    loaded = tf.saved_model.load(path)
    np.testing.assert_allclose(loaded.serve(tf.constant(x)).numpy(),
                               sam.predict(x, verbose=0), rtol=1e-6)


@pytest.mark.tensorflow_only("compares with tf_keras")
def test_sharpness_aware_minimization__num_batch_splits_is_tf_keras_with_m_times_lr():
    tf_keras = pytest.importorskip("tf_keras")
    from tf_keras.models.experimental import SharpnessAwareMinimization as TfKerasSAM

    splits, learning_rate = 4, 0.1
    x, y = _data(16, seed=3)
    theirs_inner = tf_keras.Sequential([tf_keras.Input((2,)), tf_keras.layers.Dense(4),
                                        tf_keras.layers.Dense(1)])
    ours = SharpnessAwareMinimization(_model(seed=2), num_batch_splits=splits)
    theirs_inner.set_weights(ours.model.get_weights())
    theirs = TfKerasSAM(theirs_inner, num_batch_splits=splits)
    theirs.compile(optimizer=tf_keras.optimizers.SGD(learning_rate),
                   loss=tf_keras.losses.MeanSquaredError())
    ours.compile(optimizer=keras.optimizers.SGD(splits * learning_rate), loss="mse")
    theirs.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    ours.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(ours.model.get_weights(), theirs_inner.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_sharpness_aware_minimization__docstring_states_the_tf_keras_difference():
    doc = SharpnessAwareMinimization.__doc__
    assert "tf_keras *sums*" in doc and "`m` times its learning rate" in doc
    card = pathlib.Path(keras_efficient.__file__).parent / "sam" / "README.md"
    assert "`m` times its learning rate" in card.read_text()
