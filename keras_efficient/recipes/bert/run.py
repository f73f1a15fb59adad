"""The book's comparison (pre-trained vs shuffled BERT on AG News) and its config runner.

`keras-efficient run tpu_configs/bert_agnews_small.yaml` reaches `run_config` when
`task.technique` is "bert_agnews". Keys of `task.params` (all optional):

```yaml
params:
  encoder_size: bert-small   # a BERT_ENCODERS name
  handle: null               # load the encoder from here instead (SavedModel dir, preset)
  learning_rates: {pretrained: 8.0e-5, shuffled: 1.0e-4}   # default: the book's
  sequence_length: 128
  take: null                 # use only the first N training examples
  data_dir: null             # TFDS data directory
  smoke: false               # offline tiny run: random tiny encoder, mock AG News
```
"""

import contextlib
import dataclasses
import json
import os
import pathlib
import tempfile
import time

import keras

from keras_efficient.recipes.bert.data import load_ag_news
from keras_efficient.recipes.bert.encoders import encoder_handle
from keras_efficient.recipes.bert.encoders import load_bert_preprocessor
from keras_efficient.recipes.bert.model import get_bert_model
from keras_efficient.utils import export
from keras_efficient.utils import validate_callable
from keras_efficient.utils import validate_choice
from keras_efficient.utils import validate_path
from keras_efficient.utils import validate_seed
from keras_efficient.utils import validate_size

VARIANTS = ("pretrained", "shuffled")
export("keras_efficient.recipes.bert.VARIANTS")(VARIANTS)

#: The book's learning rates per encoder and variant.
BOOK_LEARNING_RATES = {
    "bert-small": {"pretrained": 8e-5, "shuffled": 1e-4},
    "bert-base": {"pretrained": 8e-5, "shuffled": 2e-5},
}
export("keras_efficient.recipes.bert.BOOK_LEARNING_RATES")(BOOK_LEARNING_RATES)

#: The book's best validation accuracy over 4 epochs.
BOOK_RESULTS = {
    "bert-small": {"pretrained": 0.9159, "shuffled": 0.9033},
    "bert-base": {"pretrained": 0.9397, "shuffled": 0.9007},
}
export("keras_efficient.recipes.bert.BOOK_RESULTS")(BOOK_RESULTS)

#: The smoke mode's budget: seconds on a CPU, offline.
SMOKE_BUDGET = {"epochs": 1, "batch_size": 16, "sequence_length": 32}
export("keras_efficient.testing.SMOKE_BUDGET")(SMOKE_BUDGET)

_PARAMS = ("encoder_size", "handle", "learning_rates", "sequence_length", "take",
           "data_dir", "smoke")


@export("keras_efficient.recipes.bert.BertRunResult")
@dataclasses.dataclass(frozen=True)
class BertRunResult:
    """One fine-tuning run: validation accuracy after every epoch."""

    encoder_size: str
    variant: str
    seed: int
    learning_rate: float
    val_accuracy: list
    seconds: float

    @property
    def best_accuracy(self):
        """The book's number: the best validation accuracy over the epochs."""
        return max(self.val_accuracy)

    @property
    def final_accuracy(self):
        return self.val_accuracy[-1]


