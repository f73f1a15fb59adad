"""FewShotPrompter on a tiny random-weight GPT-2: label scores against a float64
reference from the model's logits, calibration against its formula, prompts, bad input."""

import keras
import keras_hub
import numpy as np
import pytest
from scipy import stats

from keras_efficient.recipes.in_context import FewShotPrompter
from keras_efficient.recipes.in_context import k_shot_curve
from keras_efficient.recipes.in_context.few_shot_prompter import CONTENT_FREE_INPUTS

WORDS = ["<pad>", "=", ";", "N/A", "[MASK]"] + [f"x{i}" for i in range(8)] + ["yes", "no", "maybe"]
VOCABULARY = {word: index for index, word in enumerate(WORDS)}
POOL = [f"x{i}" for i in range(8)]
POOL_LABELS = ["yes", "no", "yes", "maybe", "no", "yes", "maybe", "no"]
TEMPLATE = "{input} = {label}"


def tokenize(text):
    return [VOCABULARY[word] for word in text.split()]


@pytest.fixture(scope="module")
def causal_lm():
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.GPT2Backbone(vocabulary_size=len(WORDS), num_layers=1,
                                             num_heads=2, hidden_dim=16, intermediate_dim=32,
                                             max_sequence_length=64)
    return keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)


def _prompter(causal_lm, **kwargs):
    arguments = {"k": 2, "tokenizer": tokenize, "separator": " ; ", "seed": 0, **kwargs}
    return FewShotPrompter(causal_lm, TEMPLATE, **arguments).fit(POOL, POOL_LABELS)


def _reference_probabilities(causal_lm, prompt, labels):
    """Softmax over labels of sum_t log p(label_t | prefix), from the logits in float64."""
    log_likelihoods = []
    for label in labels:
        tokens = tokenize(prompt) + tokenize(label)
        logits = causal_lm.predict({"token_ids": np.array([tokens]),
                                    "padding_mask": np.ones((1, len(tokens)), bool)},
                                   verbose=0)[0].astype(np.float64)
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        start = len(tokenize(prompt))
        log_likelihoods.append(sum(log_probs[t - 1, tokens[t]]
                                   for t in range(start, len(tokens))))
    scores = np.exp(np.array(log_likelihoods) - max(log_likelihoods))
    return scores / scores.sum()


def test_few_shot_prompter__label_probabilities_equal_float64_reference(causal_lm):
    prompter = _prompter(causal_lm, k=3)
    prompter.label_words.append("maybe no")  # a two-token label (longer than the others)
    prompter._label_tokens.append(tokenize("maybe no"))
    queries = ["x3", "x6"]
    examples = prompter._examples(queries)
    prompts = [prompter.prompt(q, e) for q, e in zip(queries, examples)]
    expected = [_reference_probabilities(causal_lm, p, prompter.label_words) for p in prompts]
    np.testing.assert_allclose(prompter._label_probabilities(prompts), expected, atol=1e-5)
    prompter.batch_size = 1  # no padding: the same scores
    np.testing.assert_allclose(prompter._label_probabilities(prompts), expected, atol=1e-5)


def test_few_shot_prompter__prompt_has_k_examples_then_the_query(causal_lm):
    prompter = _prompter(causal_lm, k=2)
    # The template up to its {label} slot, trailing space included.
    assert prompter.prompt("x7", examples=[1, 3]) == "x1 = no ; x3 = maybe ; x7 = "
    for examples in prompter._examples(["x0"] * 5):
        assert len(set(examples)) == 2  # drawn without replacement


def test_few_shot_prompter__nearest_examples_by_embedding(causal_lm):
    angles = [0.0, 0.1, 0.3, 0.6, 1.0, 1.5, 2.1, 2.8]
    vectors = {f"x{i}": [np.cos(a), np.sin(a)] for i, a in enumerate(angles)}
    prompter = _prompter(causal_lm, k=3, example_selection="nearest",
                         embed=lambda texts: np.array([vectors[t] for t in texts]))
    assert prompter._examples(["x4"]) == [[5, 3, 4]]  # the most similar (itself) last
    assert prompter._examples(["x0"]) == [[2, 1, 0]]


