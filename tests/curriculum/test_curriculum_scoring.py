import keras
import numpy as np
import pytest

from keras_efficient.curriculum import rarity_scores
from keras_efficient.curriculum import teacher_scores


def test_rarity_scores__mean_and_max_surprisal():
    tokens = np.array([[1, 1, 2, 0], [3, 1, 0, 0], [2, 2, 2, 1]])
    # Non-padding counts: 1 → 4, 2 → 4, 3 → 1 of 9 tokens.
    surprisal = {1: -np.log(4 / 9), 2: -np.log(4 / 9), 3: -np.log(1 / 9)}
    rows = [[1, 1, 2], [3, 1], [2, 2, 2, 1]]
    np.testing.assert_allclose(rarity_scores(tokens, padding_id=0),
                               [np.mean([surprisal[v] for v in r]) for r in rows], rtol=1e-12)
    np.testing.assert_allclose(rarity_scores(tokens, padding_id=0, reduction="max"),
                               [max(surprisal[v] for v in r) for r in rows], rtol=1e-12)
    assert np.argmax(rarity_scores(tokens, padding_id=0)) == 1  # the rare token 3


def test_rarity_scores__ragged_sequences_and_bad_reduction():
    scores = rarity_scores([[5], [5, 6], []])
    np.testing.assert_allclose(scores, [-np.log(2 / 3), np.mean([-np.log(2 / 3), -np.log(1 / 3)]),
                                        0.0])
    with pytest.raises(ValueError, match="argument `reduction`"):
        rarity_scores([[1]], reduction="min")


@pytest.mark.parametrize("from_logits", [False, True])
def test_teacher_scores__loss_and_confidence(from_logits):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 4)).astype("float32")
    y = rng.integers(0, 3, 10)
    teacher = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3),
                                *([] if from_logits else [keras.layers.Softmax()])])
    logits = x.astype("float64") @ teacher.layers[0].get_weights()[0].astype("float64")
    logits += teacher.layers[0].get_weights()[1]
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    p_true = probabilities[np.arange(10), y]
    np.testing.assert_allclose(teacher_scores(teacher, x, y, from_logits=from_logits),
                               -np.log(p_true), rtol=1e-5)
    np.testing.assert_allclose(
        teacher_scores(teacher, x, np.eye(3)[y], kind="confidence", from_logits=from_logits),
        1 - p_true, rtol=1e-5, atol=1e-7)


def test_teacher_scores__rejects_bad_input():
    teacher = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    x = np.zeros((4, 2), "float32")
    with pytest.raises(ValueError, match="argument `kind`"):
        teacher_scores(teacher, x, np.zeros(4, int), kind="margin")
    with pytest.raises(ValueError, match="argument `y`.*4.*Received: 3"):
        teacher_scores(teacher, x, np.zeros(3, int))
    with pytest.raises(ValueError, match=r"argument `y`.*\[0, 2\).*to 2"):
        teacher_scores(teacher, x, np.array([0, 1, 2, 1]))
