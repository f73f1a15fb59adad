"""k-shot classification by prompting a keras-hub `CausalLM` with labeled examples."""

import math

import numpy as np
from keras import ops

from keras_efficient.utils import export
from keras_efficient.utils import validate_callable
from keras_efficient.utils import validate_choice
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_seed
from keras_efficient.utils import validate_size

INPUT_SLOT, LABEL_SLOT = "{input}", "{label}"
# Zhao et al. 2021 average the label probabilities of these content-free inputs.
CONTENT_FREE_INPUTS = ("N/A", "", "[MASK]")


@export("keras_efficient.recipes.in_context.FewShotPrompter")
class FewShotPrompter:
    """Classify by prompting a causal LM with k labeled examples (in-context learning).

    For each query, `k` examples of the labeled pool are written with
    `template` (e.g. `"Review: {input}\\nSentiment: {label}"`), joined by
    `separator`, and followed by the template filled with the query up to its
    `{label}` slot. Each candidate label word is then scored by the model's
    log-likelihood of the label's tokens after that prompt
    (`CausalLM.score(..., scoring_mode="loss")`), and the most likely label
    wins. No weights change. The prompt and each label are tokenized
    separately and concatenated, so write label words as they follow the
    prompt (GPT-2's BPE: `" positive"` with its leading space).

    `example_selection="random"` draws the k examples per query (GPT-3);
    `"nearest"` takes the k pool examples most similar to the query (cosine
    similarity of `embed`, by default the mean of the model's token embeddings;
    Liu et al. 2022), the most similar last, next to the query.
    `calibrate=True` applies contextual calibration (Zhao et al. 2021): the
    label probabilities are divided by those the same prompt gives to
    content-free inputs ("N/A", "", "[MASK]", averaged), which removes the
    model's bias towards labels that are frequent, recent or common tokens.

    Args:
        causal_lm: a keras-hub `CausalLM` (GPT-2, Gemma, Llama, ...).
        template: a string with an `{input}` slot and a `{label}` slot.
        k: examples per prompt, an integer >= 0 (0: zero-shot).
        example_selection: `"random"` or `"nearest"`. Defaults to `"random"`.
        calibrate: contextual calibration. Defaults to False.
        tokenizer: callable from a string to token ids; defaults to
            `causal_lm.preprocessor.tokenizer`.
        separator: text between examples. Defaults to `"\\n\\n"`.
        embed: for `"nearest"`, callable from a list of strings to vectors
            `(n, dim)`. Defaults to mean token embeddings of `causal_lm`.
        batch_size: sequences per `score` call (a shorter last batch is padded to
            it). Defaults to 32.
        seed: seed of the random example draws.

    Example:

    >>> prompter = FewShotPrompter(gpt2_lm, "Review: {input}\\nSentiment:{label}", k=4)
    >>> prompter.fit(train_texts, [" positive", " negative", ...])  # doctest: +SKIP
    >>> prompter.predict(["A delight from start to end."])  # doctest: +SKIP
    [' positive']

    Reference:
        Brown et al., "Language Models are Few-Shot Learners", NeurIPS 2020;
        Zhao et al., "Calibrate Before Use: Improving Few-Shot Performance of
        Language Models", ICML 2021; Liu et al., "What Makes Good In-Context
        Examples for GPT-3?", DeeLIO 2022.
    """

    def __init__(self, causal_lm, template, k, example_selection="random", calibrate=False,
                 tokenizer=None, separator="\n\n", embed=None, batch_size=32, seed=None):
        if not hasattr(causal_lm, "score"):
            raise TypeError(
                "Invalid type received for argument `causal_lm`. Expected a keras-hub "
                f"`CausalLM` (with `score`). Received: causal_lm of type "
                f"{type(causal_lm).__name__}"
            )
        if not isinstance(template, str) or INPUT_SLOT not in template \
                or LABEL_SLOT not in template:
            raise ValueError(
                "Invalid value received for argument `template`. Expected a string with "
                f"an `{INPUT_SLOT}` slot (the query) and a `{LABEL_SLOT}` slot. "
                f"Received: template={template!r}"
            )
        if template.index(INPUT_SLOT) > template.index(LABEL_SLOT):
            raise ValueError(
                "Invalid value received for argument `template`. The `{input}` slot must "
                f"come before the `{{label}}` slot. Received: template={template!r}"
            )
        self.causal_lm = causal_lm
        self.template = template
        self.k = validate_size("k", k, 0)
        self.example_selection = validate_choice("example_selection", example_selection,
                                                 ("random", "nearest"))
        self.calibrate = bool(calibrate)
        if tokenizer is None:
            preprocessor = getattr(causal_lm, "preprocessor", None)
            if preprocessor is None:
                raise ValueError(
                    "Invalid value received for argument `tokenizer`. The `causal_lm` has "
                    "no preprocessor, so pass a tokenizer (a callable from text to token "
                    "ids). Received: tokenizer=None"
                )
            tokenizer = preprocessor.tokenizer
        self.tokenizer = validate_callable("tokenizer", tokenizer)
        self.separator = separator
        validate_callable("embed", embed, allow_none=True)
        self.embed = embed if embed is not None else self._mean_token_embedding
        self.batch_size = validate_size("batch_size", batch_size)
        self._rng = np.random.default_rng(validate_seed("seed", seed))
        self.pool_inputs, self.pool_labels, self.label_words = None, None, None

    def fit(self, inputs, labels, label_words=None):
        """Store the labeled pool the examples come from.

        Args:
            inputs: pool texts.
            labels: their label words (strings, as they follow the prompt).
            label_words: the candidate labels, in order; defaults to the
                distinct `labels` in order of first appearance.

        Returns:
            The prompter.
        """
        inputs, labels = list(inputs), list(labels)
        if len(inputs) != len(labels):
            raise ValueError(f"Expected as many `labels` as `inputs`. Received: "
                             f"{len(labels)} labels for {len(inputs)} inputs")
        if self.k > len(inputs):
            raise ValueError(
                f"Invalid value received for argument `k`. Expected at most the pool size "
                f"{len(inputs)}. Received: k={self.k}"
            )
        label_words = list(dict.fromkeys(labels)) if label_words is None else list(label_words)
        self._label_tokens = []
        for word in label_words:
            tokens = self._tokenize(word)
            if not tokens:
                raise ValueError(
                    "Invalid value received for argument `label_words`. Every label must "
                    f"tokenize to at least one token. Received: {word!r}, which gives none"
                )
            self._label_tokens.append(tokens)
        self.pool_inputs, self.pool_labels, self.label_words = inputs, labels, label_words
        self._pool_vectors = (self._normalized(self.embed(inputs))
                              if self.example_selection == "nearest" else None)
        return self

    def prompt(self, query, examples=None):
        """The prompt for `query`: its k examples, then the query up to `{label}`."""
        if examples is None:
            examples = self._examples([query])[0]
        shots = [self.template.replace(INPUT_SLOT, self.pool_inputs[i])
                 .replace(LABEL_SLOT, self.pool_labels[i]) for i in examples]
        head = self.template[: self.template.index(LABEL_SLOT)].replace(INPUT_SLOT, query)
        return self.separator.join(shots + [head])

    def predict_proba(self, queries):
        """Label probabilities `(len(queries), len(label_words))`, calibrated if asked."""
        self._check_fitted()
        queries = list(queries)
        examples = self._examples(queries)
        probabilities = self._label_probabilities(
            [self.prompt(q, e) for q, e in zip(queries, examples)])
        if not self.calibrate:
            return probabilities
        content_free = self._label_probabilities(
            [self.prompt(text, e) for e in examples for text in CONTENT_FREE_INPUTS])
        content_free = content_free.reshape(len(queries), len(CONTENT_FREE_INPUTS), -1).mean(1)
        calibrated = probabilities / content_free
        return calibrated / calibrated.sum(axis=1, keepdims=True)

    def predict(self, queries):
        """The most likely label word for each query."""
        return [self.label_words[i] for i in np.argmax(self.predict_proba(queries), axis=1)]

    def generate(self, query, max_length=None):
        """Free-form continuation of the k-shot prompt for `query` (the prompt stripped)."""
        self._check_fitted()
        if getattr(self.causal_lm, "preprocessor", None) is None:
            raise ValueError("`generate` needs a `causal_lm` with a preprocessor (text in, "
                             "text out); this one has none.")
        return self.causal_lm.generate(self.prompt(query), max_length=max_length,
                                       strip_prompt=True)

    # ------------------------------------------------------------------ internals

    def _check_fitted(self):
        if self.pool_inputs is None:
            raise ValueError("Call `fit(inputs, labels)` with the labeled pool first.")

    def _tokenize(self, text):
        return [int(t) for t in np.asarray(ops.convert_to_numpy(self.tokenizer(text))).ravel()]

    def _examples(self, queries):
        """Pool indices of each query's k examples."""
        if self.k == 0:
            return [[] for _ in queries]
        if self.example_selection == "random":
            return [[int(i) for i in self._rng.choice(len(self.pool_inputs), self.k,
                                                      replace=False)] for _ in queries]
        similarity = self._normalized(self.embed(queries)) @ self._pool_vectors.T
        nearest = np.argsort(-similarity, axis=1)[:, : self.k]
        return [[int(i) for i in row[::-1]] for row in nearest]  # the most similar last

    @staticmethod
    def _normalized(vectors):
        vectors = np.asarray(ops.convert_to_numpy(vectors), np.float64)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def _mean_token_embedding(self, texts):
        table = ops.convert_to_numpy(self.causal_lm.backbone.token_embedding.embeddings)
        return np.stack([table[self._tokenize(text) or [0]].mean(axis=0) for text in texts])

    def _label_probabilities(self, prompts):
        """Softmax over the labels of each prompt's label log-likelihoods."""
        log_likelihoods = self._label_log_likelihoods(prompts)
        shifted = log_likelihoods - log_likelihoods.max(axis=1, keepdims=True)
        return np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)

    def _label_log_likelihoods(self, prompts):
        """`log p(label tokens | prompt)` for every prompt and label, `(n, labels)`."""
        sequences, spans = [], []
        for prompt in prompts:
            prompt_tokens = self._tokenize(prompt)
            for label_tokens in self._label_tokens:
                sequences.append(prompt_tokens + label_tokens)
                spans.append((len(prompt_tokens), len(label_tokens)))
        scores = []
        for start in range(0, len(sequences), self.batch_size):
            scores.append(self._score(sequences[start:start + self.batch_size],
                                      spans[start:start + self.batch_size]))
        return np.concatenate(scores).reshape(len(prompts), len(self._label_tokens))

    def _score(self, sequences, spans):
        # Padded to `batch_size` rows and a power-of-two length (at least 16): few
        # distinct shapes, since on JAX each new shape compiles the model's ops again.
        length = max(len(s) for s in sequences)
        limit = getattr(self.causal_lm.backbone, "max_sequence_length", None) or math.inf
        if length > limit:
            raise ValueError(
                f"A prompt with its label has {length} tokens, more than the model's "
                f"`max_sequence_length` of {limit}. Use a smaller `k` or shorter texts."
            )
        padded_length = max(length, min(_next_power_of_two(max(length, 16)), limit))
        rows = self.batch_size
        token_ids = np.zeros((rows, padded_length), "int32")
        padding_mask = np.zeros((rows, padded_length), bool)
        label_mask = np.zeros((len(sequences), padded_length), "float32")
        for row, (sequence, (prompt_length, label_length)) in enumerate(zip(sequences, spans)):
            token_ids[row, : len(sequence)] = sequence
            padding_mask[row, : len(sequence)] = True
            # Position t predicts token t + 1: the label's tokens are predicted
            # from the last prompt token to the one before the label's last.
            label_mask[row, prompt_length - 1: prompt_length - 1 + label_length] = 1.0
        target_ids = np.concatenate([token_ids[:, 1:], np.zeros_like(token_ids[:, :1])], 1)
        losses = self.causal_lm.score(token_ids=token_ids, padding_mask=padding_mask,
                                      scoring_mode="loss", target_ids=target_ids)
        losses = np.asarray(ops.convert_to_numpy(losses), np.float64)[: len(sequences)]
        return -np.sum(losses * label_mask, 1)