@export("keras_efficient.recipes.bert.compare_pretrained_vs_shuffled")
def compare_pretrained_vs_shuffled(
    encoder_size,
    *,
    variants=VARIANTS,
    learning_rates=None,
    epochs=4,
    batch_size=256,
    sequence_length=128,
    seeds=(0,),
    handle=None,
    take=None,
    data_dir=None,
    drop_remainder=False,
    jit_compile="auto",
    steps_per_execution=1,
    log=print,
):
    """Fine-tune `encoder_size` on AG News with pre-trained and with shuffled weights.

    Builds the datasets (tokenized in `tf.data`), then for every seed and
    variant a fresh `get_bert_model` in the active strategy's scope, fitted for
    `epochs` with the test split as validation.

    Args:
        encoder_size: one of `BERT_ENCODERS`.
        variants: a subset of ("pretrained", "shuffled").
        learning_rates: {variant: rate}; default the book's `BOOK_LEARNING_RATES`.
        epochs, batch_size, sequence_length: the book's 4, 256, 128 by default.
        seeds: one run per seed (weight shuffling, data order, head initialization).
        handle: load the encoder from here instead of the book's TF Hub handle.
        take: use only the first `take` training examples.
        data_dir: TFDS data directory.
        drop_remainder: drop partial batches (static shapes for TPUs; drops the
            last 176 of the 7,600 validation examples at batch 256).
        jit_compile, steps_per_execution: passed to `compile`.
        log: called with one line per finished run.

    Returns:
        A list of `BertRunResult`.
    """
    handle = encoder_handle(encoder_size, handle)
    # Checked before the encoder and the data load.
    for name, value in (("epochs", epochs), ("batch_size", batch_size),
                        ("steps_per_execution", steps_per_execution)):
        validate_size(name, value)
    validate_size("sequence_length", sequence_length, low=3)
    if take is not None:
        validate_size("take", take)
    validate_callable("log", log)
    for variant in variants:
        validate_choice("variants", variant, VARIANTS)
    for variant in learning_rates or {}:  # a misspelt key would silently keep the book's rate
        validate_choice("learning_rates", variant, VARIANTS)
    learning_rates = {**BOOK_LEARNING_RATES[encoder_size], **(learning_rates or {})}
    preprocessor = load_bert_preprocessor(handle, sequence_length)
    validation = load_ag_news(preprocessor, "test", batch_size, data_dir=data_dir,
                              drop_remainder=drop_remainder)
    results = []
    for seed in seeds:
        train = load_ag_news(preprocessor, "train", batch_size, seed=seed, take=take,
                             drop_remainder=drop_remainder, data_dir=data_dir)
        for variant in variants:
            keras.utils.set_random_seed(seed)
            model = get_bert_model(
                encoder_size, float(learning_rates[variant]),
                keep_tfhub_weights=variant == "pretrained", handle=handle, seed=seed,
                jit_compile=jit_compile, steps_per_execution=steps_per_execution)
            start = time.perf_counter()
            # `train` is shuffled in tf.data; Keras would warn that it ignores shuffle=True.
            history = model.fit(train, validation_data=validation, epochs=epochs, verbose=2,
                                shuffle=False)
            result = BertRunResult(encoder_size, variant, seed, float(learning_rates[variant]),
                                   [float(a) for a in history.history["val_accuracy"]],
                                   time.perf_counter() - start)
            log(f"{encoder_size} {variant} seed {seed}: best {result.best_accuracy:.4f}, "
                f"final {result.final_accuracy:.4f} ({result.seconds:.0f} s)")
            results.append(result)
    return results


@export("keras_efficient.recipes.bert.format_table")
def format_table(results):
    """A markdown table of best and final validation accuracy, with the book's number."""
    lines = ["| encoder | weights | learning rate | seed | best epoch | final epoch | book |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        book = BOOK_RESULTS.get(r.encoder_size, {}).get(r.variant)
        lines.append(f"| {r.encoder_size} | {r.variant} | {r.learning_rate:g} | {r.seed} | "
                     f"{100 * r.best_accuracy:.2f}% | {100 * r.final_accuracy:.2f}% | "
                     f"{'' if book is None else f'{100 * book:.2f}%'} |")
    return "\n".join(lines)


@export("keras_efficient.testing.write_tiny_encoder")
def write_tiny_encoder(directory, seed=0):
    """Write a random 1-layer BERT (hidden 16) and a small vocabulary as a keras-hub preset.

    The smoke mode's encoder: everything `compare_pretrained_vs_shuffled` does,
    offline, in seconds. Returns `directory`.
    """
    import keras_hub

    directory = validate_path("directory", directory)
    keras.utils.set_random_seed(validate_seed("seed", seed, allow_none=False))
    vocabulary = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
                  + list("abcdefghijklmnopqrstuvwxyz") + [f"##{c}" for c in "abcdefghij"])
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary), num_layers=1, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=64)
    backbone.save_to_preset(directory)
    keras_hub.models.BertTokenizer(vocabulary=vocabulary).save_to_preset(directory)
    return directory


