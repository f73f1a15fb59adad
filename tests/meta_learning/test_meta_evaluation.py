"""evaluate_episodes: mean accuracy and 95% confidence interval over test episodes."""

import keras
import numpy as np
import pytest

from keras_efficient.meta_learning.evaluation import evaluate_episodes
from keras_efficient.models import PrototypicalNetwork


def _episodes(num_batches, meta_batch=4, n_way=2, n_query=5, seed=0):
    """Meta-batches whose query scores are given in `support_x` (see `_scores`)."""
    rng = np.random.default_rng(seed)
    for _ in range(num_batches):
        query_y = np.tile(np.repeat(np.arange(n_way), n_query), (meta_batch, 1))
        # A random share of each episode's queries gets a wrong label's score.
        wrong = rng.random(query_y.shape) < rng.random((meta_batch, 1))
        predicted = np.where(wrong, 1 - query_y, query_y)
        scores = np.eye(n_way)[predicted]
        yield (scores, np.tile(np.arange(n_way), (meta_batch, 1)), scores), query_y


def _scores(support_x, support_y, query_x):
    return query_x


def test_evaluate_episodes__mean_and_confidence_interval_equal_numpy():
    result = evaluate_episodes(_scores, _episodes(10), num_episodes=37)
    # The first 37 episodes' accuracies, computed directly.
    accuracies = np.concatenate([np.mean(np.argmax(x[2], -1) == y, axis=1)
                                 for x, y in _episodes(10)])[:37]
    np.testing.assert_allclose(result.accuracies, accuracies)
    assert result.mean == pytest.approx(np.mean(accuracies), abs=1e-12)
    expected_ci = 1.96 * np.sqrt(np.mean((accuracies - accuracies.mean()) ** 2)) / np.sqrt(37)
    assert result.confidence_interval == pytest.approx(expected_ci, abs=1e-12)
    assert str(result) == f"{100 * np.mean(accuracies):.2f} ± {100 * expected_ci:.2f} %"


def test_evaluate_episodes__keras_model_and_tf_data():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    support_x = rng.normal(size=(6, 4, 3)).astype("float32")
    support_y = np.tile([0, 0, 1, 1], (6, 1)).astype("int32")
    query_x, query_y = support_x + 0.01, support_y
    episodes = tf.data.Dataset.from_tensor_slices(
        ((support_x, support_y, query_x), query_y)).batch(3)
    model = PrototypicalNetwork(keras.layers.Identity(), n_way=2)
    result = evaluate_episodes(model, episodes, num_episodes=6)
    # Queries next to their own support item: nearest prototype unless the other is nearer.
    logits = np.asarray(model((support_x, support_y, query_x)))
    expected = np.mean(np.argmax(logits, -1) == query_y, axis=1)
    np.testing.assert_allclose(result.accuracies, expected)


def test_evaluate_episodes__too_few_episodes_names_num_episodes():
    with pytest.raises(ValueError, match="only 8 episodes.*num_episodes=600"):
        evaluate_episodes(_scores, _episodes(2), num_episodes=600)


def test_evaluate_episodes__bad_arguments_name_them():
    with pytest.raises(ValueError, match="argument `num_episodes`"):
        evaluate_episodes(_scores, _episodes(1), num_episodes=0)
    with pytest.raises(TypeError, match="argument `model_or_fn`"):
        evaluate_episodes("protonet", _episodes(1), num_episodes=1)
    with pytest.raises(ValueError, match="query labels"):
        evaluate_episodes(lambda *x: x[2][:, :1], _episodes(1), num_episodes=1)
