import contextlib
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_efficient import testing
from keras_efficient.curriculum import CurriculumDataset
from keras_efficient.curriculum import pacing

N = 50
IDS = np.arange(N, dtype="float32")[:, None]  # the features are the ids themselves
LABELS = np.arange(N) % 3
SCORES = np.random.default_rng(0).normal(size=N)


def allowed_ids(order_scores, fraction):
    """The ⌈p·N⌉ examples with the lowest `order_scores` (reference, float64)."""
    count = math.ceil(round(fraction * N, 9))
    return set(np.argsort(order_scores, kind="stable")[:count].tolist())


@pytest.mark.parametrize("ordering, order_scores", [
    ("curriculum", SCORES), ("anti_curriculum", -SCORES)])
def test_curriculum_dataset__batches_come_from_the_easiest_prefix(ordering, order_scores):
    function = pacing.linear(20, start_fraction=0.1, full_data_fraction=0.5)
    data = CurriculumDataset(IDS, LABELS, scores=SCORES, pacing=function, batch_size=8,
                             ordering=ordering, seed=3)
    batches = list(data.as_numpy_iterator())
    assert len(batches) == 20
    for step, (x, y) in enumerate(batches):
        ids = x[:, 0].astype(int)
        fraction = 0.1 + 0.9 * min(1.0, step / 10)
        assert set(ids) <= allowed_ids(order_scores, fraction), step
        np.testing.assert_array_equal(y, LABELS[ids])
        if math.ceil(round(fraction * N, 9)) >= 8:  # without replacement when possible
            assert len(set(ids)) == 8
    # Every enabled example shows up once all the data is enabled.
    late = np.concatenate([x[:, 0] for x, _ in batches[10:]]).astype(int)
    assert len(set(late)) > 0.6 * N  # 80 draws from 50: about 41 distinct expected


def test_curriculum_dataset__prefix_sizes_are_ceil_p_times_n():
    function = pacing.fixed_exponential(30, start_fraction=0.07, increase=1.5, step_length=4)
    data = CurriculumDataset(IDS, LABELS, scores=SCORES, pacing=function, batch_size=4)
    expected = [min(N, math.ceil(round(min(1.0, 0.07 * 1.5 ** (t // 4)) * N, 9)))
                for t in range(30)]
    assert data.prefix_sizes.tolist() == expected


def test_curriculum_dataset__random_ordering_is_a_seeded_permutation():
    function = pacing.step(10, start_fraction=0.2, full_data_fraction=0.5)
    data = CurriculumDataset(IDS, LABELS, scores=SCORES, pacing=function, batch_size=5,
                             ordering="random", seed=7)
    again = CurriculumDataset(IDS, LABELS, scores=SCORES, pacing=function, batch_size=5,
                              ordering="random", seed=7)
    assert sorted(data.order.tolist()) == list(range(N))
    np.testing.assert_array_equal(data.order, again.order)
    assert not np.array_equal(data.order, np.argsort(SCORES))
    for step, (x, _) in enumerate(data.as_numpy_iterator()):
        enabled = set(data.order[: 10 if step < 5 else N].tolist())
        assert set(x[:, 0].astype(int).tolist()) <= enabled


def test_curriculum_dataset__fit_traces_the_train_step_once():
    data = CurriculumDataset(IDS, LABELS, scores=SCORES, batch_size=4,
                             pacing=pacing.quadratic(12, 0.02, 0.5))  # prefix 1 < batch at first
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(3)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    traces = []
    original = model.train_step
    model.train_step = lambda *args: (traces.append(1), original(*args))[1]
    model.fit(data, epochs=3, steps_per_epoch=4, verbose=0)
    assert len(traces) == 1


def test_curriculum_dataset__include_ids_and_dict_features():
    x = {"a": IDS, "b": IDS * 2}
    data = CurriculumDataset(x, None, scores=SCORES, pacing=pacing.linear(3), batch_size=4,
                             include_ids=True)
    features = next(data.as_numpy_iterator())
    np.testing.assert_array_equal(features["a"][:, 0], features["example_id"])
    np.testing.assert_array_equal(features["b"][:, 0], 2 * features["example_id"])


def test_curriculum_dataset__distributes_over_two_replicas():
    def fit(strategy=None):
        data = CurriculumDataset(IDS, LABELS, scores=SCORES, pacing=pacing.linear(6),
                                 batch_size=8, seed=1)
        with strategy.scope() if strategy else contextlib.nullcontext():
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(3)])
            model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = model.fit(data, epochs=2, steps_per_epoch=3, verbose=0)
        return history.history["loss"], model.get_weights()

    losses, weights = fit(testing.two_replica_strategy())
    assert np.isfinite(losses).all()
    # The same batches split over two replicas train exactly like one device.
    single_losses, single_weights = fit()
    np.testing.assert_allclose(losses, single_losses, rtol=1e-5)
    for replicated, single in zip(weights, single_weights):
        np.testing.assert_allclose(replicated, single, atol=1e-6)


def test_curriculum_dataset__rejects_scores_of_the_wrong_length():
    with pytest.raises(ValueError, match="argument `scores`.*50.*Received: 49"):
        CurriculumDataset(IDS, LABELS, scores=SCORES[:-1], pacing=pacing.linear(5))


def test_curriculum_dataset__rejects_labels_of_the_wrong_length():
    with pytest.raises(ValueError, match="argument `y`.*50.*Received: 49"):
        CurriculumDataset(IDS, LABELS[:-1], scores=SCORES, pacing=pacing.linear(5))


def test_curriculum_dataset__rejects_nan_scores():
    scores = SCORES.copy()
    scores[4] = np.nan
    with pytest.raises(ValueError, match="argument `scores`.*NaN"):
        CurriculumDataset(IDS, LABELS, scores=scores, pacing=pacing.linear(5))


@pytest.mark.parametrize("bad_value", [0.0, 1.5, -0.1])
def test_curriculum_dataset__rejects_pacing_outside_0_1(bad_value):
    def paced(step):
        return bad_value if step == 2 else 0.5

    with pytest.raises(ValueError, match=r"argument `pacing`.*\(0, 1\].*pacing\(2\)"):
        CurriculumDataset(IDS, LABELS, scores=SCORES, pacing=paced, total_steps=4)


def test_curriculum_dataset__rejects_bad_arguments():
    with pytest.raises(ValueError, match="argument `ordering`"):
        CurriculumDataset(IDS, LABELS, scores=SCORES, pacing=pacing.linear(5),
                          ordering="hardest")
    with pytest.raises(ValueError, match="argument `batch_size`"):
        CurriculumDataset(IDS, LABELS, scores=SCORES, pacing=pacing.linear(5), batch_size=0)
    with pytest.raises(ValueError, match="`total_steps` is required"):
        CurriculumDataset(IDS, LABELS, scores=SCORES, pacing=lambda step: 1.0)
    with pytest.raises(TypeError, match="argument `pacing`"):
        CurriculumDataset(IDS, LABELS, scores=SCORES, pacing=0.5, total_steps=3)


def test_curriculum_dataset__is_a_tf_data_dataset():
    data = CurriculumDataset(IDS, LABELS, scores=SCORES, pacing=pacing.linear(5), batch_size=2)
    assert isinstance(data, tf.data.Dataset)
    assert int(data.cardinality()) == 5
    assert data.element_spec[0].shape == (2, 1)