def _next_power_of_two(n):
    return 1 << (n - 1).bit_length()


@export("keras_efficient.recipes.in_context.k_shot_curve")
def k_shot_curve(make_prompter, pool_inputs, pool_labels, test_inputs, test_labels,
                 ks=(0, 1, 2, 4, 8), draws=5, confidence=0.95, label_words=None):
    """Accuracy against the number of examples k, with a confidence interval over draws.

    For each k, `draws` prompters (`make_prompter(k, seed)`, seeds 0 ... draws-1:
    different random examples) classify the test set; the mean accuracy and a
    Student-t interval over the draws are reported (the figure of the GPT-3
    paper, with its spread over example draws).

    Args:
        make_prompter: `(k, seed) -> FewShotPrompter`.
        pool_inputs, pool_labels: the labeled pool.
        test_inputs, test_labels: queries and their label words.
        ks: the numbers of examples.
        draws: draws per k, >= 2 (k = 0 is deterministic: drawn once).
        confidence: level of the interval, in (0, 1).
        label_words: candidate labels passed to `fit`.

    Returns:
        A list of dicts `{"k", "accuracy", "low", "high", "accuracies"}`.
    """
    from scipy import stats

    validate_callable("make_prompter", make_prompter)
    if not isinstance(ks, (list, tuple)):
        raise TypeError("Invalid type received for argument `ks`. Expected a list of "
                        f"integers >= 0. Received: ks={ks!r}")
    for k in ks:
        validate_size("ks", k, 0)
    validate_size("draws", draws, 2)
    validate_number("confidence", confidence, 0, 1, low_inclusive=False, high_inclusive=False)
    test_labels = np.asarray(list(test_labels))
    rows = []
    for k in ks:
        accuracies = []
        for seed in range(draws if k else 1):
            prompter = make_prompter(k, seed).fit(pool_inputs, pool_labels, label_words)
            accuracies.append(float(np.mean(np.asarray(prompter.predict(test_inputs))
                                            == test_labels)))
        mean = float(np.mean(accuracies))
        if len(accuracies) > 1:
            half = stats.t.ppf(0.5 + confidence / 2, len(accuracies) - 1) * \
                np.std(accuracies, ddof=1) / math.sqrt(len(accuracies))
        else:
            half = 0.0
        rows.append({"k": k, "accuracy": mean, "low": float(mean - half),
                     "high": float(mean + half), "accuracies": accuracies})
    return rows
