import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_efficient as ke

IMAGES = np.random.default_rng(0).random((3, 5, 5, 2)).astype("float32")


def test_rotation_pretext__equals_numpy_rotations_with_their_labels():
    rotated, labels = ke.data.RotationPretext()(IMAGES)
    expected = np.concatenate([np.rot90(IMAGES, k, axes=(1, 2)) for k in range(4)])
    np.testing.assert_array_equal(np.asarray(rotated), expected)
    np.testing.assert_array_equal(np.asarray(labels), np.repeat(np.arange(4), 3))


def test_rotation_pretext__maps_over_labelled_tf_data_and_trains_a_classifier():
    dataset = (tf.data.Dataset.from_tensor_slices((IMAGES, np.arange(3)))
               .batch(3).map(ke.data.RotationPretext()))
    rotated, labels = next(iter(dataset))
    assert rotated.shape == (12, 5, 5, 2) and labels.dtype == tf.int32
    model = keras.Sequential([keras.Input((5, 5, 2)), keras.layers.Flatten(),
                              keras.layers.Dense(4)])
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(dataset, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"][-1])


def test_rotation_pretext__rejects_non_square_images():
    with pytest.raises(ValueError, match="square images"):
        ke.data.RotationPretext()(np.zeros((2, 4, 5, 1), "float32"))
