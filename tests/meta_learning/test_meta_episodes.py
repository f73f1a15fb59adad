import numpy as np
import pytest
import tensorflow_datasets as tfds

import keras_efficient as ke
from keras_efficient.meta_learning.episodes import episode_dataset
from keras_efficient.meta_learning.episodes import omniglot_classes
from keras_efficient.meta_learning.episodes import rotate_classes
from keras_efficient.meta_learning.episodes import rotated_digits
from keras_efficient.meta_learning.episodes import sinusoid_episodes

# Items are their own ids, so every sampled item can be traced back to its class.
_CLASS_SIZES = np.array([6, 9, 7, 6, 8, 10, 6])
_Y = np.repeat(np.arange(len(_CLASS_SIZES)) * 10 + 3, _CLASS_SIZES)  # ids need not be 0..C-1
_X = np.arange(len(_Y), dtype="float32")[:, None]


def _episodes(**kwargs):
    arguments = {"n_way": 4, "n_shot": 2, "n_query": 3, "meta_batch_size": 3,
                 "num_episodes": 6, "seed": 5, **kwargs}
    return list(episode_dataset(_X, _Y, **arguments).as_numpy_iterator())


def test_episode_dataset__items_come_from_distinct_classes_with_labels_0_to_n():
    n_way, n_shot, n_query = 4, 2, 3
    for (support_x, support_y, query_x), query_y in _episodes():
        assert support_x.shape == (3, n_way * n_shot, 1)
        assert query_x.shape == (3, n_way * n_query, 1)
        assert support_y.dtype == np.int32 and query_y.dtype == np.int32
        for task in range(3):
            ids = np.concatenate([support_x[task, :, 0], query_x[task, :, 0]]).astype(int)
            assert len(set(ids.tolist())) == n_way * (n_shot + n_query)  # no item twice
            labels = np.concatenate([support_y[task], query_y[task]])
            np.testing.assert_array_equal(np.bincount(labels), [n_shot + n_query] * n_way)
            # One original class per label, a different one for every label.
            classes = {label: set(_Y[ids[labels == label]].tolist()) for label in range(n_way)}
            assert all(len(members) == 1 for members in classes.values())
            assert len(set.union(*classes.values())) == n_way


def test_episode_dataset__reproducible_with_a_seed_and_varied_across_episodes():
    first, again, other = _episodes(), _episodes(), _episodes(seed=6)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a[0][0], b[0][0])
        np.testing.assert_array_equal(a[0][2], b[0][2])
    assert not np.array_equal(first[0][0][0], other[0][0][0])
    assert not np.array_equal(first[0][0][0][0], first[0][0][0][1])


def test_episode_dataset__endless_and_static_shapes_for_drop_remainder():
    dataset = episode_dataset(_X, _Y, n_way=5, n_shot=1, n_query=1, meta_batch_size=2,
                              seed=0)
    assert dataset.element_spec[0][0].shape == (2, 5, 1)
    assert dataset.element_spec[1].shape == (2, 5)
    assert len(list(dataset.take(20).as_numpy_iterator())) == 20
    # A finite set drops the incomplete meta-batch.
    assert len(_episodes(meta_batch_size=4, num_episodes=10)) == 2


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"n_way": 8}, "n_way"),  # 7 classes
        ({"n_way": 0}, "n_way"),
        ({"n_shot": 4}, "n_shot"),  # smallest class: 6 items, 3 of them queries
        ({"n_query": 0}, "n_query"),
        ({"n_query": 6}, "n_query"),
        ({"meta_batch_size": 0}, "meta_batch_size"),
        ({"num_episodes": 2}, "num_episodes"),  # fewer than one meta-batch
        ({"seed": -1}, "seed"),
    ],
)
def test_episode_dataset__bad_input_names_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=f"argument `{argument}`"):
        _episodes(**kwargs)


def test_episode_dataset__mismatched_labels_raise():
    with pytest.raises(ValueError, match="`x` and `y`"):
        episode_dataset(_X, _Y[:-1], n_way=2, n_shot=1, n_query=1)


def test_rotate_classes__each_rotation_is_a_new_class():
    x = np.arange(2 * 9, dtype="float32").reshape(2, 3, 3, 1)
    rotated, labels = rotate_classes(x, np.array([0, 2]))
    np.testing.assert_array_equal(labels, [0, 8, 1, 9, 2, 10, 3, 11])
    np.testing.assert_array_equal(rotated[3, :, :, 0], np.rot90(x[1, :, :, 0]))
    np.testing.assert_array_equal(rotated[7, :, :, 0], np.rot90(x[1, :, :, 0], 3))
    with pytest.raises(ValueError, match="argument `x`"):
        rotate_classes(np.zeros((2, 3, 4, 1)), np.array([0, 1]))


def test_rotated_digits__class_disjoint_splits_of_40_classes():
    x_train, y_train = rotated_digits("train")
    x_test, y_test = rotated_digits("test")
    assert not set(y_train.tolist()) & set(y_test.tolist())
    assert len(set(y_train.tolist())) + len(set(y_test.tolist())) == 40
    assert set((y_test // 4).tolist()) == {6, 7, 8, 9}
    assert len(x_train) + len(x_test) == 4 * 1797 and x_train.shape[1:] == (8, 8, 1)
    with pytest.raises(ValueError, match="argument `test_digits`"):
        rotated_digits("train", test_digits=range(10))
    with pytest.raises(ValueError, match="argument `split`"):
        rotated_digits("validation")


def test_omniglot_classes__mocked_tfds_gives_28x28_gray_rotated_classes():
    with tfds.testing.mock_data(num_examples=6):
        x, y = omniglot_classes("train")
        x_plain, y_plain = omniglot_classes("test", image_size=14, rotations=False)
    assert x.shape == (24, 28, 28, 1) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_array_equal(np.sort(y[:6] // 4), np.sort(y[6:12] // 4))
    assert x_plain.shape == (6, 14, 14, 1) and y_plain.dtype == np.int32


def test_sinusoid_episodes__points_lie_on_one_sinusoid_in_maml_ranges():
    dataset = sinusoid_episodes(n_shot=5, n_query=4, meta_batch_size=8, num_episodes=16,
                                seed=3)
    for (support_x, support_y, query_x), query_y in dataset.as_numpy_iterator():
        assert support_x.shape == (8, 5, 1) and query_y.shape == (8, 4)
        for task in range(8):
            x = np.concatenate([support_x[task, :, 0], query_x[task, :, 0]]).astype("float64")
            y = np.concatenate([support_y[task], query_y[task]]).astype("float64")
            assert np.all(np.abs(x) <= 5.0)
            # A sin(x - phase) = (A cos phase) sin x - (A sin phase) cos x: fit both terms.
            basis = np.stack([np.sin(x), -np.cos(x)], axis=1)
            (a_cos, a_sin), *_ = np.linalg.lstsq(basis, y, rcond=None)
            np.testing.assert_allclose(basis @ [a_cos, a_sin], y, atol=1e-4)
            amplitude, phase = np.hypot(a_cos, a_sin), np.arctan2(a_sin, a_cos)
            assert 0.1 - 1e-4 <= amplitude <= 5.0 + 1e-4 and -1e-4 <= phase <= np.pi + 1e-4
    with pytest.raises(ValueError, match="argument `n_shot`"):
        sinusoid_episodes(n_shot=0)


def test_data_namespace__exports_the_episode_sources():
    assert ke.data.episode_dataset is episode_dataset
    assert ke.data.rotated_digits is rotated_digits
    assert ke.data.sinusoid_episodes is sinusoid_episodes
    assert ke.data.omniglot_classes is omniglot_classes
