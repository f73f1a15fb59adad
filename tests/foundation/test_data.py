"""The embedded digits, few-label subsets and class grouping."""

import numpy as np
import pytest
from sklearn.datasets import load_digits as sklearn_digits

from keras_efficient import data


def test_load_digits__split_is_seeded_stratified_and_complete():
    first, again = data.load_digits(seed=3), data.load_digits(seed=3)
    np.testing.assert_array_equal(first.x_train, again.x_train)
    assert len(first.x_train) + len(first.x_test) == 1797
    assert first.x_train.shape[1:] == (8, 8, 1) and first.x_train.dtype == np.float32
    assert 0.0 <= first.x_train.min() and first.x_train.max() <= 1.0
    # Stratified: each class's share differs by at most one example's worth.
    train_share = np.bincount(first.y_train) / len(first.y_train)
    test_share = np.bincount(first.y_test) / len(first.y_test)
    np.testing.assert_allclose(train_share, test_share, atol=1 / len(first.y_test) + 1e-9)
    other = data.load_digits(seed=4)
    assert not np.array_equal(first.y_test, other.y_test)


def test_load_digits__images_are_sklearns_scaled_to_unit_range():
    reference = sklearn_digits()
    digits = data.load_digits()
    all_images = np.concatenate([digits.x_train, digits.x_test])[..., 0]
    expected = np.sort((reference.images / 16.0).reshape(len(reference.images), -1), axis=0)
    np.testing.assert_allclose(np.sort(all_images.reshape(len(all_images), -1), axis=0),
                               expected, atol=1e-7)


def test_load_digits__upscaled_three_channel():
    digits = data.load_digits(image_size=16, channels=3)
    assert digits.x_train.shape[1:] == (16, 16, 3)
    np.testing.assert_array_equal(digits.x_train[..., 0], digits.x_train[..., 2])
    # Upscaling keeps the mean intensity (bilinear resize preserves it closely).
    small = data.load_digits()
    assert abs(digits.x_train.mean() - small.x_train.mean()) < 0.01


@pytest.mark.parametrize("kwargs, argument", [({"image_size": 4}, "image_size"),
                                              ({"test_fraction": 1.0}, "test_fraction"),
                                              ({"channels": 2}, "channels"),
                                              ({"seed": -1}, "seed")])
def test_load_digits__bad_arguments_raise(kwargs, argument):
    with pytest.raises(ValueError, match=f"argument `{argument}`"):
        data.load_digits(**kwargs)


def test_few_label_subset__stratified_with_at_least_one_per_class():
    y = np.repeat(np.arange(4), [100, 50, 10, 3])
    x = np.arange(len(y))
    x_few, y_few, indices = data.few_label_subset(x, y, 0.1, seed=0, return_indices=True)
    assert np.bincount(y_few).tolist() == [10, 5, 1, 1]
    np.testing.assert_array_equal(x_few, x[indices])
    np.testing.assert_array_equal(y_few, y[indices])
    assert len(np.unique(indices)) == len(indices)
    _, y_same = data.few_label_subset(x, y, 0.1, seed=0)
    np.testing.assert_array_equal(y_same, y_few)


def test_few_label_subset__dict_inputs_and_bad_fraction():
    y = np.array([0, 0, 1, 1])
    x_few, y_few = data.few_label_subset({"image": np.arange(4)}, y, 0.5)
    assert x_few["image"].shape == (2,)
    np.testing.assert_array_equal(y[x_few["image"]], y_few)  # images stay with their labels
    assert y_few.tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"argument `fraction`.*\(0, 1\]"):
        data.few_label_subset(np.arange(4), y, 0.0)
    with pytest.raises(ValueError, match=r"one example per label \(4\).*lengths \[3\]"):
        data.few_label_subset({"image": np.arange(3)}, y, 0.5)


def test_group_classes__digits_into_two_superclasses():
    groups = [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    y = np.arange(10)
    np.testing.assert_array_equal(data.group_classes(y, groups), (y >= 5).astype("int32"))


def test_group_classes__rejects_overlap_and_missing():
    with pytest.raises(ValueError, match="class 1 is in groups 0 and 1"):
        data.group_classes([0, 1], [[0, 1], [1]])
    with pytest.raises(ValueError, match=r"labels \[2\] are in no group"):
        data.group_classes([0, 2], [[0], [1]])


def test_load_tfds__maps_names_and_features(monkeypatch):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=4):
        dataset = data.load_tfds("ag_news", split="test")
        description, label = next(iter(dataset))
        # SST-2's "test" is GLUE's labelled validation split (the test labels are -1).
        assert data.TFDS_DATASETS["sst2"].test_split == "validation"
        sentence, _ = next(iter(data.load_tfds("sst2", split="test")))
    assert description.dtype.name == "string" and label.dtype.is_integer
    assert sentence.dtype.name == "string"
    with pytest.raises(ValueError, match="argument `name`"):
        data.load_tfds("imagenet")


def test_symmetric_label_noise__rate_and_uniform_other_classes():
    y = np.repeat(np.arange(10), 2000).astype("int32")
    noisy, flipped = data.symmetric_label_noise(y, 0.2, 10, seed=1)
    assert noisy.dtype == y.dtype
    assert abs(flipped.mean() - 0.2) < 0.01
    np.testing.assert_array_equal(noisy[~flipped], y[~flipped])
    assert np.all(noisy[flipped] != y[flipped])
    # A flipped label lands on each of the 9 other classes equally often.
    offsets = (noisy[flipped] - y[flipped]) % 10
    shares = np.bincount(offsets, minlength=10)[1:] / flipped.sum()
    np.testing.assert_allclose(shares, 1 / 9, atol=0.01)
    with pytest.raises(ValueError, match="argument `fraction`"):
        data.symmetric_label_noise(y, 1.5, 10)
    with pytest.raises(ValueError, match=r"labels of shape \(n,\) in \[0, 5\)"):
        data.symmetric_label_noise(y, 0.2, 5)
