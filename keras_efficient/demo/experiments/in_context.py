"""In-context learning of new random functions by a tiny GPT-2 trained on (x, f(x)) pairs.

A keras-hub `GPT2Backbone` (2 layers, 32 wide, 18,240 parameters) is trained
once per process (seed 0) on sequences `x1 f(x1) x2 f(x2) ...` where each
sequence has its own random mapping `f` from 6 input tokens to 4 label tokens
(Garg et al. 2022 style: the function must be inferred from the context). Each
variant then classifies with `FewShotPrompter` (random examples, no weight
update) the 6 inputs of 10 new random functions, given k examples of the same
function drawn twice per function (`k_shot_curve`'s draws; the accuracy is the
mean over functions and draws): accuracy rises with k, and k = 0 is at chance
(25 %). With the query's own example in the prompt with probability k / 6, a
perfect in-context learner scores `k / 6 + (1 - k / 6) / 4`. The digits data are
not used; the step time is that of the LM's training.
"""

import numpy as np

from keras_efficient.demo import base
from keras_efficient.recipes.in_context import FewShotPrompter
from keras_efficient.recipes.in_context import k_shot_curve

INPUTS, LABELS, PAIRS = 6, 4, 12
TRAIN_SEQUENCES, QUICK_TRAIN_SEQUENCES, TRAIN_SEED = 40_000, 10_000, 0
NEW_FUNCTIONS, DRAWS = 10, 2  # per seed: new random functions, example draws each
KS = (0, 1, 2, 4, 6)
WORDS = [f"x{i}" for i in range(INPUTS)] + [f"y{i}" for i in range(LABELS)]
VOCABULARY = {word: index for index, word in enumerate(WORDS)}

_TRAINED = {}  # (quick, optimizer, learning rate) -> (causal LM, step seconds)


def tokenize(text):
    """Word-level tokenizer of the synthetic task: `"x3 y1 x0"` -> `[3, 7, 0]`."""
    return [VOCABULARY[word] for word in text.split()]


def function_sequences(rng, count):
    """`count` sequences of PAIRS `(x, f(x))` pairs, each with its own random `f`."""
    mappings = rng.integers(0, LABELS, size=(count, INPUTS))
    x = rng.integers(0, INPUTS, size=(count, PAIRS))
    y = np.take_along_axis(mappings, x, axis=1) + INPUTS
    return np.stack([x, y], axis=2).reshape(count, 2 * PAIRS)


def _train(context):
    settings = context.settings
    key = (settings.quick, settings.optimizer, settings.learning_rate)
    if key not in _TRAINED:
        import keras
        import keras_hub

        keras.utils.set_random_seed(TRAIN_SEED)
        backbone = keras_hub.models.GPT2Backbone(
            vocabulary_size=len(WORDS), num_layers=2, num_heads=4, hidden_dim=32,
            intermediate_dim=64, dropout=0.0, max_sequence_length=2 * PAIRS)
        causal_lm = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
        causal_lm.compile(optimizer=context.make_optimizer(),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        tokens = function_sequences(np.random.default_rng(TRAIN_SEED),
                                    QUICK_TRAIN_SEQUENCES if settings.quick else TRAIN_SEQUENCES)
        # The loss is on the labels only: the inputs are random.
        label_positions = np.tile([1.0, 0.0], PAIRS)[None, :-1].repeat(len(tokens), 0)
        inputs = {"token_ids": tokens[:, :-1], "padding_mask": np.ones_like(tokens[:, :-1], bool)}
        timer = base.StepTimer()
        causal_lm.fit(inputs, tokens[:, 1:], sample_weight=label_positions, batch_size=64,
                      epochs=1, verbose=0, callbacks=[timer])
        _TRAINED[key] = causal_lm, timer.median_step_seconds()
    return _TRAINED[key]


def _k_shot(k):
    def variant(context):
        causal_lm, step_seconds = _train(context)
        rng = np.random.default_rng(context.seed)
        pool = [f"x{i}" for i in range(INPUTS)]
        label_words = [f"y{j}" for j in range(LABELS)]
        accuracies = []
        for _ in range(NEW_FUNCTIONS):
            mapping = rng.integers(0, LABELS, size=INPUTS)
            labels = [f"y{mapping[i]}" for i in range(INPUTS)]
            first_seed = int(rng.integers(2**31))

            def make_prompter(k, seed, first_seed=first_seed):
                return FewShotPrompter(causal_lm, "{input} {label}", k, tokenizer=tokenize,
                                       separator=" ", seed=first_seed + seed)

            # The function's own inputs are its queries; each draw of the examples
            # is one `k_shot_curve` draw (k = 0 is deterministic: one draw).
            (row,) = k_shot_curve(make_prompter, pool, labels, pool, labels, ks=(k,),
                                  draws=DRAWS, label_words=label_words)
            accuracies += row["accuracies"]
        ideal = k / INPUTS + (1 - k / INPUTS) / LABELS
        return base.RunResult(float(np.mean(accuracies)), [], step_seconds,
                              {"perfect_in_context": ideal})

    return variant


base.register_experiment(base.Experiment(
    name="in_context",
    title="In-context learning of new random functions: accuracy vs k examples (tiny GPT-2)",
    description=__doc__.split("\n\n", 1)[1].replace("\n", " "),
    variants={f"k{k}": _k_shot(k) for k in KS},
    baseline="k0",
    epochs=1,
    ignored_settings={
        "trainer.epochs": "the language model trains one epoch over its sequences",
        "trainer.batch_size": "the language model trains on batches of 64",
        "runtime.jit_compile": "the language model is compiled with Keras's defaults",
        "runtime.steps_per_execution": "the language model is compiled with Keras's defaults",
        "task.image_size": "the digits are not used",
    },
))