def test_few_shot_prompter__contextual_calibration_divides_by_content_free(causal_lm):
    plain = _prompter(causal_lm, k=0)
    calibrated = _prompter(causal_lm, k=0, calibrate=True)
    p = plain.predict_proba(["x2", "x5"])
    content_free = plain.predict_proba(list(CONTENT_FREE_INPUTS)).mean(axis=0)
    expected = p / content_free
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(calibrated.predict_proba(["x2", "x5"]), expected, atol=1e-6)
    assert calibrated.predict(["x2"])[0] == calibrated.label_words[int(np.argmax(expected[0]))]


def test_k_shot_curve__mean_and_interval_over_draws(causal_lm):
    rows = k_shot_curve(
        lambda k, seed: FewShotPrompter(causal_lm, TEMPLATE, k, tokenizer=tokenize,
                                        separator=" ; ", seed=seed),
        POOL, POOL_LABELS, POOL[:4], POOL_LABELS[:4], ks=(0, 2), draws=3)
    assert [row["k"] for row in rows] == [0, 2]
    assert len(rows[0]["accuracies"]) == 1 and len(rows[1]["accuracies"]) == 3
    for row in rows:
        assert row["accuracy"] == pytest.approx(np.mean(row["accuracies"]))
        assert row["low"] <= row["accuracy"] <= row["high"]
    assert rows[0]["low"] == rows[0]["high"] == rows[0]["accuracy"]  # k = 0: one draw


class _FixedPrompter:
    """Answers the first `correct` queries right and the others wrong."""

    def __init__(self, correct):
        self.correct = correct

    def fit(self, inputs, labels, label_words=None):
        self.labels = list(labels)
        return self

    def predict(self, queries):
        return [self.labels[i] if i < self.correct else "wrong" for i in range(len(queries))]


def test_k_shot_curve__student_t_interval_over_draws():
    rows = k_shot_curve(lambda k, seed: _FixedPrompter(correct=seed + 1), POOL[:4],
                        POOL_LABELS[:4], POOL[:4], POOL_LABELS[:4], ks=(2,), draws=3,
                        confidence=0.9)
    assert rows[0]["accuracies"] == [0.25, 0.5, 0.75]
    # scipy's own interval function on the draws' accuracies.
    low, high = stats.t.interval(0.9, 2, loc=0.5, scale=stats.sem([0.25, 0.5, 0.75]))
    assert (rows[0]["low"], rows[0]["high"]) == pytest.approx((low, high))


def test_few_shot_prompter__rejects_bad_input(causal_lm):
    with pytest.raises(ValueError, match="argument `k`. Expected at most the pool size 8"):
        _prompter(causal_lm, k=9)
    with pytest.raises(ValueError, match="argument `template`"):
        FewShotPrompter(causal_lm, "Label: {label}", 1, tokenizer=tokenize)
    with pytest.raises(ValueError, match="argument `template`"):
        FewShotPrompter(causal_lm, "{input} =", 1, tokenizer=tokenize)
    with pytest.raises(ValueError, match="argument `label_words`"):
        FewShotPrompter(causal_lm, TEMPLATE, 1, tokenizer=tokenize).fit(POOL, [""] * 8)
    with pytest.raises(ValueError, match="argument `tokenizer`"):
        FewShotPrompter(causal_lm, TEMPLATE, 1)
    with pytest.raises(ValueError, match="argument `example_selection`"):
        FewShotPrompter(causal_lm, TEMPLATE, 1, tokenizer=tokenize, example_selection="best")
    with pytest.raises(ValueError, match="argument `k`"):
        FewShotPrompter(causal_lm, TEMPLATE, -1, tokenizer=tokenize)
    with pytest.raises(TypeError, match="argument `causal_lm`"):
        FewShotPrompter("gpt2", TEMPLATE, 1, tokenizer=tokenize)
    with pytest.raises(ValueError, match="fit"):
        FewShotPrompter(causal_lm, TEMPLATE, 1, tokenizer=tokenize).predict(["x1"])
    with pytest.raises(ValueError, match="69 tokens, more than the model's `max_sequence_length` of 64"):
        _prompter(causal_lm, k=0).predict([" ".join(["x1"] * 67)])  # + "=" + label
    with pytest.raises(ValueError, match="`generate` needs a `causal_lm` with a preprocessor"):
        _prompter(causal_lm).generate("x1")