@export("keras_efficient.testing.smoke_environment")
@contextlib.contextmanager
def smoke_environment(enabled=True, num_examples=64):
    """Context for an offline smoke run: yields a tiny encoder's directory.

    Inside, TFDS answers `load_ag_news` with `num_examples` random examples per
    split (`tfds.testing.mock_data`) and the yielded directory holds a random
    tiny encoder (`write_tiny_encoder`), both deleted on exit. With
    `enabled=False` it does nothing and yields None (the real run).

    Example:

    >>> with smoke_environment(SMOKE) as tiny_encoder:
    ...     results = compare_pretrained_vs_shuffled("bert-small", handle=tiny_encoder,
    ...                                              **SMOKE_BUDGET)
    """
    validate_size("num_examples", num_examples)
    if not enabled:
        yield None
        return
    import tensorflow_datasets as tfds

    with tempfile.TemporaryDirectory() as directory, \
            tfds.testing.mock_data(num_examples=num_examples):
        yield write_tiny_encoder(directory)


@export("keras_efficient.recipes.bert.run_config")
def run_config(config, out_dir, smoke=False):
    """Run a validated `ExperimentConfig` whose `task.technique` is "bert_agnews".

    Writes `bert_agnews.md` (the table) and `bert_agnews.json` to `out_dir` and
    returns 0. With `smoke` (or `task.params.smoke`): a random tiny encoder,
    TFDS mock data, one epoch on 64 examples, batch 16, sequence length 32,
    offline.
    """
    from keras_efficient import distribute
    from keras_efficient.config import ConfigError

    out_dir = validate_path("out_dir", out_dir)

    runtime, trainer, task = config.runtime, config.trainer, config.task
    params = dict(task["params"])
    unknown = sorted(set(params) - set(_PARAMS))
    if unknown:
        raise ConfigError(f"{config.path}: unknown key `task.params.{unknown[0]}`. Valid "
                          f"keys: {list(_PARAMS)}.")
    for key in ("optimizer", "learning_rate"):
        if trainer[key] is not None:
            raise ConfigError(f"{config.path}: key `trainer.{key}` does not apply to technique "
                              f"'bert_agnews': it fine-tunes with Adam at "
                              f"`task.params.learning_rates` (one rate per variant).")
    if task["technique"] != "bert_agnews":
        raise ConfigError(f"{config.path}: key `task.technique` must be 'bert_agnews' for "
                          f"dataset 'ag_news'; received {task['technique']!r}.")
    if task["dataset"] != "ag_news":
        raise ConfigError(f"{config.path}: key `task.dataset` must be 'ag_news' for "
                          f"technique 'bert_agnews'; received {task['dataset']!r}.")
    smoke = smoke or bool(params.get("smoke", False))
    keras.config.set_dtype_policy(runtime["mixed_precision"])
    strategy = distribute.get_strategy(runtime["strategy"], runtime["tpu"])
    jit = runtime["jit_compile"]
    budget = SMOKE_BUDGET if smoke else {
        "batch_size": trainer["batch_size"],
        "sequence_length": params.get("sequence_length", 128)}
    if not smoke and trainer["epochs"] is not None:  # null: the recipe's own budget
        budget["epochs"] = trainer["epochs"]
    with smoke_environment(smoke) as tiny_encoder, strategy.scope():
        results = compare_pretrained_vs_shuffled(
            params.get("encoder_size", "bert-small"),
            variants=tuple(task["variants"] or VARIANTS),
            learning_rates=params.get("learning_rates"),
            seeds=tuple(trainer["seeds"][:1] if smoke else trainer["seeds"]),
            handle=tiny_encoder or params.get("handle"),
            take=params.get("take"),
            data_dir=params.get("data_dir"),
            drop_remainder=distribute.recommended_settings(strategy).drop_remainder,
            jit_compile=distribute.jit_compile_for(strategy) if jit == "auto" else jit,
            steps_per_execution=runtime["steps_per_execution"],
            **budget,
        )
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = format_table(results)
    (out_dir / "bert_agnews.md").write_text(
        f"# BERT on AG News: pre-trained vs shuffled weights\n\n"
        f"`keras-efficient run {config.path}`{' (smoke mode)' if smoke else ''}\n\n"
        f"{table}\n")
    (out_dir / "bert_agnews.json").write_text(json.dumps(
        [{**dataclasses.asdict(r), "best_accuracy": r.best_accuracy,
          "final_accuracy": r.final_accuracy} for r in results], indent=2))
    print(table)
    print(f"Report: {os.path.join(out_dir, 'bert_agnews.md')}")
    return 0

